"""The gemini provider's pure translation, table-style: requests, answers, stream events,
embeddings, errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from providers import openai_input as oi
from providers.gemini.embeddings import from_vendor_embeddings, to_vendor_embeddings
from providers.gemini.provider import GeminiStream, error_from, from_vendor, to_vendor
from wire import errors
from wire.openai import ChatRequest, EmbeddingRequest, Usage

USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


def vendor(**body: Any) -> dict[str, Any]:
    return dict(to_vendor(ChatRequest.parse({"model": "g", "messages": [USER], **body})))


@pytest.mark.parametrize(("body", "config"), [
    ({}, None),
    ({"max_tokens": 7}, {"maxOutputTokens": 7}),
    ({"max_completion_tokens": 9}, {"maxOutputTokens": 9}),
    ({"temperature": 1.5, "top_p": 0.9, "seed": 3},
     {"temperature": 1.5, "topP": 0.9, "seed": 3}),
    ({"presence_penalty": 0.5, "frequency_penalty": -0.5},
     {"presencePenalty": 0.5, "frequencyPenalty": -0.5}),
    ({"stop": "END"}, {"stopSequences": ["END"]}),
    ({"n": 3}, {"candidateCount": 3}),
    ({"n": 1}, None),
    ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "city", "schema": {"type": "object", "properties": {"c": {"type": "string"}}}}}},
     {"responseMimeType": "application/json", "responseJsonSchema": {
         "type": "object", "properties": {"c": {"type": "string"}}}}),
])
def test_generation_config(body: dict[str, Any], config: dict[str, Any] | None) -> None:
    assert vendor(**body).get("generationConfig") == config


@pytest.mark.parametrize(("choice", "tool_config"), [
    (None, None),
    ("auto", {"functionCallingConfig": {"mode": "AUTO"}}),
    ("none", {"functionCallingConfig": {"mode": "NONE"}}),
    ("required", {"functionCallingConfig": {"mode": "ANY"}}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}),
])
def test_tools(choice: Any, tool_config: dict[str, Any] | None) -> None:
    body = vendor(tools=[TOOL], **({"tool_choice": choice} if choice else {}))
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Weather",
        "parametersJsonSchema": {"type": "object"}}]}]
    assert body.get("toolConfig") == tool_config


def parts(*texts: str) -> list[dict[str, Any]]:
    return [{"text": t} for t in texts]


@pytest.mark.parametrize(("messages", "system", "contents"), [
    ([{"role": "system", "content": "be brief"}, USER], {"parts": parts("be brief")},
     [{"role": "user", "parts": parts("hi")}]),
    ([USER, {"role": "user", "content": [{"type": "text", "text": "again"}]},
      {"role": "assistant", "content": "ok"}], None,
     [{"role": "user", "parts": parts("hi", "again")}, {"role": "model", "parts": parts("ok")}]),
    ([USER, {"role": "assistant", "content": "Let me check.", "tool_calls": [
        CALL, {**CALL, "id": "call_2__thought__c2ln"}]},
      {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
      {"role": "tool", "tool_call_id": "call_2__thought__c2ln", "content": "sunny"}], None,
     [{"role": "user", "parts": parts("hi")},
      {"role": "model", "parts": [
          {"text": "Let me check."},
          {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
          {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
           "thoughtSignature": "c2ln"}]},
      {"role": "user", "parts": [
          {"functionResponse": {"name": "get_weather", "response": {"temp": 20}}},
          {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}]),
    ([{"role": "user", "content": [
        {"type": "text", "text": "what"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg?s=1"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/image"}}]}], None,
     [{"role": "user", "parts": [
         {"text": "what"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
         {"fileData": {"fileUri": "https://x.test/cat.jpg?s=1", "mimeType": "image/jpeg"}},
         {"fileData": {"fileUri": "https://x.test/image"}}]}]),
])
def test_contents(messages: list[dict[str, Any]], system: dict[str, Any] | None,
                  contents: list[dict[str, Any]]) -> None:
    body = to_vendor(ChatRequest.parse({"model": "g", "messages": messages}))
    assert body.get("systemInstruction") == system
    assert body["contents"] == contents


@pytest.mark.parametrize(("body", "param"), [
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
    ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]},
     "messages[0].tool_call_id"),
    ({"messages": [{"role": "function", "name": "f", "content": "y"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]}]},
     "messages[0].content[0].image_url.url"),
])
def test_unsupported_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        vendor(**body)
    assert caught.value.param == param


USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6,
         "cachedContentTokenCount": 3, "totalTokenCount": 20}


def candidate(*parts: dict[str, Any], reason: str | None = "STOP", index: int = 0
              ) -> dict[str, Any]:
    out: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": index}
    if reason:
        out["finishReason"] = reason
    return out


FUNCTION_CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": "c2ln"}


@pytest.mark.parametrize(("reason", "called", "finish"), [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", False, "length"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"), ("BLOCKLIST", False, "content_filter"),
    ("SPII", False, "content_filter"), ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ("OTHER", False, "stop"), ("FINISH_REASON_UNSPECIFIED", False, "stop"),
])
def test_finish_reasons(reason: str, called: bool, finish: str) -> None:
    parts = [FUNCTION_CALL] if called else [{"text": "x"}]
    body = orjson.loads(from_vendor({"candidates": [candidate(*parts, reason=reason)]}, "g").body)
    assert body["choices"][0]["finish_reason"] == finish


def test_whole_answer() -> None:
    answer = {"candidates": [
        candidate({"text": "thinking...", "thought": True}, {"text": "Hel"}, {"text": "lo"}),
        candidate({"text": "Let me check."}, FUNCTION_CALL, index=1)],
        "usageMetadata": USAGE, "modelVersion": "gemini-x-001", "responseId": "r1"}
    result = from_vendor(answer, "gemini-x")
    body = orjson.loads(result.body)
    assert body["model"] == "gemini-x-001"
    first, second = body["choices"]
    assert first["message"] == {"role": "assistant", "content": "Hello"}
    call = second["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["id"].endswith("__thought__c2ln")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert (second["index"], second["finish_reason"]) == (1, "tool_calls")
    assert second["message"]["content"] == "Let me check."
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                             "prompt_tokens_details": {"cached_tokens": 3},
                             "completion_tokens_details": {"reasoning_tokens": 6}}
    assert result.usage == Usage(10, 10, 3)  # (3 of them cached)
    again = orjson.loads(from_vendor(answer, "gemini-x").body)
    assert again["choices"][1]["message"]["tool_calls"][0]["id"] == call["id"]  # stable


def test_blocked_prompt() -> None:
    body = orjson.loads(from_vendor({"promptFeedback": {"blockReason": "SAFETY"},
                                     "usageMetadata": {"promptTokenCount": 3}}, "g").body)
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize("body", [[], {"candidates": "x"}, {"candidates": [{"index": "a"}]}])
def test_garbage_answer(body: Any) -> None:
    with pytest.raises(errors.UpstreamError):
        from_vendor(body, "g")


def feed(stream: GeminiStream, *answers: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = [c for answer in answers for c in stream.feed(orjson.dumps(answer))]
    assert all(c.usage is None for c in chunks)
    return [orjson.loads(c.data) for c in chunks]


def test_stream_chunks() -> None:
    stream = GeminiStream("gemini-x")
    chunks = feed(stream, {"candidates": [candidate({"text": "Hel"}, reason=None)]},
                  {"candidates": [candidate({"text": "hmm", "thought": True}, reason=None)]},
                  {"candidates": [candidate({"text": "lo"}, FUNCTION_CALL)],
                   "usageMetadata": USAGE})
    assert stream.done and len({c["id"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[:2] == [{"role": "assistant", "content": "Hel"}, {"content": "lo"}]
    call = deltas[2]["tool_calls"][0]
    whole = orjson.loads(from_vendor({"candidates": [candidate(FUNCTION_CALL)]}, "g").body)
    assert call["id"] == whole["choices"][0]["message"]["tool_calls"][0]["id"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    end = stream.end()
    assert end.usage_only and end.usage == Usage(10, 10, 3)
    assert orjson.loads(end.data)["usage"]["completion_tokens_details"] == {
        "reasoning_tokens": 6}


def test_stream_with_several_candidates_is_done_when_all_are() -> None:
    stream = GeminiStream("g")
    feed(stream, {"candidates": [candidate({"text": "a"}, reason=None)]})
    chunks = feed(stream, {"candidates": [candidate({"text": "b"}, index=1)]})
    assert not stream.done and [c["choices"][0]["index"] for c in chunks] == [1, 1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    feed(stream, {"candidates": [candidate({"text": "c"})]})
    assert stream.done


def test_fewer_candidates_than_asked_agree() -> None:
    """n=2 answered with one candidate: a whole answer has one choice, and a stream whose one
    candidate finished is complete, not broken."""
    request = ChatRequest.parse({"model": "g", "messages": [USER], "n": 2})
    assert vendor(n=2)["generationConfig"] == {"candidateCount": 2}
    whole = orjson.loads(from_vendor({"candidates": [candidate({"text": "a"})]}, "g",
                                     oi.CallIds(request)).body)
    assert [c["index"] for c in whole["choices"]] == [0]
    stream = GeminiStream("g", oi.CallIds(request))
    chunks = feed(stream, {"candidates": [candidate({"text": "a"})]})
    assert stream.done and stream.end().usage_only
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]


def test_nothing_came_is_broken() -> None:
    with pytest.raises(errors.UpstreamError, match="before it was done"):
        GeminiStream("g").end()


SECOND_CALL = {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}


@pytest.mark.parametrize(("parallel", "calls"), [(None, 2), (True, 2), (False, 1)])
def test_parallel_tool_calls_false_keeps_the_first_call(parallel: bool | None,
                                                        calls: int) -> None:
    body: dict[str, Any] = {"model": "g", "messages": [USER], "tools": [TOOL]}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    request = ChatRequest.parse(body)
    assert "parallel_tool_calls" not in orjson.dumps(to_vendor(request)).decode()
    answer = {"candidates": [candidate(FUNCTION_CALL, SECOND_CALL)]}
    whole = orjson.loads(from_vendor(answer, "g", oi.CallIds(request)).body)
    got = whole["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["arguments"] for c in got] == [
        '{"city":"Paris"}', '{"city":"Rome"}'][:calls]
    stream = GeminiStream("g", oi.CallIds(request))
    chunks = feed(stream, answer)
    streamed = [t for c in chunks for t in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [t["id"] for t in streamed] == [c["id"] for c in got]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_call_ids_differ_across_turns_and_agree_within_one_request() -> None:
    """The same call in two turns gets two ids (an Anthropic fallback would refuse a history
    with one id twice); one request's stream, whole answer and a repeat of it agree."""
    answer = {"candidates": [candidate(FUNCTION_CALL, SECOND_CALL)]}
    first = ChatRequest.parse({"model": "g", "messages": [USER], "tools": [TOOL]})
    ids = [c["id"] for c in orjson.loads(from_vendor(answer, "g", oi.CallIds(first)).body)[
        "choices"][0]["message"]["tool_calls"]]
    assert len(set(ids)) == 2
    again = orjson.loads(from_vendor(answer, "g", oi.CallIds(first)).body)
    assert [c["id"] for c in again["choices"][0]["message"]["tool_calls"]] == ids
    history = [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}, USER]
    later = ChatRequest.parse({"model": "g", "messages": history, "tools": [TOOL]})
    later_ids = [c["id"] for c in orjson.loads(from_vendor(answer, "g", oi.CallIds(later))
                                               .body)["choices"][0]["message"]["tool_calls"]]
    assert not set(later_ids) & set(ids)


def test_stream_blocked_and_cut() -> None:
    blocked = GeminiStream("g")
    chunks = feed(blocked, {"promptFeedback": {"blockReason": "SAFETY"}})
    assert chunks[0]["choices"][0]["finish_reason"] == "content_filter" and blocked.done
    cut = GeminiStream("g")
    feed(cut, {"candidates": [candidate({"text": "a"}, reason=None)]})
    with pytest.raises(errors.UpstreamError, match="before it was done"):
        cut.end()


@pytest.mark.parametrize(("data", "error_class"), [
    (b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}',
     errors.UpstreamError),
    (b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}',
     errors.RateLimited),
    (b"<html>", errors.UpstreamError),
])
def test_stream_errors(data: bytes, error_class: type[errors.GatewayError]) -> None:
    with pytest.raises(error_class):
        GeminiStream("g").feed(data)


def floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize(("body", "expected"), [
    ({"input": "a b"}, {"content": {"parts": [{"text": "a b"}]}}),
    ({"input": "a", "dimensions": 8},
     {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8}),
    ({"input": ["a", "b"]}, {"requests": [
        {"model": "models/emb", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/emb", "content": {"parts": [{"text": "b"}]}}]}),
])
def test_embedding_requests(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_vendor_embeddings(EmbeddingRequest.parse({"model": "e", **body}), "emb") == expected


def test_embedding_answers() -> None:
    one = EmbeddingRequest.parse({"model": "e", "input": "a"})
    body = orjson.loads(from_vendor_embeddings({"embedding": {"values": [1.5, -2.0]}}, one,
                                               "emb").body)
    assert body == {"object": "list", "model": "emb", "usage": {"prompt_tokens": 0,
                                                                "total_tokens": 0},
                    "data": [{"object": "embedding", "index": 0, "embedding": [1.5, -2.0]}]}
    many = EmbeddingRequest.parse({"model": "e", "input": ["a", "b"],
                                   "encoding_format": "base64"})
    result = from_vendor_embeddings({"embeddings": [{"values": [1.5]}, {"values": [0.25]}],
                                     "usageMetadata": {"promptTokenCount": 2}}, many, "emb")
    data = orjson.loads(result.body)["data"]
    assert [floats(d["embedding"]) for d in data] == [[1.5], [0.25]]
    assert result.usage == Usage(2)
    with pytest.raises(errors.InvalidRequest):
        to_vendor_embeddings(EmbeddingRequest.parse({"model": "e", "input": [1, 2]}), "emb")
    with pytest.raises(errors.UpstreamError):
        from_vendor_embeddings({"embeddings": "x"}, many, "emb")


@pytest.mark.parametrize(("status", "headers", "error_class", "retry_after"), [
    (400, {}, errors.InvalidRequest, None),
    (403, {}, errors.UpstreamError, None),
    (404, {}, errors.NotFound, None),
    (429, {}, errors.RateLimited, "7"),
    (429, {"retry-after": "3"}, errors.RateLimited, "3"),
    (500, {}, errors.UpstreamError, None),
    (503, {}, errors.UpstreamError, None),
])
def test_error_answers(status: int, headers: dict[str, str],
                       error_class: type[errors.GatewayError], retry_after: str | None) -> None:
    body = orjson.dumps({"error": {"code": status, "message": "the message", "status": "X",
                                   "details": [{"@type": "type.googleapis.com/google.rpc."
                                                "RetryInfo", "retryDelay": "6.2s"}]}})
    error = error_from(status, body, headers)
    assert type(error) is error_class and "the message" in error.message
    assert error.headers.get("retry-after") == retry_after
