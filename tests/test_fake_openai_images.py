"""The fake OpenAI upstream's image endpoints, checked with the official openai SDK directly
(no gateway in between), so that the gateway's image tests run against OpenAI's wire format."""

from __future__ import annotations

import base64
import urllib.request

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.png import colour_of, png, png_colour, png_size


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_openai.url, api_key="sk-x", max_retries=0)  # type: ignore[attr-defined]


def test_generate_b64_json_with_usage(client: openai.OpenAI) -> None:
    answer = client.images.generate(model="gpt-image-1", prompt="a red fox", n=2,
                                    size="1536x1024")
    assert answer.data is not None and len(answer.data) == 2
    image = base64.b64decode(answer.data[0].b64_json or "")
    assert png_size(image) == (96, 64)
    assert png_colour(image) == colour_of("a red fox 0")
    assert answer.usage is not None and answer.usage.input_tokens == 3
    assert answer.output_format == "png" and answer.size == "1536x1024"


def test_generate_url_and_revised_prompt(client: openai.OpenAI) -> None:
    answer = client.images.generate(model="dall-e-3", prompt="a lighthouse",
                                    response_format="url")
    assert answer.data is not None
    item = answer.data[0]
    assert item.revised_prompt == "A detailed picture of a lighthouse"
    with urllib.request.urlopen(item.url or "") as response:
        assert png_size(response.read()) == (64, 64)


@pytest.mark.parametrize(("model", "extra", "param"), [
    ("dall-e-2", {"size": "1000x1000"}, "size"),
    ("dall-e-2", {"n": 11}, "n"),
    ("dall-e-3", {"n": 2}, "n"),
    ("gpt-image-1", {"response_format": "b64_json"}, "response_format"),
])
def test_bad_requests_are_400(client: openai.OpenAI, model: str, extra: dict[str, object],
                              param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model=model, prompt="x", **extra)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_edit_one_image_with_mask(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    square = png(32, 32, (1, 2, 3))
    answer = client.images.edit(model="dall-e-2", prompt="add a hat",
                                image=("cat.png", square, "image/png"),
                                mask=("mask.png", png(32, 32, (0, 0, 0)), "image/png"),
                                response_format="b64_json", size="512x512")
    assert answer.data is not None
    assert png_size(base64.b64decode(answer.data[0].b64_json or "")) == (32, 32)
    fields = fake_openai.requests[-1]
    assert (fields["model"], fields["prompt"], fields["size"]) == ("dall-e-2", "add a hat",
                                                                   "512x512")
    uploaded = fake_openai.images.uploads[-1]
    assert [(field, name) for field, name, _, _ in uploaded] == [("image", "cat.png"),
                                                                 ("mask", "mask.png")]


def test_edit_several_images(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    images = [("a.png", png(64, 32, (9, 9, 9)), "image/png"),
              ("b.png", png(8, 8, (1, 1, 1)), "image/png")]
    answer = client.images.edit(model="gpt-image-1", prompt="merge them", image=images)
    assert answer.data is not None
    assert png_size(base64.b64decode(answer.data[0].b64_json or "")) == (64, 32)
    assert [u[0] for u in fake_openai.images.uploads[-1]] == ["image[]", "image[]"]


def test_edit_needs_a_square_png_for_dall_e_2(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="dall-e-2", prompt="x", image=("a.png", png(4, 2, (0, 0, 0))))
    assert caught.value.param == "image"


def test_stream_partial_images(client: openai.OpenAI) -> None:
    events = list(client.images.generate(model="gpt-image-1", prompt="a kite", stream=True,
                                         partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + [
        "image_generation.completed"]
    final = events[-1]
    assert final.type == "image_generation.completed" and final.usage.output_tokens == 272
    assert png_colour(base64.b64decode(final.b64_json)) == colour_of("a kite 0")


def test_stream_an_edit(client: openai.OpenAI) -> None:
    events = list(client.images.edit(model="gpt-image-1", prompt="a hat", stream=True,
                                     partial_images=1, image=("a.png", png(8, 8, (0, 0, 0)))))
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
