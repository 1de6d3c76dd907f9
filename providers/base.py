"""The provider protocols and the deployment settings every provider shares.

A provider knows one backend: it turns an OpenAI request (``wire.openai``, ``wire.audio``, ...)
into the backend's call and the backend's answer back into OpenAI's wire format. It knows
nothing of keys, limits, caches or metrics. Every provider is a ``Provider`` (its settings'
class, built from them); what it can answer is a capability Protocol below (``ChatProvider``,
``EmbeddingProvider``, ``Transcriber``, ...), checked where it is used (gateway/routing/router.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from providers.http import HTTPClient, Timeout
from wire.audio import AudioAnswer, AudioStream, TranscriptionRequest
from wire.images import ImageEditRequest, ImageGenerationRequest
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest, StreamChunk
from wire.tools import DetectAnswer, DetectRequest, OCRRequest, OCRResult


class DeploymentConfig(BaseModel):
    """Keys every deployment in models.yaml has. Each provider subclasses it with a
    ``provider: Literal[...]`` tag and its own keys; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    provider: str

    @model_validator(mode="before")
    @classmethod
    def _responses_only_where_known(cls, data: Any) -> Any:
        if isinstance(data, dict) and "responses" in data and "responses" not in cls.model_fields:
            raise ValueError("'responses' (native: the upstream speaks the Responses API) is a "
                             "setting of the openai and openai-compatible providers only")
        return data
    model: str | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    # Timeouts: connecting; a whole non-stream answer; a stream's wait for each next bytes
    # (its first chunk included), which defaults to timeout_s. A timeout is a 504, retried.
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)
    # Retries of an upstream 429, 5xx, timeout or refused connection (routing/reliability.py):
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
    # Governance (gateway/access/spend.py, gateway/guardrails/): prices in USD per million
    # tokens, requests in flight at most, the context window for conversation truncation,
    # and guardrails replacing the global list (validated by gateway/config.py).
    input_cost_per_mtok: float | None = Field(default=None, ge=0)
    output_cost_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_cost_per_mtok: float | None = Field(default=None, ge=0)
    max_parallel: PositiveInt | None = None
    context_window: PositiveInt | None = None
    guardrails: tuple[dict[str, Any], ...] | None = None

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


class Provider(Protocol):
    """What every backend is: the class of its models.yaml settings, and built from them and
    the gateway's HTTP client. The providers table (providers/__init__.py) holds these."""

    Config: ClassVar[type[DeploymentConfig]]

    def __init__(self, config: Any, http: HTTPClient) -> None: ...


@runtime_checkable
class ChatProvider(Protocol):
    """A capability (of most backends): ``/v1/chat/completions``, and ``/v1/responses``
    translated to chat. ``model`` is the upstream model id."""

    async def chat(self, request: ChatRequest, model: str) -> ChatResult: ...

    def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[StreamChunk, None]: ...


@runtime_checkable
class EmbeddingProvider(Protocol):
    """An optional capability: ``/v1/embeddings``."""

    async def embed(self, request: EmbeddingRequest, model: str) -> ChatResult: ...


@runtime_checkable
class ImageGenerator(Protocol):
    """An optional capability: ``/v1/images/generations`` and ``/v1/images/edits``. The
    answer is OpenAI's images JSON (``{"created", "data": [...]}``); its usage, when the
    backend gave one, counts input tokens as prompt and output tokens as completion."""

    async def generate_image(self, request: ImageGenerationRequest, model: str
                             ) -> ChatResult: ...

    async def edit_image(self, request: ImageEditRequest, model: str) -> ChatResult: ...


@runtime_checkable
class ImageStreamer(Protocol):
    """An optional capability: ``stream: true`` on the image endpoints (gpt-image-1's partial
    images). The upstream's server-sent events pass as they arrive, as raw bytes; a chunk
    carries the usage of a ``*.completed`` event it holds."""

    def stream_image(self, request: ImageGenerationRequest | ImageEditRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]: ...


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


@runtime_checkable
class Transcriber(Protocol):
    """An optional capability: ``/v1/audio/transcriptions`` and ``/v1/audio/translations``
    (``request.task``). A whole answer, or with ``request.stream`` the opened event stream."""

    async def transcribe(self, request: TranscriptionRequest, model: str
                         ) -> AudioAnswer | AudioStream: ...


@runtime_checkable
class OCRProvider(Protocol):
    """An optional capability: ``/v1/tools/ocr`` (a PDF or an image read as text)."""

    async def ocr(self, request: OCRRequest, model: str) -> OCRResult: ...


@runtime_checkable
class Detector(Protocol):
    """An optional capability: ``/v1/tools/detect`` (objects found in an image)."""

    async def detect(self, request: DetectRequest, model: str) -> DetectAnswer: ...


@runtime_checkable
class NativeResponder(Protocol):
    """An optional capability: ``/v1/responses`` passed to an upstream that speaks OpenAI's
    Responses API (``native_responses``: the deployment says it does). ``body`` is the
    Responses body to send (the model is replaced); the whole answer is the upstream's
    ``response`` JSON, a stream its typed events as they arrive, as bytes in ``sse``; a
    chunk's ``data`` also holds the JSON of an event that carries the whole ``response``
    (``response.created``, ...) or ends the stream (``response.completed`` / ``.incomplete`` /
    ``.failed``, with the usage, or ``error``)."""

    native_responses: bool

    async def respond(self, body: dict[str, Any], model: str) -> ChatResult: ...

    def stream_response(self, body: dict[str, Any], model: str
                        ) -> AsyncGenerator[StreamChunk, None]: ...
