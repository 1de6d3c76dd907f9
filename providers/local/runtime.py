"""Running a local model without blocking the event loop.

``TurnQueue``: up to ``parallel`` generations at a time per loaded model (its slots); the other
requests wait first come, first served, in a queue of bounded length and for a bounded time
(past either: 429 with ``Retry-After``). ``ModelWorker``: the loaded model, one engine and one
thread per slot; a generation's events cross to the event loop through an asyncio queue, and
closing the consuming generator (a client that went away) sets a stop flag the thread checks
after every token, so the slot is handed to the next request at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Generic, Protocol, TypeVar

from providers.local.base import Finish, retry_after_s
from wire.errors import GatewayError, RateLimited, UpstreamUnavailable

log = logging.getLogger("gateway")

T = TypeVar("T")


class Closeable(Protocol):
    def close(self) -> None: ...


E = TypeVar("E", bound=Closeable)


class TurnQueue:
    """A fair FIFO for ``slots`` interchangeable resources: ``async with queue.turn() as slot:``
    gives the index of the slot that is this request's until the block ends."""

    def __init__(self, name: str, max_queue: int, timeout_s: float, slots: int = 1) -> None:
        self._name = name
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self._slots = slots
        self._free: deque[int] = deque(range(slots))
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._turn_s = 1.0  # running mean of how long a turn lasts, for Retry-After

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def busy(self) -> int:
        """Slots in use."""
        return self._slots - len(self._free)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[int]:
        slot = await self._acquire()
        started = time.monotonic()
        try:
            yield slot
        finally:
            self._turn_s = 0.8 * self._turn_s + 0.2 * (time.monotonic() - started)
            self._release(slot)

    def _retry_after(self) -> int:
        """The expected wait of one more request: the turns ahead of it, ``slots`` at a time."""
        rounds = math.ceil((len(self._waiters) + 1) / self._slots)
        return retry_after_s(self._turn_s * rounds)

    async def _acquire(self) -> int:
        if self._free and not self._waiters:
            return self._free.popleft()
        if len(self._waiters) >= self._max_queue:
            raise RateLimited(f"The model '{self._name}' is busy: {len(self._waiters)} requests "
                              "are already waiting for it.", retry_after=self._retry_after())
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # the slot came just as this request gave up
            else:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise RateLimited(f"The model '{self._name}' stayed busy for "
                                  f"{self._timeout_s:g} s.", retry_after=self._retry_after()
                                  ) from None
            raise

    def _release(self, slot: int) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)  # handed over: the slot stays busy
                return
        self._free.append(slot)


_END = object()


class ModelWorker(Generic[E]):
    """A model loaded on first use (or ``load()``) as ``slots`` engines, each with its own
    thread. ``loader()`` makes the first slot's engine; ``more(first)`` each further slot's
    (default: ``loader()`` again), so that a backend can share what its slots may share."""

    def __init__(self, name: str, loader: Callable[[], E], slots: int = 1,
                 more: Callable[[E], E] | None = None) -> None:
        self._name = name
        self._loader = loader
        self._more = more
        self._engines: list[E] = []
        self._lock = asyncio.Lock()
        self._executors = [ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}-{i}")
                           for i in range(slots)]
        self._running: set[threading.Event] = set()
        self._in_flight = 0  # generations running now, on any slot (changed on slot threads)
        self._count_lock = threading.Lock()

    @property
    def loaded(self) -> E | None:
        return self._engines[0] if self._engines else None

    async def load(self) -> E:
        """All slots' engines, loaded once; returns the first slot's."""
        if self._engines:
            return self._engines[0]
        async with self._lock:
            if not self._engines:
                started = time.perf_counter()
                try:
                    engines = [await self.call(self._loader)]
                    more = self._loader if self._more is None else partial(self._more, engines[0])
                    for slot in range(1, len(self._executors)):
                        engines.append(await self.call(more, slot))
                except GatewayError:
                    raise
                except Exception as exc:
                    log.exception("model %s failed to load", self._name)
                    raise UpstreamUnavailable(
                        f"The model '{self._name}' failed to load: {exc}") from None
                self._engines = engines
                log.info("model %s loaded in %.2f s (%d slot%s)", self._name,
                         time.perf_counter() - started, len(engines),
                         "" if len(engines) == 1 else "s")
        return self._engines[0]

    def engine(self, slot: int) -> E:
        return self._engines[slot]

    async def call(self, fn: Callable[[], T], slot: int = 0) -> T:
        """``fn()`` on the slot's thread (after any generation already running there)."""
        return await asyncio.get_running_loop().run_in_executor(self._executors[slot], fn)

    def _count(self, change: int) -> int:
        with self._count_lock:
            self._in_flight += change
            return self._in_flight

    async def run(self, job: Callable[[threading.Event], Iterator[T]], slot: int = 0
                  ) -> AsyncGenerator[T, None]:
        """The items of ``job(stop)``, made on the slot's thread, as they come. Closing this
        generator sets ``stop``, which the job checks after every token."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            item: object = None
            if stop.is_set():  # the client left while this job waited for the thread
                return
            log.debug("model %s slot %d: generation started (%d in flight)", self._name, slot,
                      self._count(1))
            try:
                for item in job(stop):
                    loop.call_soon_threadsafe(items.put_nowait, item)
            except Exception as exc:  # handed to the consumer, which raises it
                loop.call_soon_threadsafe(items.put_nowait, exc)
            finally:
                left = self._count(-1)  # before the consumer can hand the slot on
                loop.call_soon_threadsafe(items.put_nowait, _END)
                log.debug("model %s slot %d: generation ended (%d in flight)", self._name, slot,
                          left)
            if isinstance(item, Finish) and item.cancelled:
                log.info("model %s: the client went away; generation stopped after %d tokens",
                         self._name, item.completion_tokens)

        self._running.add(stop)
        try:
            loop.run_in_executor(self._executors[slot], work)
            while (item := await items.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            self._running.discard(stop)

    async def aclose(self) -> None:
        for stop in self._running:
            stop.set()
        for executor in self._executors:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        for engine in self._engines:
            engine.close()
        self._engines = []
