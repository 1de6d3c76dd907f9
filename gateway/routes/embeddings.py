"""POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.routes.common import authorized_call, json_response, until_disconnected
from providers.base import EmbeddingRequest


async def embeddings(request: Request) -> Response:
    gateway, embedding, route = await authorized_call(request, EmbeddingRequest)
    result = await until_disconnected(request, gateway.router.embed(route, embedding))
    return json_response(result.body)


routes = [Route("/v1/embeddings", embeddings, methods=["POST"])]
