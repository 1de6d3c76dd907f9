"""POST /v1/audio/transcriptions and /v1/audio/translations: OpenAI's multipart in, the
answer (or its server-sent events) out, through the router like every model call."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.auth import Caller
from gateway.access.quotas import Ticket, no_tokens
from gateway.http.forms import read_form
from gateway.http.routing import Route
from gateway.http.streaming import SSEResponse, stream_failure
from gateway.routes.common import until_disconnected
from gateway.state import AppState, app_state
from providers.base import Transcriber
from wire.audio import (
    AudioAnswer,
    AudioStream,
    Task,
    TranscriptionRequest,
    parse_transcription,
)
from wire.openai import Usage
from wire.sse import encode_data


async def transcriptions(request: Request) -> Response:
    return await _audio(request, "transcribe")


async def translations(request: Request) -> Response:
    return await _audio(request, "translate")


async def _audio(request: Request, task: Task) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    audio = await read_transcription(request, task)
    route = gateway.router.resolve(audio.model)
    request.state.model = route.model
    caller.check_model(route.model)
    ticket = await gateway.quotas.admit(caller, no_tokens)
    user = audio.extra.get("user") or request.headers.get("x-user-id")

    async def call(provider: Transcriber, model: str) -> AudioAnswer | AudioStream:
        return await provider.transcribe(audio, model)

    try:
        answer = await until_disconnected(request, gateway.router.invoke(
            route, Transcriber, call, what="audio transcription"))
    except BaseException:
        await gateway.quotas.settle(ticket, Usage(0, 0))
        raise
    finish = _Finish(gateway, caller, ticket, route.model, user)
    if isinstance(answer, AudioStream):
        return SSEResponse(finish.after(answer.events), headers=ticket.headers)
    return Response(answer.body, media_type=answer.media_type, headers=ticket.headers,
                    background=BackgroundTask(finish))


async def read_transcription(request: Request, task: Task) -> TranscriptionRequest:
    """The multipart form as a checked request, its raw bytes kept for a passthrough."""
    body = await request.body()  # kept by Starlette: the form below parses the same bytes
    form = await read_form(request, param="file")
    upload = form.file()
    if upload is not None and not upload.filename:
        upload = replace(upload, filename="audio")
    return parse_transcription(task, form.pairs, upload, body,
                               request.headers.get("content-type", ""))


class _Finish:
    """Once the answer is out: settle the caller's limits and count the request."""

    def __init__(self, gateway: AppState, caller: Caller, ticket: Ticket, model: str,
                 user: str | None) -> None:
        self._gateway, self._caller, self._ticket = gateway, caller, ticket
        self._model, self._user = model, user

    async def __call__(self) -> None:
        await self._gateway.quotas.settle(self._ticket, Usage(0, 0))
        self._gateway.usage.record(self._caller.key_id, self._user, self._model, 0, 0)

    async def after(self, events: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        """The stream's events; an error after it has begun is one error event, as in chat."""
        try:
            async for event in events:
                yield event
        except Exception as exc:
            yield encode_data(stream_failure(exc, "transcription stream").body_bytes())
        finally:
            await events.aclose()
            await self()




routes = [
    Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
    Route("/v1/audio/translations", translations, methods=["POST"]),
]
