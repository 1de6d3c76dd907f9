"""End to end, for each vendor: the official openai SDK, through the gateway, to the fake
anthropic, gemini and ollama upstreams. What the client gets, and what the vendor got."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.vendor_gateway import VENDORS, vendor_config

Fake = FakeAnthropic | FakeGemini | FakeOllama
MESSAGES = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello big world"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string"}}}}}]





def system_sent(vendor: str, sent: dict[str, Any]) -> Any:
    """Where each vendor got the system prompt."""
    if vendor == "anthropic":
        return sent["system"]
    if vendor == "gemini":
        return sent["systemInstruction"]
    return sent["messages"][0]


SYSTEM = {"anthropic": [{"type": "text", "text": "be brief"}],
          "gemini": {"parts": [{"text": "be brief"}]},
          "ollama": {"role": "system", "content": "be brief"}}


@pytest.mark.parametrize("vendor", VENDORS)
def test_non_stream(client: openai.OpenAI, fakes: dict[str, Fake], vendor: str) -> None:
    answer = client.chat.completions.create(model=vendor, messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    assert answer.choices[0].message.content == "echo: hello big world"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 4)
    sent = fakes[vendor].requests[-1]
    assert system_sent(vendor, sent) == SYSTEM[vendor]


@pytest.mark.parametrize("vendor", VENDORS)
def test_stream_without_usage(client: openai.OpenAI, vendor: str) -> None:
    chunks = list(client.chat.completions.create(model=vendor, messages=MESSAGES,  # type: ignore[arg-type]
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello big world"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices and c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks].count("stop") == 1
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("vendor", VENDORS)
def test_stream_with_usage(client: openai.OpenAI, vendor: str) -> None:
    chunks = list(client.chat.completions.create(
        model=vendor, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 4)
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("vendor", VENDORS)
async def test_async_client(gateway: str, vendor: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    answer = await client.chat.completions.create(model=vendor, messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"
    stream = await client.chat.completions.create(
        model=vendor, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True})
    text, usage = "", None
    async for chunk in stream:
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert text == "echo: hello big world" and usage is not None and usage.total_tokens == 9
    await client.close()


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_is_length(client: openai.OpenAI, vendor: str, stream: bool) -> None:
    if stream:
        chunks = list(client.chat.completions.create(model=vendor, messages=MESSAGES,  # type: ignore[arg-type]
                                                     max_tokens=2, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        answer = client.chat.completions.create(model=vendor, messages=MESSAGES,  # type: ignore[arg-type]
                                                max_completion_tokens=2)
        text, finish = answer.choices[0].message.content or "", answer.choices[0].finish_reason
    assert (text, finish) == ("echo: hello", "length")


@pytest.mark.parametrize("vendor", VENDORS)
def test_stop(client: openai.OpenAI, vendor: str) -> None:
    answer = client.chat.completions.create(model=vendor, messages=MESSAGES, stop=["world"])  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big"
    assert answer.choices[0].finish_reason == "stop"


PARAMS_SENT = {
    "anthropic": ({"temperature": 0.2, "top_p": 0.9, "user": "u-1"},
                  lambda s: (s["temperature"], s["top_p"], s["metadata"]["user_id"],
                             s["max_tokens"]),
                  (0.2, 0.9, "u-1", 4096)),
    "gemini": ({"temperature": 1.5, "top_p": 0.9, "seed": 7, "user": "u-1"},
               lambda s: s["generationConfig"], {"temperature": 1.5, "topP": 0.9, "seed": 7}),
    "ollama": ({"temperature": 1.5, "top_p": 0.9, "seed": 7},
               lambda s: s["options"], {"temperature": 1.5, "top_p": 0.9, "seed": 7}),
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_parameters_reach_the_vendor(client: openai.OpenAI, fakes: dict[str, Fake],
                                     vendor: str) -> None:
    params, read, expected = PARAMS_SENT[vendor]
    client.chat.completions.create(model=vendor, messages=MESSAGES, **params)  # type: ignore[call-overload]
    assert read(fakes[vendor].requests[-1]) == expected  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(("vendor", "params", "param"), [
    ("anthropic", {"n": 2}, "n"), ("anthropic", {"seed": 1}, "seed"),
    ("anthropic", {"temperature": 1.5}, "temperature"),
    ("anthropic", {"frequency_penalty": 1}, "frequency_penalty"),
    ("gemini", {"logprobs": True}, "logprobs"),
    ("gemini", {"parallel_tool_calls": "no", "tools": TOOLS}, "parallel_tool_calls"),
    ("ollama", {"n": 2}, "n"), ("ollama", {"tool_choice": "required", "tools": TOOLS},
                                "tool_choice"),
])
def test_unsupported_is_a_400(client: openai.OpenAI, fakes: dict[str, Fake], vendor: str,
                              params: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=vendor, messages=MESSAGES, **params)  # type: ignore[call-overload]
    assert caught.value.body["param"] == param  # type: ignore[index]
    assert caught.value.body["code"] == "invalid_value"  # type: ignore[index]
    assert fakes[vendor].requests == []


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("response_format", [
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "city", "schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
])
def test_json_response_format(client: openai.OpenAI, vendor: str,
                              response_format: dict[str, Any]) -> None:
    answer = client.chat.completions.create(model=vendor, messages=MESSAGES,  # type: ignore[arg-type]
                                            response_format=response_format)  # type: ignore[arg-type]
    assert json.loads(answer.choices[0].message.content or "") == {"city": "Paris"}
    assert answer.choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model=vendor, messages=MESSAGES,  # type: ignore[arg-type]
                                                 response_format=response_format,  # type: ignore[arg-type]
                                                 stream=True))
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks)) == {
        "city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("vendor", VENDORS)
def test_tool_calls_and_results(client: openai.OpenAI, fakes: dict[str, Fake],
                                vendor: str) -> None:
    model = f"{vendor}/tool-call"
    answer = client.chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS,  # type: ignore[arg-type]
                                            tool_choice="auto")
    assert answer.choices[0].finish_reason == "tool_calls"
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert call.id.startswith("toolu_" if vendor == "anthropic" else "call_")

    chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS,  # type: ignore[arg-type]
                                                 stream=True))
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id == call.id and deltas[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert all(d.index == 0 for d in deltas)
    arguments = "".join(d.function.arguments or "" for d in deltas)  # type: ignore[union-attr]
    assert json.loads(arguments) == {"city": "Paris"}
    if vendor == "anthropic":
        assert len(deltas) > 2, "Anthropic's input_json_delta pieces arrive as deltas"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    followup = [*MESSAGES, answer.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    result = client.chat.completions.create(model=vendor, messages=followup, tools=TOOLS)  # type: ignore[arg-type]
    assert result.choices[0].message.content == "echo: hello big world"
    assert tool_result_sent(vendor, fakes[vendor].requests[-1]) == TOOL_RESULT[vendor](call.id)


def tool_result_sent(vendor: str, sent: dict[str, Any]) -> Any:
    if vendor == "anthropic":
        return sent["messages"][-1]["content"][0]
    if vendor == "gemini":
        return sent["contents"][-1]["parts"][0]
    return sent["messages"][-1]


TOOL_RESULT = {
    "anthropic": lambda id_: {"type": "tool_result", "tool_use_id": id_, "content": "sunny"},
    "gemini": lambda id_: {"functionResponse": {"name": "get_weather",
                                                "response": {"output": "sunny"}}},
    "ollama": lambda id_: {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
}


@pytest.mark.parametrize("vendor", ["anthropic", "gemini"])
def test_forced_tool_choice(client: openai.OpenAI, fakes: dict[str, Fake], vendor: str) -> None:
    answer = client.chat.completions.create(
        model=vendor, messages=MESSAGES, tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert answer.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index, union-attr]
    sent = fakes[vendor].requests[-1]
    if vendor == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    else:
        assert sent["toolConfig"] == {"functionCallingConfig": {
            "mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


IMAGE = "data:image/png;base64,iVBORw0KGgo="
IMAGE_SENT = {
    "anthropic": lambda s: s["messages"][0]["content"],
    "gemini": lambda s: s["contents"][0]["parts"],
    "ollama": lambda s: s["messages"][0],
}
IMAGES = {
    "anthropic": [{"type": "text", "text": "what is this"},
                  {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                               "data": "iVBORw0KGgo="}},
                  {"type": "image", "source": {"type": "url",
                                               "url": "https://img.test/cat.png"}}],
    "gemini": [{"text": "what is this"},
               {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
               {"fileData": {"fileUri": "https://img.test/cat.png", "mimeType": "image/png"}}],
    "ollama": {"role": "user", "content": "what is this", "images": ["iVBORw0KGgo="]},
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_images(client: openai.OpenAI, fakes: dict[str, Fake], vendor: str) -> None:
    content: list[dict[str, Any]] = [{"type": "text", "text": "what is this"},
                                     {"type": "image_url", "image_url": {"url": IMAGE}}]
    if vendor != "ollama":
        content.append({"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}})
    answer = client.chat.completions.create(model=vendor, messages=[  # type: ignore[misc]
        {"role": "user", "content": content}])  # type: ignore[list-item]
    assert answer.choices[0].message.content == "echo: what is this"
    assert IMAGE_SENT[vendor](fakes[vendor].requests[-1]) == IMAGES[vendor]  # type: ignore[no-untyped-call]


def test_ollama_refuses_image_urls(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="ollama", messages=[{"role": "user", "content": [  # type: ignore[misc, list-item]
            {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}}]}])
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"  # type: ignore[index]


def test_multi_turn_merging(client: openai.OpenAI, fakes: dict[str, Fake]) -> None:
    messages = [{"role": "user", "content": "one"}, {"role": "user", "content": "two"},
                {"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "three"}]
    for vendor in ("anthropic", "gemini"):
        answer = client.chat.completions.create(model=vendor, messages=messages)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "echo: three"
    assert [m["role"] for m in fakes["anthropic"].requests[-1]["messages"]] == [
        "user", "assistant", "user"]
    assert [len(c["parts"]) for c in fakes["gemini"].requests[-1]["contents"]] == [2, 2, 1]


def test_what_goes_upstream(client: openai.OpenAI, fakes: dict[str, Fake]) -> None:
    """Each vendor's URL, credentials header, model id and stream flag."""
    for vendor in VENDORS:
        client.chat.completions.create(model=f"{vendor}/some-model", messages=MESSAGES)  # type: ignore[arg-type]
        list(client.chat.completions.create(model=vendor, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    anthropic, gemini, ollama = fakes["anthropic"], fakes["gemini"], fakes["ollama"]
    assert [r["model"] for r in anthropic.requests] == ["some-model", "echo"]
    assert [r.get("stream") for r in anthropic.requests] == [None, True]
    assert anthropic.headers[0]["x-api-key"] == "sk-ant-upstream"
    assert anthropic.headers[0]["anthropic-version"] == "2023-06-01"
    assert anthropic.headers[1]["accept"] == "text/event-stream"
    assert gemini.paths == ["/v1beta/models/some-model:generateContent",  # type: ignore[union-attr]
                            "/v1beta/models/echo:streamGenerateContent?alt=sse"]
    assert gemini.headers[0]["x-goog-api-key"] == "gm-upstream"
    assert [(r["model"], r["stream"]) for r in ollama.requests] == [("some-model", False),
                                                                    ("echo", True)]
    assert "authorization" not in ollama.headers[0]


@pytest.mark.parametrize("vendor", VENDORS)
def test_httpx_upstream_client(make_gateway: GatewayFactory, fakes: dict[str, Fake],
                               vendor: str) -> None:
    """The other upstream HTTP client reads every vendor's answers and streams the same."""
    config = vendor_config({name: fake.url for name, fake in fakes.items()})
    config["server"] = {"http_client": "httpx"}
    client = openai.OpenAI(base_url=f"{make_gateway(config)}/v1", api_key=MASTER_KEY,
                           max_retries=0)
    answer = client.chat.completions.create(model=vendor, messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"
    chunks = list(client.chat.completions.create(model=vendor, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "echo: hello big world"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 9
    with pytest.raises(openai.APIError, match="closed the stream before it was done"):
        list(client.chat.completions.create(model=f"{vendor}/cut-stream", messages=MESSAGES,  # type: ignore[arg-type]
                                            stream=True))
