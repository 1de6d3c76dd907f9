"""OpenAI's wire format as the gateway reads and writes it: request bodies validated for shape,
and answers carried as ready-to-send OpenAI JSON bytes (``ChatResult.body``,
``StreamChunk.data``), so that an upstream which already speaks OpenAI passes through without
being decoded and encoded again; the few facts the gateway needs (usage) ride alongside.

The ground floor: both ``gateway`` and ``providers`` import it; it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from wire.sse import SSEDecoder


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = False


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class APIRequest(BaseModel):
    """A request body validated for shape, with the original dict kept for pass-through."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str = Field(min_length=1)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Self:
        """Validate ``raw``; raises pydantic's ValidationError."""
        request = cls.model_validate(raw)
        # The body as sent is kept in pydantic's own dict of private values, without a
        # declared PrivateAttr: a declared one makes every validation set up the private
        # values in Python (~11 us of a chat body's ~16).
        private = request.__pydantic_private__
        if private is None:
            object.__setattr__(request, "__pydantic_private__", {"_raw": raw})
        else:
            private["_raw"] = raw
        return request

    @property
    def raw(self) -> dict[str, Any]:
        """The body exactly as the client sent it, unknown fields included."""
        private = self.__pydantic_private__
        raw: dict[str, Any] | None = private.get("_raw") if private else None
        return raw if raw is not None else self.model_dump(exclude_unset=True)


class ChatRequest(APIRequest):
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class EmbeddingRequest(APIRequest):
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, those the vendor read from its prompt cache


@dataclass(slots=True, frozen=True)
class ChatResult:
    """A whole answer: OpenAI JSON ready to send, and its usage when the backend gave one."""

    body: bytes
    usage: Usage | None = None


@dataclass(slots=True)  # (not frozen: one is made per relayed read; frozen's __init__ is 1 us)
class StreamChunk:
    """One ``chat.completion.chunk`` as JSON bytes.

    ``usage_only`` marks the final chunk that carries only usage: the gateway always asks
    the backend for usage and drops this chunk when the client did not ask for it.
    ``sse``, when set, is instead one or more chunks already encoded as server-sent events
    (``data: {...}\n\n`` each, none with usage), relayed as they are: an OpenAI-speaking
    upstream's bytes pass through without being split, parsed and encoded again (``data`` is
    then empty).
    """

    data: bytes
    usage: Usage | None = None
    usage_only: bool = False
    sse: bytes = b""

    @property
    def event(self) -> bytes:
        """The chunk (or chunks) as server-sent events, ready to send."""
        return self.sse or b"data: " + self.data + b"\n\n"

    def split(self) -> list[StreamChunk]:
        """The chunk as single chunks, each with its JSON in ``data``: itself, or the chunks
        batched in ``sse`` (for the wrappers that read each chunk: cache, guardrails'
        restore, conversations)."""
        if not self.sse:
            return [self]
        return [StreamChunk(event.data) for event in SSEDecoder().feed(self.sse)]
