"""Request bodies sent with ``Content-Encoding: gzip`` or ``deflate``, decoded as they are read.

``decoding_receive`` wraps the ASGI ``receive`` of such a request: the app reads the decoded
body, and ``server.max_body_mb`` applies to the decoded bytes as they come out of zlib, so a
small compressed body cannot expand past the limit (each zlib call may produce at most the
room left plus one byte). Big bodies are decoded in slices that give the event loop back in
between. Any other coding is a 415 ``unsupported_media_type``; broken data is a 400.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator

from starlette.types import Message, Receive, Scope

from wire.errors import InvalidRequest, RequestTooLarge, UnsupportedMediaType

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
# Decoded bytes per zlib call: about a millisecond of inflating, so the loop stays responsive.
SLICE = 256 * 1024


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes "
                           "(server.max_body_mb).")


def coding_of(value: str) -> str | None:
    """``gzip`` or ``deflate`` for a ``Content-Encoding`` value; None for ``identity``."""
    coding = value.strip().lower()
    if coding in ("", "identity"):
        return None
    known = _CODINGS.get(coding)
    if known is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {value.strip()!r} is not supported: send the body as it is, or "
            "compressed with gzip or deflate.")
    return known


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib header (RFC 1950), as HTTP's ``deflate`` should; some
    clients send raw deflate (RFC 1951) instead, which is taken too."""
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class BodyDecoder:
    """The decoded bytes of one request body, fed its raw pieces in order."""

    __slots__ = ("_coding", "_fed", "_head", "_limit", "_obj", "_size")

    def __init__(self, coding: str, limit: int) -> None:
        self._coding = coding
        self._limit = limit
        self._size = self._fed = 0
        self._head = b""  # deflate: the first byte, until the header can be recognized
        self._obj = zlib.decompressobj(_GZIP_WBITS) if coding == "gzip" else None

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, at most ``SLICE`` at a time."""
        self._fed += len(data)
        if self._obj is None:
            data, self._head = self._head + data, b""
            if len(data) < 2:
                self._head = data
                return
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(data)
                                           else -zlib.MAX_WBITS)
        while data:
            if self._obj.eof:  # another gzip member follows (gzip allows several)
                if self._coding != "gzip":
                    raise self._broken("data goes on after the end of the deflate stream")
                self._obj = zlib.decompressobj(_GZIP_WBITS)
            try:
                out = self._obj.decompress(data, min(SLICE, self._limit - self._size + 1))
            except zlib.error as exc:
                raise self._broken(str(exc)) from None
            self._size += len(out)
            if self._size > self._limit:
                raise too_large(self._limit)
            yield out
            data = self._obj.unused_data if self._obj.eof else self._obj.unconsumed_tail

    def finish(self) -> None:
        """The body has ended: it must have been whole (an empty body counts as empty)."""
        if self._fed and (self._obj is None or not self._obj.eof):
            raise self._broken("the compressed data ends too early")

    def _broken(self, why: str) -> InvalidRequest:
        return InvalidRequest(f"The request body is not valid {self._coding} data ({why}).")


def decoding_receive(scope: Scope, receive: Receive, coding: str, limit: int) -> Receive:
    """``receive`` yielding the decoded body; the request's ``content-encoding`` and
    ``content-length`` headers are dropped, as they described the encoded body."""
    scope["headers"] = [(name, value) for name, value in scope["headers"]
                        if name not in (b"content-encoding", b"content-length")]
    decoder = BodyDecoder(coding, limit)

    async def receive_decoded() -> Message:
        message = await receive()
        if message["type"] != "http.request":
            return message
        parts: list[bytes] = []
        for piece in decoder.pieces(message.get("body", b"")):
            if parts:
                await asyncio.sleep(0)  # a big body: let other requests run between slices
            parts.append(piece)
        more = message.get("more_body", False)
        if not more:
            decoder.finish()
        return {"type": "http.request", "body": b"".join(parts), "more_body": more}

    return receive_decoded
