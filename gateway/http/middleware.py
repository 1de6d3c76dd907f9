"""The one ASGI middleware every request passes: request id, body limit, metrics, last resort.

Pure ASGI (no BaseHTTPMiddleware) to stay cheap on the hot path. It
- gives every response an ``x-request-id``: the client's own when it is 1-128 characters of
  ``[A-Za-z0-9._:-]``, else a new one (no client can bloat log lines or headers);
- refuses bodies over ``server.max_body_mb`` with 413, by Content-Length up front and by
  counting the bytes of chunked bodies as they are read; a gzip or deflate body is decoded
  as it is read and its decoded bytes are counted (``bodies.py``), another coding is a 415;
- keeps ``gateway_in_flight_requests`` and counts every answered request with its duration;
- is the gateway's one exception handler: a ``GatewayError`` becomes its OpenAI error body,
  a routing 404/405 the gateway's ``not_found``/``method_not_allowed``, and an unexpected
  exception a 500 ``internal_error`` body whose traceback goes to the log, never to the
  client. (Starlette's own error middleware is not stacked: gateway/http/routing.py.)
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http.answers import JSONAnswer
from gateway.http.bodies import coding_of, decoding_receive
from gateway.http.streaming import WATCHER, DisconnectWatcher
from gateway.logs import RequestLog
from gateway.metrics import Metrics
from wire.errors import (
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)

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


class _Send:
    """The app's ``send``: adds the request id to the response's headers and notes its
    status. A plain callable returning the server's own awaitable (no coroutine of its own
    per message: a stream sends one message per relayed read)."""

    __slots__ = ("_id_header", "_send", "status")

    def __init__(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        self._send = send
        self._id_header = id_header
        self.status: int | None = None  # set once the response has started

    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), self._id_header]
        return self._send(message)


class _CountingReceive:
    """The app's ``receive`` for a body without a Content-Length: 413 once the bytes read
    pass the limit."""

    __slots__ = ("_limit", "_receive", "_seen")

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._seen = 0

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                raise _too_large(self._limit)
        return message


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
        client_id, length, coding, chunked = _request_headers(scope)
        request_id = choose_request_id(client_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"], state["started"] = request_id, started
        sender = _Send(send, (b"x-request-id", request_id.encode("latin-1")))
        self.metrics.in_flight.inc()
        try:
            body_receive, refused = self._body(scope, receive, length, coding, chunked)
            if refused is not None:
                _match_route(scope)  # counted under the route's path, as a chunked body is
                state["error"] = refused.code
                await _send_error(sender, refused)
            else:
                await self.app(scope, body_receive, sender)
        except GatewayError as error:
            await _answer_error(scope, sender, state, error)
        except HTTPException as exc:  # the router's: no route for the path or the method
            await _answer_error(scope, sender, state, _routing_error(scope, exc))
        except Exception as exc:  # the last resort: answer, log, keep serving
            log.exception("unhandled error in %s %s (request %s)", scope["method"],
                          scope["path"], request_id)
            if sender.status is None:
                await _send_error(sender, InternalError(
                    f"The gateway hit an unexpected error ({type(exc).__name__}); "
                    f"request id {request_id}."))
        finally:
            self.metrics.in_flight.dec()
            watcher: DisconnectWatcher | None = state.pop(WATCHER, None)  # (it holds receive)
            if watcher is not None:
                watcher.end()
            status = CLIENT_GONE if sender.status is None else sender.status
            self._observe(scope, state, status, started)
            if self.request_log is not None:
                self.request_log.emit(scope["method"], _endpoint(scope), status,
                                      time.perf_counter() - started, state)

    def _observe(self, scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.answered(state.get("model", ""), endpoint, str(status),
                              time.perf_counter() - started)

    def _body(self, scope: Scope, receive: Receive, length: bytes | None, coding: bytes | None,
              chunked: bool) -> tuple[Receive, GatewayError | None]:
        """The ``receive`` the app reads its body through, or the error that refuses the
        request up front (413 by Content-Length, 415 for a coding the gateway cannot decode).
        A body framed by its Content-Length within the limit is read as the server gives it
        (the server reads no more than that length); any other is counted as it is read."""
        if coding is not None:
            try:
                known = coding_of(coding.decode("latin-1"))
            except GatewayError as error:
                return receive, error
            if known is not None:  # not identity: decoded, and the decoded bytes counted
                return decoding_receive(scope, receive, known, self.max_body_bytes), None
        if length is not None and not chunked and length.isdigit():
            if int(length) > self.max_body_bytes:
                return receive, _too_large(self.max_body_bytes)
            return receive, None
        return _CountingReceive(receive, self.max_body_bytes), None


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


async def _answer_error(scope: Scope, send: _Send, state: dict[str, Any],
                        error: GatewayError) -> None:
    """The error's OpenAI body, unless the response has already begun (then only logged)."""
    state["error"] = error.code  # (the JSON request log's "error")
    if send.status is None:
        await _send_error(send, error)
    else:
        log.error("%s %s failed after its response began: %d %s: %s", scope["method"],
                  scope["path"], error.status, error.code, error.message)


def _routing_error(scope: Scope, exc: HTTPException) -> GatewayError:
    where = f"{scope['method']} {scope.get('root_path', '')}{scope['path']}"
    if exc.status_code == 405:
        return MethodNotAllowed(f"Method not allowed: {where}.",
                                headers={"Allow": _allowed(scope)})
    return NotFound(f"Unknown request URL: {where}.")


def _allowed(scope: Scope) -> str:
    """A 405's ``Allow`` (HTTP requires it): the methods of every route on the path (one path
    may have a route per method, as /v1/keys has)."""
    methods = {method for route in getattr(scope.get("app"), "routes", ())
               if route.matches(scope)[0] is not Match.NONE
               for method in getattr(route, "methods", None) or ()}
    return ", ".join(sorted(methods))


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes "
                           "(server.max_body_mb).")


def _request_headers(scope: Scope
                     ) -> tuple[str | None, bytes | None, bytes | None, bool]:
    """x-request-id, Content-Length, Content-Encoding and whether a Transfer-Encoding is
    set, in one pass over the headers."""
    client_id = length = coding = None
    chunked = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value
        elif key == b"content-encoding":
            coding = value
        elif key == b"x-request-id" and client_id is None:
            client_id = value.decode("latin-1")
        elif key == b"transfer-encoding":
            chunked = True
    return client_id, length, coding, chunked


async def _send_error(send: Send, error: GatewayError) -> None:
    """The error's OpenAI body as a whole JSON answer (with its Content-Length)."""
    await JSONAnswer(error.body_bytes(), error.status, error.headers).send_to(send)
