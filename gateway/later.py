"""Work gathered in memory and written out a moment later, in one go (usage counts, token
settlements): a busy gateway pays one store round trip for many calls, not one for each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class FlushLater:
    """Runs ``flush`` ``delay_s`` after ``soon()`` is called, once for all the calls made
    meanwhile; ``aclose()`` runs it at once (at shut-down)."""

    def __init__(self, delay_s: float, flush: Callable[[], Awaitable[None]]) -> None:
        self._delay_s = delay_s
        self._flush = flush
        self._task: asyncio.Task[None] | None = None

    def soon(self) -> None:
        """Have ``flush`` run ``delay_s`` from now, unless a run is already due. Called from
        within ``flush`` (something was left over), it schedules the next run."""
        task = self._task
        if task is None:
            self._task = asyncio.get_running_loop().create_task(self._later())
        elif task.done() or task is asyncio.current_task(task.get_loop()):
            # (the loop passed: current_task() alone asks for the running loop, and on
            # Python 3.11 that is a getpid system call, on every request)
            self._task = task.get_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self._delay_s)
        await self._flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._flush()
        if self._task is not None and not self._task.done():  # flush left something over
            self._task.cancel()
