"""A fake Gemini API upstream speaking the documented REST format: ``generateContent``,
``streamGenerateContent?alt=sse``, ``embedContent``, ``batchEmbedContents`` under
``/v1beta/models/{model}:method``, usageMetadata (thoughtsTokenCount,
cachedContentTokenCount), finishReason values and google.rpc.Status error bodies.
``tests/test_fake_gemini.py`` checks it with the official ``google-genai`` SDK.

It enforces what the real API enforces and the gateway must get right: the API key header,
roles ``user``/``model`` only (the system prompt in ``systemInstruction``), non-empty parts,
every functionResponse naming a function.

The model id picks a behaviour:
- anything else: echo the last user text ("echo: ..."), cut by maxOutputTokens (words) and
  stopSequences; JSON mode answers {"city": "Paris"}; a function calling mode ``ANY`` calls
  the first allowed function; ``candidateCount`` candidates;
- ``tool-call``: a call to the first function with {"city": "Paris"} and a thought signature;
- ``two-calls``: two calls to the first function, {"city": "Paris"} then {"city": "Rome"};
- ``one-candidate``: like echo, but one candidate whatever ``candidateCount`` asks (as
  Gemini may answer with fewer);
- ``think``: a thought part first, thoughtsTokenCount 5 and cachedContentTokenCount 2;
- ``safety``: finishReason SAFETY; ``blocked``: promptFeedback.blockReason, no candidates;
- ``error-NNN``: a google.rpc.Status body with HTTP status NNN (429 with a RetryInfo of 7s);
- ``garbage``: a 200 whose body is not JSON;
- ``midstream-error``: one chunk, then an error object;
- ``gated-stream``: like echo, holding its stream after the first event until
  ``streams.gate`` is set (``streams.closed`` tells when a stream ended);
- ``cut-stream``: one chunk, then the connection ends with no finishReason.

Image output (``responseModalities`` with ``IMAGE``) is in ``tests/fakes/gemini_images.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.gemini_images import image_answer, wants_image
from tests.fakes.vendor_common import (
    TOOL_ARGUMENTS,
    StreamWatch,
    count_words,
    echo_words,
    read_body,
    sse,
    stop_at,
)

STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
            404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
SIGNATURE = "c2lnbmF0dXJlLTE="


class FakeGemini:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.streams = StreamWatch()
        self.url = ""
        self.app = Starlette(routes=[
            Route("/v1beta/models/{target:path}", self.dispatch, methods=["POST"])])

    def reset(self) -> None:
        self.streams.reset()
        self.requests.clear()
        self.headers.clear()
        self.paths.clear()

    async def dispatch(self, request: Request) -> Response:
        body = await read_body(request, self.requests, self.headers)
        self.paths.append(request.url.path + (f"?{request.url.query}" if request.url.query
                                              else ""))
        model, _, method = request.path_params["target"].partition(":")
        if not request.headers.get("x-goog-api-key"):
            return error(403, "Method doesn't allow unregistered callers. Please use an API key.")
        if model.startswith("error-"):
            return error(int(model[6:]))
        if method in ("embedContent", "batchEmbedContents"):
            return embed(body, method)
        problem = invalid(body)
        if problem:
            return error(400, problem)
        if model == "garbage":
            return Response(b"<html>bad gateway</html>", media_type="text/html")
        if method == "generateContent" and wants_image(body):
            return image_answer(model, body)
        if method == "streamGenerateContent" and request.query_params.get("alt") == "sse":
            return StreamingResponse(self.streams.watch(model, stream(model, body)),
                                     media_type="text/event-stream")
        if method == "generateContent":
            return JSONResponse(response(model, body, candidates(model, body)))
        return error(404, f"Method {method} not found.")


def invalid(body: dict[str, Any]) -> str | None:
    for i, content in enumerate(body.get("contents") or []):
        if content.get("role") not in ("user", "model"):
            return f"* GenerateContentRequest.contents[{i}].role: must be 'user' or 'model'"
        if not content.get("parts"):
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty"
        for part in content["parts"]:
            response = part.get("functionResponse")
            if response is not None and not response.get("name"):
                return f"* GenerateContentRequest.contents[{i}]: function_response.name empty"
    if not body.get("contents"):
        return "* GenerateContentRequest.contents: contents is not specified"
    return None


def last_user_text(body: dict[str, Any]) -> str:
    text = ""
    for content in body["contents"]:
        if content["role"] == "user":
            texts = [p["text"] for p in content["parts"] if "text" in p]
            text = " ".join(texts) or text
    return text


def candidates(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    config = body.get("generationConfig") or {}
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {})
    functions = [f for tool in body.get("tools") or [] for f in tool["functionDeclarations"]]
    if functions and (model in ("tool-call", "two-calls") or calling.get("mode") == "ANY"):
        name = (calling.get("allowedFunctionNames") or [functions[0]["name"]])[0]
        parts: list[dict[str, Any]] = [{"functionCall": {"name": name, "args": TOOL_ARGUMENTS},
                                        "thoughtSignature": SIGNATURE}]
        if model == "two-calls":
            parts.append({"functionCall": {"name": name, "args": {"city": "Rome"}}})
        reason = "STOP"
    elif config.get("responseMimeType") == "application/json":
        parts, reason = [{"text": json.dumps(TOOL_ARGUMENTS)}], "STOP"
    else:
        words, cut = echo_words(last_user_text(body), config.get("maxOutputTokens"))
        words, stop = stop_at(words, config.get("stopSequences") or [])
        parts = [{"text": "".join(words)}]
        reason = "SAFETY" if model == "safety" else "MAX_TOKENS" if cut and not stop else "STOP"
    if model == "think":
        parts.insert(0, {"text": "Thinking it over.", "thought": True})
    count = 1 if model == "one-candidate" else int(config.get("candidateCount") or 1)
    return [{"content": {"parts": parts, "role": "model"}, "finishReason": reason, "index": i}
            for i in range(count)]


def usage(model: str, body: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = count_words(body.get("contents")) + count_words(body.get("systemInstruction"))
    answer = sum(count_words(p.get("text", "")) + (2 if "functionCall" in p else 0)
                 for c in output for p in c["content"]["parts"] if not p.get("thought"))
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": answer,
            "totalTokenCount": prompt + answer}
    if model == "think":
        meta.update(thoughtsTokenCount=5, cachedContentTokenCount=2,
                    totalTokenCount=prompt + answer + 5)
    return meta


def response(model: str, body: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
    if model == "blocked":
        return {"promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
                "modelVersion": model, "responseId": "resp_fake"}
    return {"candidates": output, "usageMetadata": usage(model, body, output),
            "modelVersion": model, "responseId": "resp_fake"}


async def stream(model: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
    """The first candidate word by word (finishReason on its last piece), any other
    candidates whole in one chunk each; usageMetadata in full on the last chunk."""
    output = candidates(model, body)
    final = response(model, body, output)
    if model == "blocked":
        yield sse(final, line_end="\r\n")
        return
    first = output[0]
    pieces = [piece for part in first["content"]["parts"] for piece in split_part(part)]
    for n, piece in enumerate(pieces):
        candidate: dict[str, Any] = {"content": {"parts": [piece], "role": "model"}, "index": 0}
        if n == len(pieces) - 1:
            candidate["finishReason"] = first["finishReason"]
        last = n == len(pieces) - 1 and len(output) == 1
        meta = final["usageMetadata"] if last else {
            "promptTokenCount": final["usageMetadata"]["promptTokenCount"]}
        yield sse({"candidates": [candidate], "usageMetadata": meta, "modelVersion": model,
                   "responseId": "resp_fake"}, line_end="\r\n")
        if model in ("midstream-error", "cut-stream"):
            if model == "midstream-error":
                yield sse({"error": {"code": 503, "message": "The model is overloaded.",
                                     "status": "UNAVAILABLE"}}, line_end="\r\n")
            return
    for candidate in output[1:]:
        yield sse({"candidates": [candidate], "usageMetadata": final["usageMetadata"],
                   "modelVersion": model, "responseId": "resp_fake"}, line_end="\r\n")


def split_part(part: dict[str, Any]) -> list[dict[str, Any]]:
    if "text" not in part or part.get("thought"):
        return [part]
    return [{"text": w} for w in split_words(part["text"])]


def split_words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def embed(body: dict[str, Any], method: str) -> Response:
    def vector(request: dict[str, Any]) -> dict[str, Any]:
        text = " ".join(p.get("text", "") for p in request["content"]["parts"])
        values = [float(len(text)), 0.5, -1.0, 0.25]
        return {"values": values[: request.get("outputDimensionality") or len(values)]}

    if method == "embedContent":
        return JSONResponse({"embedding": vector(body)})
    return JSONResponse({"embeddings": [vector(r) for r in body["requests"]]})


def error(status: int, message: str | None = None) -> Response:
    details: list[dict[str, Any]] = []
    if status == 429:
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]
    return JSONResponse({"error": {"code": status,
                                   "message": message or f"fake gemini error {status}",
                                   "status": STATUSES.get(status, "UNKNOWN"),
                                   "details": details}}, status_code=status)
