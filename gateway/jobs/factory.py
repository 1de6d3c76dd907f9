"""The engine for a config: saq with ``REDIS_URL``, the in-process one without; the jobs
metrics and the log line (gateway/logs.py JobLog) it feeds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from gateway.config import JobsConfig
from gateway.jobs.engine import (
    Engine,
    JobFunction,
    JobTokens,
    JobView,
    MemoryEngine,
    Release,
)
from gateway.logs import JobLog
from gateway.metrics import Metrics

log = logging.getLogger("gateway")
job_log = JobLog()

# saq's timeout per job kind (seconds; jobs.timeout_s overrides): long, for long recordings
DEFAULT_TIMEOUTS: dict[str, int] = {"transcribe": 4 * 3600, "extract": 3600}


def create_engine(config: JobsConfig, redis_url: str | None,
                  functions: Mapping[str, JobFunction], metrics: Metrics,
                  release: Release | None = None) -> Engine:
    """``release(args)``: deletes an ended job's stored inputs."""
    def ended(job: JobView, seconds: float, tokens: JobTokens) -> None:
        metrics.jobs.labels(job.tool, job.status).inc()
        if seconds:
            metrics.job_duration.labels(job.tool).observe(seconds)
        job_log.emit(job, seconds, tokens)

    if redis_url is None:
        return MemoryEngine(functions, concurrency=config.concurrency,
                            max_queued=config.max_queued, result_ttl_s=config.result_ttl_s,
                            on_end=ended, release=release)
    from gateway.jobs.saq_engine import SaqEngine, Timing  # saq only with Redis

    timing = Timing({**DEFAULT_TIMEOUTS, **config.timeout_s}, heartbeat_s=config.heartbeat_s,
                    crash_retries=config.crash_retries, result_ttl_s=config.result_ttl_s,
                    sweep_s=config.sweep_s)
    return SaqEngine(redis_url, functions, timing, concurrency=config.concurrency,
                     max_queued=config.max_queued, on_end=ended, release=release,
                     work=config.work)


async def watch_queue(engine: Engine, metrics: Metrics, every_s: float = 2.0) -> None:
    """``gateway_jobs_queued``, read from the engine every ``every_s`` seconds."""
    while True:
        with contextlib.suppress(Exception):
            metrics.jobs_queued.set(await engine.queued())
        await asyncio.sleep(every_s)
