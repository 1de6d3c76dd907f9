"""Gemini's native image output in the fake Gemini upstream: a ``generateContent`` call whose
``generationConfig.responseModalities`` includes ``IMAGE`` answers with an ``inlineData``
PNG part (base64) after a short text part, as the Gemini image models do.
``tests/test_fake_gemini_images.py`` checks it with the official ``google-genai`` SDK.

It checks what the real API checks: ``imageConfig.aspectRatio`` among the supported ratios and
``imageSize`` 1K, 2K or 4K (else 400 INVALID_ARGUMENT), input images as inline data of an
image type, and no ``candidateCount`` over 1 ("Multiple candidates is not enabled for
models/...", as google-gemini/gemini-cli#10370 quotes the image models).

The image is 1024 pixels on its long side (2048 for 2K, 4096 for 4K) in the
ratio asked, or the first input image's proportions, drawn at 1/16 (``tests.fakes.png``) in a
colour picked from the prompt text. Usage: 258 prompt tokens per input image (as Gemini
counts one), 1290 candidate tokens per image made.

The model id picks a behaviour: ``think`` adds a thought image first (``thought: true``, in
another colour); ``text-only`` answers text and no image; ``image-safety`` a candidate with
``finishReason: IMAGE_SAFETY`` and no content; ``blocked`` a ``promptFeedback.blockReason``.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.responses import JSONResponse, Response

from tests.fakes.png import png_size, scaled_png

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
TOKENS_PER_INPUT_IMAGE = 258
TOKENS_PER_IMAGE = 1290


def wants_image(body: dict[str, Any]) -> bool:
    return "IMAGE" in ((body.get("generationConfig") or {}).get("responseModalities") or [])


def _invalid(message: str) -> Response:
    return JSONResponse({"error": {"code": 400, "message": message,
                                   "status": "INVALID_ARGUMENT", "details": []}},
                        status_code=400)


def image_answer(model: str, body: dict[str, Any]) -> Response:
    if int((body.get("generationConfig") or {}).get("candidateCount") or 1) > 1:
        return _invalid(f"Multiple candidates is not enabled for models/{model}")
    config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    ratio, size = config.get("aspectRatio"), config.get("imageSize", "1K")
    if ratio is not None and ratio not in ASPECT_RATIOS:
        return _invalid(f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: "
                        f"unsupported aspect ratio {ratio}")
    if size not in LONG_SIDE:
        return _invalid("* GenerateContentRequest.generation_config.image_config.image_size: "
                        f"unsupported image size {size}")
    parts = [p for c in body["contents"] if c.get("role", "user") == "user" for p in c["parts"]]
    inputs = [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]
    # (proto JSON: the field's own name is as good as its camelCase; the SDK sends mime_type)
    if any(_mime(p["inlineData"]) not in IMAGE_TYPES for p in parts if "inlineData" in p):
        return _invalid("Unsupported MIME type for an image input.")
    prompt = " ".join(p["text"] for p in parts if "text" in p)
    usage = _usage(prompt, len(inputs))
    if model == "blocked":
        return JSONResponse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                             "usageMetadata": usage, "modelVersion": model})
    if model == "image-safety":
        return JSONResponse({"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}],
                             "usageMetadata": usage, "modelVersion": model})
    out: list[dict[str, Any]] = [{"text": "I cannot draw that."}]
    if model != "text-only":
        width, height = _dimensions(ratio, LONG_SIDE[size], inputs)
        out = [{"text": "Here is your picture."}, _inline(scaled_png(width, height, prompt))]
        usage.update(candidatesTokenCount=TOKENS_PER_IMAGE,
                     totalTokenCount=usage["promptTokenCount"] + TOKENS_PER_IMAGE)
    if model == "think":
        out.insert(0, {**_inline(scaled_png(512, 512, "draft " + prompt)), "thought": True})
    return JSONResponse({"candidates": [{"content": {"role": "model", "parts": out},
                                         "finishReason": "STOP", "index": 0}],
                         "usageMetadata": usage, "modelVersion": model,
                         "responseId": "resp_fake_image"})


def _mime(blob: dict[str, Any]) -> Any:
    return blob.get("mimeType", blob.get("mime_type"))


def _inline(image: bytes) -> dict[str, Any]:
    return {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}}


def _dimensions(ratio: str | None, long_side: int, inputs: list[bytes]) -> tuple[int, int]:
    if ratio is None:
        first = png_size(inputs[0]) if inputs else None
        w, h = first if first else (1, 1)
    else:
        w, h = (int(x) for x in ratio.split(":"))
    return (long_side, long_side * h // w) if w >= h else (long_side * w // h, long_side)


def _usage(prompt: str, images: int) -> dict[str, Any]:
    text = len(prompt.split())
    total = text + TOKENS_PER_INPUT_IMAGE * images
    details = [{"modality": "TEXT", "tokenCount": text}]
    if images:
        details.append({"modality": "IMAGE", "tokenCount": TOKENS_PER_INPUT_IMAGE * images})
    return {"promptTokenCount": total, "totalTokenCount": total,
            "promptTokensDetails": details}
