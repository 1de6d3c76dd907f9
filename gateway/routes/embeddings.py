"""POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.routes.common import json_response, parse, read_json, until_disconnected
from gateway.state import app_state
from providers.base import EmbeddingRequest


async def embeddings(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    embedding = parse(EmbeddingRequest, await read_json(request))
    route = gateway.router.resolve(embedding.model)
    request.state.model = route.model
    caller.check_model(route.model)
    result = await until_disconnected(request, gateway.router.embed(route, embedding))
    return json_response(result.body)


routes = [Route("/v1/embeddings", embeddings, methods=["POST"])]
