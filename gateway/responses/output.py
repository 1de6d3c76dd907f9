"""A chat completion as OpenAI's ``response`` object (pure): the envelope echoing the
request, ``message`` items of ``output_text`` parts, ``function_call`` items, usage."""

from __future__ import annotations

import time
from typing import Any

from gateway.responses.translate import new_id
from wire.responses import ResponsesRequest

Item = dict[str, Any]
# A chat finish_reason that cut the answer short, as the Responses API's reason.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def envelope(request: ResponsesRequest, response_id: str, status: str) -> dict[str, Any]:
    """The ``response`` object before any output: what the request asked for, echoed."""
    return {
        "id": response_id, "object": "response", "created_at": int(time.time()),
        "status": status, "background": False, "error": None, "incomplete_details": None,
        "instructions": request.instructions, "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata or {}, "model": request.model, "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": None, "summary": None}, "store": request.store,
        "temperature": request.temperature, "text": request.text or {"format": {"type": "text"}},
        "tool_choice": request.tool_choice or "auto", "tools": request.tools or [],
        "top_p": request.top_p, "truncation": request.truncation or "disabled", "usage": None,
        "user": request.user,
    }


def message_item(text: str, status: str = "completed", item_id: str | None = None) -> Item:
    return {"id": item_id or new_id("msg"), "type": "message", "role": "assistant",
            "status": status, "content": [text_part(text)] if status != "in_progress" else []}


def text_part(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(call_id: str, name: str, arguments: str, status: str = "completed",
              item_id: str | None = None) -> Item:
    return {"id": item_id or new_id("fc"), "type": "function_call", "call_id": call_id,
            "name": name, "arguments": arguments, "status": status}


def usage(chat_usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not chat_usage:
        return None
    prompt = int(chat_usage.get("prompt_tokens") or 0)
    completion = int(chat_usage.get("completion_tokens") or 0)
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}


def finish(response: dict[str, Any], finish_reason: str | None) -> None:
    """Set the status from the chat finish reason."""
    reason = INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None


def output_items(message: dict[str, Any], status: str = "completed") -> list[Item]:
    items: list[Item] = []
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if content:
        items.append(message_item(content, status))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        items.append(call_item(call.get("id") or new_id("call"), function.get("name", ""),
                               function.get("arguments") or "{}"))
    return items


def from_completion(request: ResponsesRequest, response_id: str,
                    completion: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` as a ``response``."""
    response = envelope(request, response_id, "completed")
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    finish(response, choice.get("finish_reason"))
    item_status = "incomplete" if response["status"] == "incomplete" else "completed"
    response["output"] = output_items(choice.get("message") or {}, item_status)
    response["usage"] = usage(completion.get("usage"))
    return response


def history_messages(output: list[Item]) -> list[dict[str, Any]]:
    """A response's output as the chat messages that continue it (text, then tool calls)."""
    text = "".join(part.get("text", "") for item in output if item["type"] == "message"
                   for part in item.get("content", []))
    calls = [{"id": item["call_id"], "type": "function",
              "function": {"name": item["name"], "arguments": item["arguments"]}}
             for item in output if item["type"] == "function_call"]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message] if text or calls else []
