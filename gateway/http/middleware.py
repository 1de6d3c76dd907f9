"""The one ASGI middleware every request passes: request id, body limit, metrics, last resort.

Pure ASGI (no BaseHTTPMiddleware) to stay cheap on the hot path. It
- gives every response an ``x-request-id``: the client's own when it is 1-128 characters of
  ``[A-Za-z0-9._:-]``, else a new one (no client can bloat log lines or headers);
- refuses bodies over ``server.max_body_mb`` with 413, by Content-Length up front and by
  counting the bytes of chunked bodies as they are read; a gzip or deflate body is decoded
  as it is read and its decoded bytes are counted (``bodies.py``), another coding is a 415;
- keeps ``gateway_in_flight_requests`` and counts every answered request with its duration;
- turns an unexpected exception into a 500 ``internal_error`` body: the traceback goes to
  the log, never to the client.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.bodies import coding_of, decoding_receive
from gateway.logs import RequestLog
from gateway.metrics import Metrics
from wire.errors import GatewayError, InternalError, RequestTooLarge

log = logging.getLogger("gateway")

CLIENT_GONE = 499  # nginx's convention: the client closed the connection first

# Request ids: a random prefix per process and a counter, 32 hex digits like a uuid4 but
# without a system call per request.
_ID_PREFIX = os.urandom(10).hex()
_ID_COUNTER = itertools.count()


_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


def choose_request_id(client_id: str | None) -> str:
    """The client's ``x-request-id`` when it is a sane one, else a new id."""
    if client_id is not None and _CLIENT_ID.fullmatch(client_id):
        return client_id
    return new_request_id()


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int,
                 request_log: RequestLog | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.request_log = request_log  # None unless --log-format json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = choose_request_id(_header(scope, b"x-request-id"))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"], state["started"] = request_id, started
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            body_receive, refused = self._body(scope, receive)
            if refused is not None:
                _match_route(scope)  # counted under the route's path, as a chunked body is
                state["error"] = refused.code
                await _send_error(send_with_id, refused)
            else:
                await self.app(scope, body_receive, send_with_id)
        except Exception as exc:  # the last resort: answer, log, keep serving
            log.exception("unhandled error in %s %s (request %s)", scope["method"],
                          scope["path"], request_id)
            if not response_started:
                await _send_error(send_with_id, InternalError(
                    f"The gateway hit an unexpected error ({type(exc).__name__}); "
                    f"request id {request_id}."))
        finally:
            self.metrics.in_flight.dec()
            self._observe(scope, state, status if response_started else CLIENT_GONE, started)
            if self.request_log is not None:
                self.request_log.emit(scope["method"], _endpoint(scope),
                                      status if response_started else CLIENT_GONE,
                                      time.perf_counter() - started, state)

    def _observe(self, scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.answered(state.get("model", ""), endpoint, str(status),
                              time.perf_counter() - started)

    def _body(self, scope: Scope, receive: Receive) -> tuple[Receive, GatewayError | None]:
        """The ``receive`` the app reads its body through, or the error that refuses the
        request up front (413 by Content-Length, 415 for a coding the gateway cannot decode)."""
        length, coding = _body_headers(scope)
        if coding is not None:
            try:
                known = coding_of(coding.decode("latin-1"))
            except GatewayError as error:
                return receive, error
            if known is not None:  # not identity: decoded, and the decoded bytes counted
                return decoding_receive(scope, receive, known, self.max_body_bytes), None
        return self._counting(receive), self._check_length(length)

    def _check_length(self, length: bytes | None) -> GatewayError | None:
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return _too_large(self.max_body_bytes)
        return None

    def _counting(self, receive: Receive) -> Receive:
        limit, seen = self.max_body_bytes, 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        return counting_receive


def _endpoint(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", None) or "unmatched"


def _match_route(scope: Scope) -> None:
    """Put the route the request's path matches in ``scope`` (the router does this for the
    requests that reach it), so that a request refused before routing is counted under it."""
    for route in getattr(scope.get("app"), "routes", ()):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            scope["route"] = route
            return


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes "
                           "(server.max_body_mb).")


def _body_headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """Content-Length and Content-Encoding, in one pass over the headers."""
    length = coding = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value
        elif key == b"content-encoding":
            coding = value
    return length, coding


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_error(send: Send, error: GatewayError) -> None:
    headers = [(b"content-type", b"application/json"),
               *((k.encode(), v.encode()) for k, v in error.headers.items())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": error.body_bytes()})
