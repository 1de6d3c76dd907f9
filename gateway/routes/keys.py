"""POST/GET /v1/keys and DELETE /v1/keys/{id}: virtual keys, for the master key only."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.keys import KeyCreate
from gateway.http.routing import Route
from gateway.routes.common import json_response, parse_model, read_json
from gateway.state import AppState, app_state
from wire.errors import NotFound, PermissionDenied


async def _admin(request: Request) -> AppState:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    gateway.auth.require_admin(caller)
    if not gateway.auth.has_master:
        raise PermissionDenied("Set GATEWAY_MASTER_KEY to manage virtual keys: without it, "
                               "nobody could manage them once the first key exists.",
                               code="admin_only")
    return gateway


async def create_key(request: Request) -> Response:
    gateway = await _admin(request)
    spec = parse_model(KeyCreate, await read_json(request))
    key, secret = await gateway.auth.keys.create(spec)
    return json_response(orjson.dumps({**key.public(), "key": secret}), status=201)


async def list_keys(request: Request) -> Response:
    gateway = await _admin(request)
    data = [key.public() for key in await gateway.auth.keys.all()]
    return json_response(orjson.dumps({"object": "list", "data": data}))


async def delete_key(request: Request) -> Response:
    gateway = await _admin(request)
    key_id: str = request.path_params["key_id"]
    if not await gateway.auth.keys.revoke(key_id):
        raise NotFound(f"No key with id '{key_id}'.", param="id")
    return json_response(orjson.dumps({"id": key_id, "deleted": True}))


routes = [
    Route("/v1/keys", create_key, methods=["POST"]),
    Route("/v1/keys", list_keys, methods=["GET"]),
    Route("/v1/keys/{key_id}", delete_key, methods=["DELETE"]),
]
