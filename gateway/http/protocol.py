"""The HTTP/1.1 protocol ``gateway serve`` runs uvicorn with: uvicorn's own, except that an
answer of unknown length to an HTTP/1.0 client is close-delimited.

HTTP/1.0 has no chunked transfer coding (RFC 9112, section 7): an answer without a
Content-Length (a stream) ends when the server closes the connection. uvicorn's h11 protocol
does this; its httptools protocol (the faster one, used when httptools is installed) sends
``Transfer-Encoding: chunked`` to HTTP/1.0 clients too, so that they see chunk sizes inside
the events. ``HttpToolsProtocol`` here gives such an answer no transfer coding and
``Connection: close`` (uvicorn closes HTTP/1.0 connections after each answer anyway). Every
HTTP/1.1 request runs exactly as in uvicorn.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpTools
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as _Cycle
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard]
    _HttpTools = None  # type: ignore[assignment,misc]

_UNBOUNDED = 1 << 62


if _HttpTools is not None:
    class _CloseDelimitedCycle(_Cycle):
        """An HTTP/1.0 request's cycle: an answer without Content-Length is sent as it
        comes and ends with the connection."""

        _close_delimited = False

        async def send(self, message: Any) -> None:
            if message["type"] == "http.response.start" and not self.response_started:
                names = {name.lower() for name, _ in message.get("headers", ())}
                if (b"content-length" not in names and b"transfer-encoding" not in names
                        and self.scope["method"] != "HEAD"):
                    self._close_delimited = True
                    self.keep_alive = False
                    self.chunked_encoding = False
                    self.expected_content_length = _UNBOUNDED
            elif (message["type"] == "http.response.body" and self._close_delimited
                  and not message.get("more_body", False)):
                self.expected_content_length = len(message.get("body", b""))
            await super().send(message)

    class HttpToolsProtocol(_HttpTools):
        def on_headers_complete(self) -> None:
            previous = self.cycle
            super().on_headers_complete()  # makes the request's cycle; its task runs later
            cycle = self.cycle
            if cycle is not previous and cycle is not None \
                    and cycle.scope["http_version"] == "1.0":
                cycle.__class__ = _CloseDelimitedCycle

    Protocol: type = HttpToolsProtocol
else:  # pragma: no cover
    Protocol = H11Protocol

# What ``gateway serve`` passes to uvicorn as ``http``.
PROTOCOL = f"{__name__}:Protocol"
