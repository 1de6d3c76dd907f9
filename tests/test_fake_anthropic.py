"""The fake Anthropic upstream, checked with the official ``anthropic`` SDK directly (no
gateway in between), so that the gateway's tests run against Anthropic's real wire format."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.fakes.anthropic_server import FakeAnthropic

MESSAGES = [{"role": "user", "content": "hi there"}]
TOOLS = [{"name": "get_weather", "description": "Weather of a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture
def client(fake_anthropic: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake_anthropic.url, api_key="sk-ant-x", max_retries=0)


def test_message_parses(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    message = client.messages.create(model="echo", max_tokens=100, system="be brief",
                                     messages=MESSAGES)  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "echo: hi there"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    assert fake_anthropic.headers[-1]["authorization"] == "Bearer sk-ant-x"  # SDK 2.x
    assert fake_anthropic.headers[-1]["anthropic-version"] >= "2026-10-21"


def test_stream_accumulates(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="cache-hit", max_tokens=100,
                                messages=MESSAGES) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hi there" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3 and final.usage.cache_read_input_tokens == 3


def test_max_tokens_and_stop_sequences(client: anthropic.Anthropic) -> None:
    cut = client.messages.create(model="echo", max_tokens=2, messages=[
        {"role": "user", "content": "one two three"}])
    assert cut.stop_reason == "max_tokens" and cut.content[0].text == "echo: one"  # type: ignore[union-attr]
    stopped = client.messages.create(model="echo", max_tokens=50, stop_sequences=["three"],
                                     messages=[{"role": "user", "content": "one two three"}])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "three"


def test_tool_use_whole_and_streamed(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="tool-call", max_tokens=100, messages=MESSAGES,  # type: ignore[arg-type]
                                     tools=TOOLS)  # type: ignore[arg-type]
    call = message.content[1]
    assert call.type == "tool_use" and call.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    with client.messages.stream(model="tool-call", max_tokens=100, messages=MESSAGES,  # type: ignore[arg-type]
                                tools=TOOLS) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Paris"}
    followup = [*MESSAGES, {"role": "assistant", "content": message.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                              "content": "sunny"}]}]
    assert client.messages.create(model="echo", max_tokens=10, messages=followup,  # type: ignore[arg-type]
                                  tools=TOOLS).stop_reason == "end_turn"  # type: ignore[arg-type]


def test_thinking_blocks_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="thinking", max_tokens=100,
                                messages=MESSAGES) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]


def test_images_accepted(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": "iVBORw0KGgo="}},
               {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
               {"type": "text", "text": "what is this"}]
    message = client.messages.create(model="echo", max_tokens=100,
                                     messages=[{"role": "user", "content": content}])  # type: ignore[list-item, misc]
    assert message.content[0].text == "echo: what is this"  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "error_class"), [
    (400, anthropic.BadRequestError), (401, anthropic.AuthenticationError),
    (404, anthropic.NotFoundError), (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError), (529, anthropic.OverloadedError),
])
def test_errors_raise_the_sdk_exceptions(client: anthropic.Anthropic, status: int,
                                         error_class: type[Exception]) -> None:
    with pytest.raises(error_class) as caught:
        client.messages.create(model=f"error-{status}", max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    assert isinstance(caught.value, anthropic.APIStatusError)
    assert caught.value.status_code == status
    assert caught.value.body["error"]["message"] == f"fake anthropic error {status}"  # type: ignore[index]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


def test_the_fake_enforces_the_api_rules(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="alternate"):
        client.messages.create(model="echo", max_tokens=10, messages=[*MESSAGES, *MESSAGES])  # type: ignore[list-item]
    with pytest.raises(anthropic.BadRequestError, match="temperature: Extra inputs"):
        client.messages.create(model="echo", max_tokens=10, messages=MESSAGES,  # type: ignore[arg-type]
                               extra_body={"temperature": 0.5})
    old_version = {"anthropic-version": "2023-06-01"}
    with pytest.raises(anthropic.BadRequestError, match="temperature: range"):
        client.messages.create(model="echo", max_tokens=10, messages=MESSAGES,  # type: ignore[arg-type]
                               extra_body={"temperature": 1.5}, extra_headers=old_version)
    assert client.messages.create(model="echo", max_tokens=10, messages=MESSAGES,  # type: ignore[arg-type]
                                  extra_body={"temperature": 0.5}, extra_headers=old_version)


def test_midstream_error_event_raises(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"), \
            client.messages.stream(model="midstream-error", max_tokens=10,
                                   messages=MESSAGES) as stream:  # type: ignore[arg-type]
        stream.get_final_message()


def test_chatty_tool_and_unique_tool_use_ids(client: anthropic.Anthropic) -> None:
    forced = client.messages.create(model="chatty-tool", max_tokens=100, messages=MESSAGES,  # type: ignore[arg-type]
                                    tools=TOOLS, tool_choice={"type": "tool",  # type: ignore[arg-type]
                                                              "name": "get_weather"})
    assert [b.type for b in forced.content] == ["text", "tool_use"]
    turn: list[Any] = [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "sunny"}]}]
    with pytest.raises(anthropic.BadRequestError, match="ids must be unique"):
        client.messages.create(model="echo", max_tokens=10, tools=TOOLS,  # type: ignore[arg-type]
                               messages=[*MESSAGES, *turn, *turn])  # type: ignore[list-item]
