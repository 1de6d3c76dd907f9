"""The fake OpenAI upstream's ``/v1/responses``: OpenAI's Responses API wire format (the
``response`` object, and with ``stream`` its typed events, ``event:`` line and
``sequence_number`` each), as ``tests/responses/test_native.py`` checks with the official SDK's
own types and stream parser. It keeps nothing (``store`` is recorded, not honoured).

The model id picks a behaviour, as for chat (tests/fakes/openai_server.py):
- anything else: echo the text of the last user message ("echo: ...") word by word; with
  ``max_output_tokens`` the echo is cut to that many words and the response is incomplete;
  with a ``json_schema`` text format, a JSON object with every required property "Paris";
- ``tool-call``, or any model with ``tool_choice`` "required": a ``function_call`` of the
  first function tool, arguments {"city": "Paris"};
- ``error-NNN``: an OpenAI error body with HTTP status NNN;
- ``midstream-error``: the start of a stream, one delta, then an ``error`` event;
- ``cut-stream``: the start of a stream, one delta, then the connection ends.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

CREATED = 1_700_000_000
Item = dict[str, Any]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(p.get("text", "")) for p in content or [] if isinstance(p, dict))


def _input_items(body: dict[str, Any]) -> list[Item]:
    given = body.get("input")
    return [{"role": "user", "content": given}] if isinstance(given, str) else list(given or [])


def reply_words(body: dict[str, Any]) -> list[str]:
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":  # every required property "Paris"
        return [json.dumps({k: "Paris" for k in fmt.get("schema", {}).get("required", [])})]
    users = [i for i in _input_items(body) if i.get("type", "message") == "message"
             and i.get("role") == "user"]
    words = ["echo:", *(_text(users[-1].get("content")).split() if users else [])]
    limit = body.get("max_output_tokens")
    if limit:
        words = words[: int(limit)]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def usage(body: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    given = sum(len(_text(i.get("content") or i.get("output") or "").split())
                for i in _input_items(body)) + len(str(body.get("instructions") or "").split())
    return {"input_tokens": given,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": given + output_tokens}


def envelope(body: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "id": "resp_fake123", "object": "response", "created_at": CREATED, "status": status,
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body["model"],
        "output": [], "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation", "disabled"),
        "usage": None, "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def _part(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message(text: str, status: str = "completed") -> Item:
    return {"id": "msg_fake1", "type": "message", "role": "assistant", "status": status,
            "content": [_part(text)] if status != "in_progress" else []}


def function_call(body: dict[str, Any], arguments: str, status: str = "completed") -> Item:
    name = next(t["name"] for t in body.get("tools") or [] if t.get("type") == "function")
    return {"id": "fc_fake1", "type": "function_call", "call_id": "call_fake1", "name": name,
            "arguments": arguments, "status": status}


def _finished(body: dict[str, Any], output: list[Item], output_tokens: int) -> dict[str, Any]:
    cut = bool(body.get("max_output_tokens")) and output_tokens >= body["max_output_tokens"]
    response = envelope(body, "incomplete" if cut else "completed")
    response.update(output=output, usage=usage(body, output_tokens))
    if cut:
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    return response


def calls_tool(body: dict[str, Any]) -> bool:
    return body["model"] == "tool-call" or body.get("tool_choice") == "required"


def whole(body: dict[str, Any]) -> dict[str, Any]:
    if calls_tool(body):
        return _finished(body, [function_call(body, json.dumps({"city": "Paris"}))], 5)
    words = reply_words(body)
    cut = bool(body.get("max_output_tokens")) and len(words) >= body["max_output_tokens"]
    return _finished(body, [message("".join(words), "incomplete" if cut else "completed")],
                     len(words))


def _sse(kind: str, sequence: int, **data: Any) -> bytes:
    event = {"type": kind, "sequence_number": sequence, **data}
    return (f"event: {kind}\ndata: ".encode() + json.dumps(event, separators=(",", ":"))
            .encode() + b"\n\n")


async def events(body: dict[str, Any], on_close: Callable[[], None]) -> AsyncIterator[bytes]:
    """The typed events of one answer, in OpenAI's order."""
    counter = iter(range(1_000))

    def sse(kind: str, **data: Any) -> bytes:
        return _sse(kind, next(counter), **data)

    model = body["model"]
    try:
        start = envelope(body, "in_progress")
        yield sse("response.created", response=start)
        yield sse("response.in_progress", response=copy.deepcopy(start))
        if calls_tool(body):
            arguments = json.dumps({"city": "Paris"})
            item = function_call(body, "", "in_progress")
            yield sse("response.output_item.added", output_index=0, item=item)
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]):
                yield sse("response.function_call_arguments.delta", item_id=item["id"],
                          output_index=0, delta=piece)
            yield sse("response.function_call_arguments.done", item_id=item["id"],
                      output_index=0, name=item["name"], arguments=arguments)
            done = function_call(body, arguments)
            yield sse("response.output_item.done", output_index=0, item=done)
            yield sse("response.completed", response=_finished(body, [done], 5))
            return
        words = reply_words(body)
        where = {"item_id": "msg_fake1", "output_index": 0}
        yield sse("response.output_item.added", output_index=0, item=message("", "in_progress"))
        yield sse("response.content_part.added", **where, content_index=0, part=_part(""))
        for word in words[:1] if model in ("midstream-error", "cut-stream") else words:
            yield sse("response.output_text.delta", **where, content_index=0, delta=word,
                      logprobs=[])
        if model == "midstream-error":
            yield sse("error", code="server_error", message="The server had an error while "
                      "processing your request.", param=None)
        if model in ("midstream-error", "cut-stream"):
            return
        text = "".join(words)
        final = whole(body)
        yield sse("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
        yield sse("response.content_part.done", **where, content_index=0, part=_part(text))
        yield sse("response.output_item.done", output_index=0, item=final["output"][0])
        yield sse(f"response.{final['status']}", response=final)
    finally:
        on_close()


class FakeResponses:
    """``POST /v1/responses`` of the fake; ``requests`` and ``calls`` are the fake's own."""

    def __init__(self, requests: list[dict[str, Any]], headers: list[dict[str, str]],
                 on_close: Callable[[], None], error: Callable[[int], Response]) -> None:
        self.requests = requests
        self.headers = headers
        self._on_close = on_close
        self._error = error

    async def create(self, request: Request) -> Response:
        body: dict[str, Any] = json.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        model: str = body["model"]
        if model.startswith("error-"):
            return self._error(int(model[6:]))
        if body.get("stream"):
            return StreamingResponse(events(body, self._on_close),
                                     media_type="text/event-stream; charset=utf-8")
        return JSONResponse(whole(body))
