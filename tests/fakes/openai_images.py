"""OpenAI's image endpoints in the fake OpenAI upstream (``FakeOpenAI`` mounts them):
``/v1/images/generations`` (JSON), ``/v1/images/edits`` (multipart) and the files behind the
``url`` answers. ``tests/test_fake_openai_images.py`` checks them with the official SDK.

The model id picks the rules, as OpenAI's models differ:
- ``gpt-image-*``: ``n`` 1-10, sizes ``auto``, 1024x1024, 1536x1024, 1024x1536; always
  ``b64_json`` (``response_format`` is a 400, as upstream), ``usage`` and ``output_format``,
  ``size``, ``quality``, ``background`` in the answer; edits take up to 16 images
  (``image[]``) in PNG, JPEG or WEBP; ``stream: true`` answers server-sent events
  (``partial_images`` ``image_generation.partial_image`` events, then one
  ``image_generation.completed`` per image; ``image_edit.*`` for edits);
- ``dall-e-3``: ``n`` 1 only, sizes 1024x1024, 1792x1024, 1024x1792, a ``revised_prompt``;
- ``error-NNN``: an OpenAI error body with HTTP status NNN;
- anything else: DALL·E 2's rules: ``n`` 1-10, sizes 256x256, 512x512, 1024x1024, ``url``
  by default; edits take one square PNG and an optional PNG ``mask`` of the same size.
Images are real PNGs (``tests.fakes.png``), a colour picked from the prompt, at 1/16 of the
size asked; an edit's image has the first input image's proportions.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.png import png_size, scaled_png

CREATED = 1_700_000_000
SIZES = {"gpt-image": ("auto", "1024x1024", "1536x1024", "1024x1536"),
         "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
         "dall-e-2": ("256x256", "512x512", "1024x1024")}
IMAGE_TYPES = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF")


def family(model: str) -> str:
    if model.startswith("gpt-image"):
        return "gpt-image"
    return "dall-e-3" if model.startswith("dall-e-3") else "dall-e-2"


def invalid(message: str, param: str | None) -> Response:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "param": param, "code": None}}, status_code=400)


def error(status: int) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": f"fake upstream error {status}", "type": kind,
                                   "param": None, "code": None}}, status_code=status)


class FakeImages:
    def __init__(self, requests: list[dict[str, Any]], headers: list[dict[str, str]]) -> None:
        self.requests = requests  # (shared with FakeOpenAI: the bodies, an edit's fields)
        self.headers = headers
        self.uploads: list[list[tuple[str, str, str, str]]] = []  # (field, name, type, sha256)
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1)

    def reset(self) -> None:
        self.uploads.clear()
        self.files.clear()

    async def generations(self, request: Request) -> Response:
        body: dict[str, Any] = json.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        return self._answer(request, body, None, "image_generation")

    async def edits(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return invalid("Invalid Content-Type header, expected multipart/form-data.", None)
        form = await request.form(max_files=100)
        fields: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files = [(name, upload, await upload.read()) for name, upload in form.multi_items()
                 if isinstance(upload, UploadFile)]
        self.requests.append(dict(fields))
        self.headers.append(dict(request.headers))
        self.uploads.append([(name, upload.filename or "", upload.content_type or "",
                              hashlib.sha256(data).hexdigest()) for name, upload, data in files])
        images = [data for name, _, data in files if name in ("image", "image[]")]
        masks = [data for name, _, data in files if name == "mask"]
        for name in ("n", "partial_images"):
            if str(fields.get(name, "")).isdigit():
                fields[name] = int(fields[name])
        if "stream" in fields:
            fields["stream"] = fields["stream"] == "true"
        problem = self._check_edit(fields, images, masks)
        return problem or self._answer(request, fields, images[0], "image_edit")

    def _check_edit(self, fields: dict[str, Any], images: list[bytes],
                    masks: list[bytes]) -> Response | None:
        if not images:
            return invalid("Missing required parameter: 'image'.", "image")
        kind = family(str(fields.get("model", "")))
        if kind == "gpt-image":
            if len(images) > 16 or not all(i.startswith(IMAGE_TYPES) for i in images):
                return invalid("Invalid image: up to 16 png, webp or jpg files.", "image")
            return None
        size = png_size(images[0])
        if len(images) > 1:
            return invalid("This model edits one image.", "image")
        if size is None or size[0] != size[1]:
            return invalid("Uploaded image must be a square PNG.", "image")
        if masks and png_size(masks[0]) != size:
            return invalid("Invalid mask image: it must be a PNG of the image's size.", "mask")
        return None

    def _answer(self, request: Request, body: dict[str, Any], source: bytes | None,
                events: str) -> Response:
        model = str(body.get("model", ""))
        if model.startswith("error-"):
            return error(int(model[6:]))
        kind = family(model)
        n, size = body.get("n") or 1, body.get("size") or ("auto" if kind == "gpt-image"
                                                          else "1024x1024")
        problem = self._check(kind, body, n, size)
        if problem:
            return problem
        width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
        proportions = png_size(source) if source is not None else None
        if proportions is not None:  # (an edit keeps its image's proportions)
            height = width * proportions[1] // proportions[0]
        images = [scaled_png(width, height, f"{body['prompt']} {i}") for i in range(n)]
        answer = self._shape(request, kind, body, images, size)
        if body.get("stream"):
            partials = [scaled_png(width, height, f"{body['prompt']} partial {i}")
                        for i in range(int(body.get("partial_images") or 0))]
            return StreamingResponse(stream(events, answer, partials),
                                     media_type="text/event-stream")
        return JSONResponse(answer)

    def _check(self, kind: str, body: dict[str, Any], n: Any, size: Any) -> Response | None:
        if not isinstance(n, int) or not 1 <= n <= 10:
            return invalid(f"{n} is greater than the maximum of 10 - 'n'", "n")
        if kind == "dall-e-3" and n != 1:
            return invalid("You must provide n=1 for this model.", "n")
        if size not in SIZES[kind]:
            return invalid(f"'{size}' is not one of {list(SIZES[kind])} - 'size'", "size")
        if body.get("stream") and kind != "gpt-image":
            return invalid("Streaming is only supported by the GPT image models.", "stream")
        if kind == "gpt-image" and "response_format" in body:
            return invalid("Unknown parameter: 'response_format'.", "response_format")
        if not body.get("prompt"):
            return invalid("Missing required parameter: 'prompt'.", "prompt")
        return None

    def _shape(self, request: Request, kind: str, body: dict[str, Any], images: list[bytes],
               size: str) -> dict[str, Any]:
        as_url = kind != "gpt-image" and body.get("response_format", "url") == "url"
        data: list[dict[str, Any]] = []
        for image in images:
            item: dict[str, Any] = {}
            if as_url:
                name = f"img-{next(self._ids)}.png"
                self.files[name] = image
                item["url"] = f"{str(request.base_url).rstrip('/')}/files/{name}"
            else:
                item["b64_json"] = base64.b64encode(image).decode()
            if kind == "dall-e-3":
                item["revised_prompt"] = f"A detailed picture of {body['prompt']}"
            data.append(item)
        answer: dict[str, Any] = {"created": CREATED, "data": data}
        if kind == "gpt-image":
            prompt = len(str(body["prompt"]).split())
            answer.update(background="opaque", output_format="png", quality="high", size=size,
                          usage={"input_tokens": prompt, "output_tokens": 272 * len(images),
                                 "total_tokens": prompt + 272 * len(images),
                                 "input_tokens_details": {"text_tokens": prompt,
                                                          "image_tokens": 0}})
        return answer

    async def file(self, request: Request) -> Response:  # (the files behind ``url`` answers)
        image = self.files.get(request.path_params["name"])
        if image is None:
            return Response(status_code=404)
        return Response(image, media_type="image/png")



async def stream(events: str, answer: dict[str, Any], partials: list[bytes]
                 ) -> AsyncIterator[bytes]:
    """gpt-image-1's stream: ``partial_images`` partial images, then each finished image in a
    ``.completed`` event with the image's settings and the usage (on every one)."""
    settings = {k: answer[k] for k in ("background", "output_format", "quality", "size")}
    for i, image in enumerate(partials):
        yield event(f"{events}.partial_image", {
            "b64_json": base64.b64encode(image).decode(), "created_at": CREATED,
            "partial_image_index": i, **settings})
    for item in answer["data"]:
        yield event(f"{events}.completed", {"b64_json": item["b64_json"], "created_at": CREATED,
                                            **settings, "usage": answer["usage"]})


def event(kind: str, data: dict[str, Any]) -> bytes:
    return (f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **data}).encode()
            + b"\n\n")
