"""Gemini embeddings behind OpenAI's ``/v1/embeddings``: one text goes to ``embedContent``,
a list to ``batchEmbedContents``. Pure translation, used by ``providers.gemini.provider``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from providers import openai_input as oi
from providers.gemini.wire import (
    BatchEmbedContentsRequest,
    BatchEmbedContentsResponse,
    EmbedContentRequest,
    EmbedContentResponse,
)
from providers.openai_shapes import embedding_list
from wire.errors import UpstreamError
from wire.openai import ChatResult, EmbeddingRequest

PROVIDER = "gemini"


def model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def embed_method(request: EmbeddingRequest) -> str:
    return "embedContent" if isinstance(request.input, str) else "batchEmbedContents"


def to_vendor_embeddings(request: EmbeddingRequest, model: str
                         ) -> EmbedContentRequest | BatchEmbedContentsRequest:
    """One text → ``embedContent``; a list → ``batchEmbedContents``."""
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not all(isinstance(text, str) for text in texts):
        raise oi.unsupported("input", PROVIDER, "Token ids as embeddings input")
    requests: list[EmbedContentRequest] = []
    for text in texts:
        item: EmbedContentRequest = {"model": model_path(model),
                                     "content": {"parts": [{"text": str(text)}]}}
        if request.dimensions is not None:
            item["outputDimensionality"] = request.dimensions
        requests.append(item)
    if isinstance(request.input, str):
        del requests[0]["model"]
        return requests[0]
    return {"requests": requests}


def from_vendor_embeddings(parsed: Any, request: EmbeddingRequest, model: str) -> ChatResult:
    try:
        if isinstance(request.input, str):
            vectors = [EmbedContentResponse.model_validate(parsed).embedding.values]
            usage = None
        else:
            batch = BatchEmbedContentsResponse.model_validate(parsed)
            vectors, usage = [e.values for e in batch.embeddings], batch.usageMetadata
    except ValidationError as exc:
        raise UpstreamError("The upstream's answer is not a Gemini embedding.") from exc
    return embedding_list(model, vectors, usage.promptTokenCount if usage else None,
                         encoding_format=request.encoding_format)


