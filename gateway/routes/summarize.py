"""POST /v1/tools/summarize: meeting minutes as a job, from JSON ``{"text", "models"?,
"prompt"?}`` or from a multipart form with an audio ``file`` (the fields of
/v1/audio/transcriptions, ``model`` naming the transcription model; ``models`` comma-separated
and ``prompt`` for the minutes), transcribed first."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.auth import Caller
from gateway.access.quotas import no_tokens
from gateway.http.routing import Route
from gateway.jobs.summarize import default_prompt
from gateway.routes.audio import read_transcription
from gateway.routes.common import json_response, parse_model, read_json
from gateway.routes.extract import first_model
from gateway.state import AppState, app_state
from wire.errors import InvalidRequest
from wire.openai import Usage


class SummarizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    models: list[str] | None = Field(default=None, min_length=1, max_length=8)
    prompt: str | None = None
    user: str | None = None


def _models(gateway: AppState, caller: Caller, asked: list[str] | None) -> list[str]:
    models = asked or list(gateway.config.jobs.summarize_models)
    if not models:
        first = first_model(gateway.router, caller, chat=True)
        if first is None:
            raise InvalidRequest("No chat model is configured; name them with 'models'.",
                                 param="models")
        models = [first]
    for name in models:
        caller.check_model(gateway.router.resolve(name).model)
    return models


async def summarize(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    args: dict[str, Any]
    if request.headers.get("content-type", "").startswith("multipart/"):
        audio = await read_transcription(request, "transcribe")
        caller.check_model(gateway.router.resolve(audio.model).model)
        asked = [m.strip() for m in audio.extra.get("models", "").split(",") if m.strip()]
        ref = await gateway.inputs.put(audio.file.data)
        args = {"input": ref, "filename": audio.file.filename,
                "content_type": audio.file.content_type, "prompt": audio.prompt,
                "fields": [list(f) for f in audio.fields if f[0] not in ("prompt", "models")],
                "models": _models(gateway, caller, asked or None), "user": audio.extra.get("user")}
    else:
        body = parse_model(SummarizeBody, await read_json(request))
        args = {"text": body.text, "prompt": body.prompt,
                "models": _models(gateway, caller, body.models), "user": body.user}
    args["prompt"] = args["prompt"] or default_prompt()
    args["owner"] = caller.key_id
    args["key"] = caller.key.public() if caller.key else None  # (its limits, for the worker)
    args["user"] = args["user"] or request.headers.get("x-user-id")
    request.state.model = args["models"][0]
    ticket = await gateway.quotas.admit(caller, no_tokens)
    await gateway.quotas.settle(ticket, Usage(0, 0))
    job = await gateway.jobs.submit("summarize", caller.key_id, args)
    return json_response(orjson.dumps({"id": job.id, "object": "job", "status": job.status}),
                         202, ticket.headers)




routes = [Route("/v1/tools/summarize", summarize, methods=["POST"])]
