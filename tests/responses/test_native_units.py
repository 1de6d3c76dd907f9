"""The pure parts of ``responses: native``: the upstream body and history
(gateway/responses/native.py) and the relay of the upstream's events
(providers/openai/responses.py)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.responses.native import client_view, messages_to_items, replayable, upstream_body
from gateway.responses.replay import replay_events
from providers.openai.responses import ResponseEvents, from_upstream_response, response_usage
from wire.errors import UpstreamError
from wire.openai import Usage
from wire.responses import ResponsesRequest


def event(kind: str, sequence: int, **data: Any) -> bytes:
    payload = json.dumps({"type": kind, "sequence_number": sequence, **data},
                         separators=(",", ":"))
    return f"event: {kind}\ndata: {payload}\n\n".encode()


RESPONSE = {"id": "resp_1", "object": "response", "status": "completed", "error": None,
            "output": [], "usage": {"input_tokens": 5, "output_tokens": 7,
                                    "input_tokens_details": {"cached_tokens": 2}}}
STREAM = (event("response.created", 0, response={**RESPONSE, "status": "in_progress"})
          + event("response.output_text.delta", 1, delta='said "error" here')
          + event("response.output_text.delta", 2, delta=" more")
          + event("response.completed", 3, response=RESPONSE))


def test_upstream_body_expands_the_history_and_keeps_the_rest() -> None:
    request = ResponsesRequest.parse({
        "model": "m", "input": "now", "previous_response_id": "resp_0", "store": True,
        "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "high"},
        "tools": [{"type": "web_search_preview"}]})
    history = [{"type": "message", "role": "user", "content": "before"},
               {"type": "reasoning", "id": "rs_1", "summary": []},
               {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "x"}]
    body = upstream_body(request, history, "auto")
    assert body["input"] == [history[0], history[2],
                             {"type": "message", "role": "user", "content": "now"}]
    assert (body["store"], body["truncation"]) == (False, "auto")
    assert "previous_response_id" not in body
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["tools"] == [{"type": "web_search_preview"}]
    assert request.raw["store"] is True  # (the client's body is not changed)
    assert replayable(history) == [history[0], history[2]]


def test_client_view() -> None:
    request = ResponsesRequest.parse({"model": "m", "input": "x",
                                      "previous_response_id": "resp_0"})
    shown = client_view({"id": "r", "store": False, "previous_response_id": None}, request,
                        "resp_1")
    assert shown == {"id": "resp_1", "store": True, "previous_response_id": "resp_0"}


def test_messages_to_items() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "u",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "assistant", "content": "ok"}]
    assert messages_to_items(messages) == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "u", "detail": "low"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
        {"type": "message", "role": "assistant", "content": "ok"}]


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_relay_passes_the_bytes_in_any_split(size: int) -> None:
    events = ResponseEvents()
    chunks = [c for i in range(0, len(STREAM), size)
              for c in events.feed(STREAM[i:i + size])]
    assert b"".join(c.event for c in chunks) == STREAM
    assert events.done
    parsed = [json.loads(c.data)["type"] for c in chunks if c.data]
    assert parsed == ["response.created", "response.completed"]  # (the deltas not parsed)
    assert [c.usage for c in chunks if c.usage] == [Usage(5, 7, 2)]
    assert list(events.feed(event("response.output_text.delta", 4, delta="late"))) == []


def test_relay_reads_an_error_event_and_rejects_garbage() -> None:
    events = ResponseEvents()
    chunks = list(events.feed(event("error", 0, code="server_error", message="boom")))
    assert events.done and json.loads(chunks[0].data)["code"] == "server_error"
    with pytest.raises(UpstreamError):
        list(ResponseEvents().feed(b'data: {"error": oops}\n\n'))


def test_whole_answer_checks() -> None:
    assert from_upstream_response(json.dumps(RESPONSE).encode()).usage == Usage(5, 7, 2)
    assert response_usage(None) is None and response_usage({"output_tokens": 1}) is None
    for bad in (b"<html>", b'{"object": "chat.completion"}'):
        with pytest.raises(UpstreamError):
            from_upstream_response(bad)


def test_replay_events_of_every_item_kind() -> None:
    """A stored ``response`` played back: every event is one of the SDK's own types, in
    OpenAI's order, and the SDK's stream accumulator rebuilds the same output from them."""
    response = Response.model_validate({
        "id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "model": "m", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "output": [
            {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "x"},
            {"id": "ws_1", "type": "web_search_call", "status": "completed",
             "action": {"type": "search", "query": "q"}},
            {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "hi", "logprobs": [],
                          "annotations": [{"type": "url_citation", "url": "http://a",
                                           "title": "a", "start_index": 0,
                                           "end_index": 2}]},
                         {"type": "refusal", "refusal": "no"}]},
            {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f",
             "arguments": '{"a": 1}', "status": "completed"}],
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}}}).model_dump(
        mode="json", exclude_none=True)
    events = replay_events(response)
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    parsed = [adapter.validate_python(e) for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e.type for e in parsed] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.output_item.done",
        "response.output_item.added", "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.content_part.added", "response.refusal.delta", "response.refusal.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert events[0]["response"]["output"] == [] and events[0]["response"]["usage"] is None
    assert events[6]["item"]["content"] == [] and events[16]["item"]["arguments"] == ""
    assert events[7]["part"]["annotations"] == [] and events[7]["part"]["text"] == ""
    state: Any = ResponseStreamState(input_tools=[], text_format=openai.omit)
    for event_ in parsed:
        state.handle_event(event_)
    rebuilt = state._completed_response
    assert rebuilt is not None
    assert rebuilt.model_dump(mode="json", exclude_none=True)["output"] == response["output"]
