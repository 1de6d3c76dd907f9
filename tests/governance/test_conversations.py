"""Server-kept conversations end to end with the openai SDK: history before the request,
ownership, paging, truncation to the context window, aborted streams, masked values stored
masked; in memory and on a real redis-server."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_server import FakeOpenAI


def config(upstream: str) -> dict[str, Any]:
    return {"models": [
        {"name": "gpt-test", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream},
        {"name": "tiny", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream, "context_window": 90},
        {"name": "masked", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream, "guardrails": [{"pii": {"action": "mask", "restore": True}}]},
        {"name": "fake/*", "provider": "openai-compatible", "api_base": upstream,
         "retries": 0},
    ]}


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
        redis_url_or_none: str | None) -> str:
    return make_gateway(config(fake_openai.url), redis_url=redis_url_or_none)  # type: ignore[attr-defined]


def say(url: str, conversation: str, text: str, *, model: str = "gpt-test",
        key: str = MASTER_KEY, stream: bool = False, system: str | None = None
        ) -> tuple[str, dict[str, str]]:
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    messages: Any = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}]
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=stream,
        extra_body={"conversation_id": conversation})
    parsed = raw.parse()
    if stream:
        answer = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)  # type: ignore[union-attr]
    else:
        answer = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
    return answer, dict(raw.headers)


def get(url: str, path: str, key: str = MASTER_KEY) -> httpx.Response:
    return httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {key}"})


def new_key(url: str) -> str:
    return str(httpx.post(f"{url}/v1/keys", json={},
                          headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()["key"])


@pytest.mark.parametrize("stream", [False, True])
def test_history_goes_before_the_request(url: str, fake_openai: FakeOpenAI,
                                         stream: bool) -> None:
    answer, headers = say(url, "new", "hi there", stream=stream, system="be brief")
    assert answer == "echo: hi there"
    conversation = headers["x-conversation-id"]
    answer, headers = say(url, conversation, "and again", stream=stream)
    assert headers["x-conversation-id"] == conversation
    assert "x-conversation-truncated" not in headers
    assert fake_openai.requests[-1]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "echo: hi there"},
        {"role": "user", "content": "and again"}]
    assert "conversation_id" not in fake_openai.requests[-1]
    stored = get(url, f"/v1/conversations/{conversation}").json()
    assert stored["id"] == conversation and isinstance(stored["created"], int)
    assert [m["role"] for m in stored["messages"]] == [
        "system", "user", "assistant", "user", "assistant"]
    assert stored["messages"][-1]["content"] == "echo: and again"


def test_a_key_sees_only_its_own(url: str) -> None:
    alice, bob = new_key(url), new_key(url)
    _, headers = say(url, "new", "secret plans", key=alice)
    mine = headers["x-conversation-id"]
    assert get(url, f"/v1/conversations/{mine}", bob).json()["error"]["code"] == "not_found"
    with pytest.raises(openai.NotFoundError):
        say(url, mine, "let me in", key=bob)
    assert httpx.delete(f"{url}/v1/conversations/{mine}",
                        headers={"Authorization": f"Bearer {bob}"}).status_code == 404
    assert get(url, "/v1/conversations", bob).json()["data"] == []
    assert [c["id"] for c in get(url, "/v1/conversations", alice).json()["data"]] == [mine]
    assert get(url, f"/v1/conversations/{mine}").status_code == 200  # the master key
    assert httpx.delete(f"{url}/v1/conversations/{mine}",
                        headers={"Authorization": f"Bearer {alice}"}).json()["deleted"] is True
    assert get(url, f"/v1/conversations/{mine}", alice).status_code == 404
    with pytest.raises(openai.NotFoundError) as unknown:
        say(url, "conv_nope", "hello")
    assert unknown.value.code == "not_found"


def test_paging_newest_first(url: str) -> None:
    made = [say(url, "new", f"number {i}")[1]["x-conversation-id"] for i in range(3)]
    first = get(url, "/v1/conversations?limit=2").json()
    assert [c["id"] for c in first["data"]] == [made[2], made[1]] and first["has_more"] is True
    rest = get(url, f"/v1/conversations?limit=2&after={made[1]}").json()
    assert [c["id"] for c in rest["data"]] == [made[0]] and rest["has_more"] is False
    assert get(url, "/v1/conversations?limit=0").status_code == 400


def test_oldest_turns_go_first_when_the_context_is_full(url: str,
                                                        fake_openai: FakeOpenAI) -> None:
    words = " ".join(["word"] * 12)
    _, headers = say(url, "new", f"one {words}", model="tiny", system="keep me")
    conversation = headers["x-conversation-id"]
    truncated = []
    for turn in ("two", "three", "four"):
        _, headers = say(url, conversation, f"{turn} {words}", model="tiny")
        truncated.append(int(headers.get("x-conversation-truncated", "0")))
    assert truncated[0] == 0 and truncated[-1] >= 1
    sent = fake_openai.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "keep me"}
    assert sent[1]["role"] == "user"  # never half a turn
    assert sent[-1]["content"] == f"four {words}"
    assert not any(m["content"].startswith("one") for m in sent)
    # the stored history keeps everything
    stored = get(url, f"/v1/conversations/{conversation}").json()["messages"]
    assert len(stored) == 9


@pytest.mark.parametrize("broken", ["fake/cut-stream", "fake/midstream-error"])
def test_an_aborted_stream_leaves_the_history(url: str, broken: str) -> None:
    _, headers = say(url, "new", "hello")
    conversation = headers["x-conversation-id"]
    with httpx.stream("POST", f"{url}/v1/chat/completions",
                      headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": broken, "stream": True, "conversation_id": conversation,
                            "messages": [{"role": "user", "content": "go on"}]}) as answer:
        answer.read()
    assert len(get(url, f"/v1/conversations/{conversation}").json()["messages"]) == 2
    with pytest.raises(openai.APIStatusError):
        say(url, conversation, "fail", model="fake/error-500")
    assert len(get(url, f"/v1/conversations/{conversation}").json()["messages"]) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_masked_values_are_stored_masked(url: str, fake_openai: FakeOpenAI,
                                         stream: bool) -> None:
    answer, headers = say(url, "new", "mail ann@x.example", model="masked", stream=stream)
    assert answer == "echo: mail ann@x.example"
    conversation = headers["x-conversation-id"]
    answer, _ = say(url, conversation, "and bob@y.example", model="masked", stream=stream)
    assert answer == "echo: and bob@y.example"
    assert fake_openai.requests[-1]["messages"][-1]["content"] == "and <EMAIL_2>"
    stored = str(get(url, f"/v1/conversations/{conversation}").json())
    assert "ann@x.example" not in stored and "bob@y.example" not in stored
    assert "<EMAIL_1>" in stored and "<EMAIL_2>" in stored
