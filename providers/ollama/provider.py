"""Ollama's native API (``/api/chat``, ``/api/embed``) behind OpenAI's chat completions and
embeddings.

Pure translation: ``to_vendor``, ``from_vendor``, ``OllamaStream`` (JSON lines → chunks),
``from_vendor_embeddings`` and ``error_from``; the provider class only moves bytes. Ollama
gives tool calls no id: the id is derived from the request and the call
(``openai_input.CallIds``), so a stream and a whole answer agree. Ollama has no
``parallel_tool_calls`` switch: when a request turns it off, the answer keeps its first call.
Ollama takes images inline only: an http(s) image URL is a 400 (the gateway does not fetch
URLs a client names).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, ValidationError

from providers import openai_input as oi
from providers.base import DeploymentConfig, RemoteDeploymentConfig
from providers.http import HTTPClient
from providers.ollama.wire import (
    ChatMessage,
    ChatRequestBody,
    ChatResponse,
    EmbedRequestBody,
    EmbedResponse,
    ErrorBody,
    ToolCall,
)
from providers.openai_shapes import (
    Choice,
    ChunkWriter,
    TokenCounts,
    completion,
    embedding_list,
    tool_call,
)
from providers.vendor_http import VendorHTTP, plain_message, read_error_body
from wire.errors import GatewayError, InvalidRequest, UpstreamError, from_upstream_status
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest, StreamChunk

PROVIDER = "ollama"


class OllamaConfig(RemoteDeploymentConfig):
    provider: Literal["ollama"]
    api_base: str = "http://127.0.0.1:11434"
    keep_alive: str | None = None  # how long Ollama keeps the model loaded ("5m", "-1")
    # Ollama options sent with every request (num_ctx, top_k...); the request's own win.
    options: dict[str, Any] = Field(default_factory=dict)


def finish_reason(done_reason: str | None, called_tools: bool) -> str:
    if done_reason == "length":
        return "length"
    return "tool_calls" if called_tools else "stop"


def to_vendor(request: ChatRequest, model: str, config: OllamaConfig, *,
              stream: bool) -> ChatRequestBody:
    oi.reject_unsupported(request, PROVIDER, ("n",))
    body: ChatRequestBody = {"model": model, "messages": _messages(request), "stream": stream}
    choice = oi.tool_choice(request)
    if choice in ("required",) or (choice or "").startswith("function:"):
        raise oi.unsupported("tool_choice", PROVIDER, f"tool_choice {request.tool_choice!r}")
    functions = oi.functions(request)
    if functions and choice != "none":  # "none": the model sees no tools at all
        body["tools"] = [{"type": "function", "function": {
            "name": f.name, "description": f.description or "", "parameters": f.parameters}}
            for f in functions]
    mode = oi.json_mode(request)
    if mode is not None:
        body["format"] = mode.schema if mode.schema is not None else "json"
    options = {**config.options, **_options(request)}
    if options:
        body["options"] = options
    if config.keep_alive is not None:
        body["keep_alive"] = config.keep_alive
    return body


def _options(request: ChatRequest) -> dict[str, Any]:
    options = {"num_predict": oi.max_tokens(request), "temperature": request.temperature,
               "top_p": request.top_p, "seed": request.seed, "stop": oi.stop_sequences(request),
               "presence_penalty": request.presence_penalty,
               "frequency_penalty": request.frequency_penalty}
    return {key: value for key, value in options.items() if value is not None}


def _messages(request: ChatRequest) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    names = oi.tool_names(request.messages)
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role == "function":
            raise oi.unsupported(f"{where}.role", PROVIDER, "The legacy 'function' role")
        if message.role in ("system", "developer"):
            messages.append({"role": "system",
                             "content": oi.text_of(message, f"{where}.content")})
        elif message.role == "tool":
            messages.append({"role": "tool", "content": oi.text_of(message, f"{where}.content"),
                             "tool_name": oi.tool_result_name(message, names, where)})
        elif message.role == "assistant":
            out: ChatMessage = {"role": "assistant",
                                "content": oi.text_of(message, f"{where}.content")}
            calls = oi.tool_calls(message, where)
            if calls:
                out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}}
                                     for c in calls]
            messages.append(out)
        else:
            messages.append(_user_message(message, f"{where}.content"))
    return messages


def _user_message(message: Any, where: str) -> ChatMessage:
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(oi.content_parts(message, where)):
        if isinstance(part, oi.Text):
            texts.append(part.text)
        elif part.data is None:
            raise InvalidRequest("The ollama provider takes images as data: URLs only (the "
                                 "gateway does not fetch image URLs).",
                                 param=f"{where}[{j}].image_url.url")
        else:
            images.append(part.data)
    out: ChatMessage = {"role": "user", "content": "\n".join(texts)}
    if images:
        out["images"] = images
    return out


def _call(call: ToolCall, position: int, ids: oi.CallIds) -> dict[str, Any]:
    arguments = call.function.arguments
    call_id = call.id or ids.make(
        call.function.name, orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS).decode(),
        position)
    return tool_call(call_id, call.function.name, orjson.dumps(arguments).decode())


def counts(answer: ChatResponse) -> TokenCounts:
    return TokenCounts(answer.prompt_eval_count or 0, answer.eval_count or 0)


def _answer(line: Any) -> ChatResponse:
    if isinstance(line, dict) and "error" in line:
        raise UpstreamError(f"The upstream failed: {line['error']}")
    try:
        return ChatResponse.model_validate(line)
    except ValidationError as exc:
        raise UpstreamError("The upstream's answer is not an Ollama chat response.") from exc


def from_vendor(parsed: Any, ids: oi.CallIds | None = None) -> ChatResult:
    """A whole answer; ``ids`` (from the request) names the tool calls."""
    answer = _answer(parsed)
    ids = ids or oi.CallIds()
    wire_calls = answer.message.tool_calls or []
    calls = [_call(call, i, ids) for i, call in enumerate(wire_calls[:1] if ids.first_only
                                                          else wire_calls)]
    choice = Choice(answer.message.content if answer.message.content or not calls else None,
                    finish_reason(answer.done_reason, bool(calls)), calls or None)
    return completion(answer.model, [choice], counts(answer))


class OllamaStream:
    """One stream's JSON lines in, OpenAI chunks out (pure: no I/O). Done at ``done: true``,
    which also gives the usage chunk."""

    def __init__(self, model: str, ids: oi.CallIds | None = None) -> None:
        self._chunks = ChunkWriter(model)
        self._ids = ids or oi.CallIds()
        self._calls = 0
        self.done = False

    def feed(self, line: bytes) -> list[StreamChunk]:
        try:
            answer = _answer(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The upstream sent a stream line that is not JSON.") from exc
        out: list[StreamChunk] = []
        if answer.message.content:
            out.append(self._chunks.content(answer.message.content))
        for call in answer.message.tool_calls or []:
            if self._calls and self._ids.first_only:
                break
            wire = _call(call, self._calls, self._ids)
            out.append(self._chunks.tool_call(self._calls, wire["id"], wire["function"]["name"],
                                              wire["function"]["arguments"]))
            self._calls += 1
        if answer.done:
            self.done = True
            out.append(self._chunks.finish(finish_reason(answer.done_reason, self._calls > 0)))
            out.append(self._chunks.usage(counts(answer)))
        return out


def from_vendor_embeddings(parsed: Any, request: EmbeddingRequest, model: str) -> ChatResult:
    try:
        answer = EmbedResponse.model_validate(parsed)
    except ValidationError as exc:
        raise UpstreamError("The upstream's answer is not an Ollama embedding.") from exc
    return embedding_list(model, answer.embeddings, answer.prompt_eval_count,
                          encoding_format=request.encoding_format)


def to_vendor_embeddings(request: EmbeddingRequest, model: str) -> EmbedRequestBody:
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not all(isinstance(text, str) for text in texts):
        raise oi.unsupported("input", PROVIDER, "Token ids as embeddings input")
    body: EmbedRequestBody = {"model": model, "input": request.input}  # type: ignore[typeddict-item]
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def error_from(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """Ollama's ``{"error": "..."}`` answer, by HTTP status."""
    try:
        message = ErrorBody.model_validate(read_error_body(body)).error
    except ValidationError:
        message = plain_message(status, body)
    return from_upstream_status(status, message, retry_after=headers.get("retry-after"))


class OllamaProvider:
    Config: ClassVar[type[DeploymentConfig]] = OllamaConfig

    def __init__(self, config: OllamaConfig, http: HTTPClient) -> None:
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = VendorHTTP(http, config, headers, error_from)
        self._config = config
        self._chat_url = f"{config.base_url}/api/chat"
        self._embed_url = f"{config.base_url}/api/embed"

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        content = orjson.dumps(to_vendor(request, model, self._config, stream=False))
        return from_vendor(await self._http.post_json(self._chat_url, content),
                           oi.CallIds(request))

    async def stream(self, request: ChatRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        content = orjson.dumps(to_vendor(request, model, self._config, stream=True))
        translator = OllamaStream(model, oi.CallIds(request))
        async with self._http.stream_lines(self._chat_url, content) as lines:
            async for line in lines:
                if not translator.done:
                    for chunk in translator.feed(line):
                        yield chunk
        if not translator.done:
            raise UpstreamError("The upstream closed the stream before it was done.")

    async def embed(self, request: EmbeddingRequest, model: str) -> ChatResult:
        body = to_vendor_embeddings(request, model)
        parsed = await self._http.post_json(self._embed_url, orjson.dumps(body))
        return from_vendor_embeddings(parsed, request, model)
