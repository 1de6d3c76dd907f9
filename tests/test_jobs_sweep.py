"""The gateway's sweep of saq's active list (gateway/jobs/saq_queue.py), against a real
redis-server: a job a worker has only just taken is not swept (saq's own sweep re-runs it); a
dead worker's job is re-queued; a job that ends during the sweep's wait stays ended; a job
with no attempt left is ended and its inputs released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from saq import Job
from saq.job import Status
from saq.utils import now

from gateway.jobs.saq_queue import GatewayQueue
from tests.fakes.serve import RedisServer


@pytest.fixture
async def queue(redis_server: RedisServer) -> AsyncIterator[GatewayQueue]:
    redis_server.flush()
    released: list[str] = []

    async def on_final(job: Job) -> None:
        released.append(job.key)

    queue = GatewayQueue.connect_url(redis_server.url, name="sweeptest", grace_s=0.5,
                                     on_final=on_final, swept_error_message="swept")
    queue.released = released  # type: ignore[attr-defined]
    await queue.connect()
    yield queue
    await queue.disconnect()


async def taken(queue: GatewayQueue, key: str, **fields: object) -> Job:
    """A job enqueued and moved to the active list, as a worker's BLMOVE does."""
    await queue.enqueue(Job("work", key=key, **fields))  # type: ignore[arg-type]
    job = await queue.dequeue(timeout=1)
    assert job is not None and job.key == key
    return job


async def active_ids(queue: GatewayQueue) -> list[str]:
    ids = await queue.redis.lrange(queue.namespace("active"), 0, -1)
    return [queue.job_key_from_id(i.decode() if isinstance(i, bytes) else i) for i in ids]


async def test_a_just_taken_job_is_spared_and_a_dead_takers_is_requeued(
        queue: GatewayQueue) -> None:
    alive = await taken(queue, "alive")
    await taken(queue, "dead")  # its worker died before marking it active

    async def worker_marks_active() -> None:
        await asyncio.sleep(0.1)  # inside the sweep's grace
        alive.attempts += 1
        await alive.update(status=Status.ACTIVE)

    swept, _ = await asyncio.gather(queue.sweep(lock=1, abort=0.5), worker_marks_active())
    assert swept == [queue.job_id("dead")]
    assert await active_ids(queue) == ["alive"]
    alive_now, dead_now = await queue.jobs(["alive", "dead"])
    assert alive_now is not None and alive_now.status == Status.ACTIVE
    assert dead_now is not None and dead_now.status == Status.QUEUED  # back in the queue
    assert await queue.count("queued") == 1


async def test_dead_workers_jobs_are_requeued_or_ended(queue: GatewayQueue) -> None:
    """Three stuck jobs (heartbeat long past): two with attempts left go back to the queue;
    the one without is ended ``aborted`` and released."""
    for key, retries in (("a", 3), ("b", 3), ("last", 1)):
        job = await taken(queue, key, heartbeat=1, retries=retries)
        job.attempts = 1
        await job.update(status=Status.ACTIVE, touched=1)  # touched long ago
        job.touched = 1
        await queue._update(job, status=Status.ACTIVE)  # (update() stamps it now)
    swept = await queue.sweep(lock=1, abort=0.3)
    assert sorted(swept) == sorted(queue.job_id(k) for k in ("a", "b", "last"))
    a, b, last = await queue.jobs(["a", "b", "last"])
    assert a is not None and a.status == Status.QUEUED
    assert b is not None and b.status == Status.QUEUED
    assert last is not None and last.status == Status.ABORTED
    assert queue.released == ["last"]  # type: ignore[attr-defined]
    assert await active_ids(queue) == []


async def test_a_job_that_ends_during_the_wait_stays_ended(queue: GatewayQueue) -> None:
    """A stuck-looking job whose (slow, alive) worker completes it while the sweep waits for
    the abort: saq's sweep re-queued it (it would run twice); here it stays complete."""
    job = await taken(queue, "slow", heartbeat=1, retries=3)
    job.attempts, job.touched = 1, 1
    await queue._update(job, status=Status.ACTIVE)

    async def worker_completes() -> None:
        await asyncio.sleep(0.2)
        await job.finish(Status.COMPLETE, result={"ok": True})

    await asyncio.gather(queue.sweep(lock=1, abort=2), worker_completes())
    stored = await queue.job("slow")
    assert stored is not None and stored.status == Status.COMPLETE
    assert stored.result == {"ok": True}
    assert await queue.count("queued") == 0 and await active_ids(queue) == []


@pytest.mark.parametrize("worker", ["lapsed", "unknown"])
async def test_a_job_cancelled_while_its_worker_dies_is_ended_and_released(
        queue: GatewayQueue, worker: str) -> None:
    """``DELETE /v1/jobs/{id}`` aborts a running job; its worker died before acknowledging
    (a killed replica). saq's abort drops the job from the active list at once, so no sweep
    ever saw it again: it stayed ``aborting`` and its inputs were kept until they expired.
    Here it stays listed until a worker ends it, and the sweep ends it ``aborted`` (still
    cancelled, not re-run) and releases it: at once when its worker's record has lapsed, after
    the heartbeat when the worker is unknown."""
    job = await taken(queue, "cancelled", heartbeat=1, retries=3, timeout=600)
    job.attempts, job.worker_id = 1, "dead-worker" if worker == "lapsed" else None
    job.started = job.touched = now()  # running, its heartbeat fresh
    await queue._update(job, status=Status.ACTIVE)
    await queue.abort(job, "cancelled")  # what SaqEngine.cancel does; nobody acknowledges
    if worker == "unknown":
        assert await queue.sweep(lock=1, abort=0.3) == [queue.job_id("cancelled")]
        assert queue.released == []  # type: ignore[attr-defined]  # (may be alive: waits)
        await asyncio.sleep(1.2)  # past the heartbeat
        await queue.redis.delete(queue.namespace("sweep"))  # (the sweep's lock)
    assert await queue.sweep(lock=1, abort=0.3) == [queue.job_id("cancelled")]
    stored = await queue.job("cancelled")
    assert stored is not None and stored.status == Status.ABORTED
    assert stored.error == "cancelled"
    assert queue.released == ["cancelled"]  # type: ignore[attr-defined]
    assert await active_ids(queue) == [] and await queue.count("queued") == 0


async def test_a_cancelled_job_of_a_live_worker_is_left_to_it(queue: GatewayQueue) -> None:
    """Its worker is alive (its ``worker_info`` record is there, its heartbeat fresh): the
    sweep leaves the job to the worker, which stops it, ends it and releases it."""
    job = await taken(queue, "alive", heartbeat=30, retries=3, timeout=600)
    job.attempts, job.worker_id = 1, "live-worker"
    job.started = job.touched = now()
    await queue.redis.set(queue.namespace("worker_info:live-worker"), "{}", ex=30)
    await queue._update(job, status=Status.ACTIVE)
    await queue.abort(job, "cancelled")
    await queue.sweep(lock=1, abort=0.3)
    stored = await queue.job("alive")
    assert stored is not None and stored.status == Status.ABORTING  # (shown as cancelled)
    assert queue.released == [] and await active_ids(queue) == ["alive"]  # type: ignore[attr-defined]
    await queue.finish_abort(stored)  # the worker acknowledges
    assert await active_ids(queue) == []


async def test_a_job_cancelled_just_as_it_was_taken(queue: GatewayQueue) -> None:
    """Cancelled between a worker's BLMOVE and its ``active``: looked at again after the
    grace; the one a worker then marks active is left to it, the one whose taker died is
    ended, cancelled, and released."""
    taken_ = await taken(queue, "taken", retries=3, timeout=600)
    await taken(queue, "orphan", retries=3, timeout=600)
    for key in ("taken", "orphan"):
        job = await queue.job(key)
        assert job is not None
        await queue.abort(job, "cancelled")

    async def worker_marks_active() -> None:
        await asyncio.sleep(0.1)  # inside the sweep's grace
        taken_.attempts, taken_.started, taken_.worker_id = 1, now(), "w"
        await taken_.update(status=Status.ACTIVE)

    swept, _ = await asyncio.gather(queue.sweep(lock=1, abort=0.3), worker_marks_active())
    assert swept == [queue.job_id("orphan")]
    orphan = await queue.job("orphan")
    assert orphan is not None and orphan.status == Status.ABORTED
    assert orphan.error == "cancelled" and queue.released == ["orphan"]  # type: ignore[attr-defined]
    assert await active_ids(queue) == ["taken"]


async def test_a_workers_late_writes_keep_a_cancel_and_an_end(queue: GatewayQueue) -> None:
    """saq's worker writes its copy of the job whole: its ``active`` (or a heartbeat) after a
    cancel wrote ``active`` over the cancel, and a late heartbeat rewrote an ended job (without
    its ttl). Here the worker's fields are written, the cancel kept; an ended job is left."""
    job = await taken(queue, "late", retries=3, timeout=600, ttl=600)
    cancelling = await queue.job("late")
    assert cancelling is not None
    await queue.abort(cancelling, "cancelled")
    job.attempts, job.started, job.worker_id = 1, now(), "w"
    await job.update(status=Status.ACTIVE)  # the worker marks the job it took active
    stored = await queue.job("late")
    assert stored is not None and stored.status == Status.ABORTING
    assert stored.error == "cancelled" and stored.worker_id == "w" and stored.started
    await queue.finish(stored, Status.ABORTED, error="cancelled")
    await job.update(progress=0.5)  # a late heartbeat or progress report
    ended = await queue.job("late")
    assert ended is not None and ended.status == Status.ABORTED and ended.progress == 0
    assert 0 < await queue.redis.ttl(queue.job_id("late")) <= 600
