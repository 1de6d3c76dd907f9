"""Liveness, readiness and the Prometheus scrape: no auth on any of them."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.routing import Route
from gateway.routes.common import json_response
from gateway.state import app_state
from wire.errors import GatewayError

READY_TIMEOUT_S = 2.0


async def health(request: Request) -> Response:
    return json_response(b'{"status":"ok"}')


async def ready(request: Request) -> Response:
    store = app_state(request).store
    check: dict[str, str] = {"status": "ok", "backend": store.backend}
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await store.ping()
    except (GatewayError, TimeoutError) as exc:
        check.update(status="error", error=str(exc) or "timed out")
    ok = check["status"] == "ok"
    body = {"status": "ok" if ok else "unavailable", "checks": {"store": check}}
    return json_response(orjson.dumps(body), status=200 if ok else 503)


async def metrics(request: Request) -> Response:
    body, content_type = app_state(request).metrics.render()
    return Response(body, media_type=content_type)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
