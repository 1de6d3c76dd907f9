"""``JSONAnswer``: a JSON body already encoded, and what to do once it has been sent.

Starlette's ``Response`` with a ``BackgroundTask`` does the same, but checks its headers
(``Mapping`` walk, lower-casing, content-length/type look-ups) and whether the task is a
coroutine function on every call: a few microseconds of every answer. Here the headers are
the gateway's own (never content-length or content-type).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_JSON = (b"content-type", b"application/json")
RawHeaders = list[tuple[bytes, bytes]]


def raw_headers(headers: Mapping[str, str] | None) -> RawHeaders:
    """The gateway's own headers as ASGI's raw headers: lower-case names, latin-1."""
    if not headers:
        return []
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class JSONAnswer(Response):
    media_type = "application/json"

    def __init__(self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None,
                 then: Callable[[], Awaitable[None]] | None = None) -> None:
        """``headers``: neither content-length nor content-type; ``then``: awaited once
        the body has been sent (not when sending fails)."""
        self.body = body
        self.status_code = status
        self.background = None
        self.then = then
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _JSON,
                            *raw_headers(headers)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.send_to(send)
        if self.then is not None:
            await self.then()

    async def send_to(self, send: Send) -> None:
        """Send the answer (and nothing else: ``then`` is the caller's)."""
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
