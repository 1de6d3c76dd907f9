"""The ollama provider's pure translation, table-style: requests, answers, stream lines,
embeddings, errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers import openai_input as oi
from providers.ollama.provider import (
    OllamaConfig,
    OllamaStream,
    error_from,
    from_vendor,
    from_vendor_embeddings,
    to_vendor,
    to_vendor_embeddings,
)
from wire import errors
from wire.openai import ChatRequest, EmbeddingRequest, Usage

CONFIG = OllamaConfig(name="llama", provider="ollama")
USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


def vendor(config: OllamaConfig = CONFIG, **body: Any) -> dict[str, Any]:
    request = ChatRequest.parse({"model": "llama", "messages": [USER], **body})
    return dict(to_vendor(request, "llama3", config, stream=False))


@pytest.mark.parametrize(("body", "expected"), [
    ({}, {"model": "llama3", "stream": False}),
    ({"max_tokens": 7, "temperature": 1.5, "top_p": 0.5, "seed": 3, "stop": "END",
      "presence_penalty": 1, "frequency_penalty": 0.5},
     {"options": {"num_predict": 7, "temperature": 1.5, "top_p": 0.5, "seed": 3,
                  "stop": ["END"], "presence_penalty": 1, "frequency_penalty": 0.5}}),
    ({"max_completion_tokens": 9}, {"options": {"num_predict": 9}}),
    ({"response_format": {"type": "json_object"}}, {"format": "json"}),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "c", "schema": {"type": "object", "required": ["c"]}}}},
     {"format": {"type": "object", "required": ["c"]}}),
    ({"tools": [TOOL], "tool_choice": "auto"}, {"tools": [TOOL]}),
    ({"tools": [TOOL], "tool_choice": "none"}, {"tools": None}),
])
def test_parameters(body: dict[str, Any], expected: dict[str, Any]) -> None:
    translated = vendor(**body)
    assert {k: translated.get(k) for k in expected} == expected


def test_deployment_options_and_keep_alive() -> None:
    config = OllamaConfig(name="l", provider="ollama", keep_alive="10m",
                          options={"num_ctx": 8192, "temperature": 0.1})
    body = vendor(config, temperature=0.7)
    assert body["options"] == {"num_ctx": 8192, "temperature": 0.7}
    assert body["keep_alive"] == "10m"


def test_messages() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is"}, {"type": "text", "text": "this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "developer", "content": "and kind"},
    ]
    body = to_vendor(ChatRequest.parse({"model": "l", "messages": messages}), "llama3", CONFIG,
                     stream=True)
    assert body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is\nthis", "images": ["iVBORw0KGgo="]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        {"role": "system", "content": "and kind"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"n": 2}, "n"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ({"tools": [TOOL], "tool_choice": "required"}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "x"}}},
     "tool_choice"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
])
def test_unsupported_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        vendor(**body)
    assert caught.value.param == param


def answer(**fields: Any) -> dict[str, Any]:
    return {"model": "llama3", "created_at": "2026-01-01T00:00:00Z", "done": True,
            "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 4,
            "message": {"role": "assistant", "content": "Hello"}, **fields}


@pytest.mark.parametrize(("done_reason", "called", "finish"), [
    ("stop", False, "stop"), ("stop", True, "tool_calls"), ("length", False, "length"),
    ("load", False, "stop"), (None, False, "stop"),
])
def test_finish_reasons(done_reason: str | None, called: bool, finish: str) -> None:
    message = {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {}}}]} if called else {"content": "x"}
    body = orjson.loads(from_vendor(answer(done_reason=done_reason, message=message)).body)
    assert body["choices"][0]["finish_reason"] == finish


def test_whole_answer() -> None:
    result = from_vendor(answer())
    body = orjson.loads(result.body)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    assert result.usage == Usage(9, 4)
    calls = {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {"b": 1, "a": 2}}},
        {"function": {"name": "f", "arguments": {"a": 2, "b": 1}}}]}
    message = orjson.loads(from_vendor(answer(message=calls)).body)["choices"][0]["message"]
    ids = [c["id"] for c in message["tool_calls"]]
    assert message["content"] is None and all(i.startswith("call_") for i in ids)
    assert ids[0] != ids[1]  # same call twice: told apart by position
    assert message["tool_calls"][0]["function"]["arguments"] == '{"b":1,"a":2}'


TWO_CALLS = {"role": "assistant", "content": "", "tool_calls": [
    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]}


@pytest.mark.parametrize(("parallel", "kept"), [(None, 2), (True, 2), (False, 1)])
def test_parallel_tool_calls_false_keeps_the_first_call(parallel: bool | None,
                                                        kept: int) -> None:
    body: dict[str, Any] = {"model": "l", "messages": [USER], "tools": [TOOL]}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    request = ChatRequest.parse(body)
    assert "parallel_tool_calls" not in to_vendor(request, "l", CONFIG, stream=False)
    ids = oi.CallIds(request)
    whole = orjson.loads(from_vendor(answer(message=TWO_CALLS), ids).body)
    calls = whole["choices"][0]["message"]["tool_calls"]
    assert len(calls) == kept and calls[0]["function"]["arguments"] == '{"city":"Paris"}'
    stream = OllamaStream("l", oi.CallIds(request))
    chunks = [orjson.loads(c.data) for c in stream.feed(orjson.dumps(answer(message=TWO_CALLS)))]
    streamed = [t for c in chunks if c["choices"]
                for t in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [t["id"] for t in streamed] == [c["id"] for c in calls]


def test_call_ids_differ_across_turns() -> None:
    first = ChatRequest.parse({"model": "l", "messages": [USER], "tools": [TOOL]})
    later = ChatRequest.parse({"model": "l", "tools": [TOOL], "messages": [
        USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}, USER]})

    def ids(request: ChatRequest) -> list[str]:
        body = orjson.loads(from_vendor(answer(message=TWO_CALLS), oi.CallIds(request)).body)
        return [c["id"] for c in body["choices"][0]["message"]["tool_calls"]]

    assert ids(first) == ids(first) and not set(ids(first)) & set(ids(later))


@pytest.mark.parametrize("body", [[], {"model": "x"}, {"error": "model crashed"}])
def test_garbage_or_error_answer(body: Any) -> None:
    with pytest.raises(errors.UpstreamError):
        from_vendor(body)


def test_stream_lines() -> None:
    stream = OllamaStream("llama3")
    lines = [answer(done=False, message={"role": "assistant", "content": "Hel"}),
             answer(done=False, message={"role": "assistant", "content": "lo"}),
             answer(done=False, message={"role": "assistant", "content": "", "tool_calls": [
                 {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}),
             answer(message={"role": "assistant", "content": ""})]
    chunks = [c for line in lines for c in stream.feed(orjson.dumps(line))]
    assert stream.done and all(c.usage is None for c in chunks[:-1])
    parsed = [orjson.loads(c.data) for c in chunks]
    assert [p["choices"][0]["delta"] for p in parsed[:2]] == [
        {"role": "assistant", "content": "Hel"}, {"content": "lo"}]
    call = parsed[2]["choices"][0]["delta"]["tool_calls"][0]
    whole = orjson.loads(from_vendor(lines[2] | {"done": True}).body)
    assert call["id"] == whole["choices"][0]["message"]["tool_calls"][0]["id"]
    assert call["function"]["arguments"] == '{"city":"Paris"}'
    assert parsed[3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1].usage_only and chunks[-1].usage == Usage(9, 4)


@pytest.mark.parametrize("line", [b'{"error": "boom"}', b"<html>", b'{"done": "x"}'])
def test_stream_errors(line: bytes) -> None:
    with pytest.raises(errors.UpstreamError):
        OllamaStream("l").feed(line)


def test_embeddings() -> None:
    request = EmbeddingRequest.parse({"model": "e", "input": ["a", "b"], "dimensions": 2})
    assert to_vendor_embeddings(request, "nomic") == {"model": "nomic", "input": ["a", "b"],
                                                      "dimensions": 2}
    result = from_vendor_embeddings({"model": "nomic", "embeddings": [[0.5, 1.0], [2.0, 3.0]],
                                     "prompt_eval_count": 2}, request, "nomic")
    body = orjson.loads(result.body)
    assert [d["embedding"] for d in body["data"]] == [[0.5, 1.0], [2.0, 3.0]]
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2} and result.usage == Usage(2)
    with pytest.raises(errors.InvalidRequest):
        to_vendor_embeddings(EmbeddingRequest.parse({"model": "e", "input": [[1, 2]]}), "n")


@pytest.mark.parametrize(("status", "error_class"), [
    (400, errors.InvalidRequest), (404, errors.NotFound), (429, errors.RateLimited),
    (500, errors.UpstreamError),
])
def test_error_answers(status: int, error_class: type[errors.GatewayError]) -> None:
    error = error_from(status, b'{"error": "model \'x\' not found"}', {})
    assert type(error) is error_class and "model 'x' not found" in error.message
    assert "plain text" in error_from(500, b"plain text", {}).message
