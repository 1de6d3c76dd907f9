"""A whole ``response`` played back as the Responses API's typed stream events (pure).

The response cache keeps one form of a native answer, the upstream's ``response`` object; a
stream that hits it gets OpenAI's events in OpenAI's order, numbered from 0:
``response.created``, ``response.in_progress``, per output item ``response.output_item.added``,
its content (a message: per part ``content_part.added``, the text (or refusal) as one delta, its
``.done``, ``content_part.done``; a function call: its arguments as one delta and
``function_call_arguments.done``), ``response.output_item.done``; last ``response.completed``
(or ``response.incomplete``) carrying the whole response. Items of other types (reasoning,
built-in tool calls) are added and done whole.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

Event = dict[str, Any]
Item = dict[str, Any]
# a content part's text field, and the events that carry it, by part type
_TEXT_PARTS = {"output_text": ("text", "response.output_text"),
               "refusal": ("refusal", "response.refusal")}


def replay_events(response: dict[str, Any]) -> list[Event]:
    """The events of a stream that made ``response``, ``sequence_number`` set."""
    start = {**copy.deepcopy(response), "status": "in_progress", "output": [], "usage": None,
             "incomplete_details": None}
    events: list[Event] = [{"type": "response.created", "response": start},
                           {"type": "response.in_progress", "response": copy.deepcopy(start)}]
    for index, item in enumerate(response.get("output") or []):
        events += _item_events(index, item)
    final = response.get("status") if response.get("status") == "incomplete" else "completed"
    events.append({"type": f"response.{final}", "response": copy.deepcopy(response)})
    return [{"type": e.pop("type"), "sequence_number": n, **e} for n, e in enumerate(events)]


def _item_events(index: int, item: Item) -> list[Event]:
    kind = item.get("type")
    opened = {**copy.deepcopy(item), "status": "in_progress"} if "status" in item else item
    if kind == "message":
        opened["content"] = []
    elif kind == "function_call":
        opened["arguments"] = ""
    events: list[Event] = [{"type": "response.output_item.added", "output_index": index,
                            "item": opened}]
    if kind == "message":
        for content_index, part in enumerate(item.get("content") or []):
            events += _part_events(index, item.get("id"), content_index, part)
    elif kind == "function_call":
        where = {"item_id": item.get("id"), "output_index": index}
        arguments = str(item.get("arguments") or "")
        events += [{"type": "response.function_call_arguments.delta", **where,
                    "delta": arguments},
                   {"type": "response.function_call_arguments.done", **where,
                    "name": item.get("name"), "arguments": arguments}]
    events.append({"type": "response.output_item.done", "output_index": index,
                   "item": copy.deepcopy(item)})
    return events


def _part_events(index: int, item_id: Any, content_index: int, part: Item) -> Iterator[Event]:
    where = {"item_id": item_id, "output_index": index, "content_index": content_index}
    field, prefix = _TEXT_PARTS.get(str(part.get("type")), ("", ""))
    empty = copy.deepcopy(part)
    if field:
        empty[field] = ""
    if "annotations" in empty:
        empty["annotations"] = []
    yield {"type": "response.content_part.added", **where, "part": empty}
    if field:
        text = str(part.get(field) or "")
        extra = {"logprobs": part.get("logprobs") or []} if field == "text" else {}
        yield {"type": f"{prefix}.delta", **where, "delta": text, **extra}
        yield {"type": f"{prefix}.done", **where, field: text, **extra}
    yield {"type": "response.content_part.done", **where, "part": copy.deepcopy(part)}
