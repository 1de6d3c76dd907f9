"""GET /v1/usage: tokens and requests per key, end user, model and day."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
        redis_url_or_none: str | None) -> str:
    return make_gateway(gateway_config(fake_openai.url), redis_url=redis_url_or_none)  # type: ignore[attr-defined]


def usage(url: str, headers: dict[str, str] | None = None, **query: str) -> httpx.Response:
    # usage is recorded just after each response is sent: give it a moment to land
    time.sleep(0.05)
    return httpx.get(f"{url}/v1/usage", params=query, headers=headers or ADMIN)


def test_usage_by_key_user_and_model(url: str) -> None:
    made = httpx.post(f"{url}/v1/keys", json={"name": "a"}, headers=ADMIN).json()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=made["key"], max_retries=0)
    messages: Any = [{"role": "user", "content": "one two three"}]
    client.chat.completions.create(model="gpt-test", messages=messages, user="alice")
    client.chat.completions.create(model="gpt-test", messages=messages, user="alice")
    client.chat.completions.create(model="gpt-test", messages=messages,
                                   extra_headers={"x-user-id": "bob"})
    list(client.chat.completions.create(model="fake/echo", messages=messages, stream=True))
    admin = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    admin.chat.completions.create(model="gpt-test", messages=messages)

    body = usage(url).json()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rows = {(r["key_id"], r["user"], r["model"]): r for r in body["data"]}
    # echo answers "echo: one two three": 4 completion tokens, 3 prompt tokens (the fake's count)
    assert rows[(made["id"], "alice", "gpt-test")] == {
        "date": today, "key_id": made["id"], "user": "alice", "model": "gpt-test",
        "requests": 2, "prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14,
        "cost_usd": 0.0}  # (no prices configured)
    assert rows[(made["id"], "bob", "gpt-test")]["requests"] == 1
    assert rows[(made["id"], None, "fake/echo")]["completion_tokens"] == 4  # a stream
    assert rows[(None, None, "gpt-test")]["requests"] == 1  # the master key
    assert body["totals"] == {"requests": 5, "prompt_tokens": 15, "completion_tokens": 20,
                              "total_tokens": 35, "cost_usd": 0.0}

    only_alice = usage(url, user="alice").json()["data"]
    assert [r["user"] for r in only_alice] == ["alice"]
    only_stream = usage(url, model="fake/echo").json()["data"]
    assert [r["model"] for r in only_stream] == ["fake/echo"]
    assert len(usage(url, key_id=made["id"]).json()["data"]) == 3


def test_a_virtual_key_sees_only_its_own(url: str) -> None:
    mine = httpx.post(f"{url}/v1/keys", json={}, headers=ADMIN).json()
    other = httpx.post(f"{url}/v1/keys", json={}, headers=ADMIN).json()
    for made in (mine, other):
        auth = {"Authorization": f"Bearer {made['key']}"}
        httpx.post(f"{url}/v1/chat/completions", headers=auth, json={
            "model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})
    auth = {"Authorization": f"Bearer {mine['key']}"}
    rows = usage(url, auth).json()["data"]
    assert [r["key_id"] for r in rows] == [mine["id"]]
    refused = usage(url, auth, key_id=other["id"])
    assert refused.status_code == 403 and refused.json()["error"]["param"] == "key_id"
    assert len(usage(url).json()["data"]) == 2  # the master key sees both


def test_date_range(url: str) -> None:
    httpx.post(f"{url}/v1/chat/completions", headers=ADMIN, json={
        "model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})
    today = dt.datetime.now(dt.UTC).date()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert usage(url, to=yesterday).json()["data"] == []
    body = usage(url, **{"from": str(int(time.time()) - 60), "to": today.isoformat()}).json()
    assert body["totals"]["requests"] == 1 and body["from"] == today.isoformat()


@pytest.mark.parametrize("query, param", [
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
])
def test_bad_dates_are_400(url: str, query: dict[str, str], param: str) -> None:
    response = usage(url, **query)
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_usage_needs_a_key(url: str) -> None:
    assert httpx.get(f"{url}/v1/usage").status_code == 401
