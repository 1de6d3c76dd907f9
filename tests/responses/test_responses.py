"""/v1/responses end to end: the official openai SDK (responses.create, stream, parse), through
the gateway, to the fake OpenAI, Anthropic, Gemini and Ollama upstreams."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
import redis
from pydantic import BaseModel

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_server import FakeOpenAI
from tests.vendor_gateway import vendor_config

PROVIDERS = ("openai", "anthropic", "gemini", "ollama")
TOOLS: Any = [{"type": "function", "name": "get_weather", "description": "Weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}}]
# Per provider: the echo model and the one answering with a call to the first tool.
MODELS = {"openai": ("gpt-test", "fake/tool-call"),
          **{v: (v, f"{v}/tool-call") for v in ("anthropic", "gemini", "ollama")}}


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
            fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini,
            fake_ollama: FakeOllama) -> str:
    config = vendor_config({"anthropic": fake_anthropic.url, "gemini": fake_gemini.url,
                            "ollama": fake_ollama.url})
    config["models"] += gateway_config(fake_openai.url)["models"]  # type: ignore[attr-defined]
    return make_gateway(config)


@pytest.fixture
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_create(client: openai.OpenAI, provider: str) -> None:
    answer = client.responses.create(model=MODELS[provider][0], input="hello big world",
                                     instructions="be brief", metadata={"k": "v"})
    assert answer.id.startswith("resp_") and answer.object == "response"
    assert answer.status == "completed" and answer.error is None
    assert answer.output_text == "echo: hello big world"
    item = answer.output[0]
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert answer.usage is not None and answer.usage.output_tokens == 4
    assert answer.usage.total_tokens == answer.usage.input_tokens + 4
    assert answer.instructions == "be brief" and answer.metadata == {"k": "v"}
    assert answer.model == MODELS[provider][0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream(client: openai.OpenAI, provider: str) -> None:
    with client.responses.stream(model=MODELS[provider][0], input="hello big world") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 1
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * deltas,
                     "response.output_text.done", "response.content_part.done",
                     "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "echo: hello big world" and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 4


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(client: openai.OpenAI, provider: str, stream: bool) -> None:
    echo, caller = MODELS[provider]
    if stream:
        with client.responses.stream(model=caller, input="weather in Paris?",
                                     tools=TOOLS) as events:
            kinds = [e.type for e in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        done = kinds.index("response.function_call_arguments.done")
        assert kinds[done + 1:] == ["response.output_item.done", "response.completed"]
    else:
        first = client.responses.create(model=caller, input="weather in Paris?", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"} and calls[0].call_id
    second = client.responses.create(
        model=echo, previous_response_id=first.id, tools=TOOLS,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                "output": "sunny"}, {"role": "user", "content": "and now?"}])
    assert second.output_text == "echo: and now?"
    assert second.previous_response_id == first.id


def test_openai_upstream_gets_history_and_tools(client: openai.OpenAI,
                                               fake_openai: FakeOpenAI) -> None:
    first = client.responses.create(model="fake/tool-call", input="weather?", tools=TOOLS,
                                    instructions="first instructions", max_output_tokens=50,
                                    tool_choice="required", temperature=0.5)
    sent = fake_openai.requests[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather", "parameters": TOOLS[0]["parameters"]}}]
    assert (sent["tool_choice"], sent["temperature"], sent["max_completion_tokens"]) == (
        "required", 0.5, 50)
    call = first.output[0]
    assert call.type == "function_call"
    client.responses.create(model="gpt-test", previous_response_id=first.id,
                            instructions="second",
                            input=[{"type": "function_call_output", "call_id": call.call_id,
                                    "output": [{"type": "input_text", "text": "sunny"}]}])
    assert fake_openai.requests[-1]["messages"] == [
        {"role": "system", "content": "second"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": call.call_id, "type": "function",
                                              "function": {"name": "get_weather",
                                                           "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}]


def test_previous_response_id_chain(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    one = client.responses.create(model="gemini", input="my name is Ann")
    two = client.responses.create(model="gemini", input="what is my name",
                                  previous_response_id=one.id)
    assert two.output_text == "echo: what is my name"
    contents = fake_gemini.requests[-1]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["text"] == "echo: my name is Ann"


class City(BaseModel):
    city: str


def test_parse_with_a_pydantic_model(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    """The fake ollama answers a ``format`` request with {"city": "Paris"}."""
    answer = client.responses.parse(model="ollama", text_format=City, input="where?")
    assert answer.output_parsed == City(city="Paris")
    assert fake_ollama.requests[-1]["format"]["required"] == ["city"]


def test_json_schema_goes_as_response_format(client: openai.OpenAI,
                                             fake_openai: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    client.responses.create(model="gpt-test", input="hi", text={"format": {
        "type": "json_schema", "name": "City", "schema": schema, "strict": True}})
    assert fake_openai.requests[-1]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "City", "schema": schema, "strict": True}}


def test_json_object_format(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    client.responses.create(model="gpt-test", input="hi", text={"format": {"type": "json_object"}})
    assert fake_openai.requests[-1]["response_format"] == {"type": "json_object"}


def test_image_part(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    client.responses.create(model="gpt-test", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]}])
    assert fake_openai.requests[-1]["messages"][0]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA",
                                            "detail": "low"}}]


@pytest.mark.parametrize("model", ["anthropic", "gemini", "ollama"])
def test_max_output_tokens_incomplete(client: openai.OpenAI, model: str) -> None:
    """(The fake vendors cut the echo at max tokens, in words, and say so.)"""
    answer = client.responses.create(model=model, input="one two three four five",
                                     max_output_tokens=2)
    assert answer.status == "incomplete"
    assert answer.incomplete_details is not None
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.output_text == "echo: one"
    with client.responses.stream(model=model, input="one two three four",
                                 max_output_tokens=2) as stream:
        kinds = [e.type for e in stream]
    assert kinds[-1] == "response.incomplete"


def test_store_get_delete_input_items(client: openai.OpenAI) -> None:
    made = client.responses.create(model="gpt-test", input="keep me")
    got = client.responses.retrieve(made.id)
    assert got.id == made.id and got.output_text == "echo: keep me"
    items = client.responses.input_items.list(made.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == "keep me"  # type: ignore[union-attr]
    several = client.responses.create(model="gpt-test", input=[
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}])
    page = client.responses.input_items.list(several.id, order="asc", limit=2)
    assert [i.content[0].text for i in page.data] == ["a", "b"]  # type: ignore[union-attr]
    assert page.has_more and page.first_id == page.data[0].id
    rest = client.responses.input_items.list(several.id, order="asc", after=page.last_id)
    assert [i.content[0].text for i in rest.data] == ["c"]  # type: ignore[union-attr]
    newest = client.responses.input_items.list(several.id)  # (newest first by default)
    assert [i.content[0].text for i in newest.data] == ["c", "b", "a"]  # type: ignore[union-attr]
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    unstored = client.responses.create(model="gpt-test", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


def test_stored_on_every_replica(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                 redis_server: Any) -> None:
    """Two gateways on one redis-server: a response made on one is read (and continued) on
    the other."""
    config = gateway_config(fake_openai.url, responses={"ttl_s": 3600})  # type: ignore[attr-defined]
    one, two = (openai.OpenAI(base_url=f"{make_gateway(config, redis_url=redis_server.url)}/v1",
                              api_key=MASTER_KEY, max_retries=0) for _ in range(2))
    made = one.responses.create(model="gpt-test", input="shared")
    assert two.responses.retrieve(made.id).output_text == "echo: shared"
    assert 3500 < redis.Redis.from_url(redis_server.url).ttl(f"gw:resp:{made.id}") <= 3600
    two.responses.create(model="gpt-test", input="next", previous_response_id=made.id)
    assert [m["content"] for m in fake_openai.requests[-1]["messages"]] == [
        "shared", "echo: shared", "next"]
    two.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        one.responses.retrieve(made.id)


def test_unknown_previous_response_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-test", input="x", previous_response_id="resp_nope")
    body: Any = caught.value.body
    assert body["code"] == "not_found" and body["param"] == "previous_response_id"


def test_missing_input_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-test", input=[])
    body: Any = caught.value.body
    assert body["param"] == "input"


def test_other_tool_types_are_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="anthropic", input="x",
                                tools=[{"type": "web_search_preview"}])
    body: Any = caught.value.body
    assert "web_search_preview" in body["message"] and body["param"] == "tools[0].type"


def test_a_key_reads_only_its_own(gateway: str) -> None:
    def key() -> str:
        made = httpx.post(f"{gateway}/v1/keys", json={"name": "k"},
                          headers={"Authorization": f"Bearer {MASTER_KEY}"})
        assert made.status_code == 201, made.text
        return str(made.json()["key"])

    alice = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key(), max_retries=0)
    bob = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key(), max_retries=0)
    made = alice.responses.create(model="gpt-test", input="mine")
    assert alice.responses.retrieve(made.id).id == made.id
    for attempt in (lambda: bob.responses.retrieve(made.id),
                    lambda: bob.responses.delete(made.id),
                    lambda: bob.responses.input_items.list(made.id),
                    lambda: bob.responses.create(model="gpt-test", input="x",
                                                 previous_response_id=made.id)):
        with pytest.raises(openai.NotFoundError):
            attempt()


def test_failure_after_the_start_is_response_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="fake/midstream-error", input="a b c",
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.failed"
    failed: Any = events[-1]
    assert failed.response.status == "failed" and failed.response.error.message


def test_failure_before_the_start_is_an_http_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="fake/error-429", input="x", stream=True)
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="fake/error-500", input="x")


@pytest.mark.parametrize("stream", [False, True])
def test_two_tool_calls(client: openai.OpenAI, stream: bool) -> None:
    """The fake ollama's ``two-calls`` calls the tool twice: two function_call items."""
    if stream:
        with client.responses.stream(model="ollama/two-calls", input="x", tools=TOOLS) as events:
            answer = events.get_final_response()
    else:
        answer = client.responses.create(model="ollama/two-calls", input="x", tools=TOOLS)
    calls = [item for item in answer.output if item.type == "function_call"]
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert len({c.call_id for c in calls}) == 2 and len({c.id for c in calls}) == 2


def _small_window_client(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                         **extra: Any) -> openai.OpenAI:
    config = gateway_config(fake_openai.url, **extra)  # type: ignore[attr-defined]
    config["models"].append({"name": "small", "provider": "openai-compatible",
                             "model": "echo", "api_base": fake_openai.url,
                             "context_window": 60})
    return openai.OpenAI(base_url=f"{make_gateway(config)}/v1", api_key=MASTER_KEY,
                         max_retries=0)


@pytest.mark.parametrize("where", ["request", "default"])
def test_history_is_truncated_to_the_context_window(make_gateway: GatewayFactory,
                                                    fake_openai: FakeOpenAI, where: str) -> None:
    """truncation "auto" (in the request, or the gateway's default): previous_response_id's
    oldest turns are left out once they no longer fit."""
    client = _small_window_client(make_gateway, fake_openai)
    truncation: Any = "auto" if where == "request" else openai.NOT_GIVEN
    previous: Any = openai.NOT_GIVEN
    for word in ("alpha", "beta", "gamma"):
        made = client.responses.create(model="small", input=f"{word} " * 12,
                                       previous_response_id=previous, truncation=truncation)
        previous = made.id
    assert made.truncation == "auto"
    sent = [m["content"] for m in fake_openai.requests[-1]["messages"]]
    assert not any("alpha" in text for text in sent)
    assert sent[-1].startswith("gamma") and any("beta" in text for text in sent)
    assert client.responses.retrieve(previous).output_text.startswith("echo: gamma")


def test_history_over_the_window_is_400_when_truncation_is_disabled(
        make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    """OpenAI's default, "disabled" (here the configured default): input (history included)
    over the context window is a 400 ``context_length_exceeded``; nothing goes upstream."""
    client = _small_window_client(make_gateway, fake_openai, responses={"truncation": "disabled"})
    first = client.responses.create(model="small", input="alpha " * 12)
    assert first.truncation == "disabled"
    second = client.responses.create(model="small", input="beta " * 12,
                                     previous_response_id=first.id)
    calls = len(fake_openai.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="small", input="gamma " * 12,
                                previous_response_id=second.id, truncation="disabled")
    body: Any = caught.value.body
    assert body["code"] == "context_length_exceeded" and body["param"] == "input"
    assert len(fake_openai.requests) == calls
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="small", input="x", truncation="sometimes")  # type: ignore[arg-type]
