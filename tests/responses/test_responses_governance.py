"""/v1/responses goes through the chat path: guardrails, the response cache and usage apply
to it unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.governance.test_guardrails import MASKED, TEXT, VALUES
from tests.governance.test_guardrails import config as guarded_config


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)


def answer(client: openai.OpenAI, stream: bool, **kwargs: Any) -> str:
    if not stream:
        return client.responses.create(**kwargs).output_text
    with client.responses.stream(**kwargs) as events:
        return events.get_final_response().output_text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("restore", [False, True])
def test_guardrails_mask_and_restore(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                     stream: bool, restore: bool) -> None:
    client = sdk(make_gateway(guarded_config(fake_openai.url, restore=restore)))  # type: ignore[attr-defined]
    if stream:
        with client.responses.stream(model="gpt-test", input=TEXT) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model="gpt-test", input=TEXT)
    assert response.output_text == "echo: " + (TEXT if restore else MASKED)
    assert not any(value in str(fake_openai.requests[-1]) for value in VALUES)
    # stored masked, as it went out, also when the client got the values back
    stored = client.responses.retrieve(response.id)
    items = client.responses.input_items.list(response.id)
    assert stored.output_text == "echo: " + MASKED
    assert not any(value in stored.model_dump_json() + items.model_dump_json()
                   for value in VALUES)


def test_guardrails_block(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    client = sdk(make_gateway(guarded_config(fake_openai.url)))  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="strict", input=TEXT)
    assert caught.value.code == "content_policy_violation"


def test_cache_and_usage(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url, cache={"ttl_s": 60}))  # type: ignore[attr-defined]
    client = sdk(url)
    first = client.responses.with_raw_response.create(model="gpt-test", input="cache me",
                                                      temperature=0)
    second = client.responses.with_raw_response.create(model="gpt-test", input="cache me",
                                                       temperature=0)
    assert first.headers["x-gateway-cache"] == "miss"
    assert second.headers["x-gateway-cache"] == "hit"
    assert second.parse().output_text == "echo: cache me"
    assert second.parse().id != first.parse().id  # (a new response, stored on its own)
    with client.responses.stream(model="gpt-test", input="cache me", temperature=0) as events:
        assert events.get_final_response().output_text == "echo: cache me"
    assert len([r for r in fake_openai.requests if r.get("model") == "echo"]) == 1
    usage = httpx.get(f"{url}/v1/usage", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    rows = [row for row in usage.json()["data"] if row["model"] == "gpt-test"]
    assert sum(row["requests"] for row in rows) == 3
