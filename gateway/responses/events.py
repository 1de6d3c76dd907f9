"""Chat completion chunks as the Responses API's typed stream events, in OpenAI's order, each
with its ``sequence_number`` (pure: feed chunk dicts, get event dicts)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.responses.output import (
    call_item,
    finish,
    history_messages,
    message_item,
    text_part,
    usage,
)
from gateway.responses.translate import new_id

Event = dict[str, Any]


def encode(event: Event) -> bytes:
    """One event as OpenAI sends it: ``event: {type}`` and its ``data``."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass(slots=True)
class _Call:
    index: int  # output_index
    item: dict[str, Any]


@dataclass(slots=True)
class EventWriter:
    response: dict[str, Any]  # the envelope (status in_progress), completed as chunks arrive
    sequence: int = 0
    text: str | None = None  # the open message's text so far (None: no message open)
    text_item: dict[str, Any] | None = None
    text_index: int = 0
    calls: dict[int, _Call] = field(default_factory=dict)  # by chat tool-call index
    finish_reason: str | None = None

    def _event(self, kind: str, **data: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return event

    def start(self) -> list[Event]:
        snapshot = copy.deepcopy(self.response)
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=copy.deepcopy(snapshot))]

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.response["usage"] = usage(chunk["usage"])
        return events

    def _text(self, delta: str) -> list[Event]:
        events: list[Event] = []
        if self.text_item is None:
            self.text_item = message_item("", "in_progress")
            self.text_index = len(self.response["output"])
            self.response["output"].append(self.text_item)
            self.text = ""
            events.append(self._event("response.output_item.added",
                                      output_index=self.text_index,
                                      item=copy.deepcopy(self.text_item)))
            events.append(self._event("response.content_part.added",
                                      item_id=self.text_item["id"],
                                      output_index=self.text_index, content_index=0,
                                      part=text_part("")))
        self.text = (self.text or "") + delta
        events.append(self._event("response.output_text.delta", item_id=self.text_item["id"],
                                  output_index=self.text_index, content_index=0, delta=delta,
                                  logprobs=[]))
        return events

    def _call(self, delta: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        index = int(delta.get("index", 0))
        function = delta.get("function") or {}
        call = self.calls.get(index)
        if call is None:
            events += self._close_text()
            item = call_item(delta.get("id") or new_id("call"), function.get("name") or "",
                             "", "in_progress")
            call = self.calls[index] = _Call(len(self.response["output"]), item)
            self.response["output"].append(item)
            events.append(self._event("response.output_item.added", output_index=call.index,
                                      item=copy.deepcopy(item)))
        elif function.get("name") and not call.item["name"]:
            call.item["name"] = function["name"]
        piece = function.get("arguments") or ""
        if piece:
            call.item["arguments"] += piece
            events.append(self._event("response.function_call_arguments.delta",
                                      item_id=call.item["id"], output_index=call.index,
                                      delta=piece))
        return events

    def _close_text(self) -> list[Event]:
        item = self.text_item
        if item is None:
            return []
        text = self.text or ""
        status = "incomplete" if self.finish_reason == "length" else "completed"
        item.update(status=status, content=[text_part(text)])
        self.text_item = None
        where = {"item_id": item["id"], "output_index": self.text_index}
        return [self._event("response.output_text.done", **where, content_index=0, text=text,
                            logprobs=[]),
                self._event("response.content_part.done", **where, content_index=0,
                            part=text_part(text)),
                self._event("response.output_item.done", output_index=self.text_index,
                            item=copy.deepcopy(item))]

    def end(self) -> list[Event]:
        """The stream ended cleanly: close every open item, then ``response.completed`` (or
        ``response.incomplete`` when the answer was cut short)."""
        events = self._close_text()
        for call in self.calls.values():
            call.item["status"] = "completed"
            call.item["arguments"] = call.item["arguments"] or "{}"
            events.append(self._event("response.function_call_arguments.done",
                                      item_id=call.item["id"], output_index=call.index,
                                      name=call.item["name"],
                                      arguments=call.item["arguments"]))
            events.append(self._event("response.output_item.done", output_index=call.index,
                                      item=copy.deepcopy(call.item)))
        self.calls = {}
        finish(self.response, self.finish_reason)
        kind = f"response.{self.response['status']}"
        return [*events, self._event(kind, response=copy.deepcopy(self.response))]

    def fail(self, error: dict[str, Any]) -> Event:
        """The stream broke: ``response.failed`` carrying the error."""
        self.response.update(status="failed", error={
            "code": str(error.get("code") or error.get("type") or "server_error"),
            "message": str(error.get("message", ""))})
        return self._event("response.failed", response=copy.deepcopy(self.response))

    def history(self) -> list[dict[str, Any]]:
        return history_messages(self.response["output"])
