"""Two ``gateway serve`` processes on one redis-server: spend settled once per call and the
budget, rpd and max_parallel of a key held across both; prompts and key guardrails shared."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, RedisServer, replica_pair
from tests.governance.test_spend import HELLO_COST, PRICES, _held_stream

MASTER = "sk-replica-master"
ADMIN = {"Authorization": f"Bearer {MASTER}"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI,
         redis_server: RedisServer) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    upstream = fake_openai_server.url  # type: ignore[attr-defined]
    with replica_pair(tmp_path_factory.mktemp("replicas"), {"models": [
            {"name": "priced", "provider": "openai-compatible", "model": "echo",
             "api_base": upstream, **PRICES},
            {"name": "fake/*", "provider": "openai-compatible", "api_base": upstream,
             "retries": 0}]}, redis_server, MASTER) as pair:
        yield pair


def key(url: str, **body: Any) -> dict[str, Any]:
    made = httpx.post(f"{url}/v1/keys", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    return dict(made.json())


def chat(url: str, secret: str, model: str = "priced", **extra: Any) -> int:
    return httpx.post(f"{url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {secret}"},
                      json={"model": model, **extra,
                            "messages": [{"role": "user", "content": "hello world"}]}
                      ).status_code


def test_spend_is_settled_once_and_the_budget_holds_on_both(
        pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = pair
    made = key(a.url, max_budget_usd=10 * HELLO_COST)
    urls = [a.url, b.url] * 5
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda url: chat(url, made["key"]), urls))
    assert statuses == [200] * 10
    deadline = time.monotonic() + 10
    while True:  # the other replica writes its usage within a second
        totals = httpx.get(f"{a.url}/v1/usage", params={"key_id": made["id"]},
                           headers=ADMIN).json()["totals"]
        if totals["requests"] == 10 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert totals["requests"] == 10
    assert totals["cost_usd"] == pytest.approx(10 * HELLO_COST)
    # spent exactly the budget: refused on both replicas now
    assert chat(a.url, made["key"]) == 429
    assert chat(b.url, made["key"]) == 429


def test_rpd_and_max_parallel_hold_on_both(pair: tuple[GatewayProcess, GatewayProcess],
                                            fake_openai_server: FakeOpenAI) -> None:
    a, b = pair
    daily = key(a.url, rpd=3)["key"]
    assert [chat(url, daily, "fake/echo") for url in (a.url, b.url, a.url, b.url)] == [
        200, 200, 200, 429]
    fake_openai_server.gate.clear()
    parallel = key(b.url, max_parallel=1)["key"]
    opened = threading.Event()
    held = threading.Thread(target=_held_stream,
                            args=(a.url, parallel, "fake/gated-stream", opened))
    held.start()
    try:
        assert opened.wait(10)
        assert chat(b.url, parallel, "fake/echo") == 429
    finally:
        fake_openai_server.gate.set()
        held.join(10)
    deadline = time.monotonic() + 5
    while chat(b.url, parallel, "fake/echo") != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_prompts_and_key_guardrails_are_shared(pair: tuple[GatewayProcess, GatewayProcess],
                                               fake_openai_server: FakeOpenAI) -> None:
    a, b = pair
    made = httpx.post(f"{a.url}/v1/prompts", headers=ADMIN,
                      json={"name": "shared", "template": "v1 {{x}}"})
    assert made.status_code == 201
    assert httpx.put(f"{b.url}/v1/prompts/shared", headers=ADMIN,
                     json={"template": "v2 {{x}}"}).json()["version"] == 2
    assert httpx.post(f"{b.url}/v1/prompts", headers=ADMIN,
                      json={"name": "shared", "template": "x"}).status_code == 409
    assert httpx.get(f"{a.url}/v1/prompts/shared?version=1", headers=ADMIN
                     ).json()["template"] == "v1 {{x}}"
    secret = key(a.url, guardrails=[{"pii": {"action": "mask", "restore": True}}])["key"]
    sdk = openai.OpenAI(base_url=f"{b.url}/v1", api_key=secret, max_retries=0)
    answer = sdk.chat.completions.create(
        model="priced", messages=[{"role": "user", "content": "to a@b.io"}],
        extra_body={"prompt": "shared", "variables": {"x": "c@d.io"}})
    assert answer.choices[0].message.content == "echo: v2 c@d.io"
    sent = fake_openai_server.requests[-1]["messages"]
    assert sent == [{"role": "user", "content": "to <EMAIL_1>"},
                    {"role": "user", "content": "v2 <EMAIL_2>"}]


def test_a_conversation_continues_on_the_other_replica(
        pair: tuple[GatewayProcess, GatewayProcess], fake_openai_server: FakeOpenAI) -> None:
    a, b = pair
    secret = key(a.url)["key"]

    def say(url: str, conversation: str, text: str) -> httpx.Response:
        return httpx.post(f"{url}/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {secret}"},
                          json={"model": "priced", "conversation_id": conversation,
                                "messages": [{"role": "user", "content": text}]})

    conversation = say(a.url, "new", "first").headers["x-conversation-id"]
    assert say(b.url, conversation, "second").status_code == 200
    assert [m["content"] for m in fake_openai_server.requests[-1]["messages"]] == [
        "first", "echo: first", "second"]
    listed = httpx.get(f"{a.url}/v1/conversations",
                       headers={"Authorization": f"Bearer {secret}"}).json()["data"]
    assert [c["id"] for c in listed] == [conversation]
    assert len(httpx.get(f"{b.url}/v1/conversations/{conversation}",
                         headers={"Authorization": f"Bearer {secret}"}).json()["messages"]) == 4


def test_keys_cli_takes_the_caps(pair: tuple[GatewayProcess, GatewayProcess]) -> None:
    import subprocess
    import sys

    a, _ = pair
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "--url", a.url, "create", "--rpd", "5",
         "--max-parallel", "2", "--max-budget-usd", "1.5", "--budget-period", "month",
         "--guardrails", '[{"pii": {"action": "block", "entities": ["EMAIL"]}}]'],
        capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2],
        env={"GATEWAY_MASTER_KEY": MASTER, "PATH": "/usr/bin:/bin"})
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert (created["rpd"], created["max_parallel"], created["max_budget_usd"],
            created["budget_period"]) == (5, 2, 1.5, "month")
    assert created["guardrails"][0]["pii"]["action"] == "block"
    assert chat(a.url, created["key"], "fake/echo") == 200
    assert httpx.post(f"{a.url}/v1/chat/completions",
                      headers={"Authorization": f"Bearer {created['key']}"},
                      json={"model": "fake/echo", "messages": [
                          {"role": "user", "content": "a@b.io"}]}).status_code == 400
