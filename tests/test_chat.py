"""End to end: the official openai SDK, sync and async, through the gateway to the fake."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hello big world"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def async_client(gateway: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)


def test_non_stream(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    answer = client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"
    assert answer.usage is not None and answer.usage.prompt_tokens == 3
    sent = fake_openai.requests[-1]
    assert sent["model"] == "echo" and "stream_options" not in sent
    assert fake_openai.headers[-1]["authorization"] == "Bearer sk-upstream"


def test_stream_without_usage(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES,  # type: ignore[arg-type]
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello big world"
    assert all(c.choices for c in chunks), "the usage-only chunk is not for this client"
    assert all(c.usage is None for c in chunks)
    assert fake_openai.requests[-1]["stream_options"] == {"include_usage": True}


def test_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_wire_format(gateway: str) -> None:
    body = {"model": "gpt-test", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body,
                      headers={"authorization": f"Bearer {MASTER_KEY}"}) as response:
        raw = response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    events = raw.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert all(e.startswith(b"data: {") for e in events[:-2])
    assert b'"usage"' not in raw  # neither the chunk nor the "usage":null the gateway caused


async def test_async_non_stream_and_stream(async_client: openai.AsyncOpenAI) -> None:
    answer = await async_client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"
    stream = await async_client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    text, usage = "", None
    async for chunk in stream:
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert text == "echo: hello big world" and usage is not None and usage.total_tokens == 7


def test_tool_calls_through(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    answer = client.chat.completions.create(model="fake/tool-call", messages=MESSAGES,  # type: ignore[arg-type]
                                            tools=TOOLS, tool_choice="auto")  # type: ignore[arg-type]
    assert answer.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index, union-attr]
    assert fake_openai.requests[-1]["tools"] == TOOLS
    assert fake_openai.requests[-1]["tool_choice"] == "auto"
    chunks = list(client.chat.completions.create(model="fake/tool-call", messages=MESSAGES,  # type: ignore[arg-type]
                                                 tools=TOOLS, stream=True))  # type: ignore[arg-type]
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]  # type: ignore[index]
    assert deltas[0].id == "call_fake1"
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_parameters_and_unknown_fields_pass_through(client: openai.OpenAI,
                                                    fake_openai: FakeOpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, n=2, stop=["x"], max_tokens=2, temperature=0,  # type: ignore[arg-type]
        top_p=0.5, seed=7, user="u1", response_format={"type": "json_object"},
        extra_body={"vendor_knob": {"a": 1}})
    assert len(answer.choices) == 2 and answer.choices[0].message.content == "echo: hello"
    sent = fake_openai.requests[-1]
    assert sent["vendor_knob"] == {"a": 1} and sent["seed"] == 7 and sent["user"] == "u1"
    assert sent["response_format"] == {"type": "json_object"} and sent["stop"] == ["x"]


def test_image_content_parts_pass_through(client: openai.OpenAI,
                                          fake_openai: FakeOpenAI) -> None:
    content = [{"type": "text", "text": "what is this"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    answer = client.chat.completions.create(model="gpt-test",
                                            messages=[{"role": "user", "content": content}])  # type: ignore[list-item, misc]
    assert answer.choices[0].message.content == "echo: what is this"
    assert fake_openai.requests[-1]["messages"][0]["content"] == content


def test_wildcard_sends_the_matched_part(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    client.chat.completions.create(model="fake/some-model", messages=MESSAGES)  # type: ignore[arg-type]
    assert fake_openai.requests[-1]["model"] == "some-model"


def test_provider_openai_with_trailing_slash(client: openai.OpenAI,
                                             fake_openai: FakeOpenAI) -> None:
    answer = client.chat.completions.create(model="openai-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"


def test_repeated_name_spreads_over_deployments(client: openai.OpenAI,
                                                fake_openai: FakeOpenAI) -> None:
    for _ in range(6):
        client.chat.completions.create(model="lb", messages=MESSAGES)  # type: ignore[arg-type]
    used = [r["model"] for r in fake_openai.requests]
    assert used.count("echo-a") == 3 and used.count("echo-b") == 3


def test_embeddings(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    result = client.embeddings.create(model="gpt-test", input=["one two", "three"])
    assert len(result.data) == 2 and result.usage.prompt_tokens == 3
    assert fake_openai.requests[-1] == {"model": "echo", "input": ["one two", "three"],
                                        "encoding_format": "base64"}


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["gpt-test", "lb", "openai-test"]  # wildcards are not listed
    model = client.models.retrieve("gpt-test")
    assert model.id == "gpt-test" and model.owned_by == "openai-compatible"
    assert client.models.retrieve("fake/anything").id == "fake/anything"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_request_id(gateway: str) -> None:
    mine = httpx.get(f"{gateway}/health", headers={"x-request-id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    fresh = httpx.get(f"{gateway}/v1/models")  # an error answer carries one too
    assert fresh.status_code == 401 and len(fresh.headers["x-request-id"]) == 32


def test_httpx_upstream_client(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    """The alternative upstream HTTP client behaves the same, errors included."""
    config = gateway_config(fake_openai.url, server={"http_client": "httpx"})  # type: ignore[attr-defined]
    url = make_gateway(config)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    answer = client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"
    chunks = list(client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake/error-429", messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model="fake/cut-stream", messages=MESSAGES,  # type: ignore[arg-type]
                                            stream=True))
    assert "closed the stream" in str(caught.value)


def test_stream_usage_can_be_turned_off(make_gateway: GatewayFactory,
                                        fake_openai: FakeOpenAI) -> None:
    """For old servers that reject stream_options: the body goes up as the client sent it."""
    config = gateway_config(fake_openai.url)  # type: ignore[attr-defined]
    config["models"][0]["stream_usage"] = False
    client = openai.OpenAI(base_url=f"{make_gateway(config)}/v1", api_key=MASTER_KEY)
    chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES,  # type: ignore[arg-type]
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello big world"
    assert "stream_options" not in fake_openai.requests[-1]
