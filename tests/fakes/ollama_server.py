"""A fake Ollama upstream speaking its documented native API: ``POST /api/chat`` (whole, or
streamed as JSON lines ending with ``done: true``, ``done_reason``, ``prompt_eval_count``
and ``eval_count``), ``POST /api/embed`` and ``{"error": "..."}`` error bodies.
``tests/test_fake_ollama.py`` checks it with the official ``ollama`` SDK.

It enforces what the real server enforces and the gateway must get right: images as bare
base64 (no ``data:`` prefix), tool call arguments as objects.

The model id picks a behaviour:
- anything else: echo the last user text ("echo: ..."), cut by options.num_predict
  (words) and options.stop; ``format`` answers {"city": "Paris"};
- ``tool-call``: a call to the first tool with {"city": "Paris"};
- ``two-calls``: two calls to the first tool, {"city": "Paris"} then {"city": "Rome"};
- ``error-NNN``: an Ollama error body with HTTP status NNN;
- ``garbage``: a 200 whose body is not JSON;
- ``midstream-error``: one line, then an ``{"error": ...}`` line;
- ``gated-stream``: like echo, holding its stream after the first event until
  ``streams.gate`` is set (``streams.closed`` tells when a stream ended);
- ``cut-stream``: one line, then the connection ends without ``done: true``.
"""

from __future__ import annotations

import base64
import binascii
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
    stop_at,
)

CREATED_AT = "2026-01-01T00:00:00.000000Z"


class FakeOllama:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.streams = StreamWatch()
        self.url = ""
        self.app = Starlette(routes=[Route("/api/chat", self.chat, methods=["POST"]),
                                     Route("/api/embed", self.embed, methods=["POST"])])

    def reset(self) -> None:
        self.streams.reset()
        self.requests.clear()
        self.headers.clear()

    async def chat(self, request: Request) -> Response:
        body = await read_body(request, self.requests, self.headers)
        model: str = body.get("model", "")
        if model.startswith("error-"):
            return error(int(model[6:]), model)
        problem = invalid(body)
        if problem:
            return error(400, model, problem)
        if model == "garbage":
            return Response(b"<html>bad gateway</html>", media_type="text/html")
        message, reason = answer(body)
        prompt = count_words(body["messages"])
        completion = count_words(message["content"], "content") + len(
            message.get("tool_calls", [])) * 2
        final = {"model": model, "created_at": CREATED_AT, "done": True, "done_reason": reason,
                 "total_duration": 1000, "load_duration": 10, "prompt_eval_count": prompt,
                 "prompt_eval_duration": 100, "eval_count": completion, "eval_duration": 800}
        if body.get("stream", True):
            return StreamingResponse(self.streams.watch(model, stream(model, message, final)),
                                     media_type="application/x-ndjson")
        return JSONResponse({**final, "message": message})

    async def embed(self, request: Request) -> Response:
        body = await read_body(request, self.requests, self.headers)
        if body["model"].startswith("error-"):
            return error(int(body["model"][6:]), body["model"])
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [[float(len(text)), 0.5, -1.0, 0.25][: body.get("dimensions") or 4]
                   for text in inputs]
        return JSONResponse({"model": body["model"], "embeddings": vectors,
                             "total_duration": 100, "load_duration": 10,
                             "prompt_eval_count": sum(len(t.split()) for t in inputs)})


def invalid(body: dict[str, Any]) -> str | None:
    for message in body.get("messages") or []:
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            return f"invalid role: {message.get('role')}"
        for image in message.get("images") or []:
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                return "illegal base64 data in image"
        for call in message.get("tool_calls") or []:
            if not isinstance(call.get("function", {}).get("arguments"), dict):
                return "json: cannot unmarshal string into Go struct field"
    return None


def answer(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    tools = body.get("tools") or []
    options = body.get("options") or {}
    if tools and body["model"] in ("tool-call", "two-calls"):
        name = tools[0]["function"]["name"]
        calls = [{"function": {"name": name, "arguments": TOOL_ARGUMENTS}}]
        if body["model"] == "two-calls":
            calls.append({"function": {"name": name, "arguments": {"city": "Rome"}}})
        return {"role": "assistant", "content": "", "tool_calls": calls}, "stop"
    if body.get("format"):
        return {"role": "assistant", "content": json.dumps(TOOL_ARGUMENTS)}, "stop"
    text = ""
    for message in body["messages"]:
        if message["role"] == "user":
            text = message["content"] or text
    words, cut = echo_words(text, options.get("num_predict"))
    words, stop = stop_at(words, options.get("stop") or [])
    return {"role": "assistant", "content": "".join(words)}, "length" if cut and not stop \
        else "stop"


async def stream(model: str, message: dict[str, Any], final: dict[str, Any]
                 ) -> AsyncIterator[bytes]:
    def line(data: dict[str, Any]) -> bytes:
        return json.dumps(data).encode() + b"\n"

    words = message["content"].split(" ") if message["content"] else []
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        yield line({"model": model, "created_at": CREATED_AT, "done": False,
                    "message": {"role": "assistant", "content": piece}})
        if model in ("midstream-error", "cut-stream"):
            if model == "midstream-error":
                yield line({"error": "an error was encountered while running the model"})
            return
    if message.get("tool_calls"):
        yield line({"model": model, "created_at": CREATED_AT, "done": False,
                    "message": {"role": "assistant", "content": "",
                                "tool_calls": message["tool_calls"]}})
    yield line({**final, "message": {"role": "assistant", "content": ""}})


def error(status: int, model: str, message: str | None = None) -> Response:
    text = message or (f"model '{model}' not found" if status == 404
                       else f"fake ollama error {status}")
    return JSONResponse({"error": text}, status_code=status)
