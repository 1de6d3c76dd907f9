"""``responses: native``: /v1/responses passed to an OpenAI upstream's own /responses, through
the official openai SDK, against the fake OpenAI's Responses API (tests/fakes/openai_responses.py,
itself checked here with the SDK's own types and stream parser)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from gateway.access.quotas import SETTLE_DELAY_S
from gateway.config import ConfigError, validate
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_server import FakeOpenAI
from tests.responses.weather_agent import run_weather_agent

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
TOOLS: Any = [{"type": "function", "name": "get_weather", "description": "Weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}}]
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"]
TEXT_END = ["response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"]
PRICES = {"input_cost_per_mtok": 1000.0, "output_cost_per_mtok": 2000.0}


def config(upstream: str, **extra: Any) -> dict[str, Any]:
    native = {"provider": "openai", "api_base": upstream, "api_key": "sk-upstream",
              "responses": "native", "retries": 0}
    return {"models": [
        {"name": "native", "model": "echo", **native, **PRICES},
        {"name": "native/*", **native},
        {"name": "native-down", "model": "error-503", **native, "fallbacks": ["translated"]},
        {"name": "translated", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream},
    ], **extra}


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> str:
    return make_gateway(config(fake_openai.url))  # type: ignore[attr-defined]


def sdk(url: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def sent(fake: FakeOpenAI) -> dict[str, Any]:
    """The last request the fake got on /responses (it has ``input``, chat has
    ``messages``)."""
    return next(r for r in reversed(fake.requests) if "input" in r)


# -- the fake speaks the Responses API -------------------------------------------------------

@pytest.mark.parametrize("model", ["echo", "tool-call"])
def test_fake_speaks_the_responses_api(fake_openai: FakeOpenAI, model: str) -> None:
    direct = openai.OpenAI(base_url=fake_openai.url, api_key="sk-x", max_retries=0)  # type: ignore[attr-defined]
    raw = httpx.post(f"{fake_openai.url}/responses",  # type: ignore[attr-defined]
                     json={"model": model, "input": "hi there", "tools": TOOLS}).json()
    Response.model_validate(raw)
    answer = direct.responses.create(model=model, input="hi there", tools=TOOLS)
    with direct.responses.stream(model=model, input="hi there", tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    with httpx.stream("POST", f"{fake_openai.url}/responses",  # type: ignore[attr-defined]
                      json={"model": model, "input": "hi there", "tools": TOOLS,
                            "stream": True}) as streamed:
        lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    for line in lines:
        EVENTS.validate_python(json.loads(line[6:]))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [o.id for o in final.output] == [o.id for o in answer.output]
    assert final.output_text == answer.output_text and final.usage == answer.usage
    if model == "echo":
        assert answer.output_text == "echo: hi there"
    else:
        assert answer.output[0].type == "function_call"


# -- through the gateway ----------------------------------------------------------------------

def test_create_passes_through(url: str, fake_openai: FakeOpenAI) -> None:
    answer = sdk(url).responses.create(
        model="native", input="hello big world", instructions="be brief",
        metadata={"k": "v"}, include=["reasoning.encrypted_content"],
        reasoning={"effort": "low"}, tools=[*TOOLS, {"type": "web_search_preview"}])
    assert answer.output_text == "echo: hello big world"
    assert answer.store is True  # (as the client asked)
    assert answer.id.startswith("resp_") and answer.id != "resp_fake123"  # (the gateway's)
    assert answer.usage is not None and answer.usage.output_tokens == 4
    upstream = sent(fake_openai)
    assert upstream["model"] == "echo" and upstream["store"] is False
    assert upstream["include"] == ["reasoning.encrypted_content"]
    assert upstream["reasoning"] == {"effort": "low"} and upstream["truncation"] == "auto"
    assert upstream["tools"][1] == {"type": "web_search_preview"}
    assert upstream["input"] == [{"type": "message", "role": "user",
                                  "content": "hello big world"}]
    assert "previous_response_id" not in upstream
    assert fake_openai.headers[-1]["authorization"] == "Bearer sk-upstream"
    stored = sdk(url).responses.retrieve(answer.id)
    assert stored.output_text == "echo: hello big world" and stored.store is True
    items = sdk(url).responses.input_items.list(answer.id)
    assert items.data[0].content[0].text == "hello big world"  # type: ignore[union-attr]


def test_stream_relays_the_upstream_events(url: str, fake_openai: FakeOpenAI) -> None:
    with sdk(url).responses.stream(model="native", input="hello big world") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == [*TEXT_EVENTS, *["response.output_text.delta"] * 4, *TEXT_END]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "echo: hello big world" and final.store is True
    ids = {e.response.id for e in events if e.type.startswith("response.") and  # type: ignore[union-attr]
           hasattr(e, "response")}
    assert ids == {final.id} and final.id != "resp_fake123"  # (the gateway's, in every event)
    assert sent(fake_openai)["stream"] is True and sent(fake_openai)["store"] is False
    assert sdk(url).responses.retrieve(final.id).output_text == "echo: hello big world"
    # the bytes as the upstream wrote them: its ``event:`` lines and compact JSON
    with httpx.stream("POST", f"{url}/v1/responses", headers=ADMIN, json={
            "model": "native", "input": "a b", "stream": True, "store": False}) as raw:
        body = b"".join(raw.iter_bytes())
    assert b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"' in body


@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(url: str, fake_openai: FakeOpenAI, stream: bool) -> None:
    client = sdk(url)
    if stream:
        with client.responses.stream(model="native/tool-call", input="weather in Paris?",
                                     tools=TOOLS) as events:
            kinds = [e.type for e in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
    else:
        first = client.responses.create(model="native/tool-call", input="weather in Paris?",
                                        tools=TOOLS)
    call = first.output[0]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model="native", previous_response_id=first.id, tools=TOOLS,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
               {"role": "user", "content": "and now?"}])
    assert second.output_text == "echo: and now?"
    assert second.previous_response_id == first.id
    upstream = sent(fake_openai)
    assert "previous_response_id" not in upstream  # expanded from the gateway's store
    assert [(i.get("type", "message"), i.get("role")) for i in upstream["input"]] == [
        ("message", "user"), ("function_call", None), ("function_call_output", None),
        ("message", "user")]
    assert upstream["input"][1]["call_id"] == call.call_id
    assert upstream["input"][0]["content"] == "weather in Paris?"


class City(BaseModel):
    city: str


def test_parse_with_a_pydantic_model(url: str, fake_openai: FakeOpenAI) -> None:
    answer = sdk(url).responses.parse(model="native", text_format=City, input="where?")
    assert answer.output_parsed == City(city="Paris")
    assert sent(fake_openai)["text"]["format"]["type"] == "json_schema"


@pytest.mark.parametrize(("status", "error"), [
    (400, openai.BadRequestError), (429, openai.RateLimitError),
    (500, openai.InternalServerError)])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_map_as_for_chat(url: str, status: int, error: type[Exception],
                                         stream: bool) -> None:
    with pytest.raises(error) as caught:
        sdk(url).responses.create(model=f"native/error-{status}", input="x", stream=stream)
    body: Any = caught.value.body  # type: ignore[attr-defined]
    assert "fake upstream error" in body["message"] or status >= 500


def test_failures_after_the_start(url: str) -> None:
    """An upstream ``error`` event is relayed; a stream cut short ends with the gateway's
    own ``error`` event, numbered after the rest."""
    for model, code in (("native/midstream-error", "server_error"),
                        ("native/cut-stream", "upstream_error")):
        events = list(sdk(url).responses.create(model=model, input="a b c", stream=True))
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert "response.output_text.delta" in [e.type for e in events]
        last: Any = events[-1]
        assert last.type == "error" and last.code == code, last


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_to_a_translated_deployment(url: str, fake_openai: FakeOpenAI,
                                             stream: bool) -> None:
    client = sdk(url)
    if stream:
        with client.responses.stream(model="native-down", input="hello there") as events:
            kinds = [e.type for e in events]
            answer = events.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    else:
        answer = client.responses.create(model="native-down", input="hello there")
    assert answer.output_text == "echo: hello there"
    assert [("input" in r, r["model"]) for r in fake_openai.requests] == [
        (True, "error-503"), (False, "echo")]
    # the translated answer continues on the native deployment, from the gateway's store
    more = client.responses.create(model="native", input="more", previous_response_id=answer.id)
    assert more.output_text == "echo: more"
    assert [i["content"] for i in sent(fake_openai)["input"] if i.get("type") == "message"] == [
        "hello there", [{"type": "output_text", "text": "echo: hello there", "annotations": [],
                         "logprobs": []}], "more"]


def test_a_request_only_native_can_take_is_400_on_a_translated_fallback(
        url: str, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(url).responses.create(model="native-down", input="x",
                                  tools=[{"type": "web_search_preview"}])
    assert "web_search_preview" in str(caught.value)


def test_usage_spend_limits_and_metrics(url: str, fake_openai: FakeOpenAI) -> None:
    made = httpx.post(f"{url}/v1/keys", json={"name": "k", "tpm": 1000}, headers=ADMIN)
    key = made.json()
    client = sdk(url, key["key"])
    raw = client.responses.with_raw_response.create(model="native", input="hello world",
                                                    max_output_tokens=900)
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 100  # the estimate reserved
    with client.responses.stream(model="native", input="hello world") as stream:
        stream.get_final_response()
    time.sleep(SETTLE_DELAY_S + 0.15)  # settled from the upstream's usage: room again
    client.responses.create(model="native", input="hello world", max_output_tokens=900)
    rows = httpx.get(f"{url}/v1/usage", params={"key_id": key["id"]}, headers=ADMIN).json()
    row = next(r for r in rows["data"] if r["model"] == "native")
    # the fake counts 2 input words and 3 output words ("echo: hello world") each time
    assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (3, 6, 9)
    assert row["cost_usd"] == pytest.approx(3 * (2 * 0.001 + 3 * 0.002))
    metrics = httpx.get(f"{url}/metrics").text
    assert 'gateway_tokens_total{model="native",type="completion"} 9.0' in metrics


def test_another_key_cannot_see_or_continue(url: str) -> None:
    def key() -> str:
        return str(httpx.post(f"{url}/v1/keys", json={"name": "k"}, headers=ADMIN).json()["key"])

    alice, bob = sdk(url, key()), sdk(url, key())
    made = alice.responses.create(model="native", input="mine")
    assert alice.responses.retrieve(made.id).id == made.id
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="native", input="x", previous_response_id=made.id)


def test_guardrails_translate_a_native_call(make_gateway: GatewayFactory,
                                            fake_openai: FakeOpenAI) -> None:
    """Guardrails read and rewrite chat messages: a guarded call goes the translated way, to
    the same upstream's /chat/completions, masked."""
    guarded = config(fake_openai.url, guardrails=[{"pii": {"action": "mask"}}])  # type: ignore[attr-defined]
    answer = sdk(make_gateway(guarded)).responses.create(model="native",
                                                         input="mail me at ann@example.com")
    assert "ann@example.com" not in answer.output_text
    assert "messages" in fake_openai.requests[-1]
    assert "ann@example.com" not in json.dumps(fake_openai.requests[-1])


def test_native_is_a_config_error_elsewhere() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\]: 'responses' .* openai and "
                                          "openai-compatible providers only"):
        validate({"models": [{"name": "a", "provider": "anthropic", "api_key": "k",
                              "responses": "native"}]})
    with pytest.raises(ConfigError, match=r"models\[0\]\.responses: .*'native'"):
        validate({"models": [{"name": "a", "provider": "openai", "responses": "natve"}]})
    assert validate({"models": [{"name": "a", "provider": "openai-compatible",
                                 "api_base": "http://x", "responses": "native"}]})


@pytest.mark.parametrize("streamed", [False, True])
async def test_agents_sdk_two_turns(url: str, fake_openai: FakeOpenAI, streamed: bool) -> None:
    """The OpenAI Agents SDK, two turns with one function tool, on a native deployment (the
    fake calls the tool while ``tool_choice`` is "required"; the SDK resets it after)."""
    run = await run_weather_agent(url, "native", streamed=streamed)
    if streamed:
        assert "raw_response_event" in run.kinds
    assert run.calls == ["Paris"] and run.final_output == "echo: weather in Paris?"
    second = sent(fake_openai)
    assert second["instructions"] == "Answer about the weather." and second["store"] is False
    outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert [o["output"] for o in outputs] == ["sunny in Paris"]
