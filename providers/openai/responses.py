"""OpenAI's Responses API passed through (``responses: native``): pure parts.

The body goes upstream as the gateway built it, with only ``model`` replaced; the whole answer
comes back byte for byte once checked to be a ``response`` and its usage read
(``usage.input_tokens`` / ``output_tokens``). A stream's typed events
(``event: response.output_text.delta`` / ``data: {...}``) are relayed as the upstream wrote
them: the bytes of a read pass on unparsed when they are whole events none of which can end
the stream; only the events that carry a whole ``response`` (``response.created``,
``.completed``, ...) or an ``error`` are parsed, for their usage and the final response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from providers.openai.answer import listing
from wire.errors import UpstreamError
from wire.openai import ChatResult, StreamChunk, Usage
from wire.sse import SSEDecoder, SSEvent

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed",
                      "error"})
# Bytes in an event's JSON that may mark one worth parsing: the events that carry a whole
# ``response`` (it has an ``"error"`` field), and the ``error`` event. Text in a delta has its
# quotes escaped, so it cannot contain these.
_MARKS = (b'"error"', b'"response.completed"', b'"response.incomplete"',
          b'"response.failed"')


def request_body(body: dict[str, Any], model: str) -> bytes:
    return orjson.dumps({**body, "model": model})


def response_usage(data: Any) -> Usage | None:
    """A ``response``'s ``usage`` (``input_tokens``, ``output_tokens``, cached input tokens
    in ``input_tokens_details``); None when absent."""
    if not isinstance(data, dict):
        return None
    given, made = data.get("input_tokens"), data.get("output_tokens", 0)
    if not isinstance(given, int) or not isinstance(made, int):
        return None
    details = data.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(given, made, cached if isinstance(cached, int) else 0)


def from_upstream_response(body: bytes) -> ChatResult:
    """Check a whole answer is a ``response`` object and read its usage; bytes unchanged."""
    parsed = listing(body, "output",
                     "The upstream's answer is not a 'response' (no 'output' list).")
    return ChatResult(body=body, usage=response_usage(parsed.get("usage")))


def _encode(event: SSEvent) -> bytes:
    head = b"event: " + event.event.encode() + b"\n" if event.event else b""
    return head + b"data: " + event.data + b"\n\n"


class ResponseEvents:
    """Feed the upstream's bytes as they arrive; get back the chunks to relay. ``done`` is
    set once a terminal event has come (after which nothing more is relayed)."""

    __slots__ = ("_decoder", "done")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self.done = False

    def feed(self, data: bytes) -> Iterator[StreamChunk]:
        if self.done:
            return
        was_idle = self._decoder.idle
        events = self._decoder.feed(data)
        if was_idle and self._decoder.idle and not any(m in data for m in _MARKS):
            if events:  # whole plain events: the read's own bytes pass on
                yield StreamChunk(b"", sse=data)
            return
        for event in events:
            chunk = self._chunk(event)
            if chunk is not None:
                yield chunk
            if self.done:
                return

    def _chunk(self, event: SSEvent) -> StreamChunk | None:
        if not any(m in event.data for m in _MARKS):
            return StreamChunk(b"", sse=_encode(event))
        try:
            parsed = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The upstream sent a stream event that is not JSON.") from exc
        if not isinstance(parsed, dict):
            raise UpstreamError("The upstream sent a stream event that is not a JSON object.")
        response = parsed.get("response")
        if parsed.get("type") in TERMINAL:
            self.done = True
            usage = response_usage(response.get("usage")) if isinstance(response, dict) else None
            return StreamChunk(event.data, usage=usage, sse=_encode(event))
        # (an event carrying the whole response: its JSON too, for the gateway to read)
        return StreamChunk(event.data if isinstance(response, dict) else b"", sse=_encode(event))
