"""The shapes of OpenAI's answers as the gateway sends them: the error body, models, chat
completions, embeddings, images, transcriptions and the Responses API's objects.

Answers go out as bytes (``ChatResult.body``), not through these models; the models are the
answers' public schema: the OpenAPI document (gateway/docs/) is generated from them, and the
tests validate real answers against that document. Only what OpenAI's SDKs read is required;
vendors' extra fields are allowed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Open(BaseModel):
    """An answer object: the fields named here, and any others an upstream adds."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    """Contract section 5: every error, whatever its status."""

    model_config = ConfigDict(extra="forbid")
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


# -- models -------------------------------------------------------------------------------------


class ModelCard(_Open):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Open):
    object: Literal["list"]
    data: list[ModelCard]


# -- chat and embeddings ------------------------------------------------------------------------


class CompletionUsage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatChoice(_Open):
    index: int
    message: dict[str, Any]
    finish_reason: str | None


class ChatCompletion(_Open):
    """``POST /v1/chat/completions`` without ``stream`` (with it: ``chat.completion.chunk``
    events, then ``data: [DONE]``)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: CompletionUsage | None = None


class Embedding(_Open):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # str: encoding_format "base64"


class EmbeddingUsage(_Open):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(_Open):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage | None = None


# -- images and audio ---------------------------------------------------------------------------


class ImageData(_Open):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(_Open):
    created: int
    data: list[ImageData]


class Transcription(_Open):
    """``response_format`` json (``{"text"}``), verbose_json (with ``language``, ``duration``,
    ``segments``, ``words``) or diarized_json (``segments`` with a ``speaker`` each)."""

    text: str


# -- the Responses API --------------------------------------------------------------------------


class ResponseObject(_Open):
    """A ``response`` (``POST /v1/responses``, ``GET /v1/responses/{id}``); streamed, the
    ``response.*`` events in OpenAI's order."""

    id: str
    object: Literal["response"]
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ResponseDeleted(_Open):
    id: str
    object: Literal["response"]
    deleted: bool


class InputItemList(_Open):
    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool
