"""Redis going away and coming back: readiness turns 503, calls that need Redis fail fast with
503 (or pass unlimited with ``limits.fail_open``), nothing hangs, and the gateway recovers by
itself. A redis-server of the test's own is stopped and started again on the same port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import RedisServer

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
FAST_S = 3.0  # "fail fast": well under any client timeout


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def chat(url: str, headers: dict[str, str], **extra: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=30, json={
        "model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], **extra})
    return response, time.monotonic() - started


def wait_ready(url: str, status: int) -> None:
    deadline = time.monotonic() + 15
    while httpx.get(f"{url}/health/ready", timeout=10).status_code != status:
        assert time.monotonic() < deadline, f"/health/ready never answered {status}"
        time.sleep(0.1)


def test_redis_down_then_back(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                              own_redis: RedisServer) -> None:
    url = make_gateway(gateway_config(fake_openai.url, cache={"mode": "all"}),  # type: ignore[attr-defined]
                       redis_url=own_redis.url)
    key = httpx.post(f"{url}/v1/keys", json={"rpm": 100}, headers=ADMIN).json()["key"]
    virtual = {"Authorization": f"Bearer {key}"}
    assert chat(url, virtual)[0].status_code == 200

    own_redis.stop()
    wait_ready(url, 503)
    refused, took = chat(url, virtual)
    assert refused.status_code == 503 and took < FAST_S
    assert refused.json()["error"]["code"] == "upstream_unavailable"
    # the master key needs no Redis to be checked; the cache is skipped (a miss)
    served, took = chat(url, ADMIN, temperature=0)
    assert served.status_code == 200 and took < FAST_S
    assert served.headers["x-gateway-cache"] == "miss"
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # alive all along

    own_redis.start()  # empty again: it keeps nothing on disk
    wait_ready(url, 200)
    assert chat(url, virtual)[0].status_code == 401  # that key was in the lost data
    fresh = httpx.post(f"{url}/v1/keys", json={"rpm": 100}, headers=ADMIN).json()["key"]
    assert chat(url, {"Authorization": f"Bearer {fresh}"})[0].status_code == 200
    # the cache rests 2 s after a store failure, then works again
    deadline, results = time.monotonic() + 10, []
    while "hit" not in results and time.monotonic() < deadline:
        again, _ = chat(url, ADMIN, temperature=0)
        assert again.status_code == 200
        results.append(again.headers["x-gateway-cache"])
        time.sleep(0.2)
    assert results[-1] == "hit"


async def test_shutdown_closes_every_client_with_redis_down(fake_openai: FakeOpenAI) -> None:
    """The job engine's close fails while Redis is down (its pub/sub cannot unsubscribe);
    the clients closed after it, the upstream HTTP session among them, must be closed all
    the same (they were left open: aiohttp's "Unclosed client session" at exit)."""
    from gateway.app import Settings, create_app
    from gateway.config import validate
    from providers.http import AiohttpClient
    from tests.fakes.serve import free_port

    settings = Settings(master_key=MASTER_KEY, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(validate(gateway_config(fake_openai.url)), settings)  # type: ignore[attr-defined]
    async with app.router.lifespan_context(app) as state:
        http = state["gateway"].http  # type: ignore[index]
    assert isinstance(http, AiohttpClient)
    assert http._session.closed
