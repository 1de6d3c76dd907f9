"""A fake OpenAI upstream that speaks the documented wire format of /v1/chat/completions,
/v1/embeddings and OpenAI's error bodies. ``tests/test_fake_openai.py`` checks it with the
official ``openai`` SDK, so that what the gateway is tested against is faithful.

The upstream model id picks a behaviour:
- anything else: echo the last user message ("echo: ...") word by word;
- ``slow-stream``: like echo, sleeping ``SLOW_DELAY_S`` between stream chunks;
- ``gated-stream``: sends one chunk, then waits for ``fake.gate`` before the rest;
- ``hang``: never answers; sets ``fake.hung`` when the request arrives and
  ``fake.disconnected`` the moment the caller disconnects;
- ``error-NNN``: an OpenAI error body with HTTP status NNN (429 adds ``Retry-After: 7``);
- ``flaky-K-NNN``: the first K calls with this id answer like ``error-NNN``, later ones echo;
- ``ratelimit-K-W``: the first K calls answer 429 with ``Retry-After: W`` (seconds), or for
  ``W`` like ``300ms`` with ``retry-after-ms: 300`` (as OpenAI sends) and ``Retry-After``
  rounded up to whole seconds; later ones echo;
- ``garbage``: a 200 whose body is not JSON;
- ``midstream-error``: one chunk, then an ``error`` event;
- ``cut-stream``: one chunk, then the connection ends without ``[DONE]``;
- ``bad-chunk``: one chunk, then one that is not JSON;
- ``tool-call``: answers with a call to the first tool in ``tools``;
- ``json-answer``: "reads" the documents in the user messages: answers (in a ```json fence)
  with the JSON objects written on their ``ANSWER: {...}`` lines, merged;
- ``json-retry``: answers "not JSON" until a user message says the answer "did not
  validate", then like ``json-answer``; ``json-bad``: always ``{"invalid": true}``.

/v1/embeddings answers every input with a bag-of-words vector (``bag_of_words``): similar
texts get similar vectors, as with a real embedding model. The image endpoints are in
``tests/fakes/openai_images.py``, the Responses API in ``tests/fakes/openai_responses.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.openai_images import FakeImages
from tests.fakes.openai_responses import FakeResponses

SLOW_DELAY_S = 0.2
EMBEDDING_DIMS = 256
CREATED = 1_700_000_000


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.gate = threading.Event()
        self.disconnected = threading.Event()
        self.hung = threading.Event()
        self.stream_closed = threading.Event()
        self.sent_at: list[float] = []
        self.calls: dict[str, int] = {}  # chat calls per model id
        self.images = FakeImages(self.requests, self.headers)
        self.responses = FakeResponses(self.requests, self.headers, self.stream_closed.set,
                                       error)
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/responses", self.responses.create, methods=["POST"]),
            Route("/v1/images/generations", self.images.generations, methods=["POST"]),
            Route("/v1/images/edits", self.images.edits, methods=["POST"]),
            Route("/files/{name}", self.images.file, methods=["GET"]),
        ])

    def reset(self) -> None:
        self.requests.clear()
        self.headers.clear()
        self.sent_at.clear()
        self.calls.clear()
        self.images.reset()
        for event in (self.gate, self.disconnected, self.hung, self.stream_closed):
            event.clear()

    async def _record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        return body

    async def embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        if str(body["model"]).startswith("error-"):
            return error(int(body["model"][6:]))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(str(text))}
                for i, text in enumerate(inputs)]
        tokens = sum(len(str(text).split()) for text in inputs)
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def chat(self, request: Request) -> Response:
        body = await self._record(request)
        model: str = body["model"]
        calls = self.calls[model] = self.calls.get(model, 0) + 1
        if model.startswith("error-"):
            return error(int(model[6:]))
        if model.startswith(("flaky-", "ratelimit-")):
            kind, failing, how = model.split("-", 2)
            if calls <= int(failing):
                return error(int(how)) if kind == "flaky" else rate_limited(how)
        if model == "garbage":
            return Response(b"<html>bad gateway</html>", media_type="text/html")
        if model == "hang":
            self.hung.set()
            await self._wait_for_disconnect(request)
            return Response(status_code=204)
        if body.get("stream"):
            return StreamingResponse(self._stream(request, body),
                                     media_type="text/event-stream; charset=utf-8")
        words = [json_answer(body, model)] if model.startswith("json-") else reply_words(body)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(words),
                                   "refusal": None, "annotations": []}
        finish = "stop"
        if model == "tool-call":
            message.update(content=None, tool_calls=[tool_call(body)])
            finish = "tool_calls"
        n = int(body.get("n") or 1)
        return JSONResponse({
            "id": "chatcmpl-fake123", "object": "chat.completion", "created": CREATED,
            "model": model, "system_fingerprint": "fp_fake", "service_tier": "default",
            "choices": [{"index": i, "message": message, "logprobs": None,
                         "finish_reason": finish} for i in range(n)],
            "usage": usage(body, words),
        })

    async def _wait_for_disconnect(self, request: Request) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return

    async def _stream(self, request: Request, body: dict[str, Any]) -> AsyncIterator[bytes]:
        model = body["model"]
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        words = reply_words(body)
        try:
            yield sse(chunk(body, {"role": "assistant", "content": "", "refusal": None},
                            include_usage))
            if model == "hang":
                await asyncio.sleep(3600)
            if model == "gated-stream":
                await asyncio.to_thread(self.gate.wait, 10)
            if model in ("midstream-error", "cut-stream", "bad-chunk"):
                yield sse(chunk(body, {"content": words[0]}, include_usage))
                if model == "bad-chunk":
                    yield b"data: <html>oops</html>\n\n"
                if model == "midstream-error":
                    yield sse({"error": {"message": "The server had an error while processing "
                                         "your request.", "type": "server_error",
                                         "param": None, "code": None}})
                return
            if model == "tool-call":
                call = tool_call(body)
                arguments = call["function"]["arguments"]
                call["function"]["arguments"] = ""
                yield sse(chunk(body, {"tool_calls": [{"index": 0, **call}]}, include_usage))
                for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]):
                    yield sse(chunk(body, {"tool_calls": [
                        {"index": 0, "function": {"arguments": piece}}]}, include_usage))
                finish = "tool_calls"
            else:
                for word in words:
                    if model == "slow-stream":
                        await asyncio.sleep(SLOW_DELAY_S)
                    self.sent_at.append(time.monotonic())
                    yield sse(chunk(body, {"content": word}, include_usage))
                finish = "stop"
            yield sse(chunk(body, {}, include_usage, finish_reason=finish))
            if include_usage:
                last = chunk(body, {}, include_usage)
                last.update(choices=[], usage=usage(body, words))
                yield sse(last)
            yield b"data: [DONE]\n\n"
        finally:
            self.stream_closed.set()


def bag_of_words(text: str) -> list[float]:
    """A deterministic embedding: word counts hashed into ``EMBEDDING_DIMS`` buckets, so that
    texts sharing most of their words have a cosine similarity near 1."""
    vector = [0.0] * EMBEDDING_DIMS
    for word in re.findall(r"[a-z0-9']+", text.lower()):
        vector[zlib.crc32(word.encode()) % EMBEDDING_DIMS] += 1.0
    return vector


def json_answer(body: dict[str, Any], model: str) -> str:
    """The ``json-*`` models' answer (see the module's docstring)."""
    texts = [str(m.get("content") or "") for m in body.get("messages", [])
             if m.get("role") == "user"]
    if model == "json-bad":
        return '{"invalid": true}'
    if model == "json-retry" and not any("did not validate" in t for t in texts):
        return "Sure! Here is what I found."
    merged: dict[str, Any] = {}
    for text in texts:
        for line in re.findall(r"^ANSWER: (\{.*\})$", text, re.MULTILINE):
            merged.update(json.loads(line))
    return "```json\n" + json.dumps(merged) + "\n```"


def reply_words(body: dict[str, Any]) -> list[str]:
    """The echo answer as stream pieces: 'echo:' then each word of the last user text."""
    text = ""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                part.get("text", "") for part in content or [] if part.get("type") == "text")
    words = ["echo:", *text.split()]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        words = words[: int(limit)]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def usage(body: dict[str, Any], words: list[str]) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    return {"prompt_tokens": prompt, "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def tool_call(body: dict[str, Any]) -> dict[str, Any]:
    name = body["tools"][0]["function"]["name"]
    return {"id": "call_fake1", "type": "function",
            "function": {"name": name, "arguments": json.dumps({"city": "Paris"})}}


def chunk(body: dict[str, Any], delta: dict[str, Any], include_usage: bool,
          finish_reason: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "chatcmpl-fake123", "object": "chat.completion.chunk", "created": CREATED,
        "model": body["model"], "service_tier": "default", "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None,
                     "finish_reason": finish_reason}],
    }
    if include_usage:
        data["usage"] = None
    return data


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def error(status: int) -> Response:
    kinds = {400: ("invalid_request_error", "invalid_value"),
             401: ("invalid_request_error", "invalid_api_key"),
             404: ("invalid_request_error", "model_not_found"),
             429: ("requests", "rate_limit_exceeded")}
    kind, code = kinds.get(status, ("server_error", None))
    headers = {"retry-after": "7"} if status == 429 else {}
    return JSONResponse({"error": {"message": f"fake upstream error {status}", "type": kind,
                                   "param": "messages" if status == 400 else None,
                                   "code": code}}, status_code=status, headers=headers)


def rate_limited(wait: str) -> Response:
    """A 429 asking to wait ``wait`` seconds, or ``wait`` like ``300ms`` milliseconds."""
    if wait.endswith("ms"):
        ms = int(wait[:-2])
        headers = {"retry-after-ms": str(ms), "retry-after": str(-(-ms // 1000))}
    else:
        headers = {"retry-after": wait}
    return JSONResponse({"error": {"message": "Rate limit reached for requests",
                                   "type": "requests", "param": None,
                                   "code": "rate_limit_exceeded"}},
                        status_code=429, headers=headers)
