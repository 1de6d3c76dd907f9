"""Two ``gateway serve`` replicas on one redis-server (saq): a job posted to one is seen by
the other, and a replica killed with SIGKILL mid-job loses nothing: after the heartbeat
timeout the other replica's sweep re-queues the job, runs it again from the start, and it
completes exactly once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from gateway.jobs.inputs import STORE_PREFIX
from tests.fakes.openai_audio_server import FakeOpenAIAudio
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, RedisServer
from tests.test_jobs import CLIP, wait
from tests.test_jobs_storage import eventually

MASTER = "sk-jobs-master"
ADMIN = {"Authorization": f"Bearer {MASTER}"}


@pytest.fixture
def fake(fake_audio: FakeOpenAIAudio) -> FakeOpenAIAudio:
    return fake_audio


@pytest.fixture
def start(tmp_path: Path, fake: FakeOpenAIAudio, redis_server: RedisServer
          ) -> Iterator[Callable[[], GatewayProcess]]:
    """A function that starts one more replica; every replica is stopped at the end."""
    redis_server.flush()
    config = tmp_path / "models.yaml"
    config.write_text(json.dumps({  # JSON is YAML; a short heartbeat and sweep for the test
        "jobs": {"concurrency": 1, "heartbeat_s": 2, "sweep_s": 1, "crash_retries": 2},
        "models": [{"name": "audio/*", "provider": "openai-compatible", "retries": 0,
                    "api_base": fake.url, "api_key": "sk-upstream"}]}))
    env = {"GATEWAY_MASTER_KEY": MASTER, "REDIS_URL": redis_server.url}
    started: list[GatewayProcess] = []

    def one_more() -> GatewayProcess:
        replica = GatewayProcess(str(config), env)
        started.append(replica)
        return replica.wait_ready()

    yield one_more
    for replica in started:
        if replica.process.poll() is None:
            replica.stop()


def completed(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    match = re.search(r'gateway_jobs_total\{status="succeeded",tool="transcribe"\} (\S+)', text)
    return float(match.group(1)) if match else 0.0


def test_a_killed_replicas_job_completes_once_on_the_other(start: Callable[[], GatewayProcess],
                                                           fake: FakeOpenAIAudio) -> None:
    a = start()
    posted = httpx.post(f"{a.url}/v1/tools/transcribe", headers=ADMIN, timeout=30,
                        files={"file": ("long.wav", CLIP, "audio/wav")},
                        data={"model": "audio/slow-once-120000"})
    assert posted.status_code == 202
    job_id = posted.json()["id"]
    wait(a.url, job_id, ADMIN, status="running")  # on a: the only replica so far
    b = start()
    assert httpx.get(f"{b.url}/v1/jobs/{job_id}", headers=ADMIN).json()["status"] == "running"
    a.process.kill()  # SIGKILL: no shutdown, the job stays "running" until its heartbeat ends
    a.process.wait(10)
    job = wait(b.url, job_id, ADMIN, timeout_s=60)
    assert job["status"] == "succeeded", job
    assert job["result"]["text"] == "heard 2004 bytes of long.wav"
    assert fake.calls["slow-once-120000"] == 2  # the killed attempt, and the one that completed
    time.sleep(3)  # longer than a heartbeat and a sweep: nothing runs it a third time
    assert fake.calls["slow-once-120000"] == 2
    assert completed(b.url) == 1


def test_a_job_cancelled_while_its_replica_dies_is_released(
        start: Callable[[], GatewayProcess], fake: FakeOpenAIAudio,
        redis_server: RedisServer) -> None:
    """The replica running a job is killed (SIGKILL) and the job is cancelled through the
    other before anything has noticed: nobody acknowledges the cancel. The other replica's
    sweep ends it once the dead worker's record has lapsed: still cancelled, not run again,
    its stored input deleted (it used to stay until it expired)."""
    a = start()
    job_id = httpx.post(f"{a.url}/v1/tools/transcribe", headers=ADMIN, timeout=30,
                        files={"file": ("long.wav", CLIP, "audio/wav")},
                        data={"model": "audio/slow-60000"}).json()["id"]
    wait(a.url, job_id, ADMIN, status="running")
    b = start()
    with redis.Redis.from_url(redis_server.url) as client:
        assert len(list(client.scan_iter(f"{STORE_PREFIX}*"))) == 1  # the upload
        a.process.kill()
        a.process.wait(10)
        cancelled = httpx.delete(f"{b.url}/v1/jobs/{job_id}", headers=ADMIN, timeout=30)
        assert cancelled.json()["status"] == "cancelled"
        eventually(lambda: not list(client.scan_iter(f"{STORE_PREFIX}*")))
    assert httpx.get(f"{b.url}/v1/jobs/{job_id}", headers=ADMIN).json()["status"] == "cancelled"
    time.sleep(3)  # longer than a heartbeat and a sweep: it is not run again
    assert fake.calls["slow-60000"] == 1


def test_a_gateway_worker_runs_what_an_api_only_replica_takes(
        tmp_path: Path, fake: FakeOpenAIAudio, redis_server: RedisServer) -> None:
    """``jobs.work: false``: the replica serves the API and runs nothing; ``gateway worker``
    (no HTTP) runs the job."""
    redis_server.flush()
    config = tmp_path / "models.yaml"
    config.write_text(json.dumps({
        "jobs": {"work": False, "heartbeat_s": 2, "sweep_s": 1},
        "models": [{"name": "audio/*", "provider": "openai-compatible", "retries": 0,
                    "api_base": fake.url, "api_key": "sk-upstream"}]}))
    env = {**os.environ, "GATEWAY_MASTER_KEY": MASTER, "REDIS_URL": redis_server.url}
    api = GatewayProcess(str(config), env).wait_ready()
    worker = None
    try:
        job_id = httpx.post(f"{api.url}/v1/tools/transcribe", headers=ADMIN, timeout=30,
                            files={"file": ("a.wav", CLIP, "audio/wav")},
                            data={"model": "audio/whisper"}).json()["id"]
        time.sleep(1.5)
        assert httpx.get(f"{api.url}/v1/jobs/{job_id}", headers=ADMIN
                         ).json()["status"] == "queued"  # nobody works yet
        worker = subprocess.Popen([sys.executable, "-m", "gateway", "worker", "--config",
                                   str(config), "--log-level", "warning"], env=env)
        job = wait(api.url, job_id, ADMIN, timeout_s=60)
        assert job["status"] == "succeeded" and job["result"]["text"].startswith("heard")
    finally:
        api.stop()
        if worker is not None:
            worker.terminate()
            assert worker.wait(20) == 0


def test_a_worker_without_redis_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text('{"models": []}')
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run([sys.executable, "-m", "gateway", "worker", "--config", str(config)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "needs REDIS_URL" in done.stderr


def test_inputs_survive_a_handed_back_job_and_go_with_a_cancelled_one(
        tmp_path: Path, fake: FakeOpenAIAudio, fake_openai: FakeOpenAI,
        redis_server: RedisServer) -> None:
    """Large inputs in one local directory both replicas use. Minutes of a recording: the
    replica running the job is stopped (SIGTERM) after the transcription, while the chat
    model's 429 is waited out; the job goes back to the queue and the other replica runs it
    again from the start, transcription included: the input a finished step had read is
    still there. Then it is deleted. A job running on one replica and cancelled through the
    other has its input deleted too."""
    from tests.test_jobs_storage import eventually, stored_files

    redis_server.flush()
    config = tmp_path / "models.yaml"
    inputs = tmp_path / "inputs"
    config.write_text(json.dumps({
        "jobs": {"concurrency": 1, "heartbeat_s": 2, "sweep_s": 1, "inline_max_mb": 0.001},
        "storage": {"path": str(inputs), "prefix": "in"},
        "models": [{"name": "audio/*", "provider": "openai-compatible", "retries": 0,
                    "api_base": fake.url, "api_key": "sk-upstream"},
                   {"name": "minutes", "provider": "openai-compatible", "retries": 1,
                    "model": "ratelimit-1-8", "api_base": fake_openai.url,  # type: ignore[attr-defined]
                    "api_key": "sk-upstream"}]}))
    env = {"GATEWAY_MASTER_KEY": MASTER, "REDIS_URL": redis_server.url}
    big = b"RIFF" + bytes(5000)
    replicas = [GatewayProcess(str(config), env).wait_ready()]
    try:
        job_id = httpx.post(f"{replicas[0].url}/v1/tools/summarize", headers=ADMIN,
                            timeout=30, files={"file": ("a.wav", big, "audio/wav")},
                            data={"model": "audio/whisper", "models": "minutes"}).json()["id"]
        replicas.append(GatewayProcess(str(config), env).wait_ready())
        deadline = time.monotonic() + 30
        while fake_openai.calls.get("ratelimit-1-8") != 1:  # transcribed; 429 waited out
            assert time.monotonic() < deadline
            time.sleep(0.05)
        replicas[0].stop()  # SIGTERM: the running job goes back to the queue
        job = wait(replicas[1].url, job_id, ADMIN, timeout_s=60)  # (input gone: "failed")
        assert job["status"] == "succeeded", job
        assert "heard 5004 bytes of a.wav" in job["result"]["combined"]["text"]
        assert fake.calls["whisper"] == 2 and fake_openai.calls["ratelimit-1-8"] == 2
        eventually(lambda: not stored_files(inputs))

        long_id = httpx.post(f"{replicas[1].url}/v1/tools/transcribe", headers=ADMIN,
                             timeout=30, files={"file": ("b.wav", big, "audio/wav")},
                             data={"model": "audio/slow-60000"}).json()["id"]
        wait(replicas[1].url, long_id, ADMIN, status="running")
        replicas.append(GatewayProcess(str(config), env).wait_ready())  # a third, idle
        cancelled = httpx.delete(f"{replicas[2].url}/v1/jobs/{long_id}", headers=ADMIN,
                                 timeout=30).json()
        assert cancelled["status"] == "cancelled"
        eventually(lambda: not stored_files(inputs))
        assert wait(replicas[1].url, long_id, ADMIN)["status"] == "cancelled"
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.stop()
