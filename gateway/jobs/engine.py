"""The job engine's interface, the public record of a job, and the in-process engine used
without ``REDIS_URL`` (asyncio tasks, a semaphore, a dict of records; lost on restart).

A job function gets its arguments (references to stored inputs, never their bytes) and a
``report(progress, stage)`` callback, and returns the JSON result. It raises ``JobFailed`` (or
any ``GatewayError``) to fail the job; a failed job is never retried (only a crashed worker's
job is run again, from the start, so every step must be safe to run twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from wire.errors import GatewayError, RateLimited

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

Report = Callable[[float, str], Awaitable[None]]
JobFunction = Callable[[dict[str, Any], Report], Awaitable[dict[str, Any]]]


class JobFailed(Exception):
    """A job function's way to fail its job with a message the client sees."""


@dataclass(slots=True)
class JobView:
    """One job as the API shows it."""

    id: str
    tool: str
    owner: str | None
    created: float
    status: Status = "queued"
    progress: float = 0.0
    stage: str = ""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "job", "tool": self.tool,
                                "status": self.status, "progress": round(self.progress, 4),
                                "stage": self.stage, "created_at": int(self.created)}
        if self.status == "succeeded":
            body["result"] = self.result
        if self.status == "failed":  # old errors of a re-run job linger in saq: failed only
            body["error"] = self.error
        return body


@dataclass(slots=True)
class JobTokens:
    """The tokens a job's model calls used, summed (its JSON log line)."""

    prompt: int = 0
    completion: int = 0


_tokens: ContextVar[JobTokens | None] = ContextVar("job_tokens", default=None)


@contextlib.contextmanager
def counting_tokens() -> Iterator[JobTokens]:
    """Around one run of a job function: the model calls it makes count their tokens here."""
    tokens = JobTokens()
    reset = _tokens.set(tokens)
    try:
        yield tokens
    finally:
        _tokens.reset(reset)


def count_tokens(prompt: int, completion: int) -> None:
    """Add one model call's tokens to the running job's (nothing outside a job)."""
    tokens = _tokens.get()
    if tokens is not None:
        tokens.prompt += prompt
        tokens.completion += completion


def new_id() -> str:
    return f"job_{uuid.uuid4().hex}"


def error_body(exc: BaseException) -> dict[str, Any]:
    """An exception as the OpenAI-shaped error of a failed job (no stack trace)."""
    if isinstance(exc, GatewayError):
        return {"message": exc.message, "type": exc.type, "code": exc.code}
    if isinstance(exc, JobFailed):
        return {"message": str(exc), "type": "invalid_request_error", "code": "job_failed"}
    return {"message": f"The job failed: {type(exc).__name__}.", "type": "api_error",
            "code": "internal_error"}


def too_many(queued: int, limit: int) -> RateLimited:
    return RateLimited(f"Too many queued jobs ({queued}, the limit is {limit}); retry later.",
                       retry_after=5)


class Engine(Protocol):
    backend: str

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def submit(self, tool: str, owner: str | None, args: dict[str, Any]) -> JobView: ...

    async def get(self, job_id: str) -> JobView | None: ...

    async def list(self, owner: str | None, status: str | None, limit: int,
                   after: str | None) -> tuple[list[JobView], bool]: ...

    async def cancel(self, job_id: str) -> JobView | None: ...

    async def queued(self) -> int: ...


OnEnd = Callable[[JobView, float, JobTokens], None]  # the job, its seconds, its tokens
Release = Callable[[dict[str, Any]], Awaitable[None]]  # deletes a job's stored inputs


@dataclass(slots=True)
class _Entry:
    view: JobView
    args: dict[str, Any]
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class MemoryEngine:
    """One process's jobs: asyncio tasks, at most ``concurrency`` running at once."""

    functions: Mapping[str, JobFunction]
    concurrency: int = 2
    max_queued: int = 100
    result_ttl_s: float = 86400
    on_end: OnEnd | None = None
    release: Release | None = None
    backend: str = "memory"
    _jobs: dict[str, _Entry] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def aclose(self) -> None:
        tasks = [e.task for e in self._jobs.values() if e.task and not e.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def submit(self, tool: str, owner: str | None, args: dict[str, Any]) -> JobView:
        self._expire()
        queued = await self.queued()
        if queued >= self.max_queued:
            raise too_many(queued, self.max_queued)
        entry = _Entry(JobView(new_id(), tool, owner, time.time()), args)
        self._jobs[entry.view.id] = entry
        entry.task = asyncio.create_task(self._run(entry))
        return entry.view

    async def _run(self, entry: _Entry) -> None:
        assert self._slots is not None
        view, start = entry.view, 0.0
        tokens = JobTokens()
        try:
            async with self._slots:
                view.status, start = "running", time.monotonic()

                async def report(progress: float, stage: str) -> None:
                    view.progress, view.stage = max(0.0, min(1.0, progress)), stage

                with counting_tokens() as tokens:
                    view.result = await self.functions[view.tool](entry.args, report)
                view.status, view.progress = "succeeded", 1.0
        except asyncio.CancelledError:
            view.status = "cancelled"
        except Exception as exc:  # the job's failure, reported in its record
            view.status, view.error = "failed", error_body(exc)
        if self.release is not None:  # ended (one process: nothing runs it again)
            with contextlib.suppress(Exception):
                await self.release(entry.args)
        if self.on_end is not None:
            self.on_end(view, time.monotonic() - start if start else 0.0, tokens)

    def _expire(self) -> None:
        cutoff = time.time() - self.result_ttl_s
        for job_id in [i for i, e in self._jobs.items()
                       if e.view.status in FINAL and e.view.created < cutoff]:
            del self._jobs[job_id]

    async def get(self, job_id: str) -> JobView | None:
        entry = self._jobs.get(job_id)
        return entry.view if entry else None

    async def list(self, owner: str | None, status: str | None, limit: int,
                   after: str | None) -> tuple[list[JobView], bool]:
        views = [e.view for e in reversed(self._jobs.values())
                 if owner is None or e.view.owner == owner]
        if after is not None:
            ids = [v.id for v in views]
            views = views[ids.index(after) + 1:] if after in ids else []
        views = [v for v in views if status is None or v.status == status]
        return views[:limit], len(views) > limit

    async def cancel(self, job_id: str) -> JobView | None:
        entry = self._jobs.get(job_id)
        if entry is None:
            return None
        if entry.view.status not in FINAL and entry.task is not None:
            entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)
        return entry.view

    async def queued(self) -> int:
        return sum(1 for e in self._jobs.values() if e.view.status == "queued")
