"""The two stores behave the same; Redis is a real redis-server started for the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.store import MemoryStore, RedisStore, Store, StoreUnavailable
from tests.conftest import GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import RedisServer, free_port


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        made = RedisStore(server.url)
        await made.client.flushdb()  # type: ignore[attr-defined]
    yield made
    await made.aclose()


async def test_get_set_delete(store: Store) -> None:
    assert await store.get("k") is None
    await store.set("k", b"v")
    assert await store.get("k") == b"v"
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.get("k") is None


async def test_ttl_expires(store: Store) -> None:
    await store.set("short", b"v", ttl_s=0.05)
    assert await store.get("short") == b"v"
    await asyncio.sleep(0.1)
    assert await store.get("short") is None


async def test_incr_keeps_its_first_ttl(store: Store) -> None:
    assert await store.incr("n", 2, ttl_s=0.2) == 2
    assert await store.incr("n", 3, ttl_s=10) == 5
    await asyncio.sleep(0.3)
    assert await store.get("n") is None


async def test_redis_pool_blocks_instead_of_failing(redis_server: RedisServer) -> None:
    """More concurrent calls than connections wait for one instead of raising."""
    store = RedisStore(redis_server.url, max_connections=4)
    try:
        results = await asyncio.gather(*(store.incr("many") for _ in range(300)))
        assert sorted(results) == list(range(1, 301))
    finally:
        await store.client.delete("many")
        await store.aclose()


async def test_redis_down_is_store_unavailable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.get("k")
        assert caught.value.status == 503 and caught.value.code == "upstream_unavailable"
    finally:
        await store.aclose()


def test_ready_with_redis(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                          redis_server: RedisServer) -> None:
    url = make_gateway(gateway_config(fake_openai.url), redis_url=redis_server.url)  # type: ignore[attr-defined]
    response = httpx.get(f"{url}/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"store": {"status": "ok",
                                                                    "backend": "redis"}}}


def test_ready_without_redis_is_503(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url),  # type: ignore[attr-defined]
                       redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = httpx.get(f"{url}/health/ready", timeout=10)
    assert response.status_code == 503
    check = response.json()["checks"]["store"]
    assert response.json()["status"] == "unavailable"
    assert check["status"] == "error" and check["backend"] == "redis" and check["error"]
    assert httpx.get(f"{url}/health").status_code == 200  # liveness checks nothing


def test_ready_in_memory(gateway: str) -> None:
    body = httpx.get(f"{gateway}/health/ready").json()
    assert body["checks"]["store"] == {"status": "ok", "backend": "memory"}


async def test_hashes(store: Store) -> None:
    assert await store.hget("h", "a") is None and await store.hlen("h") == 0
    await store.hset("h", "a", b"1")
    await store.hset("h", "b", b"2")
    assert await store.hget("h", "a") == b"1"
    assert await store.hgetall("h") == {"a": b"1", "b": b"2"}
    assert await store.hlen("h") == 2
    assert await store.hdel("h", "a") is True and await store.hdel("h", "a") is False
    await store.hincrby("c", {"x": 2, "y": 5}, ttl_s=60)
    await store.hincrby("c", {"x": 3})
    assert await store.hgetall("c") == {"x": b"5", "y": b"5"}
