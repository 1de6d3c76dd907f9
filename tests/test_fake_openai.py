"""The fake upstream, checked with the official openai SDK directly (no gateway in between),
so that the gateway's tests run against OpenAI's real wire format."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def client(fake_openai: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_openai.url, api_key="sk-x", max_retries=0)  # type: ignore[attr-defined]


def test_chat_completion_parses(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="echo", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens == 7


def test_stream_parses_with_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="echo", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hi there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_stream_without_usage_has_no_usage_field(client: openai.OpenAI,
                                                 fake_openai: FakeOpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
            model="echo", messages=MESSAGES, stream=True) as response:  # type: ignore[arg-type]
        raw = response.read()
    assert b'"usage"' not in raw and raw.endswith(b"data: [DONE]\n\n")


def test_tool_calls_stream_and_whole(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="tool-call", messages=MESSAGES,  # type: ignore[arg-type]
                                            tools=TOOLS)  # type: ignore[arg-type]
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and answer.choices[0].finish_reason == "tool_calls"  # type: ignore[union-attr]
    chunks = list(client.chat.completions.create(model="tool-call", messages=MESSAGES,  # type: ignore[arg-type]
                                                 tools=TOOLS, stream=True))  # type: ignore[arg-type]
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index, union-attr]
                        for c in chunks if c.choices[0].delta.tool_calls)
    assert arguments == '{"city": "Paris"}'


def test_embeddings_parse(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="emb", input=["a b", "c"])
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.prompt_tokens == 3


@pytest.mark.parametrize(("status", "error_class"), [
    (400, openai.BadRequestError), (404, openai.NotFoundError),
    (429, openai.RateLimitError), (500, openai.InternalServerError),
])
def test_errors_raise_the_sdk_exceptions(client: openai.OpenAI, status: int,
                                         error_class: type[Exception]) -> None:
    with pytest.raises(error_class) as caught:
        client.chat.completions.create(model=f"error-{status}", messages=MESSAGES)  # type: ignore[arg-type]
    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status


def test_flaky_and_rate_limited_then_answer(client: openai.OpenAI,
                                            fake_openai: FakeOpenAI) -> None:
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="flaky-2-503", messages=MESSAGES)  # type: ignore[arg-type]
    answer = client.chat.completions.create(model="flaky-2-503", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hi there"
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="ratelimit-1-1500ms", messages=MESSAGES)  # type: ignore[arg-type]
    headers = caught.value.response.headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("1500", "2")
    assert fake_openai.calls == {"flaky-2-503": 3, "ratelimit-1-1500ms": 1}

