"""POST /v1/tools/summarize end to end: two models summarize in parallel and the first
combines (a fake OpenAI chat upstream that echoes what it is asked), a long transcript chunk
by chunk, an audio file transcribed first (a fake OpenAI audio upstream); both engines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_audio_server import FakeOpenAIAudio
from tests.fakes.openai_server import FakeOpenAI
from tests.test_jobs import wait

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
TRANSCRIPT = "Anna: we ship on Friday. Ben: I will write the release notes."


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, fake_audio: FakeOpenAIAudio,
            redis_url_or_none: str | None) -> str:
    chat = {"provider": "openai-compatible", "api_base": fake_openai.url,  # type: ignore[attr-defined]
            "api_key": "sk-upstream", "retries": 0}
    return make_gateway({"jobs": {"chunk_tokens": 200, "summarize_models": ["first", "second"]},
                         "models": [
        {"name": "first", "model": "echo-first", **chat},
        {"name": "second", "model": "echo-second", **chat},
        {"name": "whisper-1", "provider": "openai", "api_base": fake_audio.url,
         "api_key": "sk-upstream"}]}, redis_url=redis_url_or_none)


def summarize(url: str, **kwargs: Any) -> dict[str, Any]:
    posted = httpx.post(f"{url}/v1/tools/summarize", headers=ADMIN, timeout=30, **kwargs)
    assert posted.status_code == 202, posted.text
    return wait(url, posted.json()["id"])


def test_each_model_summarizes_and_the_first_combines(gateway: str,
                                                      fake_openai: FakeOpenAI) -> None:
    job = summarize(gateway, json={"text": TRANSCRIPT, "prompt": "Write the minutes."})
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert [s["model"] for s in result["summaries"]] == ["first", "second"]
    for summary in result["summaries"]:
        assert "Friday" in summary["text"] and "Write the minutes." in summary["text"]
    assert result["combined"]["model"] == "first"
    assert "Combine them into one set of minutes" in result["combined"]["text"]
    assert fake_openai.calls == {"echo-first": 2, "echo-second": 1}


def test_models_of_the_request_and_a_long_transcript(gateway: str,
                                                     fake_openai: FakeOpenAI) -> None:
    long = " ".join(f"Speaker {i % 3}: item {i} is done." for i in range(300))
    job = summarize(gateway, json={"text": long, "models": ["second"]})
    assert job["status"] == "succeeded", job
    parts = fake_openai.calls["echo-second"] - 1  # each part, then the parts combined
    assert parts >= 4
    assert [s["model"] for s in job["result"]["summaries"]] == ["second"]
    assert "summarized in" in job["result"]["combined"]["text"]
    assert "minutes of the meeting" in fake_openai.requests[0]["messages"][0]["content"]


def test_an_audio_file_is_transcribed_first(gateway: str, fake_openai: FakeOpenAI,
                                            fake_audio: FakeOpenAIAudio) -> None:
    job = summarize(gateway, files={"file": ("standup.wav", b"RIFF" + bytes(996), "audio/wav")},
                    data={"model": "whisper-1", "models": "second", "prompt": "Minutes, please."})
    assert job["status"] == "succeeded", job
    assert "heard 1000 bytes of standup.wav" in job["result"]["combined"]["text"]
    assert "Minutes, please." in job["result"]["combined"]["text"]
    assert "prompt" not in fake_audio.fields[-1]  # the minutes' prompt is not Whisper's


def test_bad_requests(gateway: str) -> None:
    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{gateway}/v1/tools/summarize", headers=ADMIN, json=body)

    assert post({"text": ""}).json()["error"]["param"] == "text"
    assert post({"text": "x", "models": ["nobody"]}).status_code == 404
    assert post({"text": "x", "extra": 1}).status_code == 400
