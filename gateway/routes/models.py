"""GET /v1/models and /v1/models/{id}: the models this key may use."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.routing import Route
from gateway.routes.common import json_response
from gateway.state import app_state
from wire.errors import GatewayError, ModelNotFound

_CREATED = int(time.time())


def _model(model_id: str, owned_by: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": owned_by}


async def list_models(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    data = [_model(name, provider) for name, provider in gateway.router.names()
            if caller.may_use(name)]
    return json_response(orjson.dumps({"object": "list", "data": data}))


async def retrieve_model(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    model_id: str = request.path_params["model_id"]
    try:
        route = gateway.router.resolve(model_id)
    except GatewayError:
        raise ModelNotFound(model_id) from None
    if not caller.may_use(route.model):
        raise ModelNotFound(model_id)
    provider = route.deployments[0].config.provider
    return json_response(orjson.dumps(_model(model_id, provider)))


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", retrieve_model, methods=["GET"]),
]
