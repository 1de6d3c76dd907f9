"""OpenAI, and every upstream that speaks the OpenAI API (vLLM, llama.cpp server, LocalAI...).

Requests go upstream as the client sent them, with only ``model`` replaced and usage asked
for on streams; answers come back byte for byte (streams as the upstream's own bytes where
they are plain chunks: providers/openai/stream.py). The pure functions ``to_upstream``,
``from_upstream`` and ``from_upstream_chunk`` hold all of the translation.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from functools import partial
from typing import Any, ClassVar, Literal

import orjson

from providers.base import DeploymentConfig, RemoteDeploymentConfig
from providers.http import HTTPClient, UpstreamResponse
from providers.openai.audio import AudioUpstream
from providers.openai.images import (
    edit_body,
    event_usage,
    generation_body,
    images_from_upstream,
)
from providers.openai.responses import ResponseEvents, from_upstream_response, request_body
from providers.openai.stream import UpstreamEvents
from wire.audio import AudioAnswer, AudioStream, TranscriptionRequest
from wire.errors import GatewayError, UpstreamError, from_upstream_status
from wire.images import ImageEditRequest, ImageGenerationRequest
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest, StreamChunk, Usage
from wire.sse import SSEDecoder


class _OpenAISpeakingConfig(RemoteDeploymentConfig):
    # Ask the upstream for usage on every stream (to count tokens). Turn off for an old
    # server that rejects ``stream_options``; its streams then go uncounted.
    stream_usage: bool = True
    # ``native``: the upstream speaks OpenAI's Responses API, and /v1/responses is passed to
    # its ``/responses`` instead of being translated to chat completions.
    responses: Literal["translate", "native"] = "translate"


class OpenAIConfig(_OpenAISpeakingConfig):
    provider: Literal["openai"]
    api_base: str = "https://api.openai.com/v1"
    organization: str | None = None


class OpenAICompatibleConfig(_OpenAISpeakingConfig):
    provider: Literal["openai-compatible"]


_USAGE_NULL = b',"usage":null'


def to_upstream(raw: dict[str, Any], model: str, *, stream: bool,
                stream_usage: bool = True) -> bytes:
    """The client's body (chat or embeddings) with the upstream model id; streams ask for
    usage."""
    body = {**raw, "model": model}
    if stream and stream_usage:
        body["stream_options"] = {**(raw.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(body)


def usage_from(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens", 0)
    if isinstance(prompt, int) and isinstance(completion, int):
        details = data.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return Usage(prompt, completion, cached if isinstance(cached, int) else 0)
    return None


def from_upstream(body: bytes, *, expect: str = "choices") -> ChatResult:
    """Check a whole answer is OpenAI JSON and read its usage; the bytes pass unchanged."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("The upstream answered with something that is not JSON.") from exc
    if not isinstance(parsed, dict) or expect not in parsed:
        raise UpstreamError(f"The upstream's answer has no '{expect}'.")
    return ChatResult(body=body, usage=usage_from(parsed.get("usage")))


def from_upstream_chunk(data: bytes, *, client_wants_usage: bool) -> StreamChunk:
    """One upstream SSE ``data`` payload as a chunk. It is parsed (to check it and read its
    usage) but passes on as the upstream wrote it, less the ``"usage":null`` that the gateway
    caused by asking for usage the client did not want."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("The upstream sent a stream chunk that is not JSON.") from exc
    if not isinstance(parsed, dict):
        raise UpstreamError("The upstream sent a stream chunk that is not a JSON object.")
    if "error" in parsed:
        raise error_from_body(502, data, {})
    usage = usage_from(parsed.get("usage"))
    if usage is None:
        if not client_wants_usage and "usage" in parsed:
            data = data.replace(_USAGE_NULL, b"")
        return StreamChunk(data)
    return StreamChunk(data, usage=usage, usage_only=not parsed.get("choices"))


def error_from_body(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An upstream error answer as the gateway's error, classified by ``status``."""
    message, param, code = f"HTTP {status}", None, None
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        param = error.get("param") if isinstance(error.get("param"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
    elif body:
        message = body[:200].decode("utf-8", "replace")
    return from_upstream_status(status, message, param=param, code=code,
                                retry_after=headers.get("retry-after"),
                                retry_after_ms=headers.get("retry-after-ms"))


async def opened_as_events(response: UpstreamResponse) -> None:
    """Raise unless a stream's upstream answered with server-sent events: its error, or 502."""
    if response.status >= 400:
        raise error_from_body(response.status, await response.read(), response.headers)
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        raise UpstreamError("The upstream did not answer the stream with server-sent events.")


class OpenAIProvider:
    Config: ClassVar[type[DeploymentConfig]] = OpenAIConfig

    def __init__(self, config: _OpenAISpeakingConfig, http: HTTPClient) -> None:
        self._http = http
        self._stream_usage = config.stream_usage
        base = config.base_url
        self._chat_url = f"{base}/chat/completions"
        self._embeddings_url = f"{base}/embeddings"
        self._images_url = f"{base}/images"
        self._responses_url = f"{base}/responses"
        self.native_responses = config.responses == "native"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        if isinstance(config, OpenAIConfig) and config.organization:
            headers["openai-organization"] = config.organization
        self._headers = {**headers, **config.headers}
        self._stream_headers = {**self._headers, "accept": "text/event-stream"}
        self._timeout = config.timeouts(stream=False)
        self._stream_timeout = config.timeouts(stream=True)
        self._audio = AudioUpstream(http, base, self._headers, self._timeout,
                                    self._stream_timeout)

    async def _post(self, url: str, content: bytes, expect: str) -> ChatResult:
        return from_upstream(await self._post_raw(url, content), expect=expect)

    async def _post_raw(self, url: str, content: bytes,
                        headers: Mapping[str, str] | None = None) -> bytes:
        async with self._http.post(url, content=content, headers=headers or self._headers,
                                   timeout=self._timeout) as response:
            body = await response.read()
            if response.status >= 400:
                raise error_from_body(response.status, body, response.headers)
        return body

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        return await self._post(self._chat_url, to_upstream(request.raw, model, stream=False),
                                "choices")

    async def embed(self, request: EmbeddingRequest, model: str) -> ChatResult:
        return await self._post(self._embeddings_url,
                                to_upstream(request.raw, model, stream=False), "data")

    async def generate_image(self, request: ImageGenerationRequest, model: str
                             ) -> ChatResult:
        body = await self._post_raw(f"{self._images_url}/generations",
                                    generation_body(request, model))
        return images_from_upstream(body)

    async def edit_image(self, request: ImageEditRequest, model: str) -> ChatResult:
        content, content_type = edit_body(request, model)
        body = await self._post_raw(f"{self._images_url}/edits", content,
                                    {**self._headers, "content-type": content_type})
        return images_from_upstream(body)

    async def stream_image(self, request: ImageGenerationRequest | ImageEditRequest,
                           model: str) -> AsyncGenerator[StreamChunk, None]:
        """The upstream's events as they arrive, byte for byte; usage read on the way."""
        if isinstance(request, ImageEditRequest):
            url = f"{self._images_url}/edits"
            content, content_type = edit_body(request, model)
        else:
            url = f"{self._images_url}/generations"
            content, content_type = generation_body(request, model), "application/json"
        headers = {**self._stream_headers, "content-type": content_type}
        async with self._http.post(url, content=content, headers=headers,
                                   timeout=self._stream_timeout) as response:
            await opened_as_events(response)
            decoder = SSEDecoder()
            async for data in response.iter_bytes():
                usage = None
                for event in decoder.feed(data):
                    usage = event_usage(event.data) or usage
                yield StreamChunk(data, usage=usage)

    async def transcribe(self, request: TranscriptionRequest, model: str
                         ) -> AudioAnswer | AudioStream:
        return await self._audio.transcribe(request, model)

    async def stream(self, request: ChatRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        content = to_upstream(request.raw, model, stream=True, stream_usage=self._stream_usage)
        wants_usage = request.include_usage
        async with self._http.post(self._chat_url, content=content, headers=self._stream_headers,
                                   timeout=self._stream_timeout) as response:
            await opened_as_events(response)
            events = UpstreamEvents(partial(from_upstream_chunk, client_wants_usage=wants_usage),
                                    client_wants_usage=wants_usage)
            # Read on to the end of the body after [DONE], so the connection can be reused.
            async for data in response.iter_bytes():
                for chunk in events.feed(data):
                    yield chunk
        if not events.done:
            raise UpstreamError("The upstream closed the stream before it was done.")


    async def respond(self, body: dict[str, Any], model: str) -> ChatResult:
        return from_upstream_response(await self._post_raw(self._responses_url,
                                                           request_body(body, model)))

    async def stream_response(self, body: dict[str, Any], model: str
                              ) -> AsyncGenerator[StreamChunk, None]:
        """The upstream's typed events as they arrive (providers/openai/responses.py)."""
        async with self._http.post(self._responses_url, content=request_body(body, model),
                                   headers=self._stream_headers,
                                   timeout=self._stream_timeout) as response:
            await opened_as_events(response)
            events = ResponseEvents()
            async for data in response.iter_bytes():
                for chunk in events.feed(data):
                    yield chunk
        if not events.done:
            raise UpstreamError("The upstream closed the stream before it was done.")


class OpenAICompatibleProvider(OpenAIProvider):
    Config: ClassVar[type[DeploymentConfig]] = OpenAICompatibleConfig
