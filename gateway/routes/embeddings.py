"""POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.guardrails.pii import Vault
from gateway.http.routing import Route
from gateway.routes.common import ModelCall, authorized_call, parse, until_disconnected
from gateway.routing.router import Route as ModelRoute
from gateway.state import AppState
from wire.openai import EmbeddingRequest


async def _cost(gateway: AppState, body: EmbeddingRequest, route: ModelRoute) -> int:
    return await gateway.quotas.embedding_cost(body)


async def _guarded(call: ModelCall[EmbeddingRequest], request: Request) -> None:
    """The input texts through the guardrails (masked, or 400 for block)."""
    guards = call.gateway.guardrails.for_route(
        (d.config for d in call.route.deployments),
        call.caller.key.guardrails if call.caller.key else None)
    inputs = call.body.input
    if not guards or not inputs:
        return
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not all(isinstance(text, str) for text in texts):
        return  # token ids: nothing to read
    vault, masked = Vault(), [str(text) for text in texts]
    for guard in guards:
        masked = guard.apply_texts(masked, vault)
    call.body = parse(EmbeddingRequest, {**call.body.raw,
                                         "input": masked[0] if isinstance(inputs, str)
                                         else masked})


async def embeddings(request: Request) -> Response:
    call = await authorized_call(request, EmbeddingRequest, _cost, _guarded)
    try:
        result = await until_disconnected(
            request, call.gateway.router.embed(call.route, call.body, call.meter))
    except BaseException:
        await call.release()
        raise
    return call.respond(result.body, result.usage)


routes = [Route("/v1/embeddings", embeddings, methods=["POST"])]
