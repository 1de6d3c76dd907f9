"""The app and its routes, without Starlette's per-request exception layers.

Starlette puts every request through ``ServerErrorMiddleware`` and ``ExceptionMiddleware``,
and every function endpoint through ``request_response``'s own exception wrapper: three
layers that each wrap ``send`` in a coroutine of their own (three more coroutines per relayed
stream read) and build a second ``Request``. The gateway's one middleware
(``gateway/http/middleware.py``) already answers every ``GatewayError`` and is the last
resort for anything else, so here errors go straight up to it: ``App`` stacks only the
middleware the gateway adds over the router, and ``Route`` calls its endpoint
``async (Request) -> Response`` directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from starlette import routing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class App(Starlette):
    """Starlette with only the middleware the gateway adds (no error middleware of its own):
    a GatewayError or a routing 404/405 reaches ``GatewayMiddleware`` as an exception."""

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


class Route(routing.Route):
    """A route whose endpoint is awaited directly, its errors left to the middleware."""

    def __init__(self, path: str, endpoint: Endpoint, *,
                 methods: Collection[str] | None = None, name: str | None = None) -> None:
        super().__init__(path, endpoint, methods=methods, name=name)
        self.app = _called(endpoint)


def _called(endpoint: Endpoint) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)
    return app
