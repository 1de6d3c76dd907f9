"""POST /v1/audio/transcriptions and /v1/audio/translations: OpenAI's multipart in, the
answer (or its server-sent events) out, through the router like every model call."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.access.auth import Caller
from gateway.access.quotas import Ticket
from gateway.http.forms import MAX_FIELDS, MAX_FILES
from gateway.http.streaming import SSEResponse
from gateway.routes.common import until_disconnected
from gateway.state import AppState, app_state
from providers.base import Transcriber
from wire.audio import (
    AudioAnswer,
    AudioStream,
    Task,
    TranscriptionRequest,
    UploadedFile,
    parse_transcription,
)
from wire.errors import GatewayError, InternalError, InvalidRequest
from wire.openai import Usage
from wire.sse import encode_data

log = logging.getLogger("gateway")


async def transcriptions(request: Request) -> Response:
    return await _audio(request, "transcribe")


async def translations(request: Request) -> Response:
    return await _audio(request, "translate")


async def _audio(request: Request, task: Task) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    audio = await read_form(request, task)
    route = gateway.router.resolve(audio.model)
    request.state.model = route.model
    caller.check_model(route.model)
    ticket = await gateway.quotas.admit(caller, _no_tokens)
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


async def read_form(request: Request, task: Task) -> TranscriptionRequest:
    """The multipart form as a checked request (its raw bytes kept for a passthrough). Unlike
    gateway/http/forms.py it keeps every value of a repeated field, in order
    (``timestamp_granularities[]``)."""
    body = await request.body()
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except HTTPException as exc:  # Starlette's word for a malformed multipart body
        raise InvalidRequest(f"The request body is not valid multipart/form-data: {exc.detail}",
                             param="file") from None
    fields: list[tuple[str, str]] = []
    upload: UploadedFile | None = None
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.append((name, value))
            elif isinstance(value, UploadFile) and name == "file" and upload is None:
                upload = UploadedFile(value.filename or "audio", value.content_type,
                                      await value.read())
    finally:
        await form.close()
    return parse_transcription(task, fields, upload, body,
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
        except GatewayError as error:
            yield encode_data(error.body_bytes())
        except Exception as exc:
            log.exception("transcription stream failed")
            yield encode_data(InternalError(f"The stream failed: {type(exc).__name__}.")
                              .body_bytes())
        finally:
            await events.aclose()
            await self()


async def _no_tokens() -> int:
    return 0


routes = [
    Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
    Route("/v1/audio/translations", translations, methods=["POST"]),
]
