"""OpenAI's ``/v1/images/generations`` and ``/v1/images/edits`` on Gemini's native image output
(pure translation, used by ``providers.gemini.provider``).

One image is one ``generateContent`` call with ``responseModalities: ["TEXT", "IMAGE"]``; ``n``
images are ``n`` calls made at once (the image models answer one image per call and refuse
``candidateCount`` over 1: "Multiple candidates is not enabled"). ``size`` ``WxH`` becomes
``imageConfig.aspectRatio`` (the supported ratio within 5% of W/H) and, past 1536 pixels on the
long side, ``imageSize`` 2K or 4K; a Gemini ratio such as ``16:9`` is taken as it is. An edit's
images go as ``inlineData`` parts after the prompt. The image comes back as base64 inline data,
which is OpenAI's ``b64_json``: Gemini has no image URLs, and the gateway hosts no files, so
``response_format: url`` is a 400. ``quality``, ``style`` and gpt-image-1's own fields have no
Gemini counterpart and are ignored; a ``mask`` is a 400 (Gemini edits follow the prompt).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from providers.gemini.wire import (
    GenerateContentRequest,
    GenerateContentResponse,
    ImageConfig,
    Part,
    UsageMetadata,
)
from wire.errors import InvalidRequest, UpstreamError
from wire.openai import ChatResult, Usage
from wire.uploads import UploadedFile

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
MAX_IMAGES = 10  # OpenAI's own limit on n
_RATIO_TOLERANCE = 0.05
_BLOCKED = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT",
                      "RECITATION", "IMAGE_RECITATION", "BLOCKLIST", "SPII"})
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


def image_count(n: int | None) -> int:
    """How many calls: ``n`` (1 when absent), at most ``MAX_IMAGES``."""
    count = 1 if n is None else n
    if not 1 <= count <= MAX_IMAGES:
        raise InvalidRequest(f"Invalid 'n': {n}; it must be between 1 and {MAX_IMAGES}.",
                             param="n")
    return count


def check_response_format(response_format: str | None) -> None:
    if response_format == "url":
        raise InvalidRequest("Gemini models return images inline, and this gateway hosts no "
                             "files: ask for response_format 'b64_json'.",
                             param="response_format")


def image_config(size: str | None) -> ImageConfig:
    """OpenAI's ``size`` as Gemini's ``imageConfig``; empty for none or ``auto``."""
    if size is None or size == "auto":
        return {}
    if size in ASPECT_RATIOS:
        return {"aspectRatio": size}
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise InvalidRequest(f"Invalid 'size': '{size}'; give WIDTHxHEIGHT (such as 1024x1024), "
                             f"'auto' or one of {', '.join(ASPECT_RATIOS)}.", param="size")
    w, h = int(width), int(height)
    config: ImageConfig = {"aspectRatio": _aspect_ratio(w, h, size)}
    longest = max(w, h)
    if longest > 4096:
        raise InvalidRequest(f"Invalid 'size': '{size}'; Gemini makes images of at most 4096 "
                             "pixels a side.", param="size")
    if longest > 1536:
        config["imageSize"] = "2K" if longest <= 2560 else "4K"
    return config


def _aspect_ratio(w: int, h: int, size: str) -> str:
    def distance(ratio: str) -> float:
        rw, _, rh = ratio.partition(":")
        return abs(math.log((w / h) / (int(rw) / int(rh))))

    best = min(ASPECT_RATIOS, key=distance)
    if distance(best) > math.log1p(_RATIO_TOLERANCE):
        raise InvalidRequest(f"Invalid 'size': '{size}'; Gemini makes images in the aspect "
                             f"ratios {', '.join(ASPECT_RATIOS)}.", param="size")
    return best


def image_mime(upload: UploadedFile) -> str:
    """The image type of an upload, read from its first bytes (not from what the client
    claimed): PNG, JPEG, WEBP, HEIC or HEIF, else a 400."""
    data = upload.data
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"heim", b"heis"):
        return "image/heic"
    if data[4:8] == b"ftyp" and data[8:12] in (b"mif1", b"msf1", b"heif"):
        return "image/heif"
    raise InvalidRequest(f"The file '{upload.filename}' in '{upload.field}' is not a PNG, JPEG, "
                         "WEBP or HEIC image.", param=upload.field.removesuffix("[]"))


def generation_request(prompt: str, size: str | None,
                       images: Sequence[UploadedFile] = ()) -> GenerateContentRequest:
    """One ``generateContent`` call that makes one image: the prompt, then any input images
    (an edit) as inline data."""
    parts = [Part(text=prompt)]
    parts += [Part(inlineData={"mimeType": image_mime(image),
                               "data": base64.b64encode(image.data).decode()})
              for image in images]
    body: GenerateContentRequest = {"contents": [{"role": "user", "parts": parts}],
                                    "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
    config = image_config(size)
    if config:
        body["generationConfig"]["imageConfig"] = config
    return body


def check_mask(mask: UploadedFile | None) -> None:
    if mask is not None:
        raise InvalidRequest("Gemini models take no mask: describe the change in the prompt.",
                             param="mask")


def _image_of(parsed: Any) -> tuple[str, str, UsageMetadata | None]:
    """The first finished image of one answer (base64, MIME type) and its usage."""
    try:
        answer = GenerateContentResponse.model_validate(parsed)
    except ValidationError as exc:
        raise UpstreamError("The upstream's answer is not a Gemini response.") from exc
    if answer.promptFeedback and answer.promptFeedback.blockReason:
        raise InvalidRequest(f"Gemini refused the prompt ({answer.promptFeedback.blockReason}).",
                             param="prompt", code="content_policy_violation")
    texts: list[str] = []
    for candidate in answer.candidates:
        for part in candidate.content.parts if candidate.content else []:
            if part.thought:
                continue
            if part.inlineData and part.inlineData.data and part.inlineData.mimeType.startswith(
                    "image/"):
                return part.inlineData.data, part.inlineData.mimeType, answer.usageMetadata
            if part.text:
                texts.append(part.text)
        if candidate.finishReason in _BLOCKED:
            raise InvalidRequest(f"Gemini made no image: blocked ({candidate.finishReason}).",
                                 param="prompt", code="content_policy_violation")
    said = f": {' '.join(texts)[:200]}" if texts else ""
    raise UpstreamError(f"Gemini answered with no image{said}")


def images_answer(answers: Sequence[Any], created: int) -> ChatResult:
    """OpenAI's images answer from the calls' parsed answers, one image each, with the usage
    summed as gpt-image-1 reports it."""
    data: list[dict[str, str]] = []
    formats: list[str] = []
    prompt = text = image = output = 0
    for parsed in answers:
        b64, mime, usage = _image_of(parsed)
        data.append({"b64_json": b64})
        formats.append(mime)
        if usage is not None:
            prompt += usage.promptTokenCount
            output += usage.candidatesTokenCount + usage.thoughtsTokenCount
            split = {d.modality: d.tokenCount for d in usage.promptTokensDetails}
            text += split.get("TEXT", usage.promptTokenCount if not split else 0)
            image += split.get("IMAGE", 0)
    body: dict[str, Any] = {"created": created, "data": data}
    if formats and formats[0] in _FORMATS:
        body["output_format"] = _FORMATS[formats[0]]
    body["usage"] = {"input_tokens": prompt, "output_tokens": output,
                     "total_tokens": prompt + output,
                     "input_tokens_details": {"text_tokens": text, "image_tokens": image}}
    return ChatResult(orjson.dumps(body), Usage(prompt, output))
