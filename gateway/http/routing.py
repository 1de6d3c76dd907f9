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
    a GatewayError or a routing 404/405 reaches ``GatewayMiddleware`` as an exception; and
    a request for a fixed path goes to its route by a table look-up (``Dispatch``)."""

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = Dispatch(self.router)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


class Dispatch:
    """The router, with a shortcut: a request whose path and method name one fixed-path
    route (no path parameters) goes to it by a dict look-up, with the scope Starlette's
    router would give it; any other request (path parameters, an unknown path or method, a
    ``root_path``, the lifespan) goes through the router itself. Starlette's router tries
    each route's regular expression in turn and builds a scope for the match: a few us of
    every request. A path that an earlier route's pattern could also match is left to the
    router, so which route answers is always what the router would choose."""

    __slots__ = ("router", "table")

    def __init__(self, router: routing.Router) -> None:
        self.router = router
        self.table = _fixed_paths(router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.table.get((scope["path"], scope["method"]))
            if route is not None:
                scope.setdefault("router", self.router)
                scope["route"], scope["endpoint"] = route, route.endpoint
                scope["path_params"] = dict(scope.get("path_params", ()))
                await route.app(scope, receive, send)
                return
        await self.router(scope, receive, send)


def _fixed_paths(routes: list[routing.BaseRoute]) -> dict[tuple[str, str], routing.Route]:
    """(path, method) → the route that answers it, for the routes without path parameters
    that no earlier route's pattern matches."""
    table: dict[tuple[str, str], routing.Route] = {}
    for i, route in enumerate(routes):
        if not isinstance(route, routing.Route) or route.param_convertors or not route.methods:
            continue
        path = route.path
        if any(_may_match(earlier, path) for earlier in routes[:i]):
            continue
        for method in route.methods:
            table.setdefault((path, method), route)
    return table


def _may_match(route: routing.BaseRoute, path: str) -> bool:
    """Whether ``route`` could answer ``path`` (for some method); True when unknown. A
    fixed route of the same path is no obstacle (the table is by method too)."""
    if isinstance(route, routing.Route) and not route.param_convertors:
        if route.path == path:
            return not route.methods  # (one without methods answers every method)
        return bool(route.path_regex.match(path))
    regex = getattr(route, "path_regex", None)
    return regex is None or bool(regex.match(path))


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
