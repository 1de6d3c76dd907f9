"""The fixed-path shortcut (gateway/http/routing.py ``Dispatch``) answers every request
exactly as Starlette's router would: the same route, the same scope, the same 404/405."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.middleware import GatewayMiddleware
from gateway.http.routing import App, Dispatch, Route
from gateway.metrics import Metrics
from tests.fakes.serve import ServerThread


def answering(name: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        scope = request.scope
        seen = (f"{name} {scope['route'].path} {scope['endpoint'].__name__} "
                f"{dict(scope['path_params'])} {scope['router'] is request.app.router}")
        return Response(seen, headers={"x-answered-by": name})
    endpoint.__name__ = name
    return endpoint


ROUTES = [
    Route("/v1/things", answering("things_get"), methods=["GET"]),
    Route("/v1/things", answering("things_post"), methods=["POST"]),
    Route("/v1/{name}", answering("by_name"), methods=["GET"]),
    Route("/v1/shadowed", answering("shadowed"), methods=["GET", "POST"]),  # /v1/{name} first
    Route("/v1/things", answering("things_late"), methods=["GET", "DELETE"]),
]


def test_the_table_holds_only_routes_the_router_would_choose() -> None:
    table = Dispatch(App(routes=ROUTES).router).table
    assert {key: route.endpoint.__name__ for key, route in table.items()} == {
        ("/v1/things", "GET"): "things_get", ("/v1/things", "HEAD"): "things_get",
        ("/v1/things", "POST"): "things_post"}  # (/v1/{name} comes before the others)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = App(routes=ROUTES, middleware=[Middleware(GatewayMiddleware, metrics=Metrics(),
                                                    max_body_bytes=1024)])
    served = ServerThread(app).start()
    yield served.url
    served.stop()


@pytest.mark.parametrize(("method", "path", "answer"), [
    ("GET", "/v1/things", "things_get /v1/things things_get {} True"),
    ("POST", "/v1/things", "things_post /v1/things things_post {} True"),
    ("DELETE", "/v1/things", "things_late /v1/things things_late {} True"),
    ("GET", "/v1/shadowed", "by_name /v1/{name} by_name {'name': 'shadowed'} True"),
    ("POST", "/v1/shadowed", "shadowed /v1/shadowed shadowed {} True"),
])
def test_each_request_gets_the_route_and_scope_the_router_gives(
        server: str, method: str, path: str, answer: str) -> None:
    response = httpx.request(method, f"{server}{path}")
    assert response.status_code == 200
    assert response.text == answer


def test_unknown_paths_and_methods_are_the_gateways_404_and_405(server: str) -> None:
    missing = httpx.get(f"{server}/v3/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    refused = httpx.put(f"{server}/v1/things")
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "method_not_allowed"
    assert refused.headers["allow"] == "DELETE, GET, HEAD, POST"
    assert refused.headers["content-length"] == str(len(refused.content))


def test_a_root_path_goes_through_the_router() -> None:
    """Behind a ``root_path`` the router matches the path without it: a fixed route whose
    path starts with the root path must not answer in its place."""
    app = App(routes=[Route("/api/v1/things", answering("literal"), methods=["GET"]),
                      *ROUTES])
    served = ServerThread(app, root_path="/api").start()
    try:  # (uvicorn puts the root path in front of the request's path)
        response = httpx.get(f"{served.url}/v1/things")
        assert response.text == "things_get /v1/things things_get {} True"
    finally:
        served.stop()
