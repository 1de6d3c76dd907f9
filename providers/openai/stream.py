"""An OpenAI-speaking upstream's stream, relayed as bytes.

The upstream already writes the SSE that the client wants, so the bytes of each read pass on
as they came, several events in one ``StreamChunk`` (``sse``), when they are plainly that:
whole ``data: {...}`` lines, none of which may carry usage (every ``"usage"`` in them is
``"usage":null``) or an error, nor be ``[DONE]``. Such events are not parsed: a plain chunk's
JSON says nothing the gateway needs. When only a read's first events are plain (the read
ends mid-event, or with the usage chunk and ``[DONE]``: a long answer read in big pieces
ends so), those pass as bytes and the rest is decoded. Anything else (usage, an error,
``[DONE]``, CR line ends, comments, ``event:`` lines) goes through the SSE decoder and
``from_upstream_chunk`` one event at a time, as every event did before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from wire.openai import StreamChunk
from wire.sse import SSEDecoder

_USAGE = b'"usage"'
_USAGE_NULL = b'"usage":null'
_USAGE_NULL_FIELD = b',"usage":null'
_BETWEEN = b"}\n\ndata: {"  # the end of one plain event and the start of the next
_END = b"}\n\n"
_USAGE_FIELD = b'"usage":'


def plain_events(data: bytes) -> bool:
    """Whether ``data`` is whole single-line ``data: {...}`` events only, with no error, no
    usage but ``"usage":null`` and no ``[DONE]``: bytes that may pass unparsed. (Every
    newline is then within a ``}\\n\\ndata: {`` or the final ``}\\n\\n``.)"""
    return (data.startswith(b"data: {") and data.endswith(b"}\n\n")
            and data.count(b"\n") == 2 * data.count(_BETWEEN) + 2
            and b'"error"' not in data and data.count(_USAGE) == data.count(_USAGE_NULL))


def not_plain_at(data: bytes) -> int:
    """Where plain events stop at the latest: the first usage that is not null, error or
    [DONE] (``len(data)``: none). Found with ``bytes.find``, not a regular expression: an
    alternation is tried at every byte (~20 us on a short answer's single read)."""
    end = len(data)
    for marker in (b'"error"', b"[DONE]"):
        found = data.find(marker, 0, end)
        if found >= 0:
            end = found
    if data.count(_USAGE_FIELD, 0, end) != data.count(_USAGE_NULL, 0, end):
        at = data.find(_USAGE_FIELD)
        while at >= 0 and data.startswith(b"null", at + len(_USAGE_FIELD)):
            at = data.find(_USAGE_FIELD, at + len(_USAGE_FIELD))
        end = min(end, at)
    return end


def plain_prefix(data: bytes) -> int:
    """The length of the longest start of ``data`` made of whole plain events (0: none)."""
    end = data.rfind(_END, 0, not_plain_at(data)) + len(_END)
    if end < len(_END) or not plain_events(data[:end]):
        return 0
    return end


class UpstreamEvents:
    """Feed the upstream's bytes as they arrive; get back the chunks to relay. ``chunk``
    turns one event's payload into a chunk (``from_upstream_chunk``); ``done`` is set once
    ``[DONE]`` has come, after which nothing more is relayed."""

    __slots__ = ("_chunk", "_decoder", "_wants_usage", "done")

    def __init__(self, chunk: Callable[[bytes], StreamChunk], *, client_wants_usage: bool
                 ) -> None:
        self._chunk = chunk
        self._decoder = SSEDecoder()
        self._wants_usage = client_wants_usage
        self.done = False

    def feed(self, data: bytes) -> Iterable[StreamChunk]:
        """The chunks ``data`` completes; those after a plain start are decoded lazily, so
        that the chunks before an error event still go out before it is raised."""
        if self.done:
            return ()
        if self._decoder.idle:
            if plain_events(data):
                return (self._relayed(data),)
            cut = plain_prefix(data)
            if cut:
                return self._then_decoded(self._relayed(data[:cut]), data[cut:])
        return self._decoded(data)

    def _relayed(self, data: bytes) -> StreamChunk:
        if not self._wants_usage and _USAGE in data:
            data = data.replace(_USAGE_NULL_FIELD, b"")
        return StreamChunk(b"", sse=data)

    def _then_decoded(self, first: StreamChunk, data: bytes) -> Iterator[StreamChunk]:
        yield first
        yield from self._decoded(data)

    def _decoded(self, data: bytes) -> Iterator[StreamChunk]:
        for event in self._decoder.feed(data):
            if event.data == b"[DONE]":
                self.done = True
                return
            yield self._chunk(event.data)
