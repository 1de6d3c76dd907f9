"""Noticing a client that went away, and the server-sent-events response.

``watching(scope, receive)`` gives the request's one ``DisconnectWatcher``: ``with`` it, the
current task is cancelled the moment the client disconnects, so that whatever it awaits (an
upstream call, the next chunk of a stream) is abandoned and its connection closed at once. A
stream's opening and its relay share it: one watcher task per request, started the first
time it is needed. That task is never cancelled: it ends when ``receive()`` says
``http.disconnect``, which ASGI servers say once the response has been sent (the middleware
ends it should a server not); a cancelled task, with its exception and traceback, would
leave reference cycles for the garbage collector, which cost more than the task itself.
``SSEResponse`` relays pre-encoded events as they come, in the request's own task. It
replaces sse-starlette's ``EventSourceResponse``, whose four tasks and anyio task group per
stream cost 30-40% of the gateway's stream throughput on ``bench/overhead.py``; like OpenAI,
it sends no keep-alive comments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.http.answers import raw_headers
from wire.errors import GatewayError, InternalError

log = logging.getLogger("gateway")


def stream_failure(exc: Exception, what: str) -> GatewayError:
    """What a stream that failed after it began tells the client, in its last event: the
    gateway's own error as it is, anything else logged (with its stack) and told as a 500
    without one. Call it from the ``except`` block."""
    if isinstance(exc, GatewayError):
        return exc
    log.exception("%s failed", what)
    return InternalError(f"The stream failed: {type(exc).__name__}.")

WATCHER = "disconnect_watcher"  # its key in the request's scope["state"]


class ClientDisconnected(GatewayError):
    """The client went away before its answer was ready. Nobody reads this response."""

    status, type, code = 499, "invalid_request_error", "client_closed_request"


class DisconnectWatcher:
    """``with watcher: ...`` raises ``ClientDisconnected`` instead of running on for nobody
    (at once when the client has already gone). Use it only once the request body has been
    read: ``receive()`` then returns only when the client disconnects or the response has
    been sent. Not re-entrant: one ``with`` at a time."""

    __slots__ = ("_guarded", "_receive", "_task", "gone")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._guarded: asyncio.Task[Any] | None = None  # the task inside ``with``, if any
        self.gone = False

    def __enter__(self) -> DisconnectWatcher:
        if self.gone:
            raise ClientDisconnected("The client closed the connection.")
        task = asyncio.current_task()
        assert task is not None, "DisconnectWatcher needs a running task"
        self._guarded = task
        if self._task is None:
            self._task = task.get_loop().create_task(self._watch())
        return self

    async def _watch(self) -> None:
        receive = self._receive
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True  # (or the response has been sent: nobody asks any more)
        guarded, self._guarded = self._guarded, None
        if guarded is not None:
            guarded.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        task, self._guarded = self._guarded, None
        if self.gone and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            if task is None:  # (the watcher cancelled it and let go of it)
                task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise ClientDisconnected("The client closed the connection.") from None

    def end(self) -> None:
        """The request is over: the watcher task stops soon after, if the server has not
        ended its ``receive()`` (the callback runs after the wake-up the server's last
        send scheduled)."""
        task = self._task
        if task is not None and not task.done():
            task.get_loop().call_soon(_stop, task)


def _stop(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()


def watching(scope: Scope, receive: Receive) -> DisconnectWatcher:
    """The request's disconnect watcher (made the first time it is asked for)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    watcher: DisconnectWatcher | None = state.get(WATCHER)
    if watcher is None:
        watcher = state[WATCHER] = DisconnectWatcher(receive)
    return watcher


_SSE_HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


class SSEResponse(Response):
    """``text/event-stream`` of the already-encoded events that ``events`` yields."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None],
                 headers: Mapping[str, str] | None = None) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        # (``headers``: the gateway's own, never a content-type or content-length)
        self.raw_headers = [*_SSE_HEADERS, *raw_headers(headers)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with watching(scope, receive):
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                async for data in self.events:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (ClientDisconnected, OSError):
            return  # the client is gone: the events' cleanup below closes the upstream
        finally:
            await self.events.aclose()
