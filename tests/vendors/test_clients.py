"""The defects real clients found (issue 10), each checked through such a client: LangChain's
structured output and ``bind_tools(parallel_tool_calls=False)`` against the fake Gemini and
Ollama, the openai SDK's ``parse()`` against the fake Anthropic, tool-call ids replayed to
Anthropic, and Gemini answering ``n`` with fewer candidates."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.vendor_gateway import vendor_config
from tests.vendors.conftest import Fake


class Weather(BaseModel):
    """The weather question's place."""

    city: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def chat_model(gateway: str, model: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=f"{gateway}/v1", api_key=MASTER_KEY,  # type: ignore[arg-type]
                      max_retries=0, **options)


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_langchain_structured_output_on_gemini(gateway: str, fake_gemini: FakeGemini,
                                               method: str) -> None:
    structured = chat_model(gateway, "gemini").with_structured_output(Weather, method=method)  # type: ignore[arg-type]
    prompt = "Weather in Paris? Answer in JSON." if method == "json_mode" else "Paris weather?"
    assert structured.invoke(prompt) == Weather(city="Paris")
    if method == "function_calling":  # LangChain turns parallel calls off: Gemini got the rest
        sent = fake_gemini.requests[-1]
        assert sent["toolConfig"]["functionCallingConfig"] == {
            "mode": "ANY", "allowedFunctionNames": ["Weather"]}


@pytest.mark.parametrize("vendor", ["gemini", "ollama"])
@pytest.mark.parametrize("stream", [False, True])
def test_langchain_bind_tools_without_parallel_calls(gateway: str, vendor: str,
                                                     stream: bool) -> None:
    """A model that calls two tools at once keeps only its first call."""
    model = chat_model(gateway, f"{vendor}/two-calls")
    both = model.bind_tools([get_weather]).invoke("Weather in Paris and Rome?")
    assert [c["args"] for c in both.tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]  # type: ignore[attr-defined]
    single = model.bind_tools([get_weather], parallel_tool_calls=False)
    if stream:
        message: Any = None
        for chunk in single.stream("Weather in Paris and Rome?"):
            assert isinstance(chunk, AIMessageChunk)
            message = chunk if message is None else message + chunk
    else:
        message = single.invoke("Weather in Paris and Rome?")
    assert [c["args"] for c in message.tool_calls] == [{"city": "Paris"}]
    assert message.tool_calls[0]["id"].startswith("call_")


def test_parse_on_anthropic_when_text_comes_beside_the_tool(
        client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    """The Python SDK's ``parse()``: Claude's text block beside the forced tool is dropped."""
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    answer = client.chat.completions.parse(model="anthropic/chatty-tool", messages=messages,
                                           response_format=Weather)
    assert answer.choices[0].message.parsed == Weather(city="Paris")
    assert answer.choices[0].message.content == '{"city":"Paris"}'
    with client.chat.completions.stream(model="anthropic/chatty-tool", messages=messages,
                                        response_format=Weather) as events:
        final = events.get_final_completion()
    assert final.choices[0].message.parsed == Weather(city="Paris")
    assert fake_anthropic.requests[-1]["tool_choice"] == {"type": "tool", "name": "Weather"}


TOOLS: Any = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}]


@pytest.mark.parametrize("vendor", ["gemini", "ollama"])
def test_call_ids_replayed_to_anthropic(client: openai.OpenAI, vendor: str) -> None:
    """The same call in two turns gets two ids, so the history can go on to Anthropic (which
    refuses one tool_use id twice); a stream and a whole answer agree on the id."""
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    ids = []
    for _ in range(2):
        answer = client.chat.completions.create(model=f"{vendor}/tool-call", messages=history,
                                                tools=TOOLS)
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        streamed = [c for chunk in client.chat.completions.create(
            model=f"{vendor}/tool-call", messages=history, tools=TOOLS, stream=True)
            if chunk.choices for c in chunk.choices[0].delta.tool_calls or []]
        assert streamed[0].id == call.id
        ids.append(call.id)
        history += [answer.choices[0].message.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
                    {"role": "user", "content": "And again?"}]
    assert ids[0] != ids[1]
    replayed = client.chat.completions.create(model="anthropic", messages=history)
    assert replayed.choices[0].message.content == "echo: And again?"


def test_gemini_fewer_candidates_than_n(client: openai.OpenAI) -> None:
    """n=2 answered with one candidate: both paths give the one choice, the stream ends
    cleanly (no error event after a clean finish)."""
    messages: Any = [{"role": "user", "content": "hello"}]
    whole = client.chat.completions.create(model="gemini/one-candidate", messages=messages, n=2)
    assert [c.message.content for c in whole.choices] == ["echo: hello"]
    chunks = list(client.chat.completions.create(model="gemini/one-candidate", messages=messages,
                                                 n=2, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    both = client.chat.completions.create(model="gemini", messages=messages, n=2, stream=True)
    assert {c.choices[0].index for c in both if c.choices} == {0, 1}


@pytest.mark.parametrize("vendor", ["gemini", "ollama"])
def test_call_ids_equal_on_cache_replay(make_gateway: GatewayFactory, fakes: dict[str, Fake],
                                        vendor: str) -> None:
    """A fresh answer, its cache replay (whole and as a stream) and a fresh stream of the same
    request (no-cache) name the call alike."""
    config = vendor_config({name: fake.url for name, fake in fakes.items()})
    url = make_gateway({**config, "cache": {"ttl_s": 60}})
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    body: Any = {"model": f"{vendor}/tool-call", "tools": TOOLS, "temperature": 0,
                 "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    ids, caches = [], []
    for stream, headers in ((False, {}), (False, {}), (True, {}),
                            (True, {"cache-control": "no-cache"})):
        raw = client.chat.completions.with_raw_response.create(
            **body, stream=stream, extra_headers=headers)
        caches.append(raw.headers["x-gateway-cache"])
        answer = raw.parse()
        if stream:
            ids.append(next(c.choices[0].delta.tool_calls[0].id for c in answer  # type: ignore[union-attr, index]
                            if c.choices and c.choices[0].delta.tool_calls))
        else:
            ids.append(answer.choices[0].message.tool_calls[0].id)  # type: ignore[union-attr, index]
    assert caches == ["miss", "hit", "hit", "miss"]
    assert len(set(ids)) == 1 and ids[0].startswith("call_")
