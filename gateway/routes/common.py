"""What every route does the same way: read JSON, validate it, watch for a vanished client."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import InvalidJSON, InvalidRequest
from gateway.router import Route as ModelRoute
from gateway.state import AppState, app_state
from gateway.streaming import CancelOnDisconnect
from providers.base import APIRequest

T = TypeVar("T")
R = TypeVar("R", bound=APIRequest)


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidJSON("The request body must be a JSON object.")
    return data


def param_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse(model: type[R], data: dict[str, Any]) -> R:
    """Validate a request body; the first problem becomes a 400 naming the field."""
    try:
        parsed = model.parse(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = param_path(tuple(error["loc"]))
        if error["type"] == "missing":
            raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param) from None
        raise InvalidRequest(f"Invalid value for '{param}': {error['msg']}.", param=param) from None
    return parsed


async def authorized_call(request: Request, body_type: type[R]
                          ) -> tuple[AppState, R, ModelRoute]:
    """The start of every model call: who calls, what they ask, which model answers it."""
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    body = parse(body_type, await read_json(request))
    route = gateway.router.resolve(body.model)
    request.state.model = route.model
    caller.check_model(route.model)
    return gateway, body, route


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def until_disconnected(request: Request, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, abandoning it the moment the client disconnects. The request body
    must already have been read."""
    with CancelOnDisconnect(request.receive):
        return await awaitable
