"""POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart): OpenAI's image
API, on every deployment whose provider has the ``ImageGenerator`` capability; ``stream: true``
on those that also have ``ImageStreamer`` (the upstream's events relayed as they come)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.forms import read_form
from gateway.http.routing import Route
from gateway.http.streaming import SSEResponse, stream_failure
from gateway.routes.common import ModelCall, authorized_call, parse, until_disconnected
from gateway.routing.router import Route as ModelRoute
from gateway.state import AppState
from providers.base import ImageGenerator, ImageStreamer
from wire.images import ImageEditRequest, ImageGenerationRequest
from wire.openai import ChatResult, StreamChunk, Usage
from wire.sse import encode_data

R = TypeVar("R", ImageGenerationRequest, ImageEditRequest)
WHAT = "image generation"
Opened = tuple[StreamChunk | None, AsyncGenerator[StreamChunk, None]]


async def _no_tokens(gateway: AppState, body: R, route: ModelRoute) -> int:
    return 0  # (an image's tokens are known only from the answer; they are settled then)


async def _edit_body(request: Request) -> ImageEditRequest:
    form = await read_form(request)
    return parse(ImageEditRequest, form.fields).with_files(list(form.uploads))


def _count(call: ModelCall[R], usage: Usage | None) -> None:
    if usage is not None:
        call.gateway.metrics.count_tokens(call.route.model, usage.prompt_tokens,
                                          usage.completion_tokens)


async def _answer(request: Request, call: ModelCall[R]) -> Response:
    """The whole answer; or, for ``stream: true``, the upstream's events as they come (retries
    and fallbacks until its first bytes)."""
    body = call.body
    if body.stream:
        return await _stream(request, call)

    async def make(provider: ImageGenerator, model: str) -> ChatResult:
        if isinstance(body, ImageEditRequest):
            return await provider.edit_image(body, model)
        return await provider.generate_image(body, model)

    result = await until_disconnected(request, call.gateway.router.invoke(
        call.route, ImageGenerator, make, what=WHAT))
    _count(call, result.usage)
    return call.respond(result.body, result.usage)


async def _stream(request: Request, call: ModelCall[R]) -> Response:
    async def open_stream(provider: ImageStreamer, model: str) -> Opened:
        chunks = provider.stream_image(call.body, model)
        try:
            return await anext(chunks, None), chunks
        except BaseException:
            await chunks.aclose()
            raise

    first, chunks = await until_disconnected(request, call.gateway.router.invoke(
        call.route, ImageStreamer, open_stream,
        what="streamed image generation"))
    return SSEResponse(_relay(call, first, chunks), headers=call.ticket.headers)


async def _relay(call: ModelCall[R], first: StreamChunk | None,
                 chunks: AsyncGenerator[StreamChunk, None]) -> AsyncGenerator[bytes, None]:
    """The upstream's bytes; a failure after the start is one error event. The call is
    settled when the stream ends."""
    usage: Usage | None = None
    try:
        async with aclosing(chunks):
            chunk = first
            while chunk is not None:
                usage = chunk.usage or usage
                yield chunk.data
                chunk = await anext(chunks, None)
    except Exception as exc:
        yield encode_data(stream_failure(exc, "image stream").body_bytes())
    finally:
        _count(call, usage)
        await call.finish(usage)


async def generations(request: Request) -> Response:
    return await _answer(request, await authorized_call(request, ImageGenerationRequest,
                                                        _no_tokens))


async def edits(request: Request) -> Response:
    return await _answer(request, await authorized_call(request, ImageEditRequest, _no_tokens,
                                                        read=_edit_body))


routes = [Route("/v1/images/generations", generations, methods=["POST"]),
          Route("/v1/images/edits", edits, methods=["POST"])]
