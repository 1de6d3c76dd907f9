"""Jobs end to end over loopback: POST /v1/tools/transcribe (a fake OpenAI audio upstream,
``slow-MS`` for a long one) and /v1/jobs (state, list, cancel, events), each test with the
in-process engine and with saq on a real redis-server."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import orjson
import pytest

from gateway.config import ConfigError, validate
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_audio_server import FakeOpenAIAudio

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
CLIP = b"RIFF" + bytes(2000)


@pytest.fixture
def fake(fake_audio: FakeOpenAIAudio) -> FakeOpenAIAudio:
    return fake_audio


def jobs_config(fake: FakeOpenAIAudio, **jobs: Any) -> dict[str, Any]:
    return {"jobs": {"concurrency": 1, "heartbeat_s": 5, "sweep_s": 1, **jobs},
            "models": [{"name": "audio/*", "provider": "openai-compatible", "retries": 0,
                        "api_base": fake.url, "api_key": "sk-upstream"}]}


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake: FakeOpenAIAudio,
            redis_url_or_none: str | None) -> str:
    return make_gateway(jobs_config(fake), redis_url=redis_url_or_none)


def post(url: str, model: str, headers: dict[str, str] = ADMIN) -> httpx.Response:
    return httpx.post(f"{url}/v1/tools/transcribe", headers=headers, timeout=30,
                      files={"file": ("talk.wav", CLIP, "audio/wav")},
                      data={"model": model, "response_format": "text"})


def wait(url: str, job_id: str, headers: dict[str, str] = ADMIN, final: bool = True,
         status: str | None = None, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).json()
        if (status is not None and job["status"] == status) or (
                status is None and final and job["status"] in ("succeeded", "failed",
                                                               "cancelled")):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {status or 'an end'}: {job}")


def new_key(url: str) -> dict[str, str]:
    key = httpx.post(f"{url}/v1/keys", json={}, headers=ADMIN).json()["key"]
    return {"Authorization": f"Bearer {key}"}


def test_transcribe_job_succeeds_with_verbose_json(gateway: str, fake: FakeOpenAIAudio) -> None:
    posted = post(gateway, "audio/whisper")
    assert posted.status_code == 202
    body = posted.json()
    assert body["status"] in ("queued", "running") and body["id"].startswith("job_")
    job = wait(gateway, body["id"])
    assert job["status"] == "succeeded" and job["progress"] == 1
    assert job["result"]["text"] == "heard 2004 bytes of talk.wav"
    assert job["result"]["segments"][0]["end"] == 2.0  # verbose_json, whatever was asked
    assert "error" not in job
    assert fake.fields[-1]["response_format"] == "verbose_json"


def test_events_stream_progress_and_close_on_the_final_state(gateway: str) -> None:
    job_id = post(gateway, "audio/slow-600").json()["id"]
    events = []
    with httpx.stream("GET", f"{gateway}/v1/jobs/{job_id}/events", headers=ADMIN,
                      timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line[6:]))
    assert events[-1]["status"] == "succeeded" and events[-1]["progress"] == 1
    assert any(e["status"] == "running" and 0 < e["progress"] < 1 for e in events)
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)


def test_another_keys_job_is_not_found_and_lists_are_per_key(gateway: str) -> None:
    alice, bob = new_key(gateway), new_key(gateway)
    mine = [post(gateway, "audio/whisper", alice).json()["id"] for _ in range(3)]
    theirs = post(gateway, "audio/whisper", bob).json()["id"]
    for job_id in [*mine, theirs]:
        wait(gateway, job_id)
    missing = httpx.get(f"{gateway}/v1/jobs/{theirs}", headers=alice)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "job_not_found"
    assert httpx.delete(f"{gateway}/v1/jobs/{theirs}", headers=alice).status_code == 404
    assert httpx.get(f"{gateway}/v1/jobs/nope", headers=alice).status_code == 404
    page = httpx.get(f"{gateway}/v1/jobs?limit=2", headers=alice).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [j["id"] for j in page["data"]] == mine[::-1][:2]  # newest first
    rest = httpx.get(f"{gateway}/v1/jobs?limit=2&after={mine[1]}", headers=alice).json()
    assert [j["id"] for j in rest["data"]] == [mine[0]] and rest["has_more"] is False
    everyone = httpx.get(f"{gateway}/v1/jobs?status=succeeded", headers=ADMIN).json()
    assert {*mine, theirs} <= {j["id"] for j in everyone["data"]}
    bad = httpx.get(f"{gateway}/v1/jobs?status=done", headers=alice)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


def test_cancel_a_running_and_a_queued_job(gateway: str, fake: FakeOpenAIAudio) -> None:
    running = post(gateway, "audio/slow-4000").json()["id"]
    wait(gateway, running, status="running")
    queued = post(gateway, "audio/slow-100").json()["id"]  # concurrency 1: it waits
    assert httpx.get(f"{gateway}/v1/jobs/{queued}", headers=ADMIN).json()["status"] == "queued"
    cancelled = httpx.delete(f"{gateway}/v1/jobs/{queued}", headers=ADMIN)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert httpx.delete(f"{gateway}/v1/jobs/{running}", headers=ADMIN).status_code == 200
    assert wait(gateway, running)["status"] == "cancelled"
    after = post(gateway, "audio/whisper").json()["id"]
    assert wait(gateway, after)["status"] == "succeeded"
    assert wait(gateway, queued)["status"] == "cancelled"
    assert fake.calls.get("slow-100", 0) == 0  # a cancelled queued job never starts


def test_a_failed_job_is_not_retried_and_shows_its_error(gateway: str,
                                                         fake: FakeOpenAIAudio) -> None:
    job = wait(gateway, post(gateway, "audio/error-400").json()["id"])
    assert job["status"] == "failed" and "result" not in job
    assert job["error"]["type"] == "invalid_request_error"
    assert "fake error 400" in job["error"]["message"]
    time.sleep(1.5)  # a retried job would be running again by now
    assert fake.calls["error-400"] == 1


def test_a_full_queue_is_429_with_retry_after(make_gateway: GatewayFactory,
                                               fake: FakeOpenAIAudio,
                                               redis_url_or_none: str | None) -> None:
    url = make_gateway(jobs_config(fake, max_queued=1), redis_url=redis_url_or_none)
    first = post(url, "audio/slow-3000").json()["id"]
    wait(url, first, status="running")
    assert post(url, "audio/slow-10").status_code == 202
    refused = post(url, "audio/slow-10")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["type"] == "rate_limit_error"
    httpx.delete(f"{url}/v1/jobs/{first}", headers=ADMIN)


def test_jobs_metrics(gateway: str) -> None:
    wait(gateway, post(gateway, "audio/whisper").json()["id"])
    time.sleep(0.1)
    text = httpx.get(f"{gateway}/metrics").text
    assert 'gateway_jobs_total{status="succeeded",tool="transcribe"} 1.0' in text
    assert 'gateway_job_duration_seconds_count{tool="transcribe"} 1.0' in text
    assert "gateway_jobs_queued " in text


def test_a_bad_form_is_400_and_no_job(gateway: str) -> None:
    response = httpx.post(f"{gateway}/v1/tools/transcribe", headers=ADMIN,
                          data={"model": "audio/whisper"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"
    assert httpx.get(f"{gateway}/v1/jobs", headers=ADMIN).json()["data"] == []


def test_jobs_config_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"jobs\.workers: unknown key"):
        validate({"jobs": {"workers": 3}, "models": []})
    with pytest.raises(ConfigError, match=r"jobs\.concurrency"):
        validate({"jobs": {"concurrency": 0}, "models": []})


def test_saq_logs_jobs_without_their_arguments(caplog: pytest.LogCaptureFixture) -> None:
    """A job that raised is logged by saq with its whole record (prompts, users, results):
    the gateway's filter leaves the abridged record, and saq never logs below INFO."""
    from saq import Job

    from gateway.jobs.saq_engine import _quiet_saq_arguments

    saq_log, root = logging.getLogger("saq"), logging.getLogger()
    level, root_level = saq_log.level, root.level
    root.setLevel(logging.DEBUG)
    try:
        saq_log.setLevel(logging.NOTSET)
        _quiet_saq_arguments()
        assert not saq_log.isEnabledFor(logging.DEBUG)
        job = Job("extract", kwargs={"prompt": "the secret prompt", "user": "alice"},
                  result={"data": "extracted"})
        with caplog.at_level(logging.INFO):
            saq_log.error("Error processing job %s", job)
        assert "Error processing job Job<function: extract" in caplog.text
        assert not {"secret", "alice", "extracted"} & set(caplog.text.split())
        assert "the secret prompt" in repr(job)  # (what saq would have logged)
    finally:
        saq_log.setLevel(level)
        root.setLevel(root_level)
