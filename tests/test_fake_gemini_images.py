"""The fake Gemini upstream's image output, checked with the official ``google-genai`` SDK
directly (no gateway in between)."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini_server import FakeGemini
from tests.fakes.png import colour_of, png, png_colour, png_size


@pytest.fixture
def client(fake_gemini: FakeGemini) -> genai.Client:
    return genai.Client(api_key="gm-key", http_options=types.HttpOptions(
        base_url=fake_gemini.url, api_version="v1beta",
        retry_options=types.HttpRetryOptions(attempts=1)))


def _images(answer: types.GenerateContentResponse) -> list[bytes]:
    parts = answer.candidates[0].content.parts or []  # type: ignore[index, union-attr]
    return [p.inline_data.data or b"" for p in parts if p.inline_data and not p.thought]


def test_image_output(client: genai.Client, fake_gemini: FakeGemini) -> None:
    answer = client.models.generate_content(
        model="gemini-2.5-flash-image", contents="a red fox",
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="16:9", image_size="2K")))
    [image] = _images(answer)
    assert png_size(image) == (128, 72)  # 2048x1152 at 1/16
    assert png_colour(image) == colour_of("a red fox")
    assert answer.text == "Here is your picture."
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.candidates_token_count == 1290
    config = fake_gemini.requests[-1]["generationConfig"]
    assert config == {"responseModalities": ["TEXT", "IMAGE"],
                      "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}}


def test_edit_keeps_the_input_proportions(client: genai.Client) -> None:
    source = png(40, 20, (5, 5, 5))
    answer = client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents=["add a hat", types.Part.from_bytes(data=source, mime_type="image/png")],
        config=types.GenerateContentConfig(response_modalities=["IMAGE"]))
    [image] = _images(answer)
    assert png_size(image) == (64, 32)
    details = answer.usage_metadata.prompt_tokens_details  # type: ignore[union-attr]
    assert [(d.modality, d.token_count) for d in details or []] == [
        (types.MediaModality.TEXT, 3), (types.MediaModality.IMAGE, 258)]


def test_thought_images_are_marked(client: genai.Client) -> None:
    answer = client.models.generate_content(
        model="think", contents="a boat",
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]))
    parts = answer.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert [bool(p.thought) for p in parts or [] if p.inline_data] == [True, False]


def test_no_image_answers(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    assert _images(client.models.generate_content(model="text-only", contents="x",
                                                  config=config)) == []
    unsafe = client.models.generate_content(model="image-safety", contents="x", config=config)
    assert unsafe.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY  # type: ignore[index]
    blocked = client.models.generate_content(model="blocked", contents="x", config=config)
    assert blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_bad_image_config_is_400(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model="gemini-2.5-flash-image", contents="x",
            config=types.GenerateContentConfig(response_modalities=["IMAGE"],
                                               image_config=types.ImageConfig(aspect_ratio="7:5")))
    assert caught.value.code == 400


def test_image_models_make_one_candidate(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model="gemini-2.5-flash-image", contents="x",
            config=types.GenerateContentConfig(response_modalities=["IMAGE"], candidate_count=2))
    assert "Multiple candidates is not enabled" in str(caught.value)
