"""/v1/conversations: the histories the server keeps for ``conversation_id`` chats."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.routing import Route
from gateway.routes.common import json_response
from gateway.state import app_state
from wire.errors import InvalidRequest


async def list_conversations(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    limit = request.query_params.get("limit", "20")
    if not limit.isdigit():
        raise InvalidRequest("'limit' must be a positive integer.", param="limit")
    data, has_more = await gateway.conversations.page(
        caller.key_id, caller.is_admin, int(limit), request.query_params.get("after"))
    return json_response(orjson.dumps({"object": "list", "data": data, "has_more": has_more}))


async def get_conversation(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    conversation = await gateway.conversations.get(request.path_params["id"], caller.key_id,
                                                   caller.is_admin)
    return json_response(orjson.dumps(conversation.public()))


async def delete_conversation(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    conversation_id: str = request.path_params["id"]
    await gateway.conversations.delete(conversation_id, caller.key_id, caller.is_admin)
    return json_response(orjson.dumps({"id": conversation_id, "object": "conversation.deleted",
                                       "deleted": True}))


routes = [
    Route("/v1/conversations", list_conversations, methods=["GET"]),
    Route("/v1/conversations/{id}", get_conversation, methods=["GET"]),
    Route("/v1/conversations/{id}", delete_conversation, methods=["DELETE"]),
]
