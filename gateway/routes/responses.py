"""/v1/responses: OpenAI's Responses API, translated to the chat path (gateway/routes/chat.py)
so that keys, limits, cache, retries, fallbacks, usage, spend and guardrails apply unchanged;
stored responses (gateway/responses/store.py) for ``previous_response_id`` and GET/DELETE. A
model with ``responses: native`` deployments goes through gateway/routes/responses_native.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.cache.response import Lookup
from gateway.guardrails.restore import remask
from gateway.http.routing import Route
from gateway.http.streaming import SSEResponse, stream_failure
from gateway.prompts.context import truncate
from gateway.responses.events import EventWriter, encode
from gateway.responses.native import messages_to_items, turn_items, upstream_body
from gateway.responses.output import envelope, from_completion, history_messages
from gateway.responses.store import StoredResponse
from gateway.responses.translate import chat_body, input_items, new_id, stored_item
from gateway.routes.chat import (
    ChatBody,
    complete,
    cost,
    fits_window,
    lookup,
    open_stream,
    prepare_chat,
)
from gateway.routes.common import ModelCall, authorized_call, json_response, parse, read_json
from gateway.routes.responses_native import Attempts, answer, may_go_native
from gateway.state import app_state
from gateway.store import StoreUnavailable
from wire.errors import ContextLengthExceeded, InvalidRequest
from wire.openai import ChatRequest, StreamChunk, Usage
from wire.responses import ResponsesRequest

log = logging.getLogger("gateway")


@dataclass(slots=True)
class _Turn:
    """What a request continues and how it may go: the stored history (as chat messages and
    as items), and why it cannot be translated, if it cannot (fine on a native deployment)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    untranslatable: InvalidRequest | None = None
    native: bool = False


async def _read(request: Request) -> ChatRequest:
    """The Responses body, validated, and the chat body it becomes (history added later)."""
    body = parse(ResponsesRequest, await read_json(request))
    if not body.input:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    body.truncation = body.truncation or app_state(request).config.responses.truncation
    request.state.responses = body
    request.state.turn = turn = _Turn()
    try:
        chat = chat_body(body, [])
    except InvalidRequest as error:  # (a native deployment may take it: known once routed)
        turn.untranslatable = error
        chat = {"model": body.model,  # (for the rate limits' estimate)
                "messages": [{"role": "user", "content": orjson.dumps(body.input).decode()}]}
    return parse(ChatBody, chat)


async def _prepare(call: ModelCall[ChatRequest], request: Request) -> None:
    """Put the stored history of ``previous_response_id`` first (fitted to the context window
    as ``truncation`` says), then the chat path's own preparation (guardrails)."""
    body: ResponsesRequest = request.state.responses
    turn: _Turn = request.state.turn
    turn.native = may_go_native(call)
    if turn.untranslatable is not None and not turn.native:
        raise turn.untranslatable
    if body.previous_response_id is not None:
        previous = await call.gateway.responses.get(
            body.previous_response_id, call.caller.key_id, call.caller.is_admin,
            param="previous_response_id")
        turn.messages = previous.messages
        turn.items = (previous.items if previous.items is not None
                      else messages_to_items(previous.messages))
        if turn.untranslatable is None:
            history = await _fitted(call, body, previous.messages, turn.native)
            call.body = parse(ChatBody, chat_body(body, history))
    await prepare_chat(call, request)


async def _fitted(call: ModelCall[ChatRequest], body: ResponsesRequest,
                  history: list[dict[str, Any]], native: bool) -> list[dict[str, Any]]:
    """The history for the chat body: with ``truncation: auto`` less its oldest turns until
    it fits the context window; with ``disabled`` whole, or a 400 when it does not fit (on
    a native model the upstream judges, as it does the native body)."""
    fits, own_tokenizer = await fits_window(call)
    if fits is None or (native and body.truncation == "disabled"):
        return history
    head = [{"role": "system", "content": body.instructions}] if body.instructions else []
    own = chat_body(body, [])["messages"][len(head):]
    if body.truncation == "auto":
        if own_tokenizer:
            return truncate(head, history, own, fits)[0]
        return (await asyncio.to_thread(truncate, head, history, own, fits))[0]
    whole = [*head, *history, *own]
    if not (fits(whole) if own_tokenizer else await asyncio.to_thread(fits, whole)):
        raise ContextLengthExceeded(
            "Your input exceeds the context window of this model. Please adjust your input "
            "and try again, or set 'truncation' to 'auto'.", param="input")
    return history


def _turn(call: ModelCall[ChatRequest], body: ResponsesRequest) -> list[dict[str, Any]]:
    """The messages the model saw (masked), less the instructions: the history to keep."""
    messages = [m.model_dump(exclude_none=True) for m in call.body.messages]
    return messages[1:] if body.instructions else messages


async def _save(call: ModelCall[ChatRequest], request: Request,
                response: dict[str, Any]) -> None:
    body: ResponsesRequest = request.state.responses
    if not body.store:
        return
    turn: _Turn = request.state.turn
    items = [stored_item(item) for item in input_items(body)]
    earlier = _turn(call, body) if turn.untranslatable is None else turn.messages
    messages = [*earlier, *history_messages(response["output"])]
    exchange = turn_items(turn.items, body, response["output"])
    if call.prepared is not None and call.prepared.masked:  # kept masked, as it went upstream
        values = call.prepared.masked
        response, items, messages, exchange = (remask(response, values), remask(items, values),
                                               remask(messages, values),
                                               remask(exchange, values))
    try:
        await call.gateway.responses.save(StoredResponse(call.caller.key_id, response, items,
                                                         messages, exchange))
    except StoreUnavailable as exc:  # (the answer stands; it just cannot be continued)
        log.warning("response %s not stored: %s", response["id"], exc.message)


async def create_response(request: Request) -> Response:
    call: ModelCall[ChatRequest] = await authorized_call(request, ChatBody, cost, _prepare,
                                                         read=_read)
    body: ResponsesRequest = request.state.responses
    response_id = new_id("resp")
    turn: _Turn = request.state.turn
    if turn.native:
        upstream = upstream_body(body, turn.items, body.truncation or "disabled")
        attempts = Attempts(call, body, response_id, upstream, turn.untranslatable)
        return await answer(request, call, attempts, partial(_save, call, request))
    cached = await lookup(call, request)
    if body.stream:
        return await _stream(request, call, body, cached, response_id)
    answered = await complete(request, call, cached)
    response = from_completion(body, response_id, orjson.loads(answered.body))
    await _save(call, request, response)
    return call.respond(orjson.dumps(response), answered.usage, cached=answered.cached,
                        headers=answered.headers)


async def _stream(request: Request, call: ModelCall[ChatRequest], body: ResponsesRequest,
                  cached: Lookup | None, response_id: str) -> Response:
    writer = EventWriter(envelope(body, response_id, "in_progress"))
    if cached is not None and cached.answer is not None:
        answered = await complete(request, call, cached)
        events = _replayed(call, request, writer, orjson.loads(answered.body))
        return SSEResponse(events, headers={**call.ticket.headers, **answered.headers})
    first, chunks, headers = await open_stream(request, call, cached)
    return SSEResponse(_events(call, request, writer, first, chunks), headers=headers)


async def _replayed(call: ModelCall[ChatRequest], request: Request, writer: EventWriter,
                    completion: dict[str, Any]) -> AsyncGenerator[bytes, None]:
    """A cached answer as one stream: the whole message as one delta."""
    try:
        choice = (completion.get("choices") or [{}])[0]
        message = dict(choice.get("message") or {})
        message["tool_calls"] = [{"index": i, **c}
                                 for i, c in enumerate(message.get("tool_calls") or [])]
        chunk = {"choices": [{"index": 0, "delta": message,
                              "finish_reason": choice.get("finish_reason")}],
                 "usage": completion.get("usage")}
        for event in [*writer.start(), *writer.feed(chunk), *writer.end()]:
            yield encode(event)
        await _save(call, request, writer.response)
    finally:
        await call.finish(None, cached=True)


async def _events(call: ModelCall[ChatRequest], request: Request, writer: EventWriter,
                  first: StreamChunk | None, chunks: AsyncGenerator[StreamChunk, None]
                  ) -> AsyncGenerator[bytes, None]:
    """The chat chunks as Responses events; an error after the start is ``response.failed``.
    The response is stored once it has ended cleanly; the call is settled when it ends."""
    usage: Usage | None = None
    try:
        for event in writer.start():
            yield encode(event)
        async with aclosing(chunks):
            try:
                chunk = first
                while chunk is not None:
                    usage = chunk.usage or usage
                    for part in chunk.split():  # (several when relayed as a batch)
                        for event in writer.feed(orjson.loads(part.data)):
                            yield encode(event)
                    chunk = await anext(chunks, None)
            except Exception as exc:
                failure = stream_failure(exc, "responses stream")
                yield encode(writer.fail(orjson.loads(failure.body_bytes())["error"]))
                return
        for event in writer.end():
            yield encode(event)
        await _save(call, request, writer.response)
    finally:
        await call.finish(usage)


async def get_response(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    stored = await gateway.responses.get(request.path_params["id"], caller.key_id,
                                         caller.is_admin)
    return json_response(orjson.dumps(stored.response))


async def delete_response(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    response_id: str = request.path_params["id"]
    await gateway.responses.delete(response_id, caller.key_id, caller.is_admin)
    return json_response(orjson.dumps({"id": response_id, "object": "response",
                                       "deleted": True}))


async def list_input_items(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    stored = await gateway.responses.get(request.path_params["id"], caller.key_id,
                                         caller.is_admin)
    query = request.query_params
    order, limit = query.get("order", "desc"), query.get("limit", "20")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    if not limit.isdigit() or not 1 <= int(limit) <= 100:
        raise InvalidRequest("'limit' must be between 1 and 100.", param="limit")
    items = stored.input_items if order == "asc" else stored.input_items[::-1]
    ids = [item["id"] for item in items]
    start = ids.index(query["after"]) + 1 if query.get("after") in ids else 0
    page = items[start:start + int(limit)]
    return json_response(orjson.dumps({
        "object": "list", "data": page, "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + int(limit) < len(items)}))


routes = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{id}", get_response, methods=["GET"]),
    Route("/v1/responses/{id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{id}/input_items", list_input_items, methods=["GET"]),
]
