"""/v1/prompts: prompt templates. Every key may read them; the master key writes them."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.routing import Route
from gateway.prompts.templates import PromptCreate, PromptUpdate
from gateway.routes.common import json_response, parse_model, read_json
from gateway.state import AppState, app_state
from wire.errors import InvalidRequest, PermissionDenied


async def _caller(request: Request, *, write: bool = False) -> AppState:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    if write and not caller.is_admin:
        raise PermissionDenied("Only the master key may change prompts.", code="admin_only")
    return gateway


def _version(request: Request) -> int | None:
    value = request.query_params.get("version")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidRequest("'version' must be a positive integer.", param="version")
    return int(value)


async def list_prompts(request: Request) -> Response:
    gateway = await _caller(request)
    return json_response(orjson.dumps({"object": "list", "data": await gateway.prompts.all()}))


async def create_prompt(request: Request) -> Response:
    gateway = await _caller(request, write=True)
    spec = parse_model(PromptCreate, await read_json(request))
    return json_response(orjson.dumps(await gateway.prompts.create(spec)), status=201)


async def get_prompt(request: Request) -> Response:
    gateway = await _caller(request)
    prompt = await gateway.prompts.get(request.path_params["name"], _version(request))
    return json_response(orjson.dumps(prompt))


async def update_prompt(request: Request) -> Response:
    gateway = await _caller(request, write=True)
    spec = parse_model(PromptUpdate, await read_json(request))
    return json_response(orjson.dumps(await gateway.prompts.update(request.path_params["name"],
                                                                   spec)))


async def delete_prompt(request: Request) -> Response:
    gateway = await _caller(request, write=True)
    name: str = request.path_params["name"]
    await gateway.prompts.delete(name)
    return json_response(orjson.dumps({"name": name, "deleted": True}))


routes = [
    Route("/v1/prompts", list_prompts, methods=["GET"]),
    Route("/v1/prompts", create_prompt, methods=["POST"]),
    Route("/v1/prompts/{name}", get_prompt, methods=["GET"]),
    Route("/v1/prompts/{name}", update_prompt, methods=["PUT"]),
    Route("/v1/prompts/{name}", delete_prompt, methods=["DELETE"]),
]
