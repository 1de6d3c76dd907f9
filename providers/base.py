"""The provider protocol and the typed models every provider shares.

A provider knows one backend: it turns an OpenAI chat request into the backend's call and the
backend's answer back into OpenAI's wire format. It knows nothing of keys, limits, caches or
metrics. Answers travel as ready-to-send OpenAI JSON bytes (``ChatResult.body``,
``StreamChunk.data``) so that an upstream which already speaks OpenAI passes through without
being decoded and encoded again; the few facts the gateway needs (usage) ride alongside.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr

from providers.http import HTTPClient, Timeout


class DeploymentConfig(BaseModel):
    """Keys every deployment in models.yaml has. Each provider subclasses it with a
    ``provider: Literal[...]`` tag and its own keys; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    provider: str
    model: str | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    # Timeouts: connecting; a whole non-stream answer; a stream's wait for each next bytes
    # (its first chunk included), which defaults to timeout_s. A timeout is a 504, retried.
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)
    # Retries of an upstream 429, 5xx, timeout or refused connection (gateway/reliability.py):
    # exponential backoff with full jitter from retry_backoff_s, each wait at most
    # retry_backoff_max_s; an upstream Retry-After up to retry_max_wait_s is waited out, a
    # longer one moves on to another deployment or the fallbacks.
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.5, ge=0)
    retry_backoff_max_s: float = Field(default=8.0, ge=0)
    retry_max_wait_s: float = Field(default=10.0, ge=0)
    fallbacks: tuple[str, ...] = ()
    # Circuit breaker: after cooldown_failures failures in a row (0: never) the deployment
    # is skipped for cooldown_s, then one probe request decides whether it is back.
    cooldown_failures: int = Field(default=3, ge=0)
    cooldown_s: float = Field(default=30.0, gt=0)

    def timeouts(self, *, stream: bool) -> Timeout:
        """The upstream HTTP timeouts of one call: a non-stream answer must be whole within
        ``timeout_s``; a stream has no total, only the longest wait between chunks."""
        if stream:
            return Timeout(connect=self.connect_timeout_s, total=None,
                           idle=self.stream_idle_timeout_s or self.timeout_s)
        return Timeout(connect=self.connect_timeout_s, total=self.timeout_s,
                       idle=self.timeout_s)

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.name

    def upstream_model(self, requested: str) -> str:
        """The model id sent upstream for the name a client asked for.

        For a wildcard name the part matched by ``*`` replaces the ``*`` in ``model``
        (which defaults to ``*``): ``openai/*`` turns ``openai/gpt-4.1`` into ``gpt-4.1``.
        """
        if not self.is_wildcard:
            return self.model or self.name
        prefix, _, suffix = self.name.partition("*")
        captured = requested[len(prefix): len(requested) - len(suffix)]
        return (self.model or "*").replace("*", captured)


class RemoteDeploymentConfig(DeploymentConfig):
    """A deployment reached over HTTP."""

    api_base: str
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.api_base.rstrip("/")


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
    # (a default_factory here would cost a signature inspection on every request)
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Self:
        """Validate ``raw``; raises pydantic's ValidationError."""
        request = cls.model_validate(raw)
        request._raw = raw
        return request

    @property
    def raw(self) -> dict[str, Any]:
        """The body exactly as the client sent it, unknown fields included."""
        return self._raw if self._raw is not None else self.model_dump(exclude_unset=True)


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


@dataclass(slots=True, frozen=True)
class ChatResult:
    """A whole answer: OpenAI JSON ready to send, and its usage when the backend gave one."""

    body: bytes
    usage: Usage | None = None


@dataclass(slots=True, frozen=True)
class StreamChunk:
    """One ``chat.completion.chunk`` as JSON bytes.

    ``usage_only`` marks the final chunk that carries only usage: the gateway always asks
    the backend for usage and drops this chunk when the client did not ask for it.
    """

    data: bytes
    usage: Usage | None = None
    usage_only: bool = False


@runtime_checkable
class Provider(Protocol):
    """What every chat backend implements. ``model`` is the upstream model id."""

    Config: ClassVar[type[DeploymentConfig]]

    def __init__(self, config: Any, http: HTTPClient) -> None: ...

    async def chat(self, request: ChatRequest, model: str) -> ChatResult: ...

    def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[StreamChunk, None]: ...


@runtime_checkable
class EmbeddingProvider(Protocol):
    """An optional capability: ``/v1/embeddings``."""

    async def embed(self, request: EmbeddingRequest, model: str) -> ChatResult: ...


@runtime_checkable
class ManagedProvider(Protocol):
    """An optional capability: a provider with resources to set up and release (a loaded
    model, a worker thread). The gateway calls ``start`` once at start-up (a provider may load
    lazily instead and return at once) and ``aclose`` at shut-down."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class TokenCounter(Protocol):
    """An optional capability: count a request's prompt tokens with the backend's own
    tokenizer (a loaded local model). Returns None when the count is not available now."""

    def count_prompt_tokens(self, request: ChatRequest) -> int | None: ...
