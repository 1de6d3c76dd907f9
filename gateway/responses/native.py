"""The body sent to an upstream that speaks the Responses API natively, and the history it
continues (pure, no I/O).

The gateway keeps its own stored responses for native deployments too (so GET, DELETE,
input_items and ``previous_response_id`` work on every replica, for the key that made them, and
across fallbacks to translated deployments): the upstream gets ``store: false`` and the stored
history expanded into ``input`` in place of ``previous_response_id``. Every other field passes
as the client sent it (``include``, ``reasoning``, built-in tools, ...), ``model`` replaced.
"""

from __future__ import annotations

from typing import Any

from gateway.responses.translate import input_items
from wire.responses import ResponsesRequest

Item = dict[str, Any]
_GATEWAY_ONLY = ("previous_response_id", "store")


def upstream_body(request: ResponsesRequest, history: list[Item], truncation: str
                  ) -> dict[str, Any]:
    """The Responses body for the upstream: the client's, with the earlier turns first."""
    body = {k: v for k, v in request.raw.items() if k not in _GATEWAY_ONLY}
    body.update(input=[*replayable(history), *input_items(request)], store=False,
                truncation=truncation)
    return body


def replayable(items: list[Item]) -> list[Item]:
    """Earlier items as input to an upstream that keeps nothing (``store: false``): a
    reasoning item only with its ``encrypted_content`` (it cannot be looked up by id)."""
    return [item for item in items
            if item.get("type") != "reasoning" or item.get("encrypted_content")]


def turn_items(history: list[Item], request: ResponsesRequest, output: list[Item]
               ) -> list[Item]:
    """The exchange through this response, as items: what a later turn continues."""
    return [*history, *input_items(request), *output]


def _part(part: Any, role: str) -> Item:
    if isinstance(part, dict) and part.get("type") == "image_url":
        image = part.get("image_url") or {}
        out: Item = {"type": "input_image", "image_url": image.get("url")}
        if image.get("detail"):
            out["detail"] = image["detail"]
        return out
    text = part.get("text", "") if isinstance(part, dict) else str(part)
    return {"type": "output_text" if role == "assistant" else "input_text", "text": text}


def messages_to_items(messages: list[dict[str, Any]]) -> list[Item]:
    """Chat messages (a history kept as messages only) as Responses input items."""
    items: list[Item] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "tool":
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"),
                          "output": content if isinstance(content, str) else ""})
            continue
        if isinstance(content, list):
            content = [_part(part, str(role)) for part in content]
        if content:
            items.append({"type": "message", "role": role, "content": content})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            items.append({"type": "function_call", "call_id": call.get("id"),
                          "name": function.get("name"),
                          "arguments": function.get("arguments") or "{}"})
    return items


def client_view(response: dict[str, Any], request: ResponsesRequest, response_id: str
                ) -> dict[str, Any]:
    """The upstream's ``response`` as the client asked for it: the gateway's own id (its store
    is where the response is kept: an upstream's id must not name, or overwrite, another
    key's), ``store`` and ``previous_response_id`` as the client sent them (the upstream saw
    neither)."""
    return {**response, "id": response_id, "store": request.store,
            "previous_response_id": request.previous_response_id}
