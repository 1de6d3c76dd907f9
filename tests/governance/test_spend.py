"""Spend and caps end to end with the openai SDK: prices, cost in /v1/usage and the metric,
budgets (429 insufficient_quota before any upstream call), rpd and max_parallel on keys and
deployments, in memory and on a real redis-server."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_server import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
# 0.001 USD per prompt token, 0.002 per completion token
PRICES = {"input_cost_per_mtok": 1000.0, "output_cost_per_mtok": 2000.0}
# "hello world": 2 prompt words; the echo answers "echo: hello world", 3 words
HELLO_COST = 2 * 0.001 + 3 * 0.002


def config(upstream: str, **extra: Any) -> dict[str, Any]:
    return {"models": [
        {"name": "priced", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream, **PRICES},
        {"name": "gated", "provider": "openai-compatible", "model": "gated-stream",
         "api_base": upstream, "max_parallel": 1, "retries": 0},
        {"name": "fake/*", "provider": "openai-compatible", "api_base": upstream,
         "retries": 0},
    ], **extra}


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
        redis_url_or_none: str | None) -> str:
    return make_gateway(config(fake_openai.url), redis_url=redis_url_or_none)  # type: ignore[attr-defined]


def new_key(url: str, **body: Any) -> dict[str, Any]:
    made = httpx.post(f"{url}/v1/keys", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    return dict(made.json())


def client(url: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def hello(sdk: openai.OpenAI, model: str = "priced", *, stream: bool = False) -> str:
    messages: Any = [{"role": "user", "content": "hello world"}]
    if stream:
        pieces = sdk.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    answer = sdk.chat.completions.create(model=model, messages=messages)
    return answer.choices[0].message.content or ""


def usage(url: str, key: str = MASTER_KEY, **query: str) -> dict[str, Any]:
    got = httpx.get(f"{url}/v1/usage", params=query,
                    headers={"Authorization": f"Bearer {key}"})
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_cost_in_usage_rows_totals_and_metric(url: str) -> None:
    key = new_key(url)
    sdk = client(url, key["key"])
    assert hello(sdk) == "echo: hello world"
    assert hello(sdk, stream=True) == "echo: hello world"
    hello(sdk, "fake/echo")  # no prices: costs nothing
    body = usage(url, key_id=key["id"])
    rows = {row["model"]: row for row in body["data"]}
    assert rows["priced"]["cost_usd"] == pytest.approx(2 * HELLO_COST)
    assert rows["priced"]["requests"] == 2
    assert rows["fake/echo"]["cost_usd"] == 0
    assert body["totals"]["cost_usd"] == pytest.approx(2 * HELLO_COST)
    metrics = httpx.get(f"{url}/metrics").text
    line = next(x for x in metrics.splitlines()
                if x.startswith('gateway_cost_usd_total{model="priced"}'))
    assert float(line.split()[-1]) == pytest.approx(2 * HELLO_COST)


def test_budget_refuses_before_the_upstream(url: str, fake_openai: FakeOpenAI) -> None:
    key = new_key(url, max_budget_usd=1.5 * HELLO_COST, budget_period="day")
    assert key["max_budget_usd"] == pytest.approx(1.5 * HELLO_COST)
    assert key["budget_period"] == "day"
    sdk = client(url, key["key"])
    hello(sdk)
    hello(sdk, stream=True)  # spent 2 calls' worth now: over the budget
    calls = len(fake_openai.requests)
    with pytest.raises(openai.RateLimitError) as caught:
        hello(sdk)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert len(fake_openai.requests) == calls  # refused before any upstream call
    # another key, and the master key, are not affected
    hello(client(url, new_key(url)["key"]))
    hello(client(url))


def test_a_cached_answer_costs_nothing(make_gateway: GatewayFactory,
                                       fake_openai: FakeOpenAI) -> None:
    url = make_gateway(config(fake_openai.url, cache={"mode": "all"}))  # type: ignore[attr-defined]
    key = new_key(url, max_budget_usd=1.5 * HELLO_COST)
    sdk = client(url, key["key"])
    hello(sdk)
    hello(sdk)  # a cache hit: no spend, so the budget still lets it through
    assert usage(url, key_id=key["id"])["totals"]["cost_usd"] == pytest.approx(HELLO_COST)


def test_rpd(url: str) -> None:
    key = new_key(url, rpd=2)
    sdk = client(url, key["key"])
    hello(sdk, "fake/echo")
    hello(sdk, "fake/echo", stream=True)
    with pytest.raises(openai.RateLimitError) as caught:
        hello(sdk, "fake/echo")
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) > 0


def test_key_rejects_bad_caps(url: str) -> None:
    for body in ({"rpd": 0}, {"max_parallel": -1}, {"max_budget_usd": -1},
                 {"budget_period": "week"}, {"guardrails": [{"pii": {"action": "drop"}}]}):
        answer = httpx.post(f"{url}/v1/keys", json=body, headers=ADMIN)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == "invalid_value"


def _held_stream(url: str, key: str, model: str, opened: threading.Event) -> None:
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "stream": True,
                            "messages": [{"role": "user", "content": "a b"}]}) as answer:
        assert answer.status_code == 200
        opened.set()
        for _ in answer.iter_bytes():
            pass


@pytest.mark.parametrize("where", ["key", "deployment"])
def test_max_parallel(url: str, fake_openai: FakeOpenAI, where: str) -> None:
    key = new_key(url, max_parallel=1) if where == "key" else new_key(url)
    model = "fake/gated-stream" if where == "key" else "gated"
    opened = threading.Event()
    held = threading.Thread(target=_held_stream, args=(url, key["key"], model, opened))
    held.start()
    try:
        assert opened.wait(10)
        with pytest.raises(openai.RateLimitError) as caught:
            hello(client(url, key["key"]), model)
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.response.headers["retry-after"] == "1"
    finally:
        fake_openai.gate.set()
        held.join(10)
    fake_openai.gate.set()
    deadline = time.monotonic() + 5
    while True:  # the slot comes back when the stream has ended
        try:
            assert hello(client(url, key["key"]), model).startswith("echo:")
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
