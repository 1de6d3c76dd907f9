"""Jobs on saq and Redis, in one run:

1. From POST /v1/tools/transcribe to the job's work reaching the upstream (a fake OpenAI audio
   server that notes when each request arrives): p50 and p99 over ``--latency-jobs`` jobs posted
   one after another to one ``gateway serve`` replica (target p50 <= 20 ms).
2. ``--jobs`` jobs of trivial work posted to two replicas, one of them killed with SIGKILL
   half way: every job must end ``succeeded``; prints how many upstream calls were made (a job
   that was running on the killed replica is run again: calls - jobs).

    PYTHONPATH=. flock -x /tmp/cpu.lock python bench/jobs.py [--latency-jobs 200] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_audio_server import FakeOpenAIAudio  # noqa: E402
from tests.fakes.serve import GatewayProcess, RedisServer, ServerThread  # noqa: E402

MASTER = "sk-bench-jobs"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
TARGET_P50_MS = 20.0


class Clocked(FakeOpenAIAudio):
    """The fake audio upstream, noting when each file arrived (by its name)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        answer = self._answer

        async def timed(request, task):  # type: ignore[no-untyped-def]
            await request.body()  # kept by the request, for the form and the fake
            form = await request.form()
            upload = form.get("file")
            self.arrived.setdefault(getattr(upload, "filename", ""), time.perf_counter())
            return await answer(request, task)

        self._answer = timed  # type: ignore[method-assign]


def post(client: httpx.Client, url: str, name: str) -> str:
    response = client.post(f"{url}/v1/tools/transcribe", headers=ADMIN,
                           files={"file": (name, b"RIFF" + bytes(200), "audio/wav")},
                           data={"model": "audio/whisper"})
    response.raise_for_status()
    return str(response.json()["id"])


def status(client: httpx.Client, urls: list[str], job_id: str) -> str:
    for url in urls:
        try:
            return str(client.get(f"{url}/v1/jobs/{job_id}", headers=ADMIN).json()["status"])
        except httpx.TransportError:
            continue
    return "unknown"


def latency(fake: Clocked, url: str, count: int) -> None:
    spans = []
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            name = f"lat{i}.wav"
            start = time.perf_counter()
            post(client, url, name)
            while name not in fake.arrived:
                time.sleep(0.0005)
            spans.append((fake.arrived[name] - start) * 1000)
    spans.sort()
    p50, p99 = statistics.median(spans), spans[int(len(spans) * 0.99) - 1]
    verdict = "ok" if p50 <= TARGET_P50_MS else "over target"
    print(f"POST -> running, {count} jobs: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(target p50 <= {TARGET_P50_MS:.0f} ms: {verdict})")


def crash(fake: Clocked, replicas: list[GatewayProcess], count: int) -> None:
    urls = [r.url for r in replicas]
    calls_before = fake.calls.get("whisper", 0)
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: post(client, urls[i % 2], f"job{i}.wav"),
                            range(count // 2)))
        replicas[0].process.kill()
        replicas[0].process.wait(10)
        ids += list(pool.map(lambda i: post(client, urls[1], f"job{i}.wav"),
                             range(count // 2, count)))
        deadline = time.monotonic() + 600
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            done = {i for i in pending if status(client, urls[1:], i) == "succeeded"}
            pending -= done
            if pending:
                time.sleep(1)
    calls = fake.calls.get("whisper", 0) - calls_before
    print(f"{count} jobs through two replicas, one killed half way: "
          f"{count - len(pending)} succeeded, {len(pending)} not; {calls} upstream calls "
          f"({calls - count} re-run after the kill)")
    if pending:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f}")
    redis = RedisServer().start()
    fake = Clocked()
    upstream = ServerThread(fake.app).start()
    fake.url = f"{upstream.url}/v1"
    replicas: list[GatewayProcess] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "models.yaml"
        config.write_text(json.dumps({
            "jobs": {"concurrency": 4, "max_queued": 100000, "heartbeat_s": 3, "sweep_s": 1},
            "models": [{"name": "audio/*", "provider": "openai-compatible",
                        "api_base": fake.url, "api_key": "sk-upstream"}]}))
        env = {**os.environ, "GATEWAY_MASTER_KEY": MASTER, "REDIS_URL": redis.url}
        try:
            replicas = [GatewayProcess(str(config), env).wait_ready() for _ in range(2)]
            latency(fake, replicas[1].url, args.latency_jobs)
            crash(fake, replicas, args.jobs)
        finally:
            for replica in replicas:
                if replica.process.poll() is None:
                    replica.stop()
            upstream.stop()
            redis.stop()
    print(f"load: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
