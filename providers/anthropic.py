"""Anthropic's Messages API behind OpenAI's chat completions.

Pure translation: ``to_vendor`` (OpenAI request → Messages request), ``from_vendor`` (a whole
answer → ``chat.completion``), ``AnthropicStream`` (stream events → ``chat.completion.chunk``s)
and ``error_from``; the provider class only moves bytes. ``response_format`` becomes a forced
tool whose input is the JSON answer (every Claude model honours a forced tool).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, ValidationError

from gateway.errors import GatewayError, InvalidRequest, UpstreamError, from_upstream_status
from providers import openai_input as oi
from providers.anthropic_wire import (
    ERROR_STATUS,
    Block,
    ContentBlockDelta,
    ContentBlockStart,
    ErrorBody,
    MessageDelta,
    MessageParam,
    MessageResponse,
    MessagesRequest,
    MessageStart,
    ToolChoice,
    ToolParam,
    WireUsage,
)
from providers.base import (
    ChatRequest,
    ChatResult,
    DeploymentConfig,
    RemoteDeploymentConfig,
    StreamChunk,
)
from providers.http import HTTPClient
from providers.openai_shapes import Choice, ChunkWriter, TokenCounts, completion, tool_call
from providers.vendor_http import VendorHTTP, plain_message, read_error_body

PROVIDER = "anthropic"
# Fields Anthropic has no counterpart for (n > 1 and parallel_tool_calls=false excepted).
_UNSUPPORTED = ("n", "seed", "presence_penalty", "frequency_penalty")


# The API version that removed temperature, top_p and top_k (a request with one is a 400).
SAMPLING_REMOVED = "2026-10-21"


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


def to_vendor(request: ChatRequest, model: str, config: AnthropicConfig, *,
              stream: bool) -> tuple[MessagesRequest, str | None]:
    """The Messages request, and the name of the forced JSON tool when ``response_format``
    asks for JSON."""
    sampling = config.anthropic_version < SAMPLING_REMOVED
    oi.reject_unsupported(request, PROVIDER,
                          _UNSUPPORTED if sampling else (*_UNSUPPORTED, "temperature", "top_p"))
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequest("Anthropic accepts a temperature from 0 to 1.", param="temperature")
    body: MessagesRequest = {"model": model, "messages": _messages(request),
                             "max_tokens": oi.max_tokens(request) or config.max_tokens}
    system = [Block(type="text", text=text) for text in _system_texts(request) if text]
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    stops = oi.stop_sequences(request)
    if stops:
        body["stop_sequences"] = stops
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    json_tool = _tools(request, body)
    return body, json_tool


def _system_texts(request: ChatRequest) -> list[str]:
    return [oi.text_of(m, f"messages[{i}].content") for i, m in enumerate(request.messages)
            if m.role in ("system", "developer")]


def _messages(request: ChatRequest) -> list[MessageParam]:
    """User, assistant and tool turns; consecutive turns of one role merged into one, as
    Anthropic requires (tool results travel in a user turn)."""
    messages: list[MessageParam] = []
    names = oi.tool_names(request.messages)
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role in ("system", "developer"):
            continue
        if message.role == "function":
            raise oi.unsupported(f"{where}.role", PROVIDER, "The legacy 'function' role")
        if message.role == "tool":
            oi.tool_result_name(message, names, where)
            blocks = [Block(type="tool_result", tool_use_id=message.tool_call_id or "",
                            content=oi.text_of(message, f"{where}.content"))]
        elif message.role == "assistant":
            blocks = [Block(type="text", text=oi.text_of(message, f"{where}.content"))]
            blocks = [b for b in blocks if b["text"]]
            blocks += [Block(type="tool_use", id=call.id, name=call.name, input=call.arguments)
                       for call in oi.tool_calls(message, where)]
        else:
            blocks = [_block(part) for part in oi.content_parts(message, f"{where}.content")]
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" \
            else "user"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    return messages


def _block(part: oi.Text | oi.Image) -> Block:
    if isinstance(part, oi.Text):
        return Block(type="text", text=part.text)
    if part.url is not None:
        return Block(type="image", source={"type": "url", "url": part.url})
    return Block(type="image", source={"type": "base64", "media_type": part.mime or "",
                                       "data": part.data or ""})


def _tools(request: ChatRequest, body: MessagesRequest) -> str | None:
    """Tools and tool_choice into ``body``; returns the forced JSON tool's name if any."""
    mode = oi.json_mode(request)
    if mode is not None:
        if request.tools:
            raise InvalidRequest("response_format json_object or json_schema cannot be combined "
                                 "with tools on the anthropic provider.", param="response_format")
        schema = mode.schema or {"type": "object"}
        if schema.get("type") != "object":
            raise InvalidRequest("On the anthropic provider a json_schema must describe an "
                                 "object.", param="response_format.json_schema.schema")
        tool = ToolParam(name=mode.name, input_schema=schema,
                         description=mode.description or "Answer with this tool: its input is "
                         "the JSON answer.")
        body["tools"] = [tool]
        body["tool_choice"] = {"type": "tool", "name": mode.name}
        return mode.name
    if not request.tools:
        return None
    tools: list[ToolParam] = []
    for function in oi.functions(request):
        tool = ToolParam(name=function.name, input_schema=function.parameters)
        if function.description:
            tool["description"] = function.description
        tools.append(tool)
    body["tools"] = tools
    choice = _tool_choice(oi.tool_choice(request))
    if request.raw.get("parallel_tool_calls") is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        body["tool_choice"] = choice
    return None


_CHOICES: dict[str, ToolChoice] = {"auto": {"type": "auto"}, "none": {"type": "none"},
                                   "required": {"type": "any"}}


def _tool_choice(choice: str | None) -> ToolChoice | None:
    if choice is None:
        return None
    if choice.startswith("function:"):
        return {"type": "tool", "name": choice.removeprefix("function:")}
    return _CHOICES[choice]


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
        if block.type == "text" and block.text:
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
            return [self._chunks.finish(finish_reason(delta.delta.stop_reason,
                                                      self._json_tool))]
        if kind == "message_stop":
            self.done = True
            return [self._chunks.usage(counts(self._usage))]
        if kind == "error":
            detail = ErrorBody.model_validate(parsed).error
            raise from_upstream_status(ERROR_STATUS.get(detail.type, 500),
                                       detail.message or detail.type)
        return []  # ping, content_block_stop, and event types added later

    def _block_start(self, start: ContentBlockStart) -> list[StreamChunk]:
        block = start.content_block
        if block.type == "text" and block.text:
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
        if delta.type == "text_delta" and delta.text:
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
        body, json_tool = to_vendor(request, model, self._config, stream=stream)
        return orjson.dumps(body), json_tool

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        content, json_tool = self._body(request, model, stream=False)
        return from_vendor(await self._http.post_json(self._url, content), json_tool)

    async def stream(self, request: ChatRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        content, json_tool = self._body(request, model, stream=True)
        translator = AnthropicStream(model, json_tool)
        # Read on to the end of the body after message_stop, so the connection can be reused.
        async for event in self._http.stream_events(self._url, content):
            if not translator.done:
                for chunk in translator.feed(event.event, event.data):
                    yield chunk
        if not translator.done:
            raise UpstreamError("The upstream closed the stream before it was done.")
