"""A request the gateway or a provider refuses itself, before any upstream call, is the
client's error: not counted in ``gateway_upstream_errors_total``, not logged as a deployment
failure, no weight on the circuit breaker. An error the upstream answered still is."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.models.make_tiny_gguf import make_tiny_gguf
from tests.test_metrics import samples, value

pytest.importorskip("llama_cpp", reason="the local extra: pip install -e '.[local]'")

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
# One failure would open a breaker for a minute: a request after it would get a 503.
BREAKER = {"cooldown_failures": 1, "cooldown_s": 60, "retries": 0}


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_anthropic: FakeAnthropic, tiny_gguf: Path) -> str:
    anthropic = {"provider": "anthropic", "api_base": fake_anthropic.url + "/",  # type: ignore[attr-defined]
                 "api_key": "sk-ant-upstream", "timeout_s": 10, **BREAKER}
    return make_gateway({"models": [
        {"name": "claude", "model": "echo", **anthropic},
        {"name": "claude-400", "model": "error-400", **anthropic},
        {"name": "tiny", "provider": "llama-cpp", "path": str(tiny_gguf), "n_ctx": 64,
         "n_threads": 1, **BREAKER},
    ]})


def chat(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers=AUTH, timeout=60,
                      json={"messages": HELLO, "max_tokens": 4, **body})


def refused(url: str) -> list[httpx.Response]:
    return [
        chat(url, model="claude", temperature=1.5),
        chat(url, model="claude", temperature=1.5, stream=True),
        chat(url, model="tiny", n=2),
        chat(url, model="tiny", messages=[{"role": "user", "content": "word " * 200}]),
        httpx.post(f"{url}/v1/embeddings", headers=AUTH, timeout=60,
                   json={"model": "tiny", "input": "a b"}),
    ]


def test_refused_before_upstream_is_the_clients_error(url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gateway"):
        answers = refused(url)
    assert [r.status_code for r in answers] == [400] * 5, [r.text for r in answers]
    codes = [r.json()["error"]["code"] for r in answers]
    assert codes == ["invalid_value", "invalid_value", "invalid_value",
                     "context_length_exceeded", "invalid_value"]
    data = samples(url)
    for model in ("claude", "tiny"):
        assert not any(name == "gateway_upstream_errors_total" and ("model", model) in labels
                       for name, labels in data), model
    chat_path = "/v1/chat/completions"
    assert value(data, "gateway_requests_total", model="claude", endpoint=chat_path,
                 status="400") == 2
    assert value(data, "gateway_requests_total", model="tiny", endpoint=chat_path,
                 status="400") == 2
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures == [], [r.getMessage() for r in failures]
    assert sum("refused the request" in r.getMessage() for r in caplog.records) == 5

    # the breakers (one failure opens them) are untouched: both deployments still answer
    assert chat(url, model="claude").status_code == 200
    assert chat(url, model="tiny").status_code == 200


def test_an_upstreams_400_is_still_counted(url: str) -> None:
    assert chat(url, model="claude-400").status_code == 400
    assert value(samples(url), "gateway_upstream_errors_total", model="claude-400",
                 provider="anthropic", reason="invalid_value") == 1
