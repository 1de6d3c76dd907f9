"""/v1/images/generations and /v1/images/edits end to end on OpenAI-speaking deployments: the
official openai SDK through the gateway to the fake OpenAI upstream (passed through), with
keys, errors, usage and a fallback to Gemini."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from providers import multipart
from tests.conftest import MASTER_KEY
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.png import colour_of, png, png_colour, png_size
from tests.images.conftest import ADMIN, decoded, usage_of
from wire.uploads import UploadedFile

# -- OpenAI-speaking upstreams: passed through --------------------------------------------


def test_generate_b64_json_passes_through(client: openai.OpenAI, fake_openai: FakeOpenAI,
                                          gateway: str) -> None:
    answer = client.images.generate(model="gpt-image", prompt="a red fox", n=2,
                                    size="1024x1536", background="transparent",
                                    extra_body={"moderation": "low"})
    assert [png_colour(decoded(answer, i)) for i in (0, 1)] == [
        colour_of("a red fox 0"), colour_of("a red fox 1")]
    assert answer.usage is not None and answer.usage.output_tokens == 544
    sent = fake_openai.requests[-1]
    assert sent == {"model": "gpt-image-1", "prompt": "a red fox", "n": 2, "size": "1024x1536",
                    "background": "transparent", "moderation": "low"}
    assert fake_openai.headers[-1]["authorization"] == "Bearer sk-upstream"
    assert usage_of(gateway, "gpt-image") == {"requests": 1, "prompt_tokens": 3,
                                              "completion_tokens": 544, "total_tokens": 547,
                                              "cost_usd": 0.0}  # (no prices configured)
    metrics = httpx.get(f"{gateway}/metrics").text
    assert 'gateway_tokens_total{model="gpt-image",type="completion"} 544.0' in metrics


def test_generate_url(client: openai.OpenAI) -> None:
    answer = client.images.generate(model="dalle", prompt="a lighthouse", size="512x512",
                                    response_format="url")
    assert answer.data is not None and answer.data[0].url
    with urllib.request.urlopen(answer.data[0].url) as response:
        image = response.read()
    assert png_size(image) == (32, 32) and png_colour(image) == colour_of("a lighthouse 0")


def test_edit_one_image_and_mask(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    square, mask = png(48, 48, (1, 2, 3)), png(48, 48, (0, 0, 0))
    answer = client.images.edit(model="dalle", prompt="add a hat", n=2, user="alice",
                                image=("cat.png", square, "image/png"),
                                mask=("mask.png", mask, "image/png"),
                                response_format="b64_json")
    assert answer.data is not None and len(answer.data) == 2
    assert png_colour(decoded(answer)) == colour_of("add a hat 0")
    assert fake_openai.requests[-1] == {"model": "dall-e-2", "prompt": "add a hat", "n": "2",
                                        "user": "alice", "response_format": "b64_json"}
    assert fake_openai.images.uploads[-1] == [
        ("image", "cat.png", "image/png", hashlib.sha256(square).hexdigest()),
        ("mask", "mask.png", "image/png", hashlib.sha256(mask).hexdigest())]


def test_edit_several_images(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    images = [("a.png", png(64, 32, (9, 9, 9)), "image/png"),
              ("b.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp")]
    answer = client.images.edit(model="gpt-image", prompt="merge them", image=images)
    assert png_size(decoded(answer)) == (64, 32)
    assert [(field, name) for field, name, _, _ in fake_openai.images.uploads[-1]] == [
        ("image[]", "a.png"), ("image[]", "b.webp")]


@pytest.mark.parametrize(("model", "extra", "param"), [
    ("dalle", {"size": "1000x1000"}, "size"),
    ("dalle", {"n": 11}, "n"),
    ("gpt-image", {"response_format": "url"}, "response_format"),
])
def test_upstream_400_is_passed_as_400(client: openai.OpenAI, model: str,
                                       extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model=model, prompt="x", **extra)
    assert caught.value.param == param
    assert caught.value.code == "invalid_value"


def test_upstream_5xx_falls_back_to_another_provider(client: openai.OpenAI,
                                                     fake_gemini: FakeGemini) -> None:
    answer = client.images.generate(model="broken-images", prompt="a kite",
                                    response_format="b64_json")
    assert png_colour(decoded(answer)) == colour_of("a kite")
    assert fake_gemini.paths == ["/v1beta/models/gemini-2.5-flash-image:generateContent"]


def test_a_chat_only_model_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="claude", prompt="x")
    assert caught.value.param == "model"
    assert "does not support image generation" in caught.value.message
    with pytest.raises(openai.BadRequestError):
        client.images.edit(model="claude", prompt="x", image=("a.png", png(2, 2, (0, 0, 0))))
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="nope", prompt="x")


def test_key_allowlist_is_403(gateway: str) -> None:
    made = httpx.post(f"{gateway}/v1/keys", json={"name": "t", "models": ["dalle"]},
                      headers=ADMIN).json()
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=made["key"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.images.generate(model="gpt-image", prompt="x")
    assert caught.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError):
        client.images.edit(model="gpt-image", prompt="x", image=("a.png", png(2, 2, (0, 0, 0))))
    assert client.images.generate(model="dalle", prompt="x").data
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-wrong", max_retries=0
                      ).images.edit(model="dalle", prompt="x", image=png(2, 2, (0, 0, 0)))


def test_bad_bodies_are_400(gateway: str) -> None:
    url = f"{gateway}/v1/images"
    cases = [
        httpx.post(f"{url}/generations", json={"model": "dalle"}, headers=ADMIN),
        httpx.post(f"{url}/edits", json={"model": "dalle", "prompt": "x"}, headers=ADMIN),
        httpx.post(f"{url}/edits", data={"model": "dalle", "prompt": "x"},
                   files={"other": ("a.png", b"x")}, headers=ADMIN),
        httpx.post(f"{url}/edits", data={"model": "dalle", "prompt": "x", "n": "many"},
                   files={"image": ("a.png", b"x")}, headers=ADMIN),
        httpx.post(f"{url}/edits", content=b"--b\r\nbroken", headers={
            **ADMIN, "content-type": "multipart/form-data"}),  # (no boundary)
    ]
    params = [c.json()["error"]["param"] for c in cases]
    assert [c.status_code for c in cases] == [400] * 5, [c.text for c in cases]
    assert params == ["prompt", None, "image", "n", None]
    assert httpx.get(f"{gateway}/health").status_code == 200


def test_stream_passes_through(client: openai.OpenAI, fake_openai: FakeOpenAI,
                               gateway: str) -> None:
    events = list(client.images.generate(model="gpt-image", prompt="a kite", stream=True,
                                         partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + [
        "image_generation.completed"]
    final = events[-1]
    assert final.type == "image_generation.completed"
    assert png_colour(base64.b64decode(final.b64_json)) == colour_of("a kite 0")
    assert fake_openai.requests[-1]["stream"] is True
    assert fake_openai.headers[-1]["accept"] == "text/event-stream"
    assert usage_of(gateway, "gpt-image")["completion_tokens"] == 272
    edited = list(client.images.edit(model="gpt-image", prompt="a hat", stream=True,
                                     image=("a.png", png(8, 8, (0, 0, 0)))))
    assert [e.type for e in edited] == ["image_edit.completed"]
    assert fake_openai.requests[-1]["stream"] == "true"


def test_stream_refused_upstream_or_unsupported_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:  # (the upstream's 400)
        list(client.images.generate(model="dalle", prompt="x", stream=True))
    assert caught.value.param == "stream"
    with pytest.raises(openai.BadRequestError) as caught:  # (Gemini has no image stream)
        list(client.images.generate(model="nano", prompt="x", stream=True))
    assert "does not support streamed image generation" in caught.value.message


def test_curl(gateway: str, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    """The README's curl calls: JSON for a generation, -F uploads for an edit."""
    auth = f"Authorization: Bearer {MASTER_KEY}"
    made = subprocess.run(
        ["curl", "-sS", "--fail-with-body", f"{gateway}/v1/images/generations", "-H", auth,
         "-H", "Content-Type: application/json",
         "-d", '{"model": "gpt-image", "prompt": "a kite"}'],
        capture_output=True, check=True, timeout=30).stdout
    assert png_colour(base64.b64decode(json.loads(made)["data"][0]["b64_json"])) == \
        colour_of("a kite 0")
    (tmp_path / "cat.png").write_bytes(png(16, 16, (3, 3, 3)))
    edited = subprocess.run(
        ["curl", "-sS", "--fail-with-body", f"{gateway}/v1/images/edits", "-H", auth,
         "-F", "model=gpt-image", "-F", "prompt=a hat", "-F", f"image[]=@{tmp_path / 'cat.png'}",
         "-F", f"image[]=@{tmp_path / 'cat.png'}"],
        capture_output=True, check=True, timeout=30).stdout
    assert len(json.loads(edited)["data"]) == 1
    assert [u[:2] for u in fake_openai.images.uploads[-1]] == [("image[]", "cat.png")] * 2


def test_a_gzipped_multipart_edit(gateway: str, fake_openai: FakeOpenAI) -> None:
    image = png(16, 16, (4, 4, 4))
    body, content_type = multipart.encode(
        [("model", "gpt-image"), ("prompt", "a hat")],
        [UploadedFile("image", "cat.png", "image/png", image)])
    answer = httpx.post(f"{gateway}/v1/images/edits", content=gzip.compress(body), headers={
        **ADMIN, "content-type": content_type, "content-encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    assert fake_openai.images.uploads[-1] == [
        ("image", "cat.png", "image/png", hashlib.sha256(image).hexdigest())]
