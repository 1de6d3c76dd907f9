"""Pure translation between a Responses request and a chat completion request, and from a
chat completion back to a ``response`` object. No I/O."""

from __future__ import annotations

import secrets
from typing import Any

from wire.errors import InvalidRequest
from wire.responses import ResponsesRequest

Item = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def input_items(request: ResponsesRequest) -> list[Item]:
    """The request's input as a list of items (a string is one user message)."""
    if isinstance(request.input, str):
        return [{"type": "message", "role": "user", "content": request.input}]
    return request.input


def stored_item(item: Item) -> Item:
    """An input item as ``input_items`` lists it: with an id, a message's text as parts."""
    kind = item.get("type", "message")
    stored = {"id": item.get("id") or new_id("msg" if kind == "message" else "item"),
              "type": kind, **{k: v for k, v in item.items() if k not in ("id", "type")}}
    if kind == "message":
        if isinstance(stored.get("content"), str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            stored["content"] = [{"type": part, "text": stored["content"]}]
        stored.setdefault("status", "completed")
    return stored


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text", "refusal"):
        return {"type": "text", "text": str(part.get("text", part.get("refusal", "")))}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequest("An input_image part needs an 'image_url' (a URL or a data "
                                 "URL); file ids are not supported.", param=where)
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(f"Content part type '{kind}' is not supported.", param=where)


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("'content' must be a string or a list of parts.", param=where)
    parts = [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return str(output)


def items_to_messages(items: list[Item]) -> list[dict[str, Any]]:
    """Responses input items as chat messages: consecutive function calls become one
    assistant message's ``tool_calls``; a call's output a ``tool`` message."""
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest("Each input item must be an object.", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise InvalidRequest(f"Invalid role {role!r}.", param=f"{where}.role")
            messages.append({"role": role,
                             "content": _content(item.get("content"), f"{where}.content")})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"),
                                 "arguments": item.get("arguments") or "{}"}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and (
                    "tool_calls" in last or not last.get("content")):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": _output_text(item.get("output"))})
        elif kind == "reasoning":
            continue
        else:
            raise InvalidRequest(f"Input item type '{kind}' is not supported.",
                                 param=f"{where}.type")
    return messages


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind != "function":
            raise InvalidRequest(f"Tool type '{kind}' is not supported by this model: only "
                                 "'function' tools are.", param=f"tools[{i}].type")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                    if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest(f"tool_choice type '{choice.get('type')}' is not supported.",
                         param="tool_choice")


def _response_format(text: dict[str, Any]) -> dict[str, Any] | None:
    fmt = text.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description")
                  if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(f"text.format type '{fmt['type']}' is not supported.",
                         param="text.format.type")


def chat_body(request: ResponsesRequest, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat completion body for a Responses request: ``instructions`` as the system
    message, then the earlier turns (``history``), then the input."""
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages += [*history, *items_to_messages(input_items(request))]
    body: dict[str, Any] = {"model": request.model, "messages": messages,
                            "stream": request.stream}
    if request.tools:
        body["tools"] = _tools(request.tools)
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None and request.tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    for field, value in (("temperature", request.temperature), ("top_p", request.top_p),
                         ("max_completion_tokens", request.max_output_tokens),
                         ("user", request.user)):
        if value is not None:
            body[field] = value
    if request.text and (fmt := _response_format(request.text)) is not None:
        body["response_format"] = fmt
    if request.stream:
        body["stream_options"] = {"include_usage": True}
    return body
