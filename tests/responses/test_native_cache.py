"""The response cache on ``responses: native`` deployments: keyed by the body the upstream
gets, a hit answers without calling the upstream (counted at the fake OpenAI's /responses),
whole or played back as the typed events the official SDK parses; errors and broken streams
are never stored; ``Cache-Control`` opt-outs as for chat. In memory and in a real Redis."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from tests.conftest import GatewayFactory
from tests.fakes.openai_server import FakeOpenAI
from tests.responses.test_native import ADMIN, TEXT_END, TEXT_EVENTS, TOOLS, config, sdk

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def upstream_calls(fake: FakeOpenAI) -> int:
    """Requests that reached the upstream's /responses (chat requests have ``messages``)."""
    return sum(1 for r in fake.requests if "input" in r)


@pytest.fixture
def url(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
        redis_url_or_none: str | None) -> str:
    return make_gateway(config(fake_openai.url, cache={"ttl_s": 60}),  # type: ignore[attr-defined]
                        redis_url=redis_url_or_none)


def create(url: str, headers: dict[str, str] | None = None, **body: Any) -> tuple[str, Any]:
    """(x-gateway-cache, the SDK's parsed response)"""
    raw = sdk(url).responses.with_raw_response.create(extra_headers=headers, **body)
    return raw.headers["x-gateway-cache"], raw.parse()


def stream(url: str, **body: Any) -> tuple[str, list[Any], Any]:
    """(x-gateway-cache, the SDK's parsed events, the final response)"""
    with sdk(url).responses.with_streaming_response.create(stream=True, **body) as answer:
        events = list(answer.parse())
        header = answer.headers["x-gateway-cache"]
    completed = [e.response for e in events if e.type in ("response.completed",
                                                          "response.incomplete")]
    return header, events, completed[-1] if completed else None


def test_second_identical_call_is_a_hit(url: str, fake_openai: FakeOpenAI) -> None:
    body = {"model": "native", "input": "cache me please", "temperature": 0,
            "metadata": {"k": "v"}}
    header, first = create(url, **body)
    assert header == "miss" and upstream_calls(fake_openai) == 1
    header, second = create(url, **body)
    assert header == "hit" and upstream_calls(fake_openai) == 1  # not sent upstream
    assert second.output_text == first.output_text == "echo: cache me please"
    assert second.id != first.id and second.id.startswith("resp_")  # a response of its own
    assert second.store is True and second.metadata == {"k": "v"}
    assert sdk(url).responses.retrieve(second.id).output_text == "echo: cache me please"
    # continued like any other: the next turn's body is new, a miss
    header, third = create(url, model="native", input="go on", temperature=0,
                           previous_response_id=second.id)
    assert header == "miss" and third.output_text == "echo: go on"
    assert upstream_calls(fake_openai) == 2
    # a different input, instructions or model misses
    assert create(url, **{**body, "input": "another thing"})[0] == "miss"
    assert create(url, **body, instructions="be brief")[0] == "miss"
    assert create(url, **{**body, "model": "native/other"})[0] == "miss"
    assert upstream_calls(fake_openai) == 5


def test_stream_and_whole_share_an_entry(url: str, fake_openai: FakeOpenAI) -> None:
    body = {"model": "native", "input": "hello big world", "temperature": 0}
    header, events, missed = stream(url, **body)
    assert header == "miss" and upstream_calls(fake_openai) == 1
    header, whole = create(url, **body)
    assert header == "hit" and whole.output_text == missed.output_text
    header, events, final = stream(url, **body, user="someone-else")  # (user: not in the key)
    assert header == "hit" and upstream_calls(fake_openai) == 1
    kinds = [e.type for e in events]
    assert kinds == [*TEXT_EVENTS, "response.output_text.delta", *TEXT_END]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "echo: hello big world" and final.id != missed.id
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}
    assert final.usage == missed.usage
    assert sdk(url).responses.retrieve(final.id).output_text == "echo: hello big world"


def test_stream_hit_is_what_the_sdk_stream_helper_reads(url: str,
                                                        fake_openai: FakeOpenAI) -> None:
    """A function call replays as its events; the SDK's own accumulator agrees. A cut answer
    replays ending with ``response.incomplete``."""
    client = sdk(url)
    tool = {"model": "native/tool-call", "input": "weather?", "tools": TOOLS, "temperature": 0}
    missed = client.responses.create(**tool)
    with client.responses.stream(**tool) as events:
        kinds = [e.type for e in events]
        final = events.get_final_response()
    same = {"id", "parsed_arguments"}  # (the stream helper parses tool arguments)
    assert [o.model_dump(exclude=same) for o in final.output] == [
        o.model_dump(exclude=same) for o in missed.output]
    assert kinds[2:6] == ["response.output_item.added", "response.function_call_arguments.delta",
                          "response.function_call_arguments.done", "response.output_item.done"]
    with httpx.stream("POST", f"{url}/v1/responses", headers=ADMIN,
                      json={**tool, "stream": True}) as raw:
        lines = [line for line in raw.iter_lines() if line.startswith("data: ")]
    events_ = [EVENTS.validate_python(json.loads(line[6:])) for line in lines]
    arguments = [e for e in events_ if e.type == "response.function_call_arguments.done"]
    assert json.loads(arguments[0].arguments) == {"city": "Paris"}
    cut = {"model": "native", "input": "one two three four", "max_output_tokens": 2,
           "temperature": 0}
    assert create(url, **cut)[0] == "miss"
    header, replayed, ended = stream(url, **cut)
    assert header == "hit" and replayed[-1].type == "response.incomplete"
    assert ended.status == "incomplete" and ended.output_text == "echo: one"
    assert ended.output[0].status == "incomplete"
    assert upstream_calls(fake_openai) == 2


def test_opt_outs_and_deterministic_mode(url: str, fake_openai: FakeOpenAI) -> None:
    body = {"model": "native", "input": "hello", "temperature": 0}
    assert create(url, {"Cache-Control": "no-store"}, **body)[0] == "miss"  # nothing stored
    assert create(url, **body)[0] == "miss"
    assert create(url, {"Cache-Control": "no-cache"}, **body)[0] == "miss"  # lookup skipped
    assert create(url, **body)[0] == "hit"
    assert upstream_calls(fake_openai) == 3
    warm = {"model": "native", "input": "hello", "temperature": 0.7}
    assert create(url, **warm)[0] == create(url, **warm)[0] == "miss"  # (deterministic only)
    assert upstream_calls(fake_openai) == 5


def test_errors_are_never_stored(url: str, fake_openai: FakeOpenAI) -> None:
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            create(url, model="native/error-500", input="x", temperature=0)
        assert caught.value.response.headers["x-gateway-cache"] == "miss"
    for model in ("native/midstream-error", "native/cut-stream"):
        for _ in range(2):
            header, events, final = stream(url, model=model, input="a b", temperature=0)
            assert header == "miss" and final is None and events[-1].type == "error"
    assert upstream_calls(fake_openai) == 6


def test_a_fallback_answer_is_cached_as_a_response(url: str, fake_openai: FakeOpenAI) -> None:
    """``native-down`` fails over to a translated deployment; its answer (a ``response``,
    made from a chat completion) is what the entry holds."""
    body = {"model": "native-down", "input": "hello there", "temperature": 0}
    assert create(url, **body)[0] == "miss"
    calls = len(fake_openai.requests)
    header, _, final = stream(url, **body)
    assert header == "hit" and final.output_text == "echo: hello there"
    assert len(fake_openai.requests) == calls
