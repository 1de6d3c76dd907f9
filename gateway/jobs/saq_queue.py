"""saq's Redis queue with a sweep that neither re-runs a healthy job nor makes a dead
worker's jobs wait in line.

saq's own sweep (0.26) has three faults the gateway's jobs meet (tobymao/saq#124, #277):

- a worker takes a job by moving its id to the active list (BLMOVE) and marks it ``active``
  a round trip later; a sweep in between finds a ``queued`` job in the active list, aborts
  and re-queues it, and the job runs twice, both runs completing. Here such a job is looked
  at again after ``grace_s``: one that has become active (or ended) in the meantime is left
  alone; one still ``queued`` is a worker's that died between the two steps.
- it waits up to ``abort`` seconds for each swept job's worker to acknowledge the abort, one
  job after the other: a killed replica that ran N jobs held them back N x 5 s. Here the
  swept jobs are handled at once (one wait in all), and there is no wait at all for a job
  whose worker is known dead (its ``worker_info`` record, rewritten by a live worker
  more often than a heartbeat lasts, has expired).
- a job that ended during that wait was re-queued anyway; here it is left ended.

A swept job that has no attempt left is finished ``aborted`` and ``on_final`` is called for
it (its stored inputs are deleted), as a worker does for the jobs it ends.

A job cancelled while a worker has it (``abort``) is ``aborting`` until that worker stops it
and ends it. saq's abort drops it from the active list at once, so when the worker had died
(a killed replica) nobody ever ended it: it stayed ``aborting`` and its inputs were kept
until they expired. Here it stays in the active list until it is ended, and the sweep ends a
cancelled job whose worker is dead (its record lapsed, or its heartbeat stale) ``aborted``,
with ``on_final``: it is never re-run.

A worker's writes of its job (marking it ``active`` after BLMOVE, its heartbeat, its
progress) never write over a cancel. saq writes the worker's copy of the record whole, so a
cancel that landed after the worker had read the job (between its BLMOVE and ``active``, or
between a heartbeat's read and write) was overwritten with ``active``: the job ran to the end
although the client had been told it was cancelled. Here the record is read and written in
one transaction (WATCH): a job being cancelled (``aborting``) keeps that status and its
error, an ended one is not written again, and the worker (SaqEngine) stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import WatchError
from saq import Job
from saq.job import TERMINAL_STATUSES, Status
from saq.queue.redis import RedisQueue

log = logging.getLogger("gateway")

OnFinal = Callable[[Job], Awaitable[None]]

_LIST_ACTIVE = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""


class GatewayQueue(RedisQueue):
    def __init__(self, redis: Any, *, on_final: OnFinal | None = None, grace_s: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(redis, **kwargs)
        self.on_final = on_final
        self.grace_s = grace_s
        self._list_script: Any = None

    @classmethod
    def connect_url(cls, url: str, **kwargs: Any) -> GatewayQueue:
        from redis import asyncio as aioredis

        return cls(aioredis.from_url(url), **kwargs)

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        """saq's write of a worker's copy of its job, less writing over a cancel or an end
        that landed since the worker read the job (module doc)."""
        pipe: Any = self.redis.pipeline(transaction=True)
        async with pipe:
            while True:
                try:
                    await pipe.watch(job.id)
                    stored = self.deserialize(await pipe.get(job.id))
                    if stored is not None and stored.status in TERMINAL_STATUSES:
                        return  # ended (swept, cancelled): a worker's late write is stale
                    if stored is not None and stored.status == Status.ABORTING:
                        job.status, job.error = stored.status, stored.error  # keep the cancel
                    else:
                        job.status = status or (stored.status if stored else job.status)
                    pipe.multi()
                    await pipe.set(job.id, self.serialize(job)).execute()
                    break
                except WatchError:
                    continue  # written meanwhile (a cancel, say): read it again
        await self.notify(job)

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """saq's abort, less its removal of a taken job from the active list (its worker's
        end of the job removes it; until then the sweep sees it)."""
        async with self._op_sem:
            pipe: Any = self.redis.pipeline(transaction=True)
            async with pipe:
                job.status, job.error = Status.ABORTING, error
                dequeued, *_ = await (pipe.lrem(self._queued, 0, job.id)
                                      .zrem(self._incomplete, job.id)
                                      .set(job.id, self.serialize(job))
                                      .set(job.abort_id, error, px=int(ttl * 1000))
                                      .publish(job.id, job.status).execute())
            if dequeued:  # (still queued: nobody has it; ended now)
                await self.finish(job, Status.ABORTED, error=error)
                await self.redis.delete(job.abort_id)

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Re-queue (or end) the jobs of dead workers; the ids swept."""
        if self._list_script is None:
            self._list_script = self.redis.register_script(_LIST_ACTIVE)
        listed = await self._list_script(keys=[self._sweep, self._active], args=[lock],
                                         client=self.redis)
        suspects: dict[bytes, Job | None] = {}
        for job_id, raw in listed:
            job = self.deserialize(raw)
            if job is None or job.status != Status.ACTIVE or job.stuck:
                suspects[job_id] = job
        await self._spare_fresh(suspects)
        await asyncio.gather(*(self._sweep_one(job_id, job, abort)
                               for job_id, job in suspects.items()))
        return [job_id.decode() for job_id in suspects]

    async def _spare_fresh(self, suspects: dict[bytes, Job | None]) -> None:
        """Drop from ``suspects`` the jobs that were only between BLMOVE and ``active`` (a
        job cancelled then too); the others are looked at as they are after the grace."""
        fresh = [i for i, job in suspects.items() if job is not None and self._fresh(job)]
        if not fresh:
            return
        await asyncio.sleep(self.grace_s)
        for job_id, raw in zip(fresh, await self.redis.mget(fresh), strict=True):
            job = self.deserialize(raw)
            if job is not None and not self._fresh(job):
                del suspects[job_id]  # a worker has it (or it ended): not stuck
            else:
                suspects[job_id] = job

    def _fresh(self, job: Job) -> bool:
        """Taken by no worker yet, as far as its record says."""
        return job.status == Status.QUEUED or (self._cancelled(job) and not job.started)

    async def _worker_alive(self, job: Job) -> bool:
        """Whether the job's worker may still acknowledge an abort."""
        if not job.worker_id:
            return True  # unknown: wait, as saq does
        return bool(await self.redis.exists(self.namespace(f"worker_info:{job.worker_id}")))

    async def _sweep_one(self, job_id: bytes, job: Job | None, abort: float) -> None:
        if job is None:
            pipe: Any = self.redis.pipeline(transaction=True)
            async with pipe:  # a missing job's id: forgotten
                await pipe.lrem(self._active, 0, job_id).zrem(self._incomplete, job_id).execute()
            return
        if self._cancelled(job):
            if job.started and await self._worker_alive(job) and not job.stuck:
                return  # its worker stops it, ends it and releases it
            await self._end(job, job.error)
            return
        log.info("sweeping job %s (status %s)", job.key, job.status)
        await self.abort(job, error=self.swept_error_message)
        try:
            await job.refresh(abort if await self._worker_alive(job) else None)
        except TimeoutError:
            pass  # its worker is gone: nobody acknowledges the abort
        except RuntimeError:
            return  # the record is gone (expired)
        if job.status in TERMINAL_STATUSES and job.error != self.swept_error_message:
            return  # it ended while we waited: leave it ended
        if self._cancelled(job):  # (cancelled while we waited)
            await self._end(job, job.error)
        elif job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self._end(job, self.swept_error_message)

    def _cancelled(self, job: Job) -> bool:
        """Aborted by a cancel (not by a sweep), and not yet ended by its worker."""
        return job.status == Status.ABORTING and job.error != self.swept_error_message

    async def _end(self, job: Job, error: str | None) -> None:
        """End a job its worker will never end: ``aborted``, then ``on_final``."""
        log.info("ending job %s of a dead worker (%s)", job.key, error)
        await self.finish(job, Status.ABORTED, error=error)
        await self.redis.delete(job.abort_id)
        if self.on_final is not None:
            await self.on_final(job)
