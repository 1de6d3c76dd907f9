"""Noticing a client that went away, and the server-sent-events response.

``CancelOnDisconnect`` cancels the current task the moment the client disconnects, so that
whatever it awaits (an upstream call, the next chunk of a stream) is abandoned and its
connection closed at once. ``SSEResponse`` relays pre-encoded events as they come, in the
request's own task with one watcher task beside it. It replaces sse-starlette's
``EventSourceResponse``, whose four tasks and anyio task group per stream cost 30-40% of the
gateway's stream throughput on ``bench/overhead.py``; like OpenAI, it sends no keep-alive
comments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

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


class ClientDisconnected(GatewayError):
    """The client went away before its answer was ready. Nobody reads this response."""

    status, type, code = 499, "invalid_request_error", "client_closed_request"


class CancelOnDisconnect:
    """``with CancelOnDisconnect(receive): ...`` raises ``ClientDisconnected`` instead of
    running on for nobody. Use it only once the request body has been read: ``receive()``
    then returns only when the client disconnects."""

    __slots__ = ("_finished", "_gone", "_receive", "_task", "_watcher")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._gone = self._finished = False

    def __enter__(self) -> CancelOnDisconnect:
        task = asyncio.current_task()
        assert task is not None, "CancelOnDisconnect needs a running task"
        self._task = task
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self._finished:
                    self._gone = True
                    self._task.cancel()
                return

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._finished = True
        self._watcher.cancel()
        if self._gone and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            self._task.uncancel()
            raise ClientDisconnected("The client closed the connection.") from None


class SSEResponse(Response):
    """``text/event-stream`` of the already-encoded events that ``events`` yields."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None],
                 headers: Mapping[str, str] | None = None) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no",
                           **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with CancelOnDisconnect(receive):
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                async for data in self.events:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (ClientDisconnected, OSError):
            return  # the client is gone: the events' cleanup below closes the upstream
        finally:
            await self.events.aclose()
