"""CORS for browsers (``server.cors_allow_origins``): the OpenAI SDK in a web page, a notebook
front end or another origin's web app can call the gateway.

An ASGI piece that is installed only when origins are configured, outside the gateway's
middleware so that every answer (its 413 and 500 included) carries the headers. It
- answers preflights (``OPTIONS`` with ``Access-Control-Request-Method``) for ``/v1/*`` from
  an allowed origin with the methods and the headers the SDKs send (``authorization``,
  ``content-type``, ``x-stainless-*``, ``openai-*``, ...), or a 400 naming what is refused;
- marks answers to an allowed origin ``Access-Control-Allow-Origin`` and exposes
  ``x-request-id``, the ``x-ratelimit-*`` headers, ``retry-after`` and the gateway's own.
No credentials mode: keys travel in ``Authorization``, never in cookies.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.middleware import new_request_id
from wire.errors import GatewayError, InvalidRequest

METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")
EXPOSED = ("x-request-id", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
           "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
           "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "retry-after",
           "x-gateway-cache", "x-conversation-id", "x-conversation-truncated")
# Request headers a page may send: the SDKs' own, the gateway's, and the CORS-safelisted.
HEADERS = frozenset({"authorization", "content-type", "x-api-key", "x-request-id", "x-user-id",
                     "cache-control", "content-encoding", "accept", "accept-language",
                     "content-language", "idempotency-key", "user-agent"})
HEADER_PREFIXES = ("x-stainless-", "openai-")
MAX_AGE = b"600"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"]
            if name == b"origin" or name.startswith(b"access-control-request-")}


class CORS:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origin.lower() for origin in origins)
        self.any = "*" in self.origins
        self.exposed = ", ".join(EXPOSED).encode()

    def allowed(self, origin: str) -> bool:
        return self.any or origin.lower() in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        raw_origin = headers.get(b"origin")
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        origin = raw_origin.decode("latin-1")
        if (scope["method"] == "OPTIONS" and b"access-control-request-method" in headers
                and scope["path"].startswith("/v1/")):
            await self._preflight(origin, headers, send)
            return
        if not self.allowed(origin):
            await self.app(scope, receive, send)
            return
        added = [*self._origin_headers(origin),
                 (b"access-control-expose-headers", self.exposed)]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self.any:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin.encode("latin-1")),
                (b"vary", b"origin")]

    async def _preflight(self, origin: str, headers: dict[bytes, bytes], send: Send) -> None:
        method = headers[b"access-control-request-method"].decode("latin-1").strip()
        asked = headers.get(b"access-control-request-headers", b"").decode("latin-1")
        names = [name.strip().lower() for name in asked.split(",") if name.strip()]
        refused = _refusal(self.allowed(origin), origin, method, names)
        if refused is not None:
            await _answer(send, refused.status, refused.body_bytes(),
                          [(b"content-type", b"application/json")])
            return
        answer = [*self._origin_headers(origin),
                  (b"access-control-allow-methods", ", ".join(METHODS).encode()),
                  (b"access-control-max-age", MAX_AGE)]
        if names:
            answer.append((b"access-control-allow-headers", ", ".join(names).encode()))
        if headers.get(b"access-control-request-private-network", b"").lower() == b"true":
            answer.append((b"access-control-allow-private-network", b"true"))
        await _answer(send, 204, b"", answer)


def _refusal(origin_ok: bool, origin: str, method: str, names: list[str]
             ) -> GatewayError | None:
    if not origin_ok:
        return InvalidRequest(f"CORS: the origin {origin!r} is not in server.cors_allow_origins.",
                              param="origin")
    if method.upper() not in METHODS:
        return InvalidRequest(f"CORS: the method {method!r} is not allowed.",
                              param="access-control-request-method")
    for name in names:
        if name not in HEADERS and not name.startswith(HEADER_PREFIXES):
            return InvalidRequest(f"CORS: the request header {name!r} is not allowed.",
                                  param="access-control-request-headers")
    return None


async def _answer(send: Send, status: int, body: bytes,
                  headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        *headers, (b"content-length", str(len(body)).encode()),
        (b"x-request-id", new_request_id().encode())]})
    await send({"type": "http.response.body", "body": body})
