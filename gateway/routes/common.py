"""What every route does the same way: read JSON, validate it, watch for a vanished client."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway.access.auth import Caller
from gateway.access.quotas import Ticket
from gateway.access.spend import Meter
from gateway.http.answers import JSONAnswer
from gateway.http.streaming import watching
from gateway.prompts.prepare import Prepared
from gateway.routing.router import Route as ModelRoute
from gateway.state import AppState, app_state
from gateway.store import StoreUnavailable
from wire.errors import GatewayError, InvalidJSON, InvalidRequest
from wire.openai import APIRequest, StreamChunk, Usage

T = TypeVar("T")
R = TypeVar("R", bound=APIRequest)
M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("gateway")


async def read_body(request: Request) -> bytes:
    """The whole request body, read straight from ``receive`` (Starlette's ``Request.body``
    goes through an async generator and a list per request); kept where ``Request.body``
    looks, so a later call to it gets the same bytes."""
    receive = request.receive
    message = await receive()
    body: bytes = message.get("body", b"")
    if message["type"] == "http.request" and not message.get("more_body", False):
        request._body = body
        return body
    chunks = [body]
    while message["type"] == "http.request" and message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    request._body = body = b"".join(chunks)
    return body


async def read_json(request: Request) -> dict[str, Any]:
    body = await read_body(request)
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
    """Validate a model request body; the first problem becomes a 400 naming the field."""
    return _validated(model.parse, data)


def parse_model(model: type[M], data: dict[str, Any]) -> M:
    """Validate any other body (a pydantic model) the same way."""
    return _validated(model.model_validate, data)


def _validated(validate: Callable[[dict[str, Any]], T], data: dict[str, Any]) -> T:
    try:
        parsed = validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = param_path(tuple(error["loc"]))
        if error["type"] == "missing":
            raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param) from None
        raise InvalidRequest(f"Invalid value for '{param}': {error['msg']}.", param=param) from None
    return parsed


@dataclass(slots=True)
class ModelCall(Generic[R]):
    """One call to a model: who calls, what they ask, which model answers, what it took from
    the caller's limits."""

    gateway: AppState
    caller: Caller
    body: R
    route: ModelRoute
    user: str | None
    ticket: Ticket = field(default_factory=Ticket)
    meter: Meter = field(default_factory=Meter)  # the router notes who answered (prices)
    lease: str | None = None  # the key's max_parallel slot
    prepared: Prepared | None = None  # chat: prompt, conversation, guardrails applied
    ended: bool = False
    usage: Usage | None = None  # once finished: what it used and cost (the JSON request log)
    cost_usd: float = 0.0

    async def finish(self, usage: Usage | None, *, cached: bool = False) -> None:
        """Once the answer has ended: settle the limits, the spend and record the usage,
        exactly once. A cached answer used no tokens and costs nothing."""
        if self.ended:
            return
        self.ended = True
        used = Usage(0, 0) if cached else usage
        cost = self.meter.cost(used)
        self.usage, self.cost_usd = used, cost
        await self.gateway.quotas.settle(self.ticket, used)
        self.gateway.usage.record(self.caller.key_id, self.user, self.route.model,
                                  used.prompt_tokens if used else 0,
                                  used.completion_tokens if used else 0, cost_usd=cost)
        if cost:
            self.gateway.metrics.cost.labels(self.route.model).inc(cost)
        await self._settle_key(cost)

    async def release(self) -> None:
        """The call failed: give back the tokens it had reserved (and its slot)."""
        if self.ended:
            return
        self.ended = True
        await self.gateway.quotas.settle(self.ticket, Usage(0, 0))
        await self._settle_key(0.0)

    async def _settle_key(self, cost: float) -> None:
        key = self.caller.key
        if key is None:
            return
        try:
            await self.gateway.caps.add_spend(key, cost)
            await self.gateway.caps.release(key, self.lease)
        except StoreUnavailable as exc:
            log.warning("spend of key %s not settled: %s", key.id, exc.message)

    def respond(self, body: bytes, usage: Usage | None, *, cached: bool = False,
                headers: dict[str, str] | None = None) -> Response:
        """The JSON answer, with the limit headers (and ``headers``); usage is settled after
        it is sent."""
        async def settle() -> None:
            await self.finish(usage, cached=cached)

        return JSONAnswer(body, headers={**self.ticket.headers, **headers} if headers
                          else self.ticket.headers, then=settle)


Prepare = Callable[["ModelCall[R]", Request], Awaitable[None]]


async def authorized_call(request: Request, body_type: type[R],
                          cost: Callable[[AppState, R, ModelRoute], Awaitable[int]],
                          prepare: Prepare[R] | None = None, *,
                          read: Callable[[Request], Awaitable[R]] | None = None
                          ) -> ModelCall[R]:
    """The start of every model call: who calls, what they ask, which model answers it, and
    whether the caller's budget and limits let it (``cost`` estimates its tokens, when they
    matter). ``prepare`` may rewrite the body first (prompts, history, guardrails). ``read``
    reads and validates a body that is not JSON (a multipart form), once the caller is known."""
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    body = await read(request) if read else parse(body_type, await read_json(request))
    route = gateway.router.resolve(body.model)
    state = request.scope["state"]  # (request.state's wrapper costs ~1 us an attribute)
    state["model"] = route.model
    caller.check_model(route.model)
    user = body.raw.get("user")
    call = ModelCall(gateway, caller, body, route,
                     user if isinstance(user, str) else request.headers.get("x-user-id"))
    state["call"] = call  # (the JSON request log reads it)
    if prepare is not None:
        await prepare(call, request)
    key = caller.key
    if key is None:
        call.ticket = await gateway.quotas.admit(caller, lambda: cost(gateway, call.body, route))
        return call
    call.lease, day = await gateway.caps.admit(key)
    try:
        call.ticket = await gateway.quotas.admit(caller, lambda: cost(gateway, call.body, route))
    except BaseException:
        await gateway.caps.give_back_request(day)
        await gateway.caps.release(key, call.lease)
        raise
    return call


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return JSONAnswer(body, status, headers)


async def until_disconnected(request: Request, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, abandoning it the moment the client disconnects. The request body
    must already have been read. (The request's one watcher: a stream's relay uses it too.)"""
    with watching(request.scope, request.receive):
        return await awaitable


async def first_chunk(request: Request, call: ModelCall[Any],
                      chunks: AsyncGenerator[StreamChunk, None], headers: dict[str, str]
                      ) -> StreamChunk | None:
    """Wait for a stream's first chunk, so that an upstream failing before it answers gets a
    plain HTTP error (after retries and fallbacks): the stream closed, the call's reservation
    released, ``headers`` on the error. Then the time to first token is counted; the caller
    relays every further chunk the moment it arrives and settles the call when it ends."""
    try:
        first = await until_disconnected(request, anext(chunks, None))
    except BaseException as error:
        await chunks.aclose()
        await call.release()
        if isinstance(error, GatewayError):
            error.headers.update(headers)
        raise
    ttft = request.state.ttft = time.perf_counter() - request.state.started
    call.gateway.metrics.first_token(call.route.model, ttft)
    return first
