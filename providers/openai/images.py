"""OpenAI's image endpoints passed through (pure parts): the generation body with the upstream
model id, the edit's multipart rebuilt around it, and the answer checked and its usage read;
the answer's bytes go back unchanged."""

from __future__ import annotations

from typing import Any

import orjson

from providers import multipart
from providers.openai.answer import listing
from wire.images import ImageEditRequest, ImageGenerationRequest
from wire.openai import ChatResult, Usage


def generation_body(request: ImageGenerationRequest, model: str) -> bytes:
    return orjson.dumps({**request.raw, "model": model})


def edit_body(request: ImageEditRequest, model: str) -> tuple[bytes, str]:
    """The multipart body of an edit and its content type: the client's fields (the model
    replaced) and files, as they came."""
    fields = [(name, str(value)) for name, value in request.raw.items() if name != "model"]
    return multipart.encode([("model", model), *fields], request.files)


def image_usage(data: Any) -> Usage | None:
    """gpt-image-1's ``usage`` (``input_tokens``, ``output_tokens``); None when absent."""
    if not isinstance(data, dict):
        return None
    given, made = data.get("input_tokens"), data.get("output_tokens", 0)
    if isinstance(given, int) and isinstance(made, int):
        return Usage(given, made)
    return None


def event_usage(data: bytes) -> Usage | None:
    """The usage in one streamed image event (``image_generation.completed``,
    ``image_edit.completed``); None in any other."""
    if b'.completed"' not in data:
        return None  # (a partial image: megabytes of base64 not worth parsing)
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not str(parsed.get("type", "")).endswith(".completed"):
        return None
    return image_usage(parsed.get("usage"))


def images_from_upstream(body: bytes) -> ChatResult:
    """Check an answer is OpenAI's images JSON and read its usage; the bytes pass unchanged."""
    parsed = listing(body, "data", "The upstream's answer has no 'data' list of images.")
    return ChatResult(body=body, usage=image_usage(parsed.get("usage")))
