"""Image generation and edits on Gemini deployments, end to end: the official openai SDK
through the gateway to the fake Gemini upstream (``tests/fakes/gemini_images.py``); plus the
pure translation (``providers/gemini/images.py``) on its own."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from providers.gemini.images import image_config, image_mime
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.png import colour_of, png, png_colour, png_size
from tests.images.conftest import decoded, usage_of
from wire.errors import InvalidRequest
from wire.uploads import UploadedFile

MODEL_PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"


def test_generate_n_images_as_n_calls(client: openai.OpenAI, fake_gemini: FakeGemini,
                                      gateway: str) -> None:
    answer = client.images.generate(model="nano", prompt="a red fox", n=2, size="1792x1024")
    assert answer.data is not None and len(answer.data) == 2
    image = decoded(answer)
    assert png_size(image) == (128, 72)  # 16:9, 2K (long side 1792 > 1536), drawn at 1/16
    assert png_colour(image) == colour_of("a red fox")
    assert answer.output_format == "png"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (6, 2580)
    assert fake_gemini.paths == [MODEL_PATH, MODEL_PATH]
    assert fake_gemini.headers[-1]["x-goog-api-key"] == "gm-upstream"
    assert fake_gemini.requests[-1] == {
        "contents": [{"role": "user", "parts": [{"text": "a red fox"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                             "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}}}
    assert usage_of(gateway, "nano")["completion_tokens"] == 2580


def test_edit_sends_the_images_inline(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    first, second = png(40, 20, (1, 1, 1)), png(8, 8, (2, 2, 2))
    answer = client.images.edit(model="nano", prompt="add a hat",
                                image=[("a.png", first), ("b.png", second)],
                                response_format="b64_json")
    assert png_size(decoded(answer)) == (64, 32)  # the first image's proportions kept
    assert answer.usage is not None and answer.usage.input_tokens_details is not None
    assert answer.usage.input_tokens_details.image_tokens == 2 * 258
    parts = fake_gemini.requests[-1]["contents"][0]["parts"]
    assert parts == [{"text": "add a hat"},
                     {"inlineData": {"mimeType": "image/png",
                                     "data": base64.b64encode(first).decode()}},
                     {"inlineData": {"mimeType": "image/png",
                                     "data": base64.b64encode(second).decode()}}]


def test_the_final_image_not_a_thought(client: openai.OpenAI) -> None:
    answer = client.images.generate(model="gemini/think", prompt="a boat")
    assert png_colour(decoded(answer)) == colour_of("a boat")


@pytest.mark.parametrize(("call", "param", "code"), [
    ({"model": "nano", "response_format": "url"}, "response_format", "invalid_value"),
    ({"model": "nano", "n": 11}, "n", "invalid_value"),
    ({"model": "nano", "size": "1000x200"}, "size", "invalid_value"),
    ({"model": "gemini/image-safety"}, "prompt", "content_policy_violation"),
    ({"model": "gemini/blocked"}, "prompt", "content_policy_violation"),
    ({"model": "gemini/error-400"}, None, "invalid_value"),
])
def test_refusals_are_400(client: openai.OpenAI, fake_gemini: FakeGemini,
                          call: dict[str, Any], param: str | None, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="x", **call)
    assert (caught.value.param, caught.value.code) == (param, code)
    if param in ("response_format", "n", "size"):
        assert fake_gemini.paths == []  # refused before any call


def test_edit_refusals(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    square = png(8, 8, (0, 0, 0))
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="nano", prompt="x", image=("a.png", square),
                           mask=("m.png", square))
    assert caught.value.param == "mask"
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="nano", prompt="x", image=("a.gif", b"GIF89a\x01\x00"))
    assert caught.value.param == "image" and "not a PNG, JPEG, WEBP or HEIC" in \
        caught.value.message
    assert fake_gemini.paths == []


def test_an_answer_without_an_image_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.images.generate(model="gemini/text-only", prompt="x")
    assert caught.value.status_code == 502
    assert "no image: I cannot draw that." in caught.value.message


# -- the translation on its own -----------------------------------------------------------


@pytest.mark.parametrize(("size", "config"), [
    (None, {}), ("auto", {}), ("1024x1024", {"aspectRatio": "1:1"}),
    ("256x256", {"aspectRatio": "1:1"}), ("1536x1024", {"aspectRatio": "3:2"}),
    ("1024x1792", {"aspectRatio": "9:16", "imageSize": "2K"}),
    ("2048x2048", {"aspectRatio": "1:1", "imageSize": "2K"}),
    ("3840x2160", {"aspectRatio": "16:9", "imageSize": "4K"}),
    ("21:9", {"aspectRatio": "21:9"}),
])
def test_size_to_image_config(size: str | None, config: dict[str, str]) -> None:
    assert image_config(size) == config


@pytest.mark.parametrize("size", ["big", "0x10", "1024x", "1000x200", "8192x8192", "7:5"])
def test_sizes_gemini_cannot_make(size: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        image_config(size)
    assert caught.value.param == "size"


@pytest.mark.parametrize(("data", "mime"), [
    (png(1, 1, (0, 0, 0)), "image/png"), (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
    (b"\x00\x00\x00\x18ftypmif1\x00\x00", "image/heif"),
])
def test_image_type_from_the_bytes(data: bytes, mime: str) -> None:
    # (what the client claimed does not count)
    assert image_mime(UploadedFile("image", "x.bin", "text/plain", data)) == mime
