"""Shared state behind one interface: process memory (one replica) or Redis (any number).

Everything that must hold across replicas (keys, buckets, cache, jobs, usage) goes through a
``Store``. Both implementations keep the same semantics, so features are written once. A Redis
that cannot be reached surfaces as ``StoreUnavailable`` (503), never as a hang: every command
has a socket timeout and the connection pool blocks for a bounded time when it is exhausted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Protocol, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from wire.errors import UpstreamUnavailable


class StoreUnavailable(UpstreamUnavailable):
    def __init__(self, detail: str) -> None:
        super().__init__(f"The gateway's state store is unavailable: {detail}")


class Store(Protocol):
    backend: str

    async def ping(self) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int: ...

    # Hashes: a name holding fields (keys by digest, usage counters, cache indexes).
    async def hget(self, name: str, field: str) -> bytes | None: ...

    async def hset(self, name: str, field: str, value: bytes) -> None: ...

    async def hdel(self, name: str, field: str) -> bool: ...

    async def hgetall(self, name: str) -> dict[str, bytes]: ...

    async def hlen(self, name: str) -> int: ...

    async def hincrby(self, name: str, amounts: dict[str, int], ttl_s: float | None = None
                      ) -> None:
        """Add to several integer fields at once; ``ttl_s`` sets the hash's expiry."""

    # Leases: at most ``limit`` holders of ``name`` at once (requests in flight); a holder not
    # released (its replica died) lapses after ``ttl_s``.
    async def lease(self, name: str, holder: str, limit: int, ttl_s: float) -> bool: ...

    async def unlease(self, name: str, holder: str) -> None: ...

    # Pub/sub: every replica hears what any replica publishes (used to drop cached keys).
    async def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[bytes | None]:
        """Messages on ``channel``; first ``None`` once the subscription is live. Raises
        StoreUnavailable when the connection is lost."""
        ...

    async def aclose(self) -> None: ...


SWEEP_MIN = 1024


class MemoryStore:
    """The store of a single replica. Expired entries are dropped when touched."""

    backend = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._sweep_at = SWEEP_MIN
        self._hashes: dict[str, dict[str, bytes]] = {}
        self._subscribers: dict[str, list[asyncio.Queue[bytes]]] = {}
        self._leases: dict[str, dict[str, float]] = {}

    async def ping(self) -> None:
        return None

    async def lease(self, name: str, holder: str, limit: int, ttl_s: float) -> bool:
        now = time.monotonic()
        holders = {h: t for h, t in self._leases.get(name, {}).items() if t > now}
        self._leases[name] = holders
        if len(holders) >= limit:
            return False
        holders[holder] = now + ttl_s
        return True

    async def unlease(self, name: str, holder: str) -> None:
        holders = self._leases.get(name)
        if holders is not None:
            holders.pop(holder, None)
            if not holders:
                del self._leases[name]

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._data[key] = (value, time.monotonic() + ttl_s if ttl_s else None)
        if len(self._data) >= self._sweep_at:
            self._sweep()

    def _sweep(self) -> None:
        """Drop every expired entry, not only the touched ones (cache entries may never be
        read again). Done whenever the entries have doubled since the last sweep: amortized
        O(1) per write."""
        now = time.monotonic()
        self._data = {key: entry for key, entry in self._data.items()
                      if entry[1] is None or entry[1] > now}
        self._sweep_at = max(SWEEP_MIN, 2 * len(self._data))

    async def delete(self, key: str) -> bool:
        had_value = self._data.pop(key, None) is not None
        return self._hashes.pop(key, None) is not None or had_value

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        current = self._live(key)
        value = (int(current) if current is not None else 0) + amount
        expires = self._data[key][1] if current is not None else None
        if expires is None and ttl_s:
            expires = time.monotonic() + ttl_s
        self._data[key] = (str(value).encode(), expires)
        return value

    async def hget(self, name: str, field: str) -> bytes | None:
        return self._hashes.get(name, {}).get(field)

    async def hset(self, name: str, field: str, value: bytes) -> None:
        self._hashes.setdefault(name, {})[field] = value

    async def hdel(self, name: str, field: str) -> bool:
        return self._hashes.get(name, {}).pop(field, None) is not None

    async def hgetall(self, name: str) -> dict[str, bytes]:
        return dict(self._hashes.get(name, {}))

    async def hlen(self, name: str) -> int:
        return len(self._hashes.get(name, {}))

    async def hincrby(self, name: str, amounts: dict[str, int], ttl_s: float | None = None
                      ) -> None:
        # (the hash's ttl is not kept in memory: one process lives shorter than the counters)
        fields = self._hashes.setdefault(name, {})
        for field, amount in amounts.items():
            fields[field] = str(int(fields.get(field, b"0")) + amount).encode()

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in self._subscribers.get(channel, []):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes | None]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribers.setdefault(channel, []).append(queue)
        try:
            yield None
            while True:
                yield await queue.get()
        finally:
            self._subscribers[channel].remove(queue)

    async def aclose(self) -> None:
        self._data.clear()
        self._hashes.clear()


class RedisStore:
    """Redis through redis-py's asyncio client (hiredis parser) and a bounded, blocking pool."""

    backend = "redis"

    def __init__(self, url: str, *, max_connections: int = 256, timeout_s: float = 2.0) -> None:
        self._pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout_s,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            health_check_interval=30,
            # a pooled connection broken by a Redis restart is retried once on a new one
            retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError],
        )
        self.client = aioredis.Redis(connection_pool=self._pool)
        self._lease = self.client.register_script(_LEASE)

    async def ping(self) -> None:
        with redis_errors():
            await self.client.ping()

    async def lease(self, name: str, holder: str, limit: int, ttl_s: float) -> bool:
        with redis_errors():
            return bool(await self._lease(keys=[name], args=[holder, limit,
                                                             int(ttl_s * 1000)]))

    async def unlease(self, name: str, holder: str) -> None:
        with redis_errors():
            await self.client.zrem(name, holder)

    async def get(self, key: str) -> bytes | None:
        with redis_errors():
            value = await self.client.get(key)
        return cast(bytes | None, value)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        with redis_errors():
            await self.client.set(key, value, px=int(ttl_s * 1000) if ttl_s else None)

    async def delete(self, key: str) -> bool:
        with redis_errors():
            return bool(await self.client.delete(key))

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        with redis_errors():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incrby(key, amount)
                if ttl_s:
                    pipe.pexpire(key, int(ttl_s * 1000), nx=True)
                results = await pipe.execute()
        return int(results[0])

    async def hget(self, name: str, field: str) -> bytes | None:
        with redis_errors():
            return cast(bytes | None, await self.client.hget(name, field))

    async def hset(self, name: str, field: str, value: bytes) -> None:
        with redis_errors():
            await self.client.hset(name, field, value)

    async def hdel(self, name: str, field: str) -> bool:
        with redis_errors():
            return bool(await self.client.hdel(name, field))

    async def hgetall(self, name: str) -> dict[str, bytes]:
        with redis_errors():
            raw = cast(dict[bytes, bytes], await self.client.hgetall(name))
        return {field.decode(): value for field, value in raw.items()}

    async def hlen(self, name: str) -> int:
        with redis_errors():
            return int(await self.client.hlen(name))

    async def hincrby(self, name: str, amounts: dict[str, int], ttl_s: float | None = None
                      ) -> None:
        with redis_errors():
            async with self.client.pipeline(transaction=False) as pipe:
                for field, amount in amounts.items():
                    pipe.hincrby(name, field, amount)
                if ttl_s:
                    pipe.pexpire(name, int(ttl_s * 1000))
                await pipe.execute()

    async def publish(self, channel: str, message: bytes) -> None:
        with redis_errors():
            await self.client.publish(channel, message)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes | None]:
        pubsub = self.client.pubsub()
        try:
            with redis_errors():
                await pubsub.subscribe(channel)
                idle = 0
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        idle += 1
                        if idle % 5 == 0:  # a quiet channel: check the connection lives
                            await pubsub.ping()
                        continue
                    if message["type"] == "subscribe":
                        yield None
                    elif message["type"] == "message":
                        yield message["data"]
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        await self.client.aclose()
        await self._pool.disconnect()


# A sorted set of holders scored by when their lease lapses (the server's clock).
_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


def create_store(redis_url: str | None) -> Store:
    return RedisStore(redis_url) if redis_url else MemoryStore()
