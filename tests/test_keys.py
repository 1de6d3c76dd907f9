"""Virtual keys (contract section 3): made, listed and revoked by the master key, in memory and
in a real redis-server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from gateway.access.keys import KEYS_HASH, digest_hex
from gateway.store import RedisStore
from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import RedisServer

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
HELLO = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def gateway_url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                redis_url_or_none: str | None) -> str:
    return make_gateway(gateway_config(fake_openai.url), redis_url=redis_url_or_none)  # type: ignore[attr-defined]


def create(url: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def chat(url: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body or HELLO,
                      headers={"Authorization": f"Bearer {key}"})


def test_create_list_revoke(gateway_url: str) -> None:
    made = create(gateway_url, name="team-a", models=["gpt-test"], rpm=50, tpm=5000)
    assert made["key"].startswith("sk-gw-") and made["id"].startswith("key_")
    assert {k: made[k] for k in ("name", "models", "rpm", "tpm", "expires_at")} == {
        "name": "team-a", "models": ["gpt-test"], "rpm": 50, "tpm": 5000, "expires_at": None}
    assert abs(made["created"] - time.time()) < 5
    listed = httpx.get(f"{gateway_url}/v1/keys", headers=ADMIN).json()
    assert listed["object"] == "list"
    assert listed["data"] == [{k: v for k, v in made.items() if k != "key"}]

    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=made["key"], max_retries=0)
    answer = client.chat.completions.create(model="gpt-test",
                                            messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi"

    deleted = httpx.delete(f"{gateway_url}/v1/keys/{made['id']}", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json() == {"id": made["id"], "deleted": True}
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-test",
                                       messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(f"{gateway_url}/v1/keys", headers=ADMIN).json()["data"] == []
    again = httpx.delete(f"{gateway_url}/v1/keys/{made['id']}", headers=ADMIN)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_secret_is_stored_only_as_a_digest(make_gateway: GatewayFactory,
                                           fake_openai: FakeOpenAI,
                                           redis_server: RedisServer) -> None:
    redis_server.flush()
    url = make_gateway(gateway_config(fake_openai.url), redis_url=redis_server.url)  # type: ignore[attr-defined]
    made = create(url, name="x")
    raw = redis_server.client().hgetall(KEYS_HASH)
    assert list(raw) == [digest_hex(made["key"]).encode()]
    assert made["key"].encode() not in b"".join(raw.values())


def test_model_allowlist(gateway_url: str) -> None:
    key = create(gateway_url, models=["gpt-test", "fake/*"])["key"]
    assert chat(gateway_url, key).status_code == 200
    assert chat(gateway_url, key, {**HELLO, "model": "fake/echo"}).status_code == 200
    refused = chat(gateway_url, key, {**HELLO, "model": "lb"})
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "message": "This key may not use the model 'lb'.", "type": "permission_error",
        "param": "model", "code": "model_not_allowed"}
    auth = {"Authorization": f"Bearer {key}"}
    ids = [m["id"] for m in httpx.get(f"{gateway_url}/v1/models", headers=auth).json()["data"]]
    assert ids == ["gpt-test"]
    assert httpx.get(f"{gateway_url}/v1/models/lb", headers=auth).status_code == 404
    assert httpx.get(f"{gateway_url}/v1/models/gpt-test", headers=auth).status_code == 200


def test_expired_key_is_401(gateway_url: str) -> None:
    key = create(gateway_url, expires_at=int(time.time()) - 1)["key"]
    refused = chat(gateway_url, key)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert "expired" in refused.json()["error"]["message"]
    later = create(gateway_url, expires_at=int(time.time()) + 3600)["key"]
    assert chat(gateway_url, later).status_code == 200


def test_unknown_key_is_401(gateway_url: str) -> None:
    create(gateway_url)
    assert chat(gateway_url, "sk-gw-not-a-key").status_code == 401


def test_virtual_key_may_not_manage_keys(gateway_url: str) -> None:
    key = create(gateway_url)["key"]
    for method, path in [("POST", "/v1/keys"), ("GET", "/v1/keys"),
                         ("DELETE", "/v1/keys/key_x")]:
        response = httpx.request(method, f"{gateway_url}{path}", json={},
                                 headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "admin_only"


@pytest.mark.parametrize("body, param", [
    ({"rpm": 0}, "rpm"), ({"models": "gpt-test"}, "models"), ({"colour": "red"}, "colour"),
    ({"expires_at": "tomorrow"}, "expires_at"),
])
def test_bad_key_body_is_400(gateway_url: str, body: dict[str, Any], param: str) -> None:
    response = httpx.post(f"{gateway_url}/v1/keys", json=body, headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_without_master_key_keys_cannot_be_made(make_gateway: GatewayFactory,
                                                 fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url), master_key=None)  # type: ignore[attr-defined]
    response = httpx.post(f"{url}/v1/keys", json={})
    assert response.status_code == 403 and response.json()["error"]["code"] == "admin_only"
    assert chat(url, "anything").status_code == 200  # auth is off


def test_auth_is_on_once_a_virtual_key_exists(make_gateway: GatewayFactory,
                                               fake_openai: FakeOpenAI,
                                               redis_server: RedisServer) -> None:
    """A replica without the master key, sharing Redis with one that made a key."""
    redis_server.flush()
    config = gateway_config(fake_openai.url)  # type: ignore[attr-defined]
    with_master = make_gateway(config, redis_url=redis_server.url)
    without = make_gateway(config, master_key=None, redis_url=redis_server.url)
    assert chat(without, "anything").status_code == 200  # no key anywhere: auth off
    key = create(with_master)["key"]
    assert chat(without, "anything").status_code == 401
    no_key = httpx.post(f"{without}/v1/chat/completions", json=HELLO)
    assert no_key.status_code == 401
    assert chat(without, key).status_code == 200


async def test_lookup_is_not_cached_across_revocation(redis_server: RedisServer) -> None:
    """Two key stores (two replicas) on one Redis: a revoke through one is seen by the other
    at once."""
    from gateway.access.keys import KeyCreate, KeyStore

    redis_server.flush()
    a, b = RedisStore(redis_server.url), RedisStore(redis_server.url)
    try:
        keys_a, keys_b = KeyStore(a), KeyStore(b)
        made, secret = await keys_a.create(KeyCreate(name="n"))
        assert (await keys_b.lookup(secret)) == made
        assert await keys_a.revoke(made.id)
        assert await keys_b.lookup(secret) is None
    finally:
        await a.aclose()
        await b.aclose()


async def test_copies_are_dropped_through_pubsub(redis_server: RedisServer) -> None:
    """Replicas keep keys they have seen; a revoke through one reaches the other's copy."""
    import asyncio

    from gateway.access.keys import KeyCreate, KeyStore

    redis_server.flush()
    a, b = RedisStore(redis_server.url), RedisStore(redis_server.url)
    keys_a, keys_b = KeyStore(a), KeyStore(b)
    await keys_a.start()
    await keys_b.start()
    try:
        for _ in range(100):  # until both are subscribed
            if keys_a._subscribed and keys_b._subscribed:
                break
            await asyncio.sleep(0.01)
        made, secret = await keys_a.create(KeyCreate(name="n"))
        assert await keys_b.lookup(secret) == made
        assert keys_b._cache  # kept: the next lookup costs no round trip
        assert await keys_a.revoke(made.id)
        for _ in range(100):
            if not keys_b._cache:
                break
            await asyncio.sleep(0.01)
        assert await keys_b.lookup(secret) is None
    finally:
        await keys_a.aclose()
        await keys_b.aclose()
        await a.aclose()
        await b.aclose()


async def test_no_copies_without_a_subscription(redis_server: RedisServer) -> None:
    from gateway.access.keys import KeyCreate, KeyStore

    redis_server.flush()
    store = RedisStore(redis_server.url)
    keys = KeyStore(store)  # not started: never subscribed
    try:
        made, secret = await keys.create(KeyCreate())
        assert await keys.lookup(secret) == made
        assert not keys._cache
    finally:
        await store.aclose()
