"""POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.routes.common import authorized_call, until_disconnected
from gateway.routing.router import Route as ModelRoute
from gateway.state import AppState
from wire.openai import EmbeddingRequest


async def _cost(gateway: AppState, body: EmbeddingRequest, route: ModelRoute) -> int:
    return await gateway.quotas.embedding_cost(body)


async def embeddings(request: Request) -> Response:
    call = await authorized_call(request, EmbeddingRequest, _cost)
    try:
        result = await until_disconnected(
            request, call.gateway.router.embed(call.route, call.body, call.meter))
    except BaseException:
        await call.release()
        raise
    return call.respond(result.body, result.usage)


routes = [Route("/v1/embeddings", embeddings, methods=["POST"])]
