"""POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart): OpenAI's image
API, on every deployment whose provider has the ``ImageGenerator`` capability."""

from __future__ import annotations

from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http.forms import read_form
from gateway.routes.common import ModelCall, authorized_call, parse, until_disconnected
from gateway.routing.router import Route as ModelRoute
from gateway.state import AppState
from providers.base import ImageGenerator
from wire.errors import InvalidRequest
from wire.images import ImageEditRequest, ImageGenerationRequest
from wire.openai import ChatResult

R = TypeVar("R", ImageGenerationRequest, ImageEditRequest)
WHAT = "image generation"


async def _no_tokens(gateway: AppState, body: R, route: ModelRoute) -> int:
    return 0  # (an image's tokens are known only from the answer; they are settled then)


async def _edit_body(request: Request) -> ImageEditRequest:
    fields, files = await read_form(request)
    return parse(ImageEditRequest, fields).with_files(files)


def _respond(call: ModelCall[R], result: ChatResult) -> Response:
    if result.usage is not None:
        call.gateway.metrics.count_tokens(call.route.model, result.usage.prompt_tokens,
                                          result.usage.completion_tokens)
    return call.respond(result.body, result.usage)


def _no_stream(body: ImageGenerationRequest | ImageEditRequest) -> None:
    if body.stream:
        raise InvalidRequest("Streaming image generation (stream: true) is not supported by "
                             "this gateway; leave 'stream' out.", param="stream")


async def generations(request: Request) -> Response:
    call = await authorized_call(request, ImageGenerationRequest, _no_tokens)
    _no_stream(call.body)

    async def generate(provider: ImageGenerator, model: str) -> ChatResult:
        return await provider.generate_image(call.body, model)

    result = await until_disconnected(request, call.gateway.router.invoke(
        call.route, ImageGenerator, generate, what=WHAT))  # type: ignore[type-abstract]
    return _respond(call, result)


async def edits(request: Request) -> Response:
    call = await authorized_call(request, ImageEditRequest, _no_tokens, read=_edit_body)
    _no_stream(call.body)

    async def edit(provider: ImageGenerator, model: str) -> ChatResult:
        return await provider.edit_image(call.body, model)

    result = await until_disconnected(request, call.gateway.router.invoke(
        call.route, ImageGenerator, edit, what=WHAT))  # type: ignore[type-abstract]
    return _respond(call, result)


routes = [Route("/v1/images/generations", generations, methods=["POST"]),
          Route("/v1/images/edits", edits, methods=["POST"])]
