"""A fake Anthropic upstream speaking the documented Messages API (``POST /v1/messages``):
whole answers, the streaming events (message_start, content_block_start/delta/stop with
text_delta and input_json_delta, message_delta with cumulative usage, message_stop, ping,
error) and error bodies. ``tests/test_fake_anthropic.py`` checks it with the official
``anthropic`` SDK.

It enforces what the real API enforces and the gateway must get right: a key
(``x-api-key``, or ``Authorization: Bearer`` as SDK 2.x sends it) and an
``anthropic-version``, ``max_tokens`` present, roles alternating user/assistant, no system
role in ``messages``, temperature in 0..1 (and no temperature, top_p or top_k at all under
version 2026-10-21, which removed them), every tool_result answering a tool_use of the turn
before, no tool_use id twice in one conversation.

The model id picks a behaviour:
- anything else: echo the last user text ("echo: ..."), cut by max_tokens (words) and
  stop_sequences; a forced tool (tool_choice ``tool`` or ``any``) is called instead;
- ``tool-call``: a text block, then a call to the first tool with {"city": "Paris"};
- ``chatty-tool``: like echo, but a text block comes before any tool call, forced or not
  (as Claude answers do at times);
- ``thinking``: a thinking block before the echo;
- ``cache-hit``: usage with cache_read_input_tokens 3 and cache_creation_input_tokens 2;
- ``error-NNN``: an Anthropic error body with HTTP status NNN (429 adds ``Retry-After: 7``);
- ``garbage``: a 200 whose body is not JSON;
- ``midstream-error``: one text delta, then an ``error`` event (overloaded_error);
- ``gated-stream``: like echo, holding its stream after the first event until
  ``streams.gate`` is set (``streams.closed`` tells when a stream ended);
- ``cut-stream``: one text delta, then the connection ends without message_stop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.vendor_common import (
    TOOL_ARGUMENTS,
    StreamWatch,
    count_words,
    echo_words,
    read_body,
    sse,
    stop_at,
)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class FakeAnthropic:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.streams = StreamWatch()
        self.url = ""
        self.app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    def reset(self) -> None:
        self.streams.reset()
        self.requests.clear()
        self.headers.clear()

    async def messages(self, request: Request) -> Response:
        body = await read_body(request, self.requests, self.headers)
        model: str = body.get("model", "")
        if model.startswith("error-"):
            return error(int(model[6:]))
        if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
            return error(401, "x-api-key header is required")
        version = request.headers.get("anthropic-version")
        if version is None:
            return error(400, "anthropic-version: header is required")
        problem = invalid(body, version)
        if problem:
            return error(400, problem)
        if model == "garbage":
            return Response(b"<html>bad gateway</html>", media_type="text/html")
        blocks, stop_reason, stop_sequence = answer(body)
        usage = usage_of(body, blocks)
        if body.get("stream"):
            events = stream(body, blocks, stop_reason, stop_sequence, usage)
            return StreamingResponse(self.streams.watch(model, events),
                                     media_type="text/event-stream")
        return JSONResponse({
            "id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": usage})


def invalid(body: dict[str, Any], version: str) -> str | None:
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    for removed in ("temperature", "top_p", "top_k"):
        if version >= "2026-10-21" and removed in body:
            return f"{removed}: Extra inputs are not permitted"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: range: 0..1"
    previous_role, tool_uses, every_tool_use = None, set(), set()
    for i, message in enumerate(body.get("messages") or []):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if role == previous_role:
            return "messages: roles must alternate between 'user' and 'assistant'"
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        for block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in tool_uses:
                return f"messages.{i}: unexpected tool_use_id found in tool_result blocks"
        ids = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        tool_uses = set(ids)
        if len(tool_uses) < len(ids) or tool_uses & every_tool_use:
            return f"messages.{i}: `tool_use` ids must be unique"
        every_tool_use |= tool_uses
        previous_role = role
    return None


def last_user_text(body: dict[str, Any]) -> str:
    text = ""
    for message in body.get("messages") or []:
        if message["role"] == "user":
            content = message["content"]
            texts = [content] if isinstance(content, str) else [
                b.get("text", "") for b in content if b.get("type") == "text"]
            text = " ".join(t for t in texts if t) or text
    return text


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
    model, tools = body["model"], body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if tools and (model == "tool-call" or choice.get("type") in ("tool", "any")):
        name = choice.get("name") or tools[0]["name"]
        forced = choice.get("type") in ("tool", "any") and model != "chatty-tool"
        blocks = [] if forced else [{"type": "text", "text": "Let me check."}]
        blocks.append({"type": "tool_use", "id": "toolu_01FakeCall", "name": name,
                       "input": TOOL_ARGUMENTS})
        return blocks, "tool_use", None
    words, cut = echo_words(last_user_text(body), body["max_tokens"])
    words, stop = stop_at(words, body.get("stop_sequences") or [])
    blocks = [{"type": "text", "text": "".join(words)}]
    if model == "thinking":
        blocks.insert(0, {"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"})
    reason = "stop_sequence" if stop else "max_tokens" if cut else "end_turn"
    return blocks, reason, stop


def usage_of(body: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = count_words(body.get("messages")) + count_words(body.get("system"))
    output = sum(count_words(b.get("text", "")) + len(json.dumps(b.get("input", ""))) // 8
                 for b in blocks)
    cached = body["model"] == "cache-hit"
    return {"input_tokens": prompt, "output_tokens": output,
            "cache_creation_input_tokens": 2 if cached else 0,
            "cache_read_input_tokens": 3 if cached else 0}


async def stream(body: dict[str, Any], blocks: list[dict[str, Any]], stop_reason: str,
                 stop_sequence: str | None, usage: dict[str, Any]) -> AsyncIterator[bytes]:
    model = body["model"]
    start_usage = {**usage, "output_tokens": 1}
    yield sse({"type": "message_start", "message": {
        "id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
        "message_start")
    yield sse({"type": "ping"}, "ping")
    for index, block in enumerate(blocks):
        for event in block_events(index, block):
            yield sse(event, event["type"])
            if model in ("midstream-error", "cut-stream") and event["type"] == \
                    "content_block_delta":
                if model == "midstream-error":
                    yield sse({"type": "error", "error": {"type": "overloaded_error",
                                                          "message": "Overloaded"}}, "error")
                return
    yield sse({"type": "message_delta",
               "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
               "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")


def block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        start = {"type": "text", "text": ""}
        pieces = [{"type": "text_delta", "text": w} for w in split_words(block["text"])]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        pieces = [{"type": "thinking_delta", "thinking": block["thinking"]},
                  {"type": "signature_delta", "signature": block["signature"]}]
    else:
        start = {**block, "input": {}}
        arguments = json.dumps(block["input"])
        pieces = [{"type": "input_json_delta", "partial_json": part} for part in
                  ("", arguments[: len(arguments) // 2], arguments[len(arguments) // 2:])]
    return [{"type": "content_block_start", "index": index, "content_block": start},
            *({"type": "content_block_delta", "index": index, "delta": p} for p in pieces),
            {"type": "content_block_stop", "index": index}]


def split_words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def error(status: int, message: str | None = None) -> Response:
    kind = ERROR_TYPES.get(status, "api_error")
    headers = {"retry-after": "7"} if status == 429 else {}
    return JSONResponse({"type": "error", "error": {
        "type": kind, "message": message or f"fake anthropic error {status}"},
        "request_id": "req_fake"}, status_code=status, headers=headers)
