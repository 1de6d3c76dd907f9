"""A cancel that lands while a worker holds a job it has taken but not yet marked active
(saq's BLMOVE, then a round trip later its ``active``), over loopback against a real
redis-server and the fake audio upstream. saq's worker wrote its copy of the job (``active``)
over the cancel's ``aborting`` and ran the job to the end, although the client had been told
it was cancelled. The worker is held in that window by a hook on the queue's ``dequeue``
(which returns once the job is taken), until the cancel's record is in Redis: no timing luck."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from saq import Job
from saq.queue.redis import ID_PREFIX

from gateway.jobs.inputs import STORE_PREFIX
from gateway.jobs.saq_queue import GatewayQueue
from tests.conftest import GatewayFactory
from tests.fakes.openai_audio_server import FakeOpenAIAudio
from tests.fakes.serve import RedisServer
from tests.test_jobs import ADMIN, jobs_config, post, wait


def until(check: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def stored_status(client: redis.Redis, job_id: str) -> str | None:
    """The job's status in saq's record (``aborting`` while cancelled, before it ends)."""
    raw = client.get(f"{ID_PREFIX}gateway:{job_id}")
    return None if raw is None else str(json.loads(raw)["status"])


def test_a_job_cancelled_as_its_worker_takes_it_never_runs(
        make_gateway: GatewayFactory, fake_audio: FakeOpenAIAudio, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    redis_server.flush()
    taken, go_on = threading.Event(), threading.Event()
    dequeue = GatewayQueue.dequeue

    async def dequeue_then_hold(self: GatewayQueue, timeout: float = 0.0,
                                poll_interval: float = 0.0) -> Job | None:
        job = await dequeue(self, timeout, poll_interval)
        if job is not None:  # taken (in the active list), not yet marked active
            taken.set()
            await asyncio.to_thread(go_on.wait, 30)
        return job

    monkeypatch.setattr(GatewayQueue, "dequeue", dequeue_then_hold)
    url = make_gateway(jobs_config(fake_audio), redis_url=redis_server.url)
    client = redis_server.client()
    try:
        job_id = post(url, "audio/whisper").json()["id"]
        assert taken.wait(30), "no worker took the job"
        assert stored_status(client, job_id) == "queued"
        with ThreadPoolExecutor(1) as pool:
            cancelling = pool.submit(httpx.delete, f"{url}/v1/jobs/{job_id}", headers=ADMIN,
                                     timeout=30)
            until(lambda: stored_status(client, job_id) == "aborting", "no cancel landed")
            go_on.set()  # the worker goes on: it marks the job active
            cancelled = cancelling.result()
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert wait(url, job_id)["status"] == "cancelled"
        until(lambda: stored_status(client, job_id) == "aborted", "the job did not end")
        until(lambda: not list(client.scan_iter(f"{STORE_PREFIX}*")), "input not deleted")
        assert client.llen("saq:gateway:active") == 0
        time.sleep(1.5)  # longer than a sweep: nothing runs it after all
        assert fake_audio.calls == {}  # no work ran
        assert httpx.get(f"{url}/v1/jobs/{job_id}", headers=ADMIN
                         ).json()["status"] == "cancelled"
    finally:
        go_on.set()
        client.close()
