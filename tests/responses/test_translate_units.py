"""The pure translation: Responses request → chat body, chat chunks → typed events, checked
against the official SDK's own event and response types."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.responses.events import EventWriter
from gateway.responses.output import envelope, from_completion
from gateway.responses.translate import chat_body
from wire.errors import InvalidRequest
from wire.responses import ResponsesRequest

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def request(**body: Any) -> ResponsesRequest:
    return ResponsesRequest.parse({"model": "m", **body})


def test_items_become_messages() -> None:
    body = chat_body(request(instructions="sys", input=[
        {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                     {"type": "input_text", "text": "b"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"x\":1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "r1"},
        {"type": "function_call_output", "call_id": "c2", "output": "r2"},
        {"type": "reasoning", "id": "rs_1", "summary": []}]), [])
    assert body["messages"] == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "ok"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "f",
                                                          "arguments": "{\"x\":1}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
        {"role": "tool", "tool_call_id": "c2", "content": "r2"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"text": {"format": {"type": "grammar"}}}, "text.format.type"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0]"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
])
def test_unsupported_is_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_body(request(**{"input": "x", **body}), [])
    assert caught.value.param == param


def test_options_map() -> None:
    body = chat_body(request(input="x", tools=[{"type": "function", "name": "f",
                                                 "parameters": {"type": "object"}}],
                             tool_choice={"type": "function", "name": "f"},
                             parallel_tool_calls=False, max_output_tokens=9, top_p=0.5,
                             text={"format": {"type": "json_object"}}, stream=True,
                             metadata={"a": "b"}, store=False), [])
    assert body == {"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "stream": True, "stream_options": {"include_usage": True},
                    "tools": [{"type": "function", "function": {
                        "name": "f", "parameters": {"type": "object"}}}],
                    "tool_choice": {"type": "function", "function": {"name": "f"}},
                    "parallel_tool_calls": False, "max_completion_tokens": 9, "top_p": 0.5,
                    "response_format": {"type": "json_object"}}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_events_text_then_tool_call_validate_as_sdk_types() -> None:
    writer = EventWriter(envelope(request(input="x"), "resp_1", "in_progress"))
    events = [*writer.start(), *writer.feed(chunk({"role": "assistant", "content": "Hi"})),
              *writer.feed(chunk({"content": " there"})),
              *writer.feed(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type":
                                                  "function", "function": {
                                                      "name": "f", "arguments": "{\"a\""}}]})),
              *writer.feed(chunk({"tool_calls": [{"index": 0, "function": {
                  "arguments": ":1}"}}]}, "tool_calls")),
              *writer.feed({"choices": [], "usage": {"prompt_tokens": 3,
                                                     "completion_tokens": 2}}),
              *writer.end()]
    for event in events:
        EVENTS.validate_python(event)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = Response.model_validate(events[-1]["response"])
    assert final.output_text == "Hi there" and final.usage is not None
    assert final.usage.total_tokens == 5
    assert [i.type for i in final.output] == ["message", "function_call"]
    assert events[12]["arguments"] == "{\"a\":1}" and events[12]["name"] == "f"


def test_length_is_incomplete() -> None:
    completion = {"choices": [{"index": 0, "finish_reason": "length",
                               "message": {"role": "assistant", "content": "cut"}}],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    response = Response.model_validate(from_completion(request(input="x"), "resp_2",
                                                       completion))
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
