"""The anthropic provider's pure translation, table-style: requests, answers, stream events,
errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers.anthropic.provider import (
    AnthropicConfig,
    AnthropicStream,
    error_from,
    from_vendor,
    to_vendor,
)
from wire import errors
from wire.openai import ChatRequest, Usage

CONFIG = AnthropicConfig(name="claude", provider="anthropic")
USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object"}}}
CALL = {"id": "toolu_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


def vendor(config: AnthropicConfig = CONFIG, **body: Any) -> dict[str, Any]:
    request = ChatRequest.parse({"model": "claude", "messages": [USER], **body})
    translated, _ = to_vendor(request, "claude-x", default_max_tokens=config.max_tokens,
                              api_version=config.anthropic_version, stream=False)
    return dict(translated)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


@pytest.mark.parametrize(("body", "expected"), [
    ({}, {"max_tokens": 4096}),
    ({"max_tokens": 7}, {"max_tokens": 7}),
    ({"max_tokens": 7, "max_completion_tokens": 9}, {"max_tokens": 9}),
    ({"temperature": 0.5, "top_p": 0.9}, {"temperature": 0.5, "top_p": 0.9}),
    ({"stop": "END"}, {"stop_sequences": ["END"]}),
    ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
    ({"user": "u-1"}, {"metadata": {"user_id": "u-1"}}),
    ({"n": 1, "parallel_tool_calls": True}, {}),
    ({"tools": [TOOL]}, {"tools": [{"name": "get_weather", "description": "Weather",
                                    "input_schema": {"type": "object"}}]}),
    ({"tools": [TOOL], "tool_choice": "auto"}, {"tool_choice": {"type": "auto"}}),
    ({"tools": [TOOL], "tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
    ({"tools": [TOOL], "tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     {"tool_choice": {"type": "tool", "name": "get_weather"}}),
    ({"tools": [TOOL], "parallel_tool_calls": False},
     {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}),
    ({"response_format": {"type": "json_object"}},
     {"tools": [{"name": "json_object", "input_schema": {"type": "object"},
                 "description": "Answer with this tool: its input is the JSON answer."}],
      "tool_choice": {"type": "tool", "name": "json_object"}}),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "city", "description": "A city", "schema": {"type": "object", "properties": {
            "city": {"type": "string"}}}}}},
     {"tools": [{"name": "city", "description": "A city", "input_schema": {
         "type": "object", "properties": {"city": {"type": "string"}}}}],
      "tool_choice": {"type": "tool", "name": "city"}}),
    ({"response_format": {"type": "text"}}, {}),
])
def test_parameters(body: dict[str, Any], expected: dict[str, Any]) -> None:
    translated = vendor(**body)
    assert {k: translated[k] for k in expected} == expected
    assert "stream" not in translated


def test_defaults_from_the_deployment() -> None:
    config = AnthropicConfig(name="c", provider="anthropic", max_tokens=123)
    assert vendor(config)["max_tokens"] == 123
    assert vendor()["messages"] == [{"role": "user", "content": [text("hi")]}]


@pytest.mark.parametrize(("messages", "system", "expected"), [
    ([{"role": "system", "content": "be brief"}, USER], [text("be brief")],
     [{"role": "user", "content": [text("hi")]}]),
    ([{"role": "developer", "content": "a"}, {"role": "system", "content": [text("b")]}, USER],
     [text("a"), text("b")], [{"role": "user", "content": [text("hi")]}]),
    ([USER, {"role": "user", "content": "again"}], None,
     [{"role": "user", "content": [text("hi"), text("again")]}]),
    ([USER, {"role": "assistant", "content": "yes"}, {"role": "assistant", "content": "and"}],
     None, [{"role": "user", "content": [text("hi")]},
            {"role": "assistant", "content": [text("yes"), text("and")]}]),
    ([USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
      {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
      {"role": "user", "content": "thanks"}], None,
     [{"role": "user", "content": [text("hi")]},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                         "name": "get_weather", "input": {"city": "Paris"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                    "content": "sunny"}, text("thanks")]}]),
    ([{"role": "user", "content": [
        text("what is this"),
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg", "detail": "low"}}]}],
     None,
     [{"role": "user", "content": [
         text("what is this"),
         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                      "data": "iVBORw0KGgo="}},
         {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}}]}]),
])
def test_messages(messages: list[dict[str, Any]], system: list[dict[str, Any]] | None,
                  expected: list[dict[str, Any]]) -> None:
    request = ChatRequest.parse({"model": "c", "messages": messages})
    body, _ = to_vendor(request, "claude-x", default_max_tokens=4096, api_version="2023-06-01",
                        stream=True)
    assert body.get("system") == system
    assert body["messages"] == expected and body["stream"] is True


@pytest.mark.parametrize(("body", "param"), [
    ({"n": 2}, "n"),
    ({"seed": 1}, "seed"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"logprobs": True}, "logprobs"),
    ({"logit_bias": {"1": 2}}, "logit_bias"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"temperature": 1.5}, "temperature"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
    ({"tools": [TOOL], "response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "array"}}}}, "response_format.json_schema.schema"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
     "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": "{oops"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}, USER]},
     "messages[0].content"),
])
def test_unsupported_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        vendor(**body)
    assert caught.value.param == param and caught.value.status == 400


def test_api_version_without_sampling_parameters() -> None:
    config = AnthropicConfig(name="c", provider="anthropic", anthropic_version="2026-10-21")
    assert "temperature" not in vendor(config)
    for param in ("temperature", "top_p"):
        with pytest.raises(errors.InvalidRequest) as caught:
            vendor(config, **{param: 0.5})
        assert caught.value.param == param


ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
          "stop_reason": "end_turn", "stop_sequence": None,
          "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 2,
                    "cache_read_input_tokens": 3}}


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
    ("model_context_window_exceeded", "length"), (None, "stop"), ("brand_new", "stop"),
])
def test_finish_reasons(stop_reason: str | None, finish: str) -> None:
    result = from_vendor({**ANSWER, "content": [text("hi")], "stop_reason": stop_reason}, None)
    assert orjson.loads(result.body)["choices"][0]["finish_reason"] == finish


def test_whole_answer() -> None:
    content = [{"type": "thinking", "thinking": "hmm", "signature": "s"}, text("Let me "),
               text("check."), {"type": "tool_use", "id": "toolu_9", "name": "get_weather",
                                "input": {"city": "Paris"}}]
    result = from_vendor({**ANSWER, "content": content, "stop_reason": "tool_use"}, None)
    body = orjson.loads(result.body)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "claude-x"
    assert body["choices"][0]["message"] == {
        "role": "assistant", "content": "Let me check.",
        "tool_calls": [{"id": "toolu_9", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    assert body["usage"] == {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20,
                             "prompt_tokens_details": {"cached_tokens": 3}}
    assert result.usage == Usage(15, 5, 3)  # (3 of them cached)


def test_json_tool_answer_is_the_content() -> None:
    """Text blocks beside the forced JSON tool are dropped: the content must parse."""
    content = [text("I will call city."),
               {"type": "tool_use", "id": "toolu_9", "name": "city", "input": {"city": "Oslo"}},
               text("Done.")]
    body = orjson.loads(from_vendor({**ANSWER, "content": content, "stop_reason": "tool_use"},
                                    "city").body)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": '{"city":"Oslo"}'}
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("body", [[], {"content": "x"}, {**ANSWER, "content": [{"x": 1}]}])
def test_garbage_answer(body: Any) -> None:
    with pytest.raises(errors.UpstreamError):
        from_vendor(body, None)


def events(*items: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(item["type"], orjson.dumps(item)) for item in items]


START = {"type": "message_start", "message": {**ANSWER, "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 10, "output_tokens": 1}}}
TOOL_EVENTS = events(
    START, {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                          "partial_json": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                          "partial_json": '{"city": '}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                          "partial_json": '"Paris"}'}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 12}},
    {"type": "message_stop"})


def run(stream: AnthropicStream, items: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    chunks = [chunk for event, data in items for chunk in stream.feed(event, data)]
    assert all(c.usage is None and not c.usage_only for c in chunks[:-1])
    return [orjson.loads(c.data) for c in chunks]


def test_stream_events_to_chunks() -> None:
    stream = AnthropicStream("claude-x", None)
    chunks = run(stream, TOOL_EVENTS)
    assert stream.done
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas == [
        {"role": "assistant", "content": ""}, {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "toolu_7", "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, {}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    assert chunks[-1]["usage"]["prompt_tokens"] == 10


def test_stream_json_tool_becomes_content() -> None:
    chunks = run(AnthropicStream("claude-x", "get_weather"), TOOL_EVENTS)
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert content == '{"city": "Paris"}'  # the text block "Hi" beside it is dropped
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_stream_usage_is_cumulative_and_split() -> None:
    stream = AnthropicStream("claude-x", None)
    last = stream.feed("message_start", orjson.dumps(
        {"type": "message_start", "message": {**ANSWER, "content": []}}))
    stream.feed("message_delta", orjson.dumps({"type": "message_delta", "delta": {
        "stop_reason": "end_turn"}, "usage": {"output_tokens": 40, "input_tokens": 11}}))
    last = stream.feed("message_stop", b'{"type": "message_stop"}')
    assert last[0].usage == Usage(16, 40, 3) and last[0].usage_only


@pytest.mark.parametrize(("error_type", "error_class"), [
    ("overloaded_error", errors.UpstreamError), ("rate_limit_error", errors.RateLimited),
    ("api_error", errors.UpstreamError), ("invalid_request_error", errors.InvalidRequest),
    ("something_new", errors.UpstreamError),
])
def test_stream_error_event(error_type: str, error_class: type[errors.GatewayError]) -> None:
    stream = AnthropicStream("claude-x", None)
    with pytest.raises(error_class, match="Overloaded"):
        stream.feed("error", orjson.dumps({"type": "error", "error": {
            "type": error_type, "message": "Overloaded"}}))


@pytest.mark.parametrize("data", [b"<html>", b'{"type": "content_block_delta", "index": "x"}'])
def test_stream_garbage(data: bytes) -> None:
    with pytest.raises(errors.UpstreamError):
        AnthropicStream("claude-x", None).feed("content_block_delta", data)


@pytest.mark.parametrize(("status", "error_class", "code"), [
    (400, errors.InvalidRequest, "invalid_value"), (401, errors.UpstreamError, "upstream_error"),
    (403, errors.UpstreamError, "upstream_error"), (404, errors.NotFound, "model_not_found"),
    (413, errors.RequestTooLarge, "request_too_large"),
    (429, errors.RateLimited, "rate_limit_exceeded"),
    (500, errors.UpstreamError, "upstream_error"), (529, errors.UpstreamError, "upstream_error"),
])
def test_error_answers_by_status(status: int, error_class: type[errors.GatewayError],
                                 code: str) -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "x", "message": "the message"}})
    error = error_from(status, body, {"retry-after": "7"})
    assert type(error) is error_class and error.code == code
    assert "the message" in error.message
    if status == 429:
        assert error.headers == {"retry-after": "7"}


def test_error_answer_that_is_not_json() -> None:
    assert "proxy says no" in error_from(502, b"proxy says no", {}).message


def test_stream_without_message_delta_still_finishes() -> None:
    """message_stop ends the message: a stream whose message_delta carried no stop_reason
    still gets its finish chunk, once."""
    stream = AnthropicStream("claude-x", None)
    chunks = run(stream, events(
        START, {"type": "message_delta", "delta": {"stop_reason": None},
                "usage": {"output_tokens": 3}}, {"type": "message_stop"}))
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, "stop"]
    assert chunks[-1]["usage"]["completion_tokens"] == 3
