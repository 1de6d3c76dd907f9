"""The token buckets: memory and Redis take the same decisions (real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.access.limits import (
    DEPLOYMENT_LIMITED,
    KEY_LIMITED,
    OK,
    Bucket,
    Limiter,
    MemoryLimiter,
    RedisLimiter,
    bucket_key,
)
from gateway.store import RedisStore
from tests.fakes.serve import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    store = RedisStore(server.url)
    await store.client.flushdb()
    yield RedisLimiter(store.client)
    await store.aclose()


def rpm(name: str, limit: int, cost: int = 1, scope: str = "k") -> Bucket:
    return Bucket(bucket_key(scope, name, "rpm"), limit, cost)


def tpm(name: str, limit: int, cost: int, scope: str = "k") -> Bucket:
    return Bucket(bucket_key(scope, name, "tpm"), limit, cost)


async def test_rpm_allows_exactly_the_limit(limiter: Limiter) -> None:
    decisions = [await limiter.take([rpm("a", 3)]) for _ in range(5)]
    assert [d.status for d in decisions] == [OK, OK, OK, KEY_LIMITED, KEY_LIMITED]
    assert [d.states[0].remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[0].states[0].limit == 3
    # one request comes back every 20 s at 3 per minute
    assert 19_000 < decisions[3].retry_after_ms <= 20_000
    assert decisions[3].states[0].remaining == 0 and decisions[3].states[0].limit == 3
    assert 19_000 < decisions[2].states[0].reset_ms <= 60_000


async def test_buckets_are_separate(limiter: Limiter) -> None:
    assert (await limiter.take([rpm("a", 1)])).status == OK
    assert (await limiter.take([rpm("b", 1)])).status == OK
    assert (await limiter.take([rpm("a", 1)])).status == KEY_LIMITED


async def test_tokens_are_reserved_then_adjusted(limiter: Limiter) -> None:
    first = await limiter.take([rpm("a", 100), tpm("a", 1000, 600)])
    assert first.status == OK and first.states[1].remaining == 400
    assert (await limiter.take([rpm("a", 100), tpm("a", 1000, 600)])).status == KEY_LIMITED
    await limiter.adjust([tpm("a", 1000, -500)])  # the answer used only 100 of the 600
    again = await limiter.take([rpm("a", 100), tpm("a", 1000, 600)])
    assert again.status == OK and 290 <= again.states[1].remaining <= 310


async def test_refused_call_takes_nothing(limiter: Limiter) -> None:
    assert (await limiter.take([rpm("a", 5), tpm("a", 100, 100)])).status == OK
    refused = await limiter.take([rpm("a", 5), tpm("a", 100, 50)])
    assert refused.status == KEY_LIMITED
    # the rpm bucket was not touched by the refused call
    assert (await limiter.take([rpm("a", 5)])).states[0].remaining == 3


async def test_a_cost_larger_than_the_bucket_passes_when_full(limiter: Limiter) -> None:
    assert (await limiter.take([tpm("a", 100, 5000)])).status == OK
    assert (await limiter.take([tpm("a", 100, 1)])).status == KEY_LIMITED


async def test_first_free_candidate_is_taken(limiter: Limiter) -> None:
    d1, d2 = [rpm("d1", 1, scope="d")], [rpm("d2", 1, scope="d")]
    assert (await limiter.take([], [d1, d2])).choice == 0
    assert (await limiter.take([], [d1, d2])).choice == 1
    refused = await limiter.take([rpm("a", 10)], [d1, d2])
    assert refused.status == DEPLOYMENT_LIMITED and refused.retry_after_ms > 0
    # the key's bucket was not charged for the refused call
    assert (await limiter.take([rpm("a", 10)])).states[0].remaining == 9


async def test_key_refusal_comes_first(limiter: Limiter) -> None:
    assert (await limiter.take([rpm("a", 1)])).status == OK
    refused = await limiter.take([rpm("a", 1)], [[rpm("d", 5, scope="d")]])
    assert refused.status == KEY_LIMITED
    assert (await limiter.take([], [[rpm("d", 5, scope="d")]])).status == OK
