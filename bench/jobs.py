"""Jobs on saq and Redis, in one run:

1. From POST /v1/tools/transcribe to the job's work reaching the upstream (a fake OpenAI audio
   server that notes when each request arrives): p50 and p99 over ``--latency-jobs`` jobs posted
   one after another to one ``gateway serve`` replica (target p50 <= 20 ms).
2. ``--jobs`` jobs of trivial work (the upstream answers after 20 ms) posted to two replicas
   (4 workers each, heartbeat 3 s, sweep every 1 s); replica 0 is killed with SIGKILL when half
   the jobs have reached the upstream. Every job must end ``succeeded`` and be completed exactly
   once: saq publishes ``complete`` each time it records a completion, from any replica, and
   the bench counts them per job. Prints the times, the statuses (read through /v1/jobs) and
   the upstream calls per job (a job that was running on the killed replica has two).

    PYTHONPATH=. cpu-exclusive python bench/jobs.py [--latency-jobs 200] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
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
        self.per_file: Counter[str] = Counter()
        answer = self._answer

        async def timed(request, task):  # type: ignore[no-untyped-def]
            await request.body()  # kept by the request, for the form and the fake
            form = await request.form()
            upload = form.get("file")
            name = getattr(upload, "filename", "")
            self.arrived.setdefault(name, time.perf_counter())
            self.per_file[name] += 1
            return await answer(request, task)

        self._answer = timed  # type: ignore[method-assign]


def post(client: httpx.Client, url: str, name: str, model: str = "audio/whisper") -> str:
    response = client.post(f"{url}/v1/tools/transcribe", headers=ADMIN,
                           files={"file": (name, b"RIFF" + bytes(200), "audio/wav")},
                           data={"model": model})
    response.raise_for_status()
    return str(response.json()["id"])


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


class Completions:
    """Every ``complete`` that saq publishes (once per recorded completion, from whichever
    replica recorded it), counted per job: the exactly-once check."""

    def __init__(self, redis: RedisServer) -> None:
        self.per_job: Counter[str] = Counter()
        self._pubsub = redis.client().pubsub()
        self._pubsub.psubscribe("saq:job:gateway:*")
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        with contextlib.suppress(Exception):  # ends when closed
            for message in self._pubsub.listen():
                if message["type"] == "pmessage" and message["data"] == b"complete":
                    self.per_job[message["channel"].decode().rsplit(":", 1)[-1]] += 1

    def close(self) -> None:
        self._pubsub.close()


def statuses(client: httpx.Client, url: str) -> Counter[str]:
    """Every job's status, read through the API (the master key lists all, 100 a page)."""
    counts: Counter[str] = Counter()
    after = None
    while True:
        page = client.get(f"{url}/v1/jobs", headers=ADMIN,
                          params={"limit": 100, **({"after": after} if after else {})}).json()
        counts.update(job["status"] for job in page["data"])
        if not page["has_more"]:
            return counts
        after = page["data"][-1]["id"]


def crash(fake: Clocked, redis: RedisServer, replicas: list[GatewayProcess], count: int,
          limit_s: float) -> None:
    """``count`` jobs of trivial work (the upstream answers after 20 ms) posted to both
    replicas; when half have reached the upstream, replica 0 is killed (SIGKILL)."""
    urls = [r.url for r in replicas]
    completions = Completions(redis)
    before = len(fake.per_file)
    start = time.perf_counter()
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: post(client, urls[i % 2], f"job{i}.wav",
                                           "audio/slow-20"), range(count)))
        posted = time.perf_counter() - start
        while len(fake.per_file) - before < count // 2:
            time.sleep(0.005)
        replicas[0].process.kill()
        replicas[0].process.wait(10)
        killed = time.perf_counter() - start
        deadline = time.monotonic() + limit_s
        seen: Counter[str] = Counter()
        while time.monotonic() < deadline:
            seen = statuses(client, urls[1])
            if seen.total() >= count and seen["queued"] + seen["running"] == 0:
                break
            time.sleep(0.5)
        ended = time.perf_counter() - start
    time.sleep(1)  # late notifications
    completions.close()
    calls = Counter(fake.per_file[f"job{i}.wav"] for i in range(count))
    recorded = Counter(completions.per_job[i] for i in ids)
    twice = sum(n for times, n in recorded.items() if times > 1)
    print(f"{count} jobs through two replicas, replica 0 killed when half had reached the "
          f"upstream: posted in {posted:.1f} s, killed at {killed:.1f} s, all ended at "
          f"{ended:.1f} s ({count / ended:.0f} jobs/s); statuses {dict(seen)}; completions "
          f"published per job {dict(sorted(recorded.items()))} (0: recorded by the killed "
          f"replica, which died before publishing); upstream calls per job "
          f"{dict(sorted(calls.items()))} (2: running on the killed replica)")
    if seen["queued"] + seen["running"] + seen["failed"] + seen["cancelled"] or twice:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--limit-s", type=float, default=240, help="the crash part's limit")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}")
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
            crash(fake, redis, replicas, args.jobs, args.limit_s)
        finally:
            for replica in replicas:
                if replica.process.poll() is None:
                    replica.stop()
            upstream.stop()
            redis.stop()
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
