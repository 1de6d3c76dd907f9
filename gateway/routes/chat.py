"""POST /v1/chat/completions: parse, authorize, look in the cache, dispatch to the router,
answer."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.cache.response import Lookup
from gateway.cache.stream import replay
from gateway.guardrails.restore import restore_body, restored
from gateway.http.routing import Route
from gateway.http.streaming import SSEResponse, stream_failure
from gateway.prompts.context import context_window
from gateway.prompts.prepare import GATEWAY_FIELDS, Fits, prepare, remember, remembered
from gateway.routes.common import (
    ModelCall,
    authorized_call,
    first_chunk,
    parse,
    until_disconnected,
)
from gateway.routing.router import Route as ModelRoute
from gateway.state import AppState
from wire.errors import GatewayError
from wire.openai import ChatRequest, Message, StreamChunk, Usage
from wire.sse import DONE, encode_data


async def cost(gateway: AppState, chat: ChatRequest, route: ModelRoute) -> int:
    return await gateway.quotas.chat_cost(chat, route.deployments[0].provider)


class ChatBody(ChatRequest):
    """A chat body as it arrives: ``messages`` may be empty when a prompt template or a
    conversation supplies them."""

    messages: list[Message] = Field(default=[])


async def prepare_chat(call: ModelCall[ChatRequest], request: Request) -> None:
    """The body the model sees (gateway/prompts/prepare.py): history, prompt template and
    guardrails applied, the gateway's own fields removed."""
    raw = call.body.raw
    guards = call.gateway.guardrails.for_route(
        (d.config for d in call.route.deployments),
        call.caller.key.guardrails if call.caller.key else None)
    if not GATEWAY_FIELDS & raw.keys() and not guards:
        if not call.body.messages:
            call.body = parse(ChatRequest, raw)  # (400: messages must not be empty)
        return
    fits, own_tokenizer = await fits_window(call) if "conversation_id" in raw else (None, False)
    call.prepared = await prepare(
        raw, prompts=call.gateway.prompts, conversations=call.gateway.conversations,
        guards=guards, key_id=call.caller.key_id, is_admin=call.caller.is_admin, fits=fits,
        fits_in_thread=not own_tokenizer)
    call.body = parse(ChatRequest, call.prepared.body)


async def fits_window(call: ModelCall[ChatRequest]) -> tuple[Fits | None, bool]:
    """Whether messages (and the room the answer asks for) fit the model's context window,
    counted with its own tokenizer when it has one, else tiktoken; None: the window is
    unknown."""
    deployment = call.route.deployments[0]
    window = context_window(deployment.config, deployment.upstream_model(call.route.model))
    if window is None:
        return None, False
    body = call.body
    room = (body.max_completion_tokens or body.max_tokens or 0) * (body.n or 1)
    count = getattr(deployment.provider, "count_prompt_tokens", None)
    estimator = call.gateway.quotas.estimator
    await estimator.ready()

    def fits(messages: list[dict[str, Any]]) -> bool:
        try:
            request = ChatRequest.parse({"model": body.model, "messages": messages})
        except ValidationError:
            return True  # (the request's own 400 comes later)
        tokens = count(request) if count is not None else None
        if tokens is None:
            tokens = estimator.count_messages(request)
        return bool(tokens + room <= window)

    return fits, count is not None


@dataclass(slots=True)
class Answered:
    """A whole chat answer as the client gets it: the ``chat.completion`` JSON (placeholders
    restored), its usage (None: cached or unknown) and the headers it adds."""

    body: bytes
    usage: Usage | None
    cached: bool
    headers: dict[str, str]


async def lookup(call: ModelCall[ChatRequest], request: Request) -> Lookup | None:
    """The response cache's entry for this call (None: no cache configured)."""
    cache = call.gateway.cache
    cached = await cache.lookup(call.route.model, call.body, request.headers) if cache else None
    request.scope["state"]["cache"] = cached.result if cached else None
    return cached


async def chat_completions(request: Request) -> Response:
    call: ModelCall[ChatRequest] = await authorized_call(request, ChatBody, cost, prepare_chat)
    cached = await lookup(call, request)
    if call.body.stream:
        if cached is not None and cached.answer is not None:
            return await _from_cache(call, cached)
        first, chunks, headers = await open_stream(request, call, cached)
        return SSEResponse(_events(call, first, chunks), headers=headers)
    answered = await complete(request, call, cached)
    return call.respond(answered.body, answered.usage, cached=answered.cached,
                        headers=answered.headers)


async def complete(request: Request, call: ModelCall[ChatRequest], cached: Lookup | None
                   ) -> Answered:
    """The whole answer: from the cache, else from the router (the call's reservation is
    released when it fails); the conversation remembers it."""
    if cached is not None and cached.answer is not None:
        answer, headers = await _cached_answer(call, cached)
        return Answered(answer, None, True, headers)
    headers = {**call.ticket.headers, **(cached.headers if cached else {})}
    try:
        result = await until_disconnected(
            request, call.gateway.router.chat(call.route, call.body, call.meter))
    except BaseException as error:
        await call.release()
        if isinstance(error, GatewayError):
            error.headers.update(headers)
        raise
    if cached is not None:
        await cached.save(result.body)
    prepared = call.prepared
    if prepared is None:
        return Answered(result.body, result.usage, False, cached.headers if cached else {})
    await remember(call.gateway.conversations, prepared, result.body)
    return Answered(restore_body(result.body, prepared.placeholders), result.usage, False,
                    {**(cached.headers if cached else {}), **prepared.headers()})


async def _cached_answer(call: ModelCall[ChatRequest], cached: Lookup
                         ) -> tuple[bytes, dict[str, str]]:
    assert cached.answer is not None
    answer, headers = cached.answer, cached.headers
    if call.prepared is not None:
        await remember(call.gateway.conversations, call.prepared, answer)
        answer = restore_body(answer, call.prepared.placeholders)
        headers = {**headers, **call.prepared.headers()}
    return answer, headers


async def _from_cache(call: ModelCall[ChatRequest], cached: Lookup) -> Response:
    answer, headers = await _cached_answer(call, cached)
    return SSEResponse(_replayed(call, answer), headers={**call.ticket.headers, **headers})


async def _replayed(call: ModelCall[ChatRequest], answer: bytes
                    ) -> AsyncGenerator[bytes, None]:
    try:
        async for event in replay(answer, call.body.include_usage):
            yield event
    finally:
        await call.finish(None, cached=True)


async def open_stream(request: Request, call: ModelCall[ChatRequest], cached: Lookup | None
                      ) -> tuple[StreamChunk | None, AsyncGenerator[StreamChunk, None],
                                 dict[str, str]]:
    """Open the stream (recorded for the cache, remembered in a conversation, guardrail values
    restored) and wait for its first chunk (``first_chunk``)."""
    headers = {**call.ticket.headers, **(cached.headers if cached else {})}
    chunks = call.gateway.router.stream(call.route, call.body, keep_usage_only=True,
                                        meter=call.meter)
    if cached is not None and cached.saving:
        chunks = cached.record(chunks)
    prepared = call.prepared
    if prepared is not None:
        if prepared.conversation is not None:
            chunks = remembered(chunks, call.gateway.conversations, prepared)
        if prepared.placeholders:
            chunks = restored(chunks, prepared.placeholders)
        headers = {**headers, **prepared.headers()}
    return await first_chunk(request, call, chunks, headers), chunks, headers


async def _events(call: ModelCall[ChatRequest], first: StreamChunk | None,
                  chunks: AsyncGenerator[StreamChunk, None]) -> AsyncGenerator[bytes, None]:
    """Relay the chunks (the usage-only one when the client asked for usage); an error after
    the stream has started is one error event. The call is settled when the stream ends."""
    wants_usage = call.body.include_usage
    usage: Usage | None = None
    try:
        async with aclosing(chunks):
            try:
                if first is not None:
                    usage = first.usage
                    if wants_usage or not first.usage_only:
                        yield first.event
                    async for chunk in chunks:  # (per relayed read: kept short)
                        if chunk.usage is not None:
                            usage = chunk.usage
                        if wants_usage or not chunk.usage_only:
                            yield chunk.sse or chunk.event
            except Exception as exc:
                yield encode_data(stream_failure(exc, "chat stream").body_bytes())
                return
        yield DONE
    finally:
        await call.finish(usage)


routes = [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
