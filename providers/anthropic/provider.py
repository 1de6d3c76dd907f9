"""Anthropic's Messages API behind OpenAI's chat completions.

Pure translation: ``to_vendor`` (OpenAI request → Messages request, in
``anthropic_request.py``), ``from_vendor`` (a whole answer → ``chat.completion``),
``AnthropicStream`` (stream events → ``chat.completion.chunk``s) and ``error_from``; the
provider class only moves bytes. With ``response_format`` the forced JSON tool's input is the
answer's content, alone: text blocks beside it are dropped (stream and whole answer alike), so
the content always parses as JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, ValidationError

from providers.anthropic.request import to_vendor
from providers.anthropic.wire import (
    ERROR_STATUS,
    ContentBlockDelta,
    ContentBlockStart,
    ErrorBody,
    MessageDelta,
    MessageResponse,
    MessageStart,
    WireUsage,
)
from providers.base import DeploymentConfig, RemoteDeploymentConfig
from providers.http import HTTPClient
from providers.openai_shapes import Choice, ChunkWriter, TokenCounts, completion, tool_call
from providers.vendor_http import VendorHTTP, plain_message, read_error_body
from wire.errors import GatewayError, UpstreamError, from_upstream_status
from wire.openai import ChatRequest, ChatResult, StreamChunk

__all__ = ["AnthropicConfig", "AnthropicProvider", "AnthropicStream", "error_from",
           "from_vendor", "to_vendor"]


class AnthropicConfig(RemoteDeploymentConfig):
    provider: Literal["anthropic"]
    api_base: str = "https://api.anthropic.com"
    max_tokens: int = Field(default=4096, ge=1)  # for requests that give none
    # 2023-06-01 still takes temperature and top_p; 2026-10-21 (SDK 2.x's default) does not.
    anthropic_version: str = "2023-06-01"


FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
                  "max_tokens": "length", "model_context_window_exceeded": "length",
                  "tool_use": "tool_calls", "refusal": "content_filter"}


def finish_reason(stop_reason: str | None, json_tool: str | None) -> str:
    if json_tool is not None and stop_reason == "tool_use":
        return "stop"  # the forced JSON tool is the answer, not a call for the client
    return FINISH_REASONS.get(stop_reason or "", "stop")


def counts(usage: WireUsage) -> TokenCounts:
    """OpenAI's prompt tokens include cached ones; Anthropic counts them apart."""
    cached = usage.cache_read_input_tokens or 0
    prompt = (usage.input_tokens or 0) + (usage.cache_creation_input_tokens or 0) + cached
    return TokenCounts(prompt, usage.output_tokens or 0, cached=cached)


def from_vendor(body: Any, json_tool: str | None) -> ChatResult:
    """A whole Messages answer (parsed JSON) as a ``chat.completion``."""
    try:
        answer = MessageResponse.model_validate(body)
    except ValidationError as exc:
        raise UpstreamError("The upstream's answer is not an Anthropic message.") from exc
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in answer.content:
        if block.type == "text" and block.text and json_tool is None:
            texts.append(block.text)
        elif block.type == "tool_use" and block.name is not None:
            arguments = orjson.dumps(block.input or {}).decode()
            if json_tool is not None:
                texts.append(arguments)
            else:
                calls.append(tool_call(block.id or "", block.name, arguments))
    choice = Choice("".join(texts) if texts or not calls else None,
                    finish_reason(answer.stop_reason, json_tool), calls or None)
    return completion(answer.model, [choice], counts(answer.usage))


def error_from(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An Anthropic error answer as the gateway's error, by HTTP status."""
    try:
        message = ErrorBody.model_validate(read_error_body(body)).error.message
    except ValidationError:
        message = plain_message(status, body)
    return from_upstream_status(status, message or f"HTTP {status}",
                                retry_after=headers.get("retry-after"))


class AnthropicStream:
    """One stream's events in, OpenAI chunks out (pure: no I/O). ``done`` once
    ``message_stop`` has arrived."""

    def __init__(self, model: str, json_tool: str | None) -> None:
        self._chunks = ChunkWriter(model)
        self._json_tool = json_tool
        self._tools: dict[int, int] = {}  # content block index → tool call position
        self._json_blocks: set[int] = set()
        self._usage = WireUsage()
        self._finished = False  # a finish_reason was sent
        self.done = False

    def feed(self, event: str | None, data: bytes) -> list[StreamChunk]:
        try:
            parsed = orjson.loads(data)
            kind = parsed.get("type") if isinstance(parsed, dict) else None
            return self._handle(kind or event, parsed)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise UpstreamError("The upstream sent a stream event that is not Anthropic's."
                                ) from exc

    def _handle(self, kind: str | None, parsed: Any) -> list[StreamChunk]:
        if kind == "message_start":
            start = MessageStart.model_validate(parsed)
            self._usage = start.message.usage
            self._chunks.set_model(start.message.model)
            return [self._chunks.content("")]
        if kind == "content_block_start":
            return self._block_start(ContentBlockStart.model_validate(parsed))
        if kind == "content_block_delta":
            return self._block_delta(ContentBlockDelta.model_validate(parsed))
        if kind == "message_delta":
            delta = MessageDelta.model_validate(parsed)
            if delta.usage is not None:  # cumulative: its fields replace the earlier ones
                fields = delta.usage.model_dump(exclude_none=True)
                self._usage = self._usage.model_copy(update=fields)
            if delta.delta.stop_reason is None or self._finished:
                return []
            self._finished = True
            return [self._chunks.finish(finish_reason(delta.delta.stop_reason,
                                                      self._json_tool))]
        if kind == "message_stop":
            self.done = True
            chunks = [] if self._finished else [self._chunks.finish("stop")]
            return [*chunks, self._chunks.usage(counts(self._usage))]
        if kind == "error":
            detail = ErrorBody.model_validate(parsed).error
            raise from_upstream_status(ERROR_STATUS.get(detail.type, 500),
                                       detail.message or detail.type)
        return []  # ping, content_block_stop, and event types added later

    def _block_start(self, start: ContentBlockStart) -> list[StreamChunk]:
        block = start.content_block
        if block.type == "text" and block.text and self._json_tool is None:
            return [self._chunks.content(block.text)]
        if block.type != "tool_use" or block.name is None:
            return []  # thinking blocks and the like are not part of the answer
        if self._json_tool is not None:
            self._json_blocks.add(start.index)
            return []
        position = self._tools[start.index] = len(self._tools)
        return [self._chunks.tool_call(position, block.id or "", block.name)]

    def _block_delta(self, event: ContentBlockDelta) -> list[StreamChunk]:
        delta = event.delta
        if delta.type == "text_delta" and delta.text and self._json_tool is None:
            return [self._chunks.content(delta.text)]
        if delta.type == "input_json_delta" and delta.partial_json:
            if event.index in self._json_blocks:
                return [self._chunks.content(delta.partial_json)]
            position = self._tools.get(event.index)
            if position is not None:
                return [self._chunks.tool_arguments(position, delta.partial_json)]
        return []


class AnthropicProvider:
    Config: ClassVar[type[DeploymentConfig]] = AnthropicConfig

    def __init__(self, config: AnthropicConfig, http: HTTPClient) -> None:
        headers = {"anthropic-version": config.anthropic_version}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._http = VendorHTTP(http, config, headers, error_from)
        self._url = f"{config.base_url}/v1/messages"
        self._config = config

    def _body(self, request: ChatRequest, model: str, stream: bool) -> tuple[bytes, str | None]:
        body, json_tool = to_vendor(request, model, default_max_tokens=self._config.max_tokens,
                                    api_version=self._config.anthropic_version, stream=stream)
        return orjson.dumps(body), json_tool

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        content, json_tool = self._body(request, model, stream=False)
        return from_vendor(await self._http.post_json(self._url, content), json_tool)

    async def stream(self, request: ChatRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        content, json_tool = self._body(request, model, stream=True)
        translator = AnthropicStream(model, json_tool)
        # Read on to the end of the body after message_stop, so the connection can be reused.
        async with self._http.stream_events(self._url, content) as events:
            async for event in events:
                if not translator.done:
                    for chunk in translator.feed(event.event, event.data):
                        yield chunk
        if not translator.done:
            raise UpstreamError("The upstream closed the stream before it was done.")
