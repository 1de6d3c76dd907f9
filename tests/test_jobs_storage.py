"""Large job inputs in object storage (obstore): an S3-compatible server (moto's server
mode, since no MinIO binary is reachable here) and a local directory; small ones stay in the
store. Each input is there while its job waits or runs, and deleted once the job has ended:
succeeded, failed, or cancelled (queued or running), on both engines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from gateway.config import ConfigError, validate
from tests.conftest import GatewayFactory
from tests.fakes.openai_audio_server import FakeOpenAIAudio
from tests.test_jobs import ADMIN, wait

pytest.importorskip("obstore")
moto_server = pytest.importorskip("moto.server")
BIG = b"RIFF" + bytes(5000)  # over inline_max_mb below


@pytest.fixture
def fake(fake_audio: FakeOpenAIAudio) -> FakeOpenAIAudio:
    return fake_audio


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket="jobs")
    yield url, client
    server.stop()


def config(fake: FakeOpenAIAudio, storage: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": {"inline_max_mb": 0.001}, "storage": storage,
            "models": [{"name": "audio/*", "provider": "openai-compatible", "retries": 0,
                        "api_base": fake.url, "api_key": "sk-upstream"}]}


def post(url: str, data: bytes, model: str = "audio/slow-1500") -> str:
    posted = httpx.post(f"{url}/v1/tools/transcribe", headers=ADMIN, timeout=30,
                        files={"file": ("big.wav", data, "audio/wav")}, data={"model": model})
    assert posted.status_code == 202, posted.text
    return str(posted.json()["id"])


def eventually(check: Callable[[], bool], timeout_s: float = 10) -> None:
    """``check`` becomes true: inputs are deleted just after the job's final state is
    recorded (the state a client reads first)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the input was not deleted"
        time.sleep(0.05)


def keys(client: Any) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket="jobs").get("Contents", [])]


def test_a_large_input_goes_to_s3_and_is_deleted_at_the_end(
        make_gateway: GatewayFactory, fake: FakeOpenAIAudio, s3: tuple[str, Any],
        redis_url_or_none: str | None) -> None:
    endpoint, client = s3
    url = make_gateway(config(fake, {"backend": "s3", "bucket": "jobs", "endpoint": endpoint,
                                     "access_key_id": "test", "secret_access_key": "test",
                                     "prefix": "inputs"}), redis_url=redis_url_or_none)
    job_id = post(url, BIG)
    stored = keys(client)
    assert len(stored) == 1 and stored[0].startswith("inputs/")
    body = client.get_object(Bucket="jobs", Key=stored[0])["Body"].read()
    assert body == BIG
    job = wait(url, job_id)
    assert job["status"] == "succeeded" and job["result"]["text"] == "heard 5004 bytes of big.wav"
    eventually(lambda: keys(client) == [])
    small = wait(url, post(url, b"RIFF" + bytes(100), "audio/whisper"))
    assert small["status"] == "succeeded" and keys(client) == []  # inline: never in S3
    failed = wait(url, post(url, BIG, "audio/error-400"))
    assert failed["status"] == "failed"
    eventually(lambda: keys(client) == [])  # a failed job's input too


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_local_directory(make_gateway: GatewayFactory, fake: FakeOpenAIAudio,
                           tmp_path: Path) -> None:
    url = make_gateway(config(fake, {"path": str(tmp_path), "prefix": "in"}))
    job_id = post(url, BIG)
    files = stored_files(tmp_path / "in")
    assert len(files) == 1 and files[0].read_bytes() == BIG
    assert wait(url, job_id)["status"] == "succeeded"
    eventually(lambda: not stored_files(tmp_path / "in"))


def test_cancelled_jobs_inputs_are_deleted(make_gateway: GatewayFactory, fake: FakeOpenAIAudio,
                                           tmp_path: Path, redis_url_or_none: str | None
                                           ) -> None:
    """One worker: a long job runs, a second waits; both are cancelled, and both inputs
    (in a local directory) are deleted, not left to expire. A failed job's input too."""
    url = make_gateway({**config(fake, {"path": str(tmp_path), "prefix": "in"}),
                        "jobs": {"inline_max_mb": 0.001, "concurrency": 1, "heartbeat_s": 5,
                                 "sweep_s": 1}}, redis_url=redis_url_or_none)
    running = post(url, BIG, "audio/slow-60000")
    wait(url, running, status="running")
    queued = post(url, BIG + b"2", "audio/whisper")
    assert len(stored_files(tmp_path / "in")) == 2
    for job_id in (queued, running):  # the queued one first: it must never start
        cancelled = httpx.delete(f"{url}/v1/jobs/{job_id}", headers=ADMIN, timeout=30).json()
        assert cancelled["status"] == "cancelled"
    eventually(lambda: not stored_files(tmp_path / "in"))
    assert fake.calls.get("whisper") is None  # the queued job never ran
    failed = wait(url, post(url, BIG, "audio/error-400"))
    assert failed["status"] == "failed"
    eventually(lambda: not stored_files(tmp_path / "in"))


def test_s3_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match="bucket"):
        validate({"storage": {"backend": "s3"}, "models": []})
