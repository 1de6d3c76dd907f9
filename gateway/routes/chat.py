"""POST /v1/chat/completions: parse, authorize, dispatch to the router, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cache import Lookup
from gateway.cache_stream import replay
from gateway.errors import GatewayError, InternalError
from gateway.router import Route as ModelRoute
from gateway.routes.common import authorized_call, json_response, until_disconnected
from gateway.state import AppState
from gateway.streaming import SSEResponse
from providers.base import ChatRequest, StreamChunk
from providers.sse import DONE, encode_data

log = logging.getLogger("gateway")


async def chat_completions(request: Request) -> Response:
    gateway, chat, route = await authorized_call(request, ChatRequest)
    cache = gateway.cache
    cached = await cache.lookup(route.model, chat, request.headers) if cache else None
    request.state.cache = cached.result if cached else None
    if cached is not None and cached.answer is not None:
        return _from_cache(cached.answer, chat, cached.headers)
    try:
        if chat.stream:
            return await _stream(request, gateway, route, chat, cached)
        result = await until_disconnected(request, gateway.router.chat(route, chat))
    except GatewayError as error:
        if cached is not None:
            error.headers.update(cached.headers)
        raise
    if cached is not None:
        await cached.save(result.body)
    return json_response(result.body, headers=cached.headers if cached else None)


def _from_cache(answer: bytes, chat: ChatRequest, headers: dict[str, str]) -> Response:
    if chat.stream:
        return SSEResponse(replay(answer, chat.include_usage), headers=headers)
    return json_response(answer, headers=headers)


async def _stream(request: Request, gateway: AppState, route: ModelRoute,
                  chat: ChatRequest, cached: Lookup | None) -> Response:
    """Open the stream and wait for its first chunk, so that an upstream failing before it
    answers gets a plain HTTP error; then relay every chunk the moment it arrives."""
    recorder = cached if cached is not None and cached.saving else None
    chunks = gateway.router.stream(route, chat, keep_usage_only=recorder is not None)
    if recorder is not None:  # (it drops the usage chunk again when the client did not ask)
        chunks = recorder.record(chunks, chat.include_usage)
    try:
        first: StreamChunk | None = await until_disconnected(request, anext(chunks, None))
    except BaseException:
        await chunks.aclose()
        raise
    gateway.metrics.ttft.labels(route.model).observe(time.perf_counter() - request.state.started)
    return SSEResponse(_events(first, chunks), headers=cached.headers if cached else None)


async def _events(first: StreamChunk | None, chunks: AsyncGenerator[StreamChunk, None]
                  ) -> AsyncGenerator[bytes, None]:
    async with aclosing(chunks):
        try:
            if first is not None:
                yield encode_data(first.data)
            async for chunk in chunks:
                yield encode_data(chunk.data)
        except GatewayError as error:
            yield encode_data(error.body_bytes())
            return
        except Exception as exc:
            log.exception("stream failed")
            yield encode_data(InternalError(f"The stream failed: {type(exc).__name__}.")
                              .body_bytes())
            return
    yield DONE


routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
