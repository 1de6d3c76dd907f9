"""The fake Ollama upstream, checked with the official ``ollama`` SDK directly (no gateway in
between), so that the gateway's tests run against Ollama's real wire format."""

from __future__ import annotations

import ollama
import pytest

from tests.fakes.ollama_server import FakeOllama

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def client(fake_ollama: FakeOllama) -> ollama.Client:
    return ollama.Client(host=fake_ollama.url)


def test_chat(client: ollama.Client) -> None:
    answer = client.chat(model="echo", messages=MESSAGES)
    assert answer.message.content == "echo: hi there" and answer.done
    assert answer.done_reason == "stop"
    assert (answer.prompt_eval_count, answer.eval_count) == (4, 3)


def test_stream(client: ollama.Client) -> None:
    chunks = list(client.chat(model="echo", messages=MESSAGES, stream=True))
    assert "".join(c.message.content or "" for c in chunks) == "echo: hi there"
    assert [c.done for c in chunks] == [False] * 3 + [True]
    assert chunks[-1].eval_count == 3


def test_options_limit_and_stop(client: ollama.Client) -> None:
    cut = client.chat(model="echo", messages=[{"role": "user", "content": "one two three"}],
                      options={"num_predict": 2})
    assert cut.message.content == "echo: one" and cut.done_reason == "length"
    stopped = client.chat(model="echo", messages=[{"role": "user", "content": "one two"}],
                          options={"stop": ["two"]})
    assert stopped.message.content == "echo: one" and stopped.done_reason == "stop"


def test_tool_calls_and_results(client: ollama.Client, fake_ollama: FakeOllama) -> None:
    answer = client.chat(model="tool-call", messages=MESSAGES, tools=TOOLS)
    call = answer.message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, call.function.arguments) == ("get_weather", {"city": "Paris"})
    streamed = [c for c in client.chat(model="tool-call", messages=MESSAGES, tools=TOOLS,
                                       stream=True) if c.message.tool_calls]
    assert streamed[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index]
    followup = [*MESSAGES, answer.message,
                {"role": "tool", "content": "sunny", "tool_name": "get_weather"}]
    assert client.chat(model="echo", messages=followup).message.content == "echo: hi there"
    assert fake_ollama.requests[-1]["messages"][2]["tool_calls"][0]["function"]["arguments"] \
        == {"city": "Paris"}


def test_images_and_format(client: ollama.Client, fake_ollama: FakeOllama) -> None:
    answer = client.chat(model="echo", format="json", messages=[
        {"role": "user", "content": "what is this", "images": [b"\x89PNG"]}])
    assert answer.message.content == '{"city": "Paris"}'
    assert fake_ollama.requests[-1]["messages"][0]["images"] == ["iVBORw=="]


def test_embed(client: ollama.Client) -> None:
    result = client.embed(model="embed", input=["a b", "cde"], dimensions=3)
    assert [list(v) for v in result.embeddings] == [[3.0, 0.5, -1.0], [3.0, 0.5, -1.0]]
    assert result.prompt_eval_count == 3


@pytest.mark.parametrize("status", [400, 404, 429, 500])
def test_errors_raise_the_sdk_exception(client: ollama.Client, status: int) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model=f"error-{status}", messages=MESSAGES)
    assert caught.value.status_code == status
    if status == 404:
        assert caught.value.error == "model 'error-404' not found"


def test_midstream_error_raises(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError, match="error was encountered"):
        list(client.chat(model="midstream-error", messages=MESSAGES, stream=True))


def test_two_calls(client: ollama.Client) -> None:
    answer = client.chat(model="two-calls", messages=MESSAGES, tools=TOOLS)
    assert [c.function.arguments for c in answer.message.tool_calls or []] == [
        {"city": "Paris"}, {"city": "Rome"}]
