"""POST /v1/chat/completions: parse, authorize, dispatch to the router, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import GatewayError, InternalError
from gateway.router import Route as ModelRoute
from gateway.routes.common import ModelCall, authorized_call, until_disconnected
from gateway.state import AppState
from gateway.streaming import SSEResponse
from providers.base import ChatRequest, StreamChunk, Usage
from providers.sse import DONE, encode_data

log = logging.getLogger("gateway")


async def _cost(gateway: AppState, chat: ChatRequest, route: ModelRoute) -> int:
    return await gateway.quotas.chat_cost(chat, route.deployments[0].provider)


async def chat_completions(request: Request) -> Response:
    call = await authorized_call(request, ChatRequest, _cost)
    if call.body.stream:
        return await _stream(request, call)
    try:
        result = await until_disconnected(request,
                                          call.gateway.router.chat(call.route, call.body))
    except BaseException:
        await call.release()
        raise
    return call.respond(result.body, result.usage)


async def _stream(request: Request, call: ModelCall[ChatRequest]) -> Response:
    """Open the stream and wait for its first chunk, so that an upstream failing before it
    answers gets a plain HTTP error; then relay every chunk the moment it arrives."""
    chunks = call.gateway.router.stream(call.route, call.body, keep_usage_only=True)
    try:
        first: StreamChunk | None = await until_disconnected(request, anext(chunks, None))
    except BaseException:
        await chunks.aclose()
        await call.release()
        raise
    call.gateway.metrics.ttft.labels(call.route.model).observe(
        time.perf_counter() - request.state.started)
    return SSEResponse(_events(call, first, chunks), headers=call.ticket.headers)


async def _events(call: ModelCall[ChatRequest], first: StreamChunk | None,
                  chunks: AsyncGenerator[StreamChunk, None]) -> AsyncGenerator[bytes, None]:
    wants_usage = call.body.include_usage
    usage: Usage | None = None
    try:
        async with aclosing(chunks):
            try:
                if first is not None:
                    chunk: StreamChunk | None = first
                    while chunk is not None:
                        usage = chunk.usage or usage
                        if wants_usage or not chunk.usage_only:
                            yield encode_data(chunk.data)
                        chunk = await anext(chunks, None)
            except GatewayError as error:
                yield encode_data(error.body_bytes())
                return
            except Exception as exc:
                log.exception("stream failed")
                yield encode_data(InternalError(f"The stream failed: {type(exc).__name__}.")
                                  .body_bytes())
                return
        yield DONE
    finally:
        await call.finish(usage)


routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
