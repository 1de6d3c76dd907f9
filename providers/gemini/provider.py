"""Google's Gemini API behind OpenAI's chat completions and embeddings.

Pure translation: ``to_vendor`` (in ``gemini_request.py``), ``from_vendor``, ``GeminiStream``
(``?alt=sse`` events → chunks), the embeddings (``gemini_embeddings.py``) and ``error_from``;
the provider class only moves bytes. Gemini gives function calls no id (or only sometimes):
the id is derived from the request and the call (``openai_input.CallIds``), so a stream and a
whole answer agree; a call's thought signature (which Gemini 3 wants back) rides in the id
after ``__thought__``. Gemini has no ``parallel_tool_calls`` switch: when a request turns it
off, each candidate keeps only its first function call. With ``n`` > 1 Gemini may answer
with fewer candidates; both paths then return the candidates that came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import ValidationError

from providers import openai_input as oi
from providers.base import DeploymentConfig, RemoteDeploymentConfig
from providers.gemini.embeddings import (
    embed_method,
    from_vendor_embeddings,
    model_path,
    to_vendor_embeddings,
)
from providers.gemini.images import (
    check_mask,
    check_response_format,
    generation_request,
    image_count,
    images_answer,
)
from providers.gemini.request import THOUGHT, to_vendor
from providers.gemini.wire import (
    Candidate,
    ErrorBody,
    FunctionCall,
    GenerateContentResponse,
    UsageMetadata,
)
from providers.http import HTTPClient
from providers.openai_shapes import Choice, ChunkWriter, TokenCounts, completion, tool_call
from providers.vendor_http import VendorHTTP, plain_message, read_error_body
from wire.errors import GatewayError, UpstreamError, from_upstream_status
from wire.images import ImageEditRequest, ImageGenerationRequest
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest, StreamChunk

__all__ = ["GeminiConfig", "GeminiProvider", "GeminiStream", "error_from", "from_vendor",
           "to_vendor"]


class GeminiConfig(RemoteDeploymentConfig):
    provider: Literal["gemini"]
    api_base: str = "https://generativelanguage.googleapis.com"
    api_version: str = "v1beta"


_BLOCKED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                      "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
                      "LANGUAGE", "MODEL_ARMOR"})


def finish_reason(reason: str | None, called_tools: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _BLOCKED:
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def call_id(ids: oi.CallIds, call: FunctionCall, signature: str | None, position: int,
            choice: int) -> str:
    if call.id:
        base = call.id
    else:
        arguments = orjson.dumps(call.args, option=orjson.OPT_SORT_KEYS).decode()
        base = ids.make(call.name, arguments, position, choice)
    return f"{base}{THOUGHT}{signature}" if signature else base


def counts(usage: UsageMetadata | None) -> TokenCounts:
    """Thinking tokens are completion tokens; cached tokens are part of the prompt."""
    if usage is None:
        return TokenCounts()
    return TokenCounts(usage.promptTokenCount + usage.toolUsePromptTokenCount,
                       usage.candidatesTokenCount + usage.thoughtsTokenCount,
                       cached=usage.cachedContentTokenCount or 0,
                       reasoning=usage.thoughtsTokenCount)


def _answer(parsed: Any) -> GenerateContentResponse:
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = ErrorBody.model_validate(parsed).error
        raise from_upstream_status(error.code or 500, error.message or "upstream error")
    try:
        return GenerateContentResponse.model_validate(parsed)
    except ValidationError as exc:
        raise UpstreamError("The upstream's answer is not a Gemini response.") from exc


def _candidate_output(candidate: Candidate, ids: oi.CallIds
                      ) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in candidate.content.parts if candidate.content else []:
        if part.functionCall is not None:
            if calls and ids.first_only:
                continue
            call = part.functionCall
            calls.append(tool_call(
                call_id(ids, call, part.thoughtSignature, len(calls), candidate.index),
                call.name, orjson.dumps(call.args).decode()))
        elif part.text and not part.thought:
            texts.append(part.text)
    return "".join(texts), calls


def from_vendor(parsed: Any, model: str, ids: oi.CallIds | None = None) -> ChatResult:
    """A whole answer; ``ids`` (from the request) names the function calls."""
    answer = _answer(parsed)
    ids = ids or oi.CallIds()
    choices: list[Choice] = []
    for candidate in answer.candidates:
        text, calls = _candidate_output(candidate, ids)
        choices.append(Choice(text if text or not calls else None,
                              finish_reason(candidate.finishReason, bool(calls)),
                              calls or None, candidate.index))
    if not choices:  # the prompt itself was blocked
        choices.append(Choice("", "content_filter"))
    return completion(answer.modelVersion or model, choices, counts(answer.usageMetadata))


class GeminiStream:
    """One stream's ``alt=sse`` events in, OpenAI chunks out (pure: no I/O). Complete when
    every candidate that came has a ``finishReason`` (Gemini may send fewer than asked, as a
    whole answer may hold fewer); ``end()`` gives the usage chunk."""

    def __init__(self, model: str, ids: oi.CallIds | None = None) -> None:
        self._chunks = ChunkWriter(model)
        self._ids = ids or oi.CallIds()
        self._calls: dict[int, int] = {}  # candidate index → tool calls so far
        self._seen: set[int] = set()
        self._finished: set[int] = set()
        self._blocked = False
        self._usage: UsageMetadata | None = None

    @property
    def done(self) -> bool:
        return self._blocked or (bool(self._seen) and self._seen <= self._finished)

    def feed(self, data: bytes) -> list[StreamChunk]:
        try:
            answer = _answer(orjson.loads(data))
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The upstream sent a stream event that is not JSON.") from exc
        if answer.usageMetadata is not None:
            self._usage = answer.usageMetadata
        if answer.modelVersion:
            self._chunks.set_model(answer.modelVersion)
        out: list[StreamChunk] = []
        if not answer.candidates and answer.promptFeedback and answer.promptFeedback.blockReason:
            self._blocked = True
            return [self._chunks.finish("content_filter")]
        for candidate in answer.candidates:
            out.extend(self._candidate(candidate))
        return out

    def _candidate(self, candidate: Candidate) -> list[StreamChunk]:
        index, out = candidate.index, []
        self._seen.add(index)
        for part in candidate.content.parts if candidate.content else []:
            if part.functionCall is not None:
                call, position = part.functionCall, self._calls.get(index, 0)
                if position and self._ids.first_only:
                    continue
                self._calls[index] = position + 1
                out.append(self._chunks.tool_call(
                    position, call_id(self._ids, call, part.thoughtSignature, position, index),
                    call.name, orjson.dumps(call.args).decode(), index))
            elif part.text and not part.thought:
                out.append(self._chunks.content(part.text, index))
        if candidate.finishReason is not None and index not in self._finished:
            self._finished.add(index)
            out.append(self._chunks.finish(
                finish_reason(candidate.finishReason, index in self._calls), index))
        return out

    def end(self) -> StreamChunk:
        if not self.done:
            raise UpstreamError("The upstream closed the stream before it was done.")
        return self._chunks.usage(counts(self._usage))


def error_from(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """A Gemini error answer (google.rpc.Status) by HTTP status; a 429's wait comes from
    ``Retry-After`` or else from its RetryInfo detail."""
    retry_after = headers.get("retry-after")
    try:
        error = ErrorBody.model_validate(read_error_body(body)).error
    except ValidationError:
        return from_upstream_status(status, plain_message(status, body), retry_after=retry_after)
    for detail in error.details:
        delay = detail.get("retryDelay")
        if retry_after is None and isinstance(delay, str) and delay.endswith("s"):
            retry_after = delay[:-1]
    return from_upstream_status(status, error.message or f"HTTP {status}",
                                retry_after=retry_after)


class GeminiProvider:
    Config: ClassVar[type[DeploymentConfig]] = GeminiConfig

    def __init__(self, config: GeminiConfig, http: HTTPClient) -> None:
        headers = {"x-goog-api-key": config.api_key} if config.api_key else {}
        self._http = VendorHTTP(http, config, headers, error_from)
        self._base = f"{config.base_url}/{config.api_version}"

    def _url(self, model: str, method: str) -> str:
        return f"{self._base}/{model_path(model)}:{method}"

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        content = orjson.dumps(to_vendor(request))
        return from_vendor(await self._http.post_json(self._url(model, "generateContent"),
                                                      content), model, oi.CallIds(request))

    async def stream(self, request: ChatRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        content = orjson.dumps(to_vendor(request))
        translator = GeminiStream(model, oi.CallIds(request))
        url = self._url(model, "streamGenerateContent?alt=sse")
        async with self._http.stream_events(url, content) as events:
            async for event in events:
                for chunk in translator.feed(event.data):
                    yield chunk
        yield translator.end()

    async def embed(self, request: EmbeddingRequest, model: str) -> ChatResult:
        body = to_vendor_embeddings(request, model)
        parsed = await self._http.post_json(self._url(model, embed_method(request)),
                                            orjson.dumps(body))
        return from_vendor_embeddings(parsed, request, model)

    async def generate_image(self, request: ImageGenerationRequest, model: str
                             ) -> ChatResult:
        check_response_format(request.response_format)
        count = image_count(request.n)
        content = orjson.dumps(generation_request(request.prompt, request.size))
        return await self._images(model, content, count)

    async def edit_image(self, request: ImageEditRequest, model: str) -> ChatResult:
        check_response_format(request.response_format)
        check_mask(request.mask)
        count = image_count(request.n)
        # (base64 of the uploads, off the event loop)
        content = await asyncio.to_thread(
            lambda: orjson.dumps(generation_request(request.prompt, request.size,
                                                    request.images)))
        return await self._images(model, content, count)

    async def _images(self, model: str, content: bytes, count: int) -> ChatResult:
        """``count`` calls at once, one image each; the first failure cancels the rest."""
        url = self._url(model, "generateContent")
        try:
            async with asyncio.TaskGroup() as group:
                calls = [group.create_task(self._http.post_json(url, content))
                         for _ in range(count)]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return images_answer([call.result() for call in calls], int(time.time()))
