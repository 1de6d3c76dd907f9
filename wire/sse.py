"""Server-sent events: an incremental decoder (pure, no I/O) and the encoder for our own events."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class SSEvent:
    data: bytes
    event: str | None = None


class SSEDecoder:
    """Feed raw bytes as they arrive; get back every event they complete.

    Follows the WHATWG rules that matter for model APIs: lines end in LF, CRLF or CR; ``data``
    lines of one event are joined with LF; comments (``:``) and unknown fields are ignored;
    a blank line dispatches the event.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    @property
    def idle(self) -> bool:
        """Whether everything fed so far has ended on an event boundary."""
        return not self._buffer and not self._data and self._event is None

    def feed(self, chunk: bytes) -> list[SSEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A lone CR at the very end may be the first half of CRLF: keep it for later.
            keep_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buffer = buffer[:-1] + b"\r"
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(SSEvent(b"\n".join(self._data), self._event))
                self._data = []
                self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode()
        return events


def encode_data(data: bytes) -> bytes:
    """One ``data:`` event as OpenAI sends it (LF line ends)."""
    return b"data: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
