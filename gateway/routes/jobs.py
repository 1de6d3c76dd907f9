"""/v1/jobs: a job's state, the caller's jobs, cancelling one, and its live events; and
POST /v1/tools/transcribe, the first tool that answers with a job (202 ``{id, status}``).

A job belongs to the virtual key that posted it: another key gets 404 ``job_not_found``; the
master key sees every job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.auth import Caller
from gateway.access.quotas import no_tokens
from gateway.http.routing import Route
from gateway.http.streaming import SSEResponse
from gateway.jobs.engine import FINAL, STATUSES, JobView
from gateway.routes.audio import read_transcription
from gateway.routes.common import json_response
from gateway.state import AppState, app_state
from wire.errors import InvalidRequest, NotFound
from wire.openai import Usage
from wire.sse import encode_data

_EVENTS_POLL_S = 0.25


class JobNotFound(NotFound):
    code = "job_not_found"


def _owner_of(caller: Caller) -> str | None:
    """Whose jobs the caller sees: its own; None (every job) for the master key."""
    return None if caller.is_admin and caller.key_id is None else (caller.key_id or "")


async def _own_job(gateway: AppState, caller: Caller, job_id: str) -> JobView:
    job = await gateway.jobs.get(job_id)
    owner = _owner_of(caller)
    if job is None or (owner is not None and (job.owner or "") != owner):
        raise JobNotFound(f"No job with id '{job_id}'.", param="id")
    return job


def _job_response(job: JobView, status: int = 200) -> Response:
    return json_response(orjson.dumps(job.to_json()), status)


async def get_job(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    return _job_response(await _own_job(gateway, caller, request.path_params["id"]))


async def list_jobs(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    query = request.query_params
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"Invalid value for 'status': '{status}' (allowed: "
                             f"{', '.join(STATUSES)}).", param="status")
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise InvalidRequest(f"Invalid value for 'limit': '{limit_text}'; expected a whole "
                             "number from 1 to 100.", param="limit")
    jobs, more = await gateway.jobs.list(_owner_of(caller), status, int(limit_text),
                                         query.get("after"))
    return json_response(orjson.dumps({"object": "list", "data": [j.to_json() for j in jobs],
                                       "has_more": more}))


async def cancel_job(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    job = await _own_job(gateway, caller, request.path_params["id"])
    cancelled = await gateway.jobs.cancel(job.id)
    return _job_response(cancelled or job)


async def job_events(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    job = await _own_job(gateway, caller, request.path_params["id"])
    return SSEResponse(_events(gateway, job))


async def _events(gateway: AppState, job: JobView) -> AsyncGenerator[bytes, None]:
    """``data: {job}`` at each change of status, stage or progress (read every 0.25 s, from
    whichever replica runs it), ending after a final state."""
    last: bytes | None = None
    current: JobView | None = job
    while current is not None:
        body = orjson.dumps(current.to_json())
        if body != last:
            yield encode_data(body)
            last = body
        if current.status in FINAL:
            return
        await asyncio.sleep(_EVENTS_POLL_S)
        current = await gateway.jobs.get(job.id)


async def transcribe(request: Request) -> Response:
    """The multipart of /v1/audio/transcriptions as a job; its result is ``verbose_json``."""
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    audio = await read_transcription(request, "transcribe")
    route = gateway.router.resolve(audio.model)
    request.state.model = route.model
    caller.check_model(route.model)
    ticket = await gateway.quotas.admit(caller, no_tokens)
    await gateway.quotas.settle(ticket, Usage(0, 0))
    ref = await gateway.inputs.put(audio.file.data)
    user = audio.extra.get("user") or request.headers.get("x-user-id")
    job = await gateway.jobs.submit("transcribe", caller.key_id, {
        "input": ref, "filename": audio.file.filename, "content_type": audio.file.content_type,
        "fields": [list(f) for f in audio.fields], "owner": caller.key_id, "user": user,
        "key": caller.key.public() if caller.key else None})
    return json_response(orjson.dumps({"id": job.id, "object": "job", "status": job.status}),
                         202, ticket.headers)




routes = [
    Route("/v1/jobs", list_jobs, methods=["GET"]),
    Route("/v1/jobs/{id}", get_job, methods=["GET"]),
    Route("/v1/jobs/{id}", cancel_job, methods=["DELETE"]),
    Route("/v1/jobs/{id}/events", job_events, methods=["GET"]),
    Route("/v1/tools/transcribe", transcribe, methods=["POST"]),
]
