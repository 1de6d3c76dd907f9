"""/v1/audio/* on ``openai`` and ``openai-compatible`` deployments: the multipart goes upstream
as the client sent it and the answer comes back byte for byte, checked with the official
``openai`` SDK against a fake OpenAI audio upstream (itself checked with the SDK first)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_audio_server import FakeOpenAIAudio

AUDIO = b"RIFF....WAVEfmt fake audio bytes" * 10  # the fake reads no audio, only its size
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def fake(fake_audio: FakeOpenAIAudio) -> FakeOpenAIAudio:
    return fake_audio


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake: FakeOpenAIAudio) -> str:
    upstream = {"api_base": fake.url, "api_key": "sk-upstream"}
    return make_gateway({"models": [
        {"name": "whisper-1", "provider": "openai", **upstream},
        {"name": "gpt-4o-transcribe", "provider": "openai-compatible", **upstream},
        {"name": "gpt-4o-transcribe-diarize", "provider": "openai", **upstream},
        {"name": "audio/*", "provider": "openai-compatible", "retries": 0, **upstream},
        {"name": "flaky", "provider": "openai-compatible", "model": "flaky-1-503",
         "retry_backoff_s": 0, **upstream},
        {"name": "claude", "provider": "anthropic", "api_key": "sk-x"},
        {"name": "down", "provider": "openai", "model": "error-503", "retries": 0,
         "fallbacks": ["gpt-4o-transcribe"], **upstream},
    ]})


def sdk(url: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def test_fake_speaks_openai_audio(fake: FakeOpenAIAudio) -> None:
    client = sdk(fake.url)
    heard = f"heard {len(AUDIO)} bytes of a.wav"
    assert client.audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO)
                                              ).text == heard
    verbose = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO),
                                                 response_format="verbose_json")
    assert verbose.segments and verbose.segments[0].end == 2.0
    events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe",
                                                     file=("a.wav", AUDIO), stream=True))
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta") == heard
    assert events[-1].type == "transcript.text.done" and events[-1].text == heard


def multipart(**fields: str) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x", files={"file": ("talk.wav", AUDIO, "audio/wav")},
                            data=fields)
    return request.read(), request.headers["content-type"]


def test_multipart_and_answer_pass_byte_for_byte(gateway: str, fake: FakeOpenAIAudio) -> None:
    body, content_type = multipart(model="whisper-1", response_format="verbose_json",
                                   language="ko", prompt="회의", temperature="0.2")
    through = httpx.post(f"{gateway}/v1/audio/transcriptions", content=body,
                         headers={"content-type": content_type, **ADMIN})
    assert through.status_code == 200, through.text
    assert fake.bodies[-1] == body and fake.content_types[-1] == content_type
    assert fake.headers[-1]["authorization"] == "Bearer sk-upstream"
    direct = httpx.post(f"{fake.url}/audio/transcriptions", content=body,
                        headers={"content-type": content_type})
    assert through.content == direct.content
    assert through.headers["content-type"] == direct.headers["content-type"]


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_text_formats_through_the_sdk(gateway: str, fake: FakeOpenAIAudio,
                                      response_format: Any) -> None:
    text = sdk(f"{gateway}/v1").audio.transcriptions.create(
        model="whisper-1", file=("a.wav", AUDIO), response_format=response_format)
    assert isinstance(text, str) and f"heard {len(AUDIO)} bytes of a.wav" in text
    assert fake.fields[-1]["response_format"] == response_format


# The openai SDK marks audio.translations.create "deprecated"; the endpoint is OpenAI's
# still, and the gateway serves it.
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_and_diarized_json(gateway: str) -> None:
    client = sdk(f"{gateway}/v1")
    translated = client.audio.translations.create(model="whisper-1", file=("a.wav", AUDIO))
    assert translated.text == f"translated: heard {len(AUDIO)} bytes of a.wav"
    diarized = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize", file=("a.wav", AUDIO),
        response_format="diarized_json", chunking_strategy="auto")
    assert [s.speaker for s in diarized.segments] == ["A", "B"]


def test_stream_is_relayed(gateway: str, fake: FakeOpenAIAudio) -> None:
    client = sdk(f"{gateway}/v1")
    events = list(client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", AUDIO), stream=True))
    heard = f"heard {len(AUDIO)} bytes of a.wav"
    assert [e.type for e in events][-1] == "transcript.text.done"
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta") == heard
    assert fake.fields[-1]["stream"] == "true"
    # whisper-1 does not stream: its whole answer comes back as it is
    whole = httpx.post(f"{gateway}/v1/audio/transcriptions", headers=ADMIN,
                       files={"file": ("a.wav", AUDIO)},
                       data={"model": "whisper-1", "stream": "true"})
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    assert whole.json()["text"] == heard


def test_a_stream_broken_upstream_ends_with_an_error_event(gateway: str) -> None:
    with httpx.stream("POST", f"{gateway}/v1/audio/transcriptions", headers=ADMIN,
                      files={"file": ("a.wav", AUDIO)},
                      data={"model": "audio/cut-stream", "stream": "true"}) as answer:
        assert answer.status_code == 200
        events = [line for line in answer.iter_lines() if line]
    assert events[0].startswith('data: {"type": "transcript.text.delta"')
    assert '"error"' in events[-1] and '"upstream_error"' in events[-1], events


def test_wildcard_sends_the_upstream_model(gateway: str, fake: FakeOpenAIAudio) -> None:
    body, content_type = multipart(model="audio/whisper-1", language="en")
    answer = httpx.post(f"{gateway}/v1/audio/transcriptions", content=body,
                        headers={"content-type": content_type, **ADMIN})
    assert answer.status_code == 200, answer.text
    assert fake.fields[-1] == {"model": "whisper-1", "language": "en"}
    assert AUDIO in fake.bodies[-1] and b'filename="talk.wav"' in fake.bodies[-1]


def test_upstream_errors_retries_and_fallback_rules(gateway: str, fake: FakeOpenAIAudio) -> None:
    client = sdk(f"{gateway}/v1")
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO),
                                           response_format="diarized_json")
    assert "not compatible" in refused.value.message
    assert client.audio.transcriptions.create(model="flaky", file=("a.wav", AUDIO)).text
    assert fake.calls["flaky-1-503"] == 2  # one 503, retried
    with pytest.raises(openai.InternalServerError) as failed:
        client.audio.transcriptions.create(model="audio/error-500", file=("a.wav", AUDIO))
    assert failed.value.status_code == 502
    assert client.audio.transcriptions.create(model="down", file=("a.wav", AUDIO)).text
    assert [f["model"] for f in fake.fields[-2:]] == ["error-503", "gpt-4o-transcribe"]
    with pytest.raises(openai.BadRequestError) as unable:
        client.audio.transcriptions.create(model="claude", file=("a.wav", AUDIO))
    assert "does not support audio transcription" in unable.value.message


def test_bad_forms_are_400_naming_the_field(gateway: str) -> None:
    url = f"{gateway}/v1/audio/transcriptions"
    cases = [
        ({"data": {"model": "whisper-1"}}, "file"),
        ({"files": {"file": ("a.wav", AUDIO)}}, "model"),
        ({"files": {"file": ("a.wav", AUDIO)},
          "data": {"model": "whisper-1", "response_format": "xml"}}, "response_format"),
        ({"files": {"file": ("a.wav", AUDIO)},
          "data": {"model": "whisper-1", "temperature": "hot"}}, "temperature"),
        ({"files": {"file": ("a.wav", AUDIO)},
          "data": {"model": "whisper-1", "timestamp_granularities[]": "char"}},
         "timestamp_granularities[]"),
        ({"json": {"model": "whisper-1"}}, "file"),
    ]
    for request, param in cases:
        answer = httpx.post(url, headers=ADMIN, **request)  # type: ignore[arg-type]
        assert answer.status_code == 400, (param, answer.text)
        assert answer.json()["error"]["param"] == param
        assert answer.json()["error"]["code"] == "invalid_value"
    broken = httpx.post(url, headers={**ADMIN, "content-type": "multipart/form-data; boundary=x"},
                        content=b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nw")
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
    translation = httpx.post(f"{gateway}/v1/audio/translations", headers=ADMIN,
                             files={"file": ("a.wav", AUDIO)},
                             data={"model": "whisper-1", "response_format": "diarized_json"})
    assert translation.status_code == 400


def test_keys_allowlists_and_usage_apply(gateway: str) -> None:
    made = httpx.post(f"{gateway}/v1/keys", headers=ADMIN,
                      json={"models": ["whisper-1"], "rpm": 2}).json()
    client = sdk(f"{gateway}/v1", made["key"])
    assert client.audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO)).text
    with pytest.raises(openai.PermissionDeniedError):
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", AUDIO))
    with pytest.raises(openai.RateLimitError):
        for _ in range(3):
            client.audio.transcriptions.create(model="whisper-1", file=("a.wav", AUDIO))
    with pytest.raises(openai.AuthenticationError):
        sdk(f"{gateway}/v1", "sk-wrong").audio.transcriptions.create(
            model="whisper-1", file=("a.wav", AUDIO))
