"""Key limits end to end (contract section 7): buckets, headers, 429 with Retry-After, token
reservation and settlement — in memory and on a real redis-server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway.access.quotas import SETTLE_DELAY_S, format_reset
from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def hello(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def start(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
          redis_url_or_none: str | None) -> Any:
    def run(**extra: Any) -> str:
        return make_gateway(gateway_config(fake_openai.url, **extra),  # type: ignore[attr-defined]
                            redis_url=redis_url_or_none)
    return run


def new_key(url: str, **body: Any) -> dict[str, str]:
    key = httpx.post(f"{url}/v1/keys", json=body, headers=ADMIN).json()["key"]
    return {"Authorization": f"Bearer {key}"}


def post(url: str, headers: dict[str, str], body: dict[str, Any] | None = None
         ) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body or hello(), headers=headers)


def test_rpm_exactly_then_429(start: Any) -> None:
    url = start()
    key = new_key(url, rpm=3)
    answers = [post(url, key) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
    assert answers[0].headers["x-ratelimit-reset-requests"].endswith("s")
    refused = answers[3]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 19 <= int(refused.headers["retry-after"]) <= 20  # one request back every 20 s
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # another key has its own buckets; the master key has none
    assert post(url, new_key(url, rpm=3)).status_code == 200
    master = post(url, ADMIN)
    assert master.status_code == 200 and "x-ratelimit-limit-requests" not in master.headers


def test_limits_defaults_apply_to_keys_without_their_own(start: Any) -> None:
    url = start(limits={"rpm": 2})
    key = new_key(url)
    assert [post(url, key).status_code for _ in range(3)] == [200, 200, 429]
    own = new_key(url, rpm=5)
    assert post(url, own).headers["x-ratelimit-limit-requests"] == "5"


def test_streams_count_too_and_carry_headers(start: Any) -> None:
    url = start()
    key = new_key(url, rpm=2)
    with httpx.stream("POST", f"{url}/v1/chat/completions", headers=key,
                      json=hello(stream=True)) as response:
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining-requests"] == "1"
        body = response.read()
    assert body.endswith(b"data: [DONE]\n\n")
    assert post(url, key).status_code == 200
    assert post(url, key, hello(stream=True)).status_code == 429


def test_tpm_reserves_max_tokens_and_settles_with_usage(start: Any) -> None:
    url = start()
    key = new_key(url, tpm=1000)
    # "hello" is about 8 tokens of prompt; max_tokens 900 reserves the rest of the bucket
    first = post(url, key, hello(max_tokens=900))
    assert first.status_code == 200
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    # the answer used 3 tokens (1 prompt word + "echo: hello" 2 words): the rest comes back
    # once the response is done (settlements are sent together, SETTLE_DELAY_S after it)
    time.sleep(SETTLE_DELAY_S + 0.15)
    assert post(url, key, hello(max_tokens=900)).status_code == 200


def test_tpm_refuses_when_the_estimate_does_not_fit(start: Any) -> None:
    url = start()
    key = new_key(url, tpm=100)
    assert post(url, key, hello(max_tokens=90)).status_code == 200
    refused = post(url, key, hello(max_tokens=90))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_embeddings_are_limited_too(start: Any) -> None:
    url = start()
    key = new_key(url, rpm=1)
    body = {"model": "gpt-test", "input": "hello world"}
    first = httpx.post(f"{url}/v1/embeddings", json=body, headers=key)
    assert first.status_code == 200 and first.headers["x-ratelimit-remaining-requests"] == "0"
    assert httpx.post(f"{url}/v1/embeddings", json=body, headers=key).status_code == 429


def test_rate_limited_metric(start: Any) -> None:
    url = start()
    key = new_key(url, rpm=1)
    post(url, key)
    post(url, key)
    metrics = httpx.get(f"{url}/metrics").text
    assert 'gateway_rate_limited_total{scope="key"} 1.0' in metrics


@pytest.mark.parametrize("ms, text", [
    (12, "12ms"), (999, "999ms"), (1000, "1s"), (17_500, "17.5s"), (60_000, "1m0s"),
    (360_000, "6m0s"), (3_723_000, "1h2m3s"),
])
def test_reset_format(ms: int, text: str) -> None:
    assert format_reset(ms) == text


def lb_config(fake: FakeOpenAI, **limits: Any) -> dict[str, Any]:
    """Two deployments of ``lb``, each with its own limits."""
    config = gateway_config(fake.url)  # type: ignore[attr-defined]
    for entry in config["models"]:
        if entry["name"] == "lb":
            entry.update(limits)
    return config


def test_a_saturated_deployment_hands_over_then_429(
        make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
        redis_url_or_none: str | None) -> None:
    url = make_gateway(lb_config(fake_openai, rpm=2), redis_url=redis_url_or_none)
    body = {**hello(), "model": "lb"}
    answers = [post(url, ADMIN, body) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    models = sorted(r["model"] for r in fake_openai.requests)
    assert models == ["echo-a", "echo-a", "echo-b", "echo-b"]  # each took exactly its 2
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "deployment" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    metrics = httpx.get(f"{url}/metrics").text
    assert 'gateway_rate_limited_total{scope="deployment"} 1.0' in metrics
    # a stream is refused the same way, before it starts
    assert post(url, ADMIN, {**body, "stream": True}).status_code == 429


def test_deployment_tpm(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    config = gateway_config(fake_openai.url)  # type: ignore[attr-defined]
    config["models"][0]["tpm"] = 100  # gpt-test
    url = make_gateway(config)
    assert post(url, ADMIN, hello(max_tokens=80)).status_code == 200
    # the answer took about 10 tokens of the 90 reserved: the rest came back
    time.sleep(SETTLE_DELAY_S + 0.15)
    assert post(url, ADMIN, hello(max_tokens=80)).status_code == 200
    assert post(url, ADMIN, hello(max_tokens=95)).status_code == 429


def test_redis_down_fails_fast_or_open(make_gateway: GatewayFactory, fake_openai: FakeOpenAI
                                       ) -> None:
    from tests.fakes.serve import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    closed = make_gateway(lb_config(fake_openai, rpm=100), redis_url=dead)
    refused = post(closed, ADMIN, {**hello(), "model": "lb"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "upstream_unavailable"
    assert post(closed, ADMIN).status_code == 200  # gpt-test has no limits: no Redis needed
    opened = make_gateway({**lb_config(fake_openai, rpm=100), "limits": {"fail_open": True}},
                          redis_url=dead)
    assert post(opened, ADMIN, {**hello(), "model": "lb"}).status_code == 200
