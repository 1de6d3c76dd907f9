"""Running a local model without blocking the event loop.

``TurnQueue``: one generation at a time per loaded model; the other requests wait first come,
first served, in a queue of bounded length and for a bounded time (past either: 429 with
``Retry-After``). ``ModelWorker``: the loaded model and the one thread that runs it; a
generation's events cross to the event loop through an asyncio queue, and closing the
consuming generator (a client that went away) sets a stop flag the thread checks after every
token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Generic, Protocol, TypeVar

from providers.local.base import Finish, retry_after_s
from wire.errors import GatewayError, RateLimited, UpstreamUnavailable

log = logging.getLogger("gateway")

T = TypeVar("T")


class Closeable(Protocol):
    def close(self) -> None: ...


E = TypeVar("E", bound=Closeable)


class TurnQueue:
    """A fair FIFO for one resource: ``async with queue.turn(): ...``."""

    def __init__(self, name: str, max_queue: int, timeout_s: float) -> None:
        self._name = name
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self._busy = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._turn_s = 1.0  # running mean of how long a turn lasts, for Retry-After

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        await self._acquire()
        started = time.monotonic()
        try:
            yield
        finally:
            self._turn_s = 0.8 * self._turn_s + 0.2 * (time.monotonic() - started)
            self._release()

    def _retry_after(self) -> int:
        return retry_after_s(self._turn_s * (len(self._waiters) + 1))

    async def _acquire(self) -> None:
        if not self._busy and not self._waiters:
            self._busy = True
            return
        if len(self._waiters) >= self._max_queue:
            raise RateLimited(f"The model '{self._name}' is busy: {len(self._waiters)} requests "
                              "are already waiting for it.", retry_after=self._retry_after())
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn came just as this request gave up: pass it on
            else:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise RateLimited(f"The model '{self._name}' stayed busy for "
                                  f"{self._timeout_s:g} s.", retry_after=self._retry_after()
                                  ) from None
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # handed over: the queue stays busy
                return
        self._busy = False


_END = object()


class ModelWorker(Generic[E]):
    """A model loaded on first use (or ``load()``), and the thread that runs it."""

    def __init__(self, name: str, loader: Callable[[], E]) -> None:
        self._name = name
        self._loader = loader
        self._engine: E | None = None
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{name}")
        self._running: set[threading.Event] = set()

    @property
    def loaded(self) -> E | None:
        return self._engine

    async def load(self) -> E:
        if self._engine is not None:
            return self._engine
        async with self._lock:
            if self._engine is None:
                started = time.perf_counter()
                try:
                    self._engine = await self.call(self._loader)
                except GatewayError:
                    raise
                except Exception as exc:
                    log.exception("model %s failed to load", self._name)
                    raise UpstreamUnavailable(
                        f"The model '{self._name}' failed to load: {exc}") from None
                log.info("model %s loaded in %.2f s", self._name, time.perf_counter() - started)
        return self._engine

    async def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the model's thread (after any generation already running there)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def run(self, job: Callable[[threading.Event], Iterator[T]]
                  ) -> AsyncGenerator[T, None]:
        """The items of ``job(stop)``, made on the model's thread, as they come. Closing this
        generator sets ``stop``, which the job checks after every token."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            item: object = None
            if stop.is_set():  # the client left while this job waited for the thread
                return
            try:
                for item in job(stop):
                    loop.call_soon_threadsafe(items.put_nowait, item)
            except Exception as exc:  # handed to the consumer, which raises it
                loop.call_soon_threadsafe(items.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(items.put_nowait, _END)
            if isinstance(item, Finish) and item.cancelled:
                log.info("model %s: the client went away; generation stopped after %d tokens",
                         self._name, item.completion_tokens)

        self._running.add(stop)
        try:
            loop.run_in_executor(self._executor, work)
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
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        if self._engine is not None:
            self._engine.close()
            self._engine = None
