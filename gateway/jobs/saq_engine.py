"""The engine on Redis: saq (a kept distributed queue). Every replica runs a worker inside its
own event loop, so a job posted to one replica is visible on every replica and may run on any.

saq's defaults are wrong for long jobs (timeout 10 s, heartbeat 0, retries 1, results kept
600 s), so every job is enqueued with its kind's timeout, the configured heartbeat, crash
retries and result ttl. A job that raises gets ``retries = 0`` first (failed, not retried); a
worker that dies mid-job stops touching its job, the sweep sees the heartbeat expire and
re-queues it, and another replica runs it again from the start (the sweep is
``GatewayQueue``'s: saq's own re-runs healthy jobs). A heartbeat task beside each job keeps a
long single step (one long transcription) alive. saq has no Redis Cluster support.

``release(args)`` (delete the job's stored inputs) runs once the job's final state is
recorded: by the worker that ended it (succeeded, failed, or cancelled while running), by
``cancel`` for a job that never started (or by its worker, for one cancelled just as the
worker took it: it is stopped before any work), by the sweep for a dead worker's job with no
attempt left or one cancelled while its worker was dying. Never before: a job handed back to the
queue (a stopping or killed worker) runs again from the start and reads its inputs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from saq import Job, Worker
from saq.job import Status as SaqStatus
from saq.types import Context, PartialTimersDict

from gateway.jobs.engine import (
    FINAL,
    JobFunction,
    JobTokens,
    JobView,
    OnEnd,
    Release,
    Status,
    counting_tokens,
    error_body,
    new_id,
    too_many,
)
from gateway.jobs.saq_queue import GatewayQueue

log = logging.getLogger("gateway")


class _JobsWithoutArguments(logging.Filter):
    """saq logs a job that raised with its whole record (``repr``: its arguments, which hold
    prompts, users and transcripts, and its result): log the abridged record instead, as saq
    does at INFO. Its DEBUG lines carry the whole record too, so saq never logs below INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.info(False) if isinstance(a, Job) else a for a in record.args)
        return True


def _quiet_saq_arguments() -> None:
    saq_log = logging.getLogger("saq")
    if not any(isinstance(f, _JobsWithoutArguments) for f in saq_log.filters):
        saq_log.addFilter(_JobsWithoutArguments())
    if saq_log.getEffectiveLevel() < logging.INFO:
        saq_log.setLevel(logging.INFO)

_STATUS: dict[SaqStatus, Status] = {
    SaqStatus.NEW: "queued", SaqStatus.QUEUED: "queued", SaqStatus.ACTIVE: "running",
    SaqStatus.ABORTING: "cancelled", SaqStatus.ABORTED: "cancelled",
    SaqStatus.FAILED: "failed", SaqStatus.COMPLETE: "succeeded"}
_ENDED = frozenset({SaqStatus.COMPLETE, SaqStatus.FAILED, SaqStatus.ABORTED})
_INDEX = "gateway:jobs:index"
_SWEPT = "swept"


@dataclass(frozen=True, slots=True)
class Timing:
    """Per job kind: its timeout; for all: heartbeat, crash retries, result ttl, sweep."""

    timeouts: Mapping[str, int]
    heartbeat_s: int = 30
    crash_retries: int = 2
    result_ttl_s: int = 86400
    sweep_s: int = 10


def view(job: Job) -> JobView:
    meta = job.meta
    status = _STATUS[job.status]
    if job.error == _SWEPT and job.status == SaqStatus.ABORTING:
        status = "queued"  # swept: a dead worker's job on its way back to the queue
    elif job.error == _SWEPT and job.status == SaqStatus.ABORTED:
        status = "failed"  # a job whose every attempt died with its worker
    error = meta.get("error") or {"message": "The job's worker died on every attempt.",
                                  "type": "api_error", "code": "worker_lost"}
    return JobView(job.key, job.function, meta.get("owner"), meta.get("created", 0.0), status,
                   1.0 if status == "succeeded" else job.progress, meta.get("stage", ""),
                   job.result, error if status == "failed" else None)


@dataclass(slots=True)
class SaqEngine:
    url: str
    functions: Mapping[str, JobFunction]
    timing: Timing
    concurrency: int = 2
    max_queued: int = 100
    on_end: OnEnd | None = None
    release: Release | None = None
    work: bool = True  # False: post and read only, run nothing here
    backend: str = "redis"
    _queue: GatewayQueue | None = None
    _worker: Worker[Context] | None = None
    _task: asyncio.Task[None] | None = None
    _running: dict[str, float] = field(default_factory=dict)

    @property
    def queue(self) -> GatewayQueue:
        assert self._queue is not None, "the engine has not started"
        return self._queue

    async def start(self) -> None:
        _quiet_saq_arguments()
        self._queue = GatewayQueue.connect_url(self.url, name="gateway",
                                               swept_error_message=_SWEPT,
                                               on_final=self._release)
        await self._queue.connect()
        if not self.work:
            return
        # (integers) worker_info: its record lapses (timer + 1 s) before a heartbeat does, so
        # the sweep knows a dead worker's jobs at once (GatewayQueue)
        info_s = max(1, min(10, self.timing.heartbeat_s // 2))
        timers: PartialTimersDict = {"sweep": self.timing.sweep_s, "abort": 1,
                                     "schedule": 1, "worker_info": info_s}
        self._worker = Worker(self._queue, [(n, self._runner(n)) for n in self.functions],
                              concurrency=self.concurrency, timers=timers,
                              after_process=self._after)
        self._worker.SIGNALS = []  # uvicorn keeps its signals
        self._task = asyncio.create_task(self._worker.start())

    async def aclose(self) -> None:
        if self._worker is not None:
            await self._worker.stop()  # a running job goes back to the queue at once
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._queue is not None:
            await self._queue.disconnect()

    def _runner(self, tool: str) -> Any:
        function = self.functions[tool]

        async def run(ctx: Context, **args: Any) -> dict[str, Any]:
            job = ctx["job"]
            await self._stop_if_cancelled(job)
            started = time.monotonic()

            async def report(progress: float, stage: str) -> None:
                job.meta["stage"] = stage
                await job.update(progress=max(0.0, min(1.0, progress)), meta=job.meta)

            beat = asyncio.create_task(self._heartbeat(job))
            with counting_tokens() as tokens:
                try:
                    result = await function(args, report)
                except asyncio.CancelledError:
                    self._ended(job, "cancelled", started, tokens)
                    raise
                except Exception as exc:
                    job.retries = 0  # failed, not retried like a crashed job
                    job.meta["error"] = error_body(exc)
                    self._ended(job, "failed", started, tokens)
                    raise
                finally:
                    beat.cancel()
            self._ended(job, "succeeded", started, tokens)
            return result

        run.__qualname__ = run.__name__ = tool
        return run

    async def _stop_if_cancelled(self, job: Job) -> None:
        """Before any work: a job cancelled since its worker took it (between BLMOVE and
        ``active``, whose write kept the cancel: GatewayQueue) is stopped as saq's worker
        stops a cancelled running job (its abort timer): its task context says aborted and
        the task ends cancelled; saq then ends the job ``aborted`` and ``_after`` releases
        it."""
        stored = await self.queue.job(job.key)
        if stored is None or stored.status not in (SaqStatus.ABORTING, SaqStatus.ABORTED):
            return
        assert self._worker is not None
        # (saq sets the job's task context before the task first runs)
        self._worker.job_task_contexts[job]["aborted"] = stored.error or "cancelled"
        log.info("job %s was cancelled as it was taken: not run", job.key)
        raise asyncio.CancelledError

    async def _after(self, ctx: Context) -> None:
        """After saq has recorded a job's outcome: release an ended job's inputs (a job
        handed back to the queue keeps them, and so does one a sweep aborted: the sweep
        re-queues it, or ends and releases it itself)."""
        job = ctx.get("job")
        if job is not None and job.status in _ENDED and job.error != _SWEPT:
            await self._release(job)

    async def _release(self, job: Job) -> None:
        if self.release is not None:
            try:
                await self.release(job.kwargs or {})
            except Exception as exc:  # left to expire; never fails the worker
                log.warning("inputs of job %s not deleted: %s", job.key, type(exc).__name__)

    def _ended(self, job: Job, status: Status, started: float, tokens: JobTokens) -> None:
        if self.on_end is not None:
            error = job.meta.get("error") if status == "failed" else None
            self.on_end(JobView(job.key, job.function, job.meta.get("owner"),
                                job.meta.get("created", 0.0), status, error=error),
                        time.monotonic() - started, tokens)

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(max(self.timing.heartbeat_s / 3, 0.2))
            with contextlib.suppress(Exception):
                await job.update()

    async def submit(self, tool: str, owner: str | None, args: dict[str, Any]) -> JobView:
        queued = await self.queued()
        if queued >= self.max_queued:
            raise too_many(queued, self.max_queued)
        timing, created = self.timing, time.time()
        job = Job(tool, kwargs=args, key=new_id(), timeout=timing.timeouts.get(tool, 3600),
                  heartbeat=timing.heartbeat_s, retries=timing.crash_retries + 1,
                  ttl=timing.result_ttl_s, meta={"owner": owner, "created": created})
        redis = self._redis()
        async with redis.pipeline(transaction=False) as pipe:
            for name in (_INDEX, f"{_INDEX}:{owner}"):
                pipe.zadd(name, {job.key: created})
                pipe.expire(name, timing.result_ttl_s)
            await pipe.execute()
        await self.queue.enqueue(job)
        return view(job)

    def _redis(self) -> Any:
        return self.queue.redis

    async def get(self, job_id: str) -> JobView | None:
        if not job_id.startswith("job_"):
            return None
        job = await self.queue.job(job_id)
        return view(job) if job is not None else None

    async def list(self, owner: str | None, status: str | None, limit: int,
                   after: str | None) -> tuple[list[JobView], bool]:
        index = _INDEX if owner is None else f"{_INDEX}:{owner}"
        redis = self._redis()
        top = "+inf"
        if after is not None:
            score = await redis.zscore(index, after)
            if score is None:
                return [], False
            top = f"({score}"
        found: list[JobView] = []
        offset = 0
        while len(found) <= limit:
            ids = await redis.zrevrangebyscore(index, top, "-inf", start=offset, num=200)
            if not ids:
                break
            offset += len(ids)
            for job in await self.queue.jobs(i.decode() for i in ids):
                if job is not None and (status is None or view(job).status == status):
                    found.append(view(job))
        return found[:limit], len(found) > limit

    async def cancel(self, job_id: str) -> JobView | None:
        job = await self.queue.job(job_id) if job_id.startswith("job_") else None
        if job is None:
            return None
        if _STATUS[job.status] not in FINAL:
            await self.queue.abort(job, "cancelled")
            with contextlib.suppress(asyncio.TimeoutError):
                await job.refresh(5)
            if job.status in _ENDED:  # (a worker that ended it has released it too: twice
                await self._release(job)  # is harmless)
        return view(job)

    async def queued(self) -> int:
        return await self.queue.count("queued")
