"""/v1/responses for a model with ``responses: native`` deployments (gateway/responses/native.py).

Each attempt the router makes (retries, other deployments, fallbacks) goes the way its
deployment speaks: a native one gets the Responses body and answers a ``response`` (a stream:
its typed events, relayed as bytes); any other is translated to the chat path and its answer
back, as gateway/routes/responses.py does. Keys, limits, breakers, usage, spend and metrics
apply as for chat, and so does the response cache: keyed by the body the upstream gets, it
keeps the final ``response`` (whichever deployment answered) and plays a stream hit back as
typed events (gateway/responses/replay.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.cache.response import Lookup
from gateway.http.streaming import SSEResponse, stream_failure
from gateway.responses.events import EventWriter, encode
from gateway.responses.native import client_view
from gateway.responses.output import envelope, from_completion
from gateway.responses.replay import replay_events
from gateway.routes.common import ModelCall, first_chunk, until_disconnected
from gateway.routing.router import Deployment
from providers.base import ChatProvider, NativeResponder
from wire.errors import GatewayError, InvalidRequest
from wire.openai import ChatRequest, ChatResult, StreamChunk, Usage
from wire.responses import ResponsesRequest

Save = Callable[[dict[str, Any]], Awaitable[None]]
_ENDED = ("response.completed", "response.incomplete")
_STORED = ("completed", "incomplete")  # a whole answer of another status is not cached


def native_of(deployment: Deployment) -> NativeResponder | None:
    provider = deployment.provider
    if isinstance(provider, NativeResponder) and provider.native_responses:
        return provider
    return None


def may_go_native(call: ModelCall[ChatRequest]) -> bool:
    """Whether the model has a native deployment and no guardrails apply to the call (they
    read and rewrite chat messages, so a guarded call is translated even on a native one)."""
    if not any(native_of(d) for d in call.route.deployments):
        return False
    return not call.gateway.guardrails.for_route(
        (d.config for d in call.route.deployments),
        call.caller.key.guardrails if call.caller.key else None)


@dataclass(slots=True)
class Attempts:
    """The router's attempt, native or translated by deployment. ``untranslatable``: why the
    request cannot be translated (built-in tools, ...), raised on a translated deployment."""

    call: ModelCall[ChatRequest]
    body: ResponsesRequest
    response_id: str
    upstream: dict[str, Any]
    untranslatable: InvalidRequest | None

    def _translatable(self) -> None:
        if self.untranslatable is not None:
            raise self.untranslatable

    async def whole(self, deployment: Deployment, chat: ChatProvider, model: str) -> ChatResult:
        native = native_of(deployment)
        if native is not None:
            return await native.respond(self.upstream, model)
        self._translatable()
        result = await chat.chat(self.call.body, model)
        response = from_completion(self.body, self.response_id, orjson.loads(result.body))
        return ChatResult(orjson.dumps(response), usage=result.usage)

    async def stream(self, deployment: Deployment, chat: ChatProvider, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        native = native_of(deployment)
        if native is not None:
            async with aclosing(native.stream_response(self.upstream, model)) as events:
                async for chunk in events:
                    yield chunk
            return
        self._translatable()
        writer = EventWriter(envelope(self.body, self.response_id, "in_progress"))
        pending, usage = writer.start(), None
        async with aclosing(chat.stream(self.call.body, model)) as chunks:
            async for chunk in chunks:
                usage = chunk.usage or usage
                for part in chunk.split():
                    pending += writer.feed(orjson.loads(part.data))
                if pending:
                    yield StreamChunk(b"", sse=b"".join(encode(e) for e in pending))
                    pending = []
        ending = writer.end()
        yield StreamChunk(orjson.dumps(ending[-1]), usage=usage,
                          sse=b"".join(encode(e) for e in ending))


async def answer(request: Request, call: ModelCall[ChatRequest], attempts: Attempts,
                 save: Save) -> Response:
    cached = await _lookup(call, request, attempts.upstream)
    if cached is not None and cached.answer is not None:
        return await _from_cache(call, attempts, cached, save)
    headers = {**call.ticket.headers, **(cached.headers if cached else {})}
    if attempts.body.stream:
        return await _stream(request, call, attempts, save, cached, headers)
    try:
        result = await until_disconnected(request, call.gateway.router.chat(
            call.route, call.body, call.meter, via=attempts.whole))
    except BaseException as error:
        await call.release()
        if isinstance(error, GatewayError):
            error.headers.update(headers)
        raise
    response = orjson.loads(result.body)
    if cached is not None and response.get("status") in _STORED:
        await cached.save(result.body)
    shown = client_view(response, attempts.body, attempts.response_id)
    data = result.body if shown == response else orjson.dumps(shown)
    await save(shown)
    return call.respond(data, result.usage, headers=cached.headers if cached else None)


async def _lookup(call: ModelCall[ChatRequest], request: Request, upstream: dict[str, Any]
                  ) -> Lookup | None:
    """The response cache's entry for the body the upstream gets (None: no cache)."""
    cache = call.gateway.cache
    cached = (await cache.lookup_response(call.route.model, upstream, request.headers)
              if cache else None)
    request.state.cache = cached.result if cached else None
    return cached


async def _from_cache(call: ModelCall[ChatRequest], attempts: Attempts, cached: Lookup,
                      save: Save) -> Response:
    """A hit: the stored ``response`` as a new one of this request (its own id, stored as
    asked), whole or played back as a stream; no upstream call, no tokens used."""
    assert cached.answer is not None
    response = client_view(orjson.loads(cached.answer), attempts.body, attempts.response_id)
    if not attempts.body.stream:
        await save(response)
        return call.respond(orjson.dumps(response), None, cached=True, headers=cached.headers)
    return SSEResponse(_replayed(call, response, save),
                       headers={**call.ticket.headers, **cached.headers})


async def _replayed(call: ModelCall[ChatRequest], response: dict[str, Any], save: Save
                    ) -> AsyncGenerator[bytes, None]:
    try:
        for event in replay_events(response):
            yield encode(event)
        await save(response)
    finally:
        await call.finish(None, cached=True)


async def _stream(request: Request, call: ModelCall[ChatRequest], attempts: Attempts,
                  save: Save, cached: Lookup | None, headers: dict[str, str]) -> Response:
    """Open the stream and wait for its first event (an upstream failing before it is a plain
    HTTP error, after retries and fallbacks), then relay every event as it comes."""
    chunks = call.gateway.router.stream(call.route, call.body, keep_usage_only=True,
                                        meter=call.meter, via=attempts.stream)
    first = await first_chunk(request, call, chunks, headers)
    return SSEResponse(_relay(call, attempts, first, chunks, save, cached), headers=headers)


def _shown(chunk: StreamChunk, attempts: Attempts) -> tuple[bytes, dict[str, Any] | None]:
    """A chunk's events as the client gets them (a whole ``response`` in one shown as the
    client asked for it), and the final response when the chunk ends the stream cleanly."""
    if not chunk.data:
        return chunk.event, None
    event = orjson.loads(chunk.data)
    if not isinstance(event.get("response"), dict):
        return chunk.event, None
    shown = client_view(event["response"], attempts.body, attempts.response_id)
    final = shown if event.get("type") in _ENDED else None
    if shown == event["response"]:
        return chunk.event, final
    return encode({**event, "response": shown}), final  # (a native chunk: one event)


def _error_event(error: GatewayError, sequence: int) -> bytes:
    detail = orjson.loads(error.body_bytes())["error"]
    return encode({"type": "error", "code": detail.get("code"), "message": detail["message"],
                   "param": detail.get("param"), "sequence_number": sequence})


async def _relay(call: ModelCall[ChatRequest], attempts: Attempts, first: StreamChunk | None,
                 chunks: AsyncGenerator[StreamChunk, None], save: Save, cached: Lookup | None
                 ) -> AsyncGenerator[bytes, None]:
    """The events; an error after the start is an ``error`` event. The response is stored
    (and cached) once it has ended cleanly; the call is settled when the stream ends."""
    usage: Usage | None = None
    final: dict[str, Any] | None = None
    sent = 0  # events relayed so far: the next sequence_number
    try:
        async with aclosing(chunks):
            try:
                chunk = first
                while chunk is not None:
                    usage = chunk.usage or usage
                    data, ended = _shown(chunk, attempts)
                    final = ended or final
                    sent += data.count(b"\n\n")
                    yield data
                    chunk = await anext(chunks, None)
            except Exception as exc:
                yield _error_event(stream_failure(exc, "responses stream"), sent)
                return
        if final is not None:
            if cached is not None:
                await cached.save(orjson.dumps(final))
            await save(final)
    finally:
        await call.finish(usage)
