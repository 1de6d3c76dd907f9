"""Prompt templates end to end with the openai SDK: CRUD and versions, built-ins, rendering
into chat (stream and non-stream), the 400/404s, and the cache keyed by the rendered messages;
in memory and on a real redis-server."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
BUILTINS = {"general-assistant", "code-assistant", "sql-assistant", "creative-writer",
            "meeting-minutes", "document-extraction"}
GREETER = {"name": "greeter", "description": "says hello",
           "system": "You greet people in {{lang}}.", "template": "Say hello to {{who}}"}


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
        redis_url_or_none: str | None) -> str:
    return make_gateway(gateway_config(fake_openai.url, cache={"mode": "all"}),  # type: ignore[attr-defined]
                        redis_url=redis_url_or_none)


def api(url: str, method: str, path: str, body: Any = None, key: str = MASTER_KEY
        ) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body,
                         headers={"Authorization": f"Bearer {key}"})


def sdk(url: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def ask(url: str, messages: Any = (), stream: bool = False, **extra: Any) -> str:
    client = sdk(url)
    if stream:
        chunks = client.chat.completions.create(model="gpt-test", messages=list(messages),
                                                stream=True, extra_body=extra)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    answer = client.chat.completions.create(model="gpt-test", messages=list(messages),
                                            extra_body=extra)
    return answer.choices[0].message.content or ""


def test_crud_and_versions(url: str) -> None:
    made = api(url, "POST", "/v1/prompts", GREETER)
    assert made.status_code == 201, made.text
    assert made.json()["version"] == 1 and made.json()["template"] == GREETER["template"]
    assert api(url, "POST", "/v1/prompts", GREETER).json()["error"]["code"] == "already_exists"
    put = api(url, "PUT", "/v1/prompts/greeter", {"template": "Hi {{who}}!"})
    assert put.status_code == 200 and put.json()["version"] == 2
    assert put.json()["system"] == GREETER["system"]  # kept from version 1
    assert api(url, "GET", "/v1/prompts/greeter").json()["template"] == "Hi {{who}}!"
    old = api(url, "GET", "/v1/prompts/greeter?version=1").json()
    assert old["version"] == 1 and old["template"] == GREETER["template"]
    assert api(url, "GET", "/v1/prompts/greeter?version=9").status_code == 404
    assert api(url, "GET", "/v1/prompts/nobody").json()["error"]["code"] == "not_found"
    assert api(url, "PUT", "/v1/prompts/nobody", {"template": "x"}).status_code == 404
    names = {p["name"] for p in api(url, "GET", "/v1/prompts").json()["data"]}
    assert names == BUILTINS | {"greeter"}
    # a virtual key reads and uses prompts; only the master key changes them
    key = api(url, "POST", "/v1/keys", {}).json()["key"]
    assert api(url, "GET", "/v1/prompts/greeter", key=key).status_code == 200
    refused = api(url, "PUT", "/v1/prompts/greeter", {"template": "x"}, key=key)
    assert refused.status_code == 403
    assert api(url, "DELETE", "/v1/prompts/greeter").json() == {"name": "greeter",
                                                                "deleted": True}
    assert api(url, "GET", "/v1/prompts/greeter").status_code == 404
    assert api(url, "POST", "/v1/prompts", {"name": "bad name!", "template": "x"}
               ).status_code == 400


def test_a_stored_prompt_overrides_a_builtin(url: str) -> None:
    builtin = api(url, "GET", "/v1/prompts/general-assistant").json()
    assert builtin["version"] == 1 and builtin["builtin"] is True
    assert api(url, "POST", "/v1/prompts", {"name": "general-assistant", "template": "x"}
               ).status_code == 409
    put = api(url, "PUT", "/v1/prompts/general-assistant", {"template": "Q: {{question}}"})
    assert put.json()["version"] == 2
    assert ask(url, prompt="general-assistant", variables={"question": "why"}) == "echo: Q: why"
    assert ask(url, prompt="general-assistant", prompt_version=1,
               variables={"question": "why"}) == "echo: why"
    assert api(url, "DELETE", "/v1/prompts/general-assistant").status_code == 200
    assert api(url, "GET", "/v1/prompts/general-assistant").json()["builtin"] is True
    assert api(url, "DELETE", "/v1/prompts/general-assistant").status_code == 400


@pytest.mark.parametrize("stream", [False, True])
def test_rendered_into_chat(url: str, fake_openai: FakeOpenAI, stream: bool) -> None:
    api(url, "POST", "/v1/prompts", GREETER)
    answer = ask(url, [{"role": "user", "content": "context first"}], stream=stream,
                 prompt="greeter", variables={"lang": "Korean", "who": "Ada"})
    assert answer == "echo: Say hello to Ada"
    sent = fake_openai.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "You greet people in Korean."},
        {"role": "user", "content": "context first"},
        {"role": "user", "content": "Say hello to Ada"}]
    assert not {"prompt", "variables", "prompt_version"} & sent.keys()
    api(url, "PUT", "/v1/prompts/greeter", {"template": "Bye {{who}}"})
    assert ask(url, prompt="greeter", prompt_version=1, stream=stream,
               variables={"lang": "en", "who": "Bo"}) == "echo: Say hello to Bo"
    assert ask(url, prompt="greeter", stream=stream,
               variables={"lang": "en", "who": "Bo"}) == "echo: Bye Bo"


def test_errors(url: str) -> None:
    api(url, "POST", "/v1/prompts", GREETER)
    with pytest.raises(openai.BadRequestError) as missing:
        ask(url, prompt="greeter", variables={"lang": "en"})
    assert missing.value.code == "invalid_value" and missing.value.param == "variables"
    assert "who" in missing.value.message
    with pytest.raises(openai.BadRequestError) as unused:
        ask(url, prompt="greeter", variables={"lang": "en", "who": "x", "extra": 1})
    assert unused.value.param == "variables" and "extra" in unused.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        ask(url, prompt="nope")
    assert unknown.value.code == "not_found"
    with pytest.raises(openai.NotFoundError):
        ask(url, prompt="greeter", prompt_version=7, variables={"lang": "en", "who": "x"})
    with pytest.raises(openai.BadRequestError) as empty:
        ask(url, [])
    assert empty.value.param == "messages"


def test_the_cache_key_is_built_from_the_rendered_messages(url: str) -> None:
    api(url, "POST", "/v1/prompts", {"name": "plain", "template": "tell me {{x}}"})
    client = sdk(url)

    def cache_of(**extra: Any) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=extra.pop("messages", []), extra_body=extra)
        return raw.headers["x-gateway-cache"]

    assert cache_of(prompt="plain", variables={"x": "a"}) == "miss"
    assert cache_of(prompt="plain", variables={"x": "b"}) == "miss"
    assert cache_of(prompt="plain", variables={"x": "a"}) == "hit"
    # the same messages sent directly are the same request
    assert cache_of(messages=[{"role": "user", "content": "tell me b"}]) == "hit"
