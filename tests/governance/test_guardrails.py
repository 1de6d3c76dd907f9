"""PII guardrails end to end with the openai SDK: mask, block and restore (streams too), the
global, deployment and key lists, the cache keyed by the masked request, and no value in the
logs; in memory and on a real redis-server."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import openai
import pytest

from gateway.config import ConfigError, validate
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_server import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
TEXT = ("mail jane@corp.example or bob@corp.example, then jane@corp.example; "
        "card 4111 1111 1111 1111")
MASKED = "mail <EMAIL_1> or <EMAIL_2>, then <EMAIL_1>; card <CREDIT_CARD_1>"
VALUES = ("jane@corp.example", "bob@corp.example", "4111 1111 1111 1111")


def config(upstream: str, *, restore: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "guardrails": [{"pii": {"action": "mask", "restore": restore}}],
        "models": [
            {"name": "gpt-test", "provider": "openai-compatible", "model": "echo",
             "api_base": upstream},
            {"name": "strict", "provider": "openai-compatible", "model": "echo",
             "api_base": upstream,
             "guardrails": [{"pii": {"action": "block", "entities": ["CREDIT_CARD", "US_SSN"]}}]},
            {"name": "open", "provider": "openai-compatible", "model": "echo",
             "api_base": upstream, "guardrails": []},
        ], **extra}


@pytest.fixture
def start(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
          redis_url_or_none: str | None) -> Any:
    def run(**options: Any) -> str:
        return make_gateway(config(fake_openai.url, **options),  # type: ignore[attr-defined]
                            redis_url=redis_url_or_none)
    return run


def ask(url: str, text: str, *, model: str = "gpt-test", stream: bool = False,
        key: str = MASTER_KEY) -> str:
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    messages: Any = [{"role": "user", "content": text}]
    if stream:
        chunks = sdk.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    answer = sdk.chat.completions.create(model=model, messages=messages)
    return answer.choices[0].message.content or ""


@pytest.mark.parametrize("stream", [False, True])
def test_mask(start: Any, fake_openai: FakeOpenAI, stream: bool) -> None:
    url = start()
    assert ask(url, TEXT, stream=stream) == "echo: " + MASKED
    assert fake_openai.requests[-1]["messages"][0]["content"] == MASKED


@pytest.mark.parametrize("stream", [False, True])
def test_restore(start: Any, fake_openai: FakeOpenAI, stream: bool) -> None:
    url = start(restore=True)
    assert ask(url, TEXT, stream=stream) == "echo: " + TEXT
    sent = str(fake_openai.requests[-1])
    assert not any(value in sent for value in VALUES)


def test_block_per_deployment_and_unguarded(start: Any, fake_openai: FakeOpenAI) -> None:
    url = start()
    with pytest.raises(openai.BadRequestError) as caught:
        ask(url, "ssn 123-45-6789, card 4111 1111 1111 1111", model="strict")
    assert caught.value.code == "content_policy_violation"
    assert "CREDIT_CARD" in caught.value.message and "US_SSN" in caught.value.message
    assert "4111" not in caught.value.message and "6789" not in caught.value.message
    assert fake_openai.requests == []
    # the deployment's list replaces the global one: emails pass there, and everywhere on "open"
    assert ask(url, "mail a@b.io", model="strict") == "echo: mail a@b.io"
    assert ask(url, TEXT, model="open") == "echo: " + TEXT


def test_a_key_adds_its_own(start: Any) -> None:
    url = start()
    made = httpx.post(f"{url}/v1/keys", headers=ADMIN, json={"guardrails": [
        {"pii": {"action": "mask", "entities": [], "patterns": {"EMPLOYEE_ID": "E-[0-9]{6}"}}}]})
    assert made.status_code == 201, made.text
    assert made.json()["guardrails"][0]["pii"]["patterns"] == {"EMPLOYEE_ID": "E-[0-9]{6}"}
    key = made.json()["key"]
    assert ask(url, "E-123456 a@b.io", key=key) == "echo: <EMPLOYEE_ID_1> <EMAIL_1>"
    assert ask(url, "E-123456 a@b.io") == "echo: E-123456 <EMAIL_1>"  # the master key: global
    with pytest.raises(openai.BadRequestError):
        ask(url, "ssn 123-45-6789", model="strict",
            key=httpx.post(f"{url}/v1/keys", headers=ADMIN, json={}).json()["key"])


@pytest.mark.parametrize("stream", [False, True])
def test_cache_is_keyed_by_the_masked_request(start: Any, fake_openai: FakeOpenAI,
                                              stream: bool,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = start(restore=True, cache={"mode": "all"})
    assert ask(url, "write to ann@x.example", stream=stream) == "echo: write to ann@x.example"
    # another address masks to the same request: a hit, restored with its own value
    assert ask(url, "write to ben@y.example", stream=stream) == "echo: write to ben@y.example"
    assert len(fake_openai.requests) == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "ann@x.example" not in logged and "ben@y.example" not in logged


def test_config_errors_name_the_key() -> None:
    bad = {"models": [{"name": "m", "provider": "openai-compatible", "api_base": "http://x",
                       "guardrails": [{"pii": {"action": "mask", "restore": True, "bogus": 1}}]}]}
    with pytest.raises(ConfigError, match=r"models\[0\]\.guardrails\[0\]\.pii\.bogus: unknown key"):
        validate(bad)
    with pytest.raises(ConfigError, match="guardrails"):
        validate({"guardrails": [{"pii": {"action": "block", "restore": True}}]})
    with pytest.raises(ConfigError, match="not a valid regex"):
        validate({"guardrails": [{"pii": {"patterns": {"X": "("}}}]})


def test_embedding_inputs_are_masked_or_blocked(start: Any, fake_openai: FakeOpenAI) -> None:
    url = start()
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    sdk.embeddings.create(model="gpt-test", input=["ask ann@x.example", "plain"])
    assert fake_openai.requests[-1]["input"] == ["ask <EMAIL_1>", "plain"]
    sdk.embeddings.create(model="gpt-test", input="call +1 415 555 0132")
    assert fake_openai.requests[-1]["input"] == "call <PHONE_1>"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(model="strict", input="card 4111 1111 1111 1111")
    assert caught.value.code == "content_policy_violation"
