"""Token buckets: requests and tokens per minute, per key and per deployment.

A bucket holds up to ``limit`` units and refills at ``limit`` per minute. A call takes one
request from each rpm bucket and its token estimate from each tpm bucket; when the answer ends
the tpm buckets are adjusted by the difference between the estimate and the real usage (a
bucket may go below zero: later calls then wait for it to refill). A call whose estimate is
larger than a whole bucket is let through once the bucket is full, rather than never.

``take`` decides for a list of *groups* at once: the first group (the caller's key) must fit;
after it, the first of the candidate groups (deployments, in order of preference) that fits is
taken. Either everything chosen is taken or nothing is. On Redis this is one Lua script, so
one round trip per decision and atomic across replicas; every bucket key carries the hash tag
``{gw:rl}`` so a script's keys share one slot on Redis Cluster. The in-memory limiter follows
the same arithmetic for a single replica.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from redis.asyncio.client import Redis
from redis.commands.core import AsyncScript

from gateway.store import RedisStore, Store, redis_errors

MINUTE_MS = 60_000
KEY_PREFIX = "{gw:rl}:"

OK, KEY_LIMITED, DEPLOYMENT_LIMITED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str  # store key, KEY_PREFIX + ...
    limit: int  # units per minute (and the most the bucket holds)
    cost: int  # what this call takes


@dataclass(frozen=True, slots=True)
class BucketState:
    limit: int
    remaining: int
    reset_ms: int  # until the bucket is full again


@dataclass(frozen=True, slots=True)
class Decision:
    status: int  # OK | KEY_LIMITED | DEPLOYMENT_LIMITED
    choice: int  # index of the candidate group taken; -1 when none was given or refused
    retry_after_ms: int  # when refused: until the call would fit
    states: tuple[BucketState, ...]  # the first group's buckets (after taking; as they
    # stand when the key is refused; none when the deployments are)


def bucket_key(scope: str, name: str, unit: str) -> str:
    return f"{KEY_PREFIX}{scope}:{name}:{unit}"


class Limiter(Protocol):
    async def take(self, first: Sequence[Bucket],
                   candidates: Sequence[Sequence[Bucket]] = ()) -> Decision: ...

    async def adjust(self, buckets: Sequence[Bucket]) -> None:
        """Add ``cost`` to what each bucket has given out (negative: give back)."""


def _wait_ms(level: float, bucket: Bucket) -> float:
    need = min(bucket.cost, bucket.limit)
    return 0.0 if level >= need else (need - level) * MINUTE_MS / bucket.limit


class MemoryLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (level, at_ms)

    def _level(self, bucket: Bucket, now: float) -> float:
        entry = self._buckets.get(bucket.key)
        if entry is None:
            return float(bucket.limit)
        level, at = entry
        return min(float(bucket.limit), level + (now - at) * bucket.limit / MINUTE_MS)

    async def take(self, first: Sequence[Bucket],
                   candidates: Sequence[Sequence[Bucket]] = ()) -> Decision:
        now = time.monotonic() * 1000
        key_wait = max((_wait_ms(self._level(b, now), b) for b in first), default=0.0)
        if key_wait > 0:
            return Decision(KEY_LIMITED, -1, math.ceil(key_wait),
                            tuple(_state(b, self._level(b, now)) for b in first))
        choice, best_wait = -1, math.inf
        for index, group in enumerate(candidates):
            wait = max((_wait_ms(self._level(b, now), b) for b in group), default=0.0)
            if wait == 0:
                choice = index
                break
            best_wait = min(best_wait, wait)
        if candidates and choice < 0:
            return Decision(DEPLOYMENT_LIMITED, -1, math.ceil(best_wait), ())
        taken = [*first, *(candidates[choice] if choice >= 0 else ())]
        states = []
        for i, bucket in enumerate(taken):
            level = self._level(bucket, now) - bucket.cost
            self._buckets[bucket.key] = (level, now)
            if i < len(first):
                states.append(_state(bucket, level))
        return Decision(OK, choice, 0, tuple(states))

    async def adjust(self, buckets: Sequence[Bucket]) -> None:
        now = time.monotonic() * 1000
        for bucket in buckets:
            self._buckets[bucket.key] = (self._level(bucket, now) - bucket.cost, now)


def _state(bucket: Bucket, level: float) -> BucketState:
    reset = (bucket.limit - level) * MINUTE_MS / bucket.limit
    return BucketState(bucket.limit, max(0, math.floor(level)), max(0, math.ceil(reset)))


# KEYS: every bucket, the first group's then each candidate group's.
# ARGV: n_first, n_groups, size of each group..., then limit and cost of each bucket.
# Returns {status, choice (1-based, 0 = none), retry_ms, then remaining and reset_ms of each
# first-group bucket (after taking; as they stand when the key is refused)}. Time is the
# server's (TIME), so replicas with skewed clocks agree.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n_first, n_groups = tonumber(ARGV[1]), tonumber(ARGV[2])
local sizes, at = {}, 3
for g = 1, n_groups do sizes[g] = tonumber(ARGV[at]); at = at + 1 end
local limit, cost, level = {}, {}, {}
for i = 1, #KEYS do
  limit[i] = tonumber(ARGV[at]); cost[i] = tonumber(ARGV[at + 1]); at = at + 2
  local v = redis.call('HMGET', KEYS[i], 'l', 't')
  if v[1] then
    level[i] = math.min(limit[i], tonumber(v[1]) + (now - tonumber(v[2])) * limit[i] / 60000)
  else
    level[i] = limit[i]
  end
end
local function wait(i)
  local need = math.min(cost[i], limit[i])
  if level[i] >= need then return 0 end
  return (need - level[i]) * 60000 / limit[i]
end
local function report(out, i, l)
  out[#out + 1] = math.max(0, math.floor(l))
  out[#out + 1] = math.max(0, math.ceil((limit[i] - l) * 60000 / limit[i]))
end
local key_wait = 0
for i = 1, n_first do key_wait = math.max(key_wait, wait(i)) end
if key_wait > 0 then
  local out = {1, 0, math.ceil(key_wait)}
  for i = 1, n_first do report(out, i, level[i]) end
  return out
end
local choice, best, from, first_of = 0, -1, n_first + 1, {}
for g = 1, n_groups do
  local w = 0
  for i = from, from + sizes[g] - 1 do w = math.max(w, wait(i)) end
  first_of[g] = from
  if w == 0 then choice = g; break end
  if best < 0 or w < best then best = w end
  from = from + sizes[g]
end
if n_groups > 0 and choice == 0 then return {2, 0, math.ceil(best)} end
local function put(i)
  local l = level[i] - cost[i]
  redis.call('HSET', KEYS[i], 'l', tostring(l), 't', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil((limit[i] - l) * 60000 / limit[i]) + 1000)
  return l
end
local out = {0, choice, 0}
for i = 1, n_first do report(out, i, put(i)) end
if choice > 0 then
  for i = first_of[choice], first_of[choice] + sizes[choice] - 1 do put(i) end
end
return out
"""

# KEYS: buckets; ARGV: limit and cost of each.
_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local limit, cost = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = limit
  if v[1] then
    level = math.min(limit, tonumber(v[1]) + (now - tonumber(v[2])) * limit / 60000)
  end
  level = level - cost
  redis.call('HSET', KEYS[i], 'l', tostring(level), 't', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil((limit - level) * 60000 / limit) + 1000)
end
return 1
"""


class RedisLimiter:
    def __init__(self, client: Redis) -> None:
        self._take: AsyncScript = client.register_script(_TAKE)
        self._adjust: AsyncScript = client.register_script(_ADJUST)

    async def take(self, first: Sequence[Bucket],
                   candidates: Sequence[Sequence[Bucket]] = ()) -> Decision:
        buckets = [*first, *(b for group in candidates for b in group)]
        args: list[int] = [len(first), len(candidates), *(len(g) for g in candidates)]
        for bucket in buckets:
            args += (bucket.limit, bucket.cost)
        with redis_errors():
            out = cast(list[int], await self._take(keys=[b.key for b in buckets], args=args))
        status, choice, retry = int(out[0]), int(out[1]) - 1, int(out[2])
        states = tuple(BucketState(b.limit, int(out[3 + 2 * i]), int(out[4 + 2 * i]))
                       for i, b in enumerate(first)) if status != DEPLOYMENT_LIMITED else ()
        return Decision(status, choice, retry, states)

    async def adjust(self, buckets: Sequence[Bucket]) -> None:
        if not buckets:
            return
        args: list[int] = []
        for bucket in buckets:
            args += (bucket.limit, bucket.cost)
        with redis_errors():
            await self._adjust(keys=[b.key for b in buckets], args=args)


def create_limiter(store: Store) -> Limiter:
    if isinstance(store, RedisStore):
        return RedisLimiter(store.client)
    return MemoryLimiter()
