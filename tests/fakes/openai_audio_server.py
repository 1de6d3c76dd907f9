"""A fake OpenAI upstream for ``/v1/audio/transcriptions`` and ``/v1/audio/translations``,
speaking the documented wire format (multipart in; json, text, srt, vtt, verbose_json,
diarized_json or ``transcript.text.*`` server-sent events out). ``tests/test_audio_openai.py``
checks it with the official ``openai`` SDK first.

What it "hears" is made from the upload, so that an answer shows which file arrived:
``heard <N> bytes of <filename>``. The model id picks a behaviour:
- ``whisper-1``: like OpenAI's, ignores ``stream`` (answers whole) and refuses diarized_json;
- ``gpt-4o-transcribe`` (and any other): streams with ``stream=true``;
- ``gpt-4o-transcribe-diarize``: diarized_json, two speakers taking turns;
- ``cut-stream``: one delta event, then the connection breaks;
- ``error-NNN``: an OpenAI error body with HTTP status NNN;
- ``flaky-K-NNN``: the first K calls answer like ``error-NNN``, later ones as usual;
- ``slow-MS``: answers as usual after MS milliseconds (the jobs tests' long transcription);
  like a real upstream it stops waiting when its caller goes (a killed replica, a cancelled
  job), so that no gone caller's request keeps the fake's server from stopping;
- ``slow-once-MS``: the first call is ``slow-MS``, later ones answer at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


class FakeOpenAIAudio:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []  # each request's raw multipart
        self.content_types: list[str] = []
        self.fields: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.calls: dict[str, int] = {}
        self.url = ""
        self.app = Starlette(routes=[
            Route("/v1/audio/transcriptions", self.transcriptions, methods=["POST"]),
            Route("/v1/audio/translations", self.translations, methods=["POST"]),
        ])

    def reset(self) -> None:
        self.bodies.clear()
        self.content_types.clear()
        self.fields.clear()
        self.headers.clear()
        self.calls.clear()

    async def transcriptions(self, request: Request) -> Response:
        return await self._answer(request, "transcribe")

    async def translations(self, request: Request) -> Response:
        return await self._answer(request, "translate")

    async def _answer(self, request: Request, task: str) -> Response:
        self.bodies.append(await request.body())
        self.content_types.append(request.headers.get("content-type", ""))
        self.headers.append(dict(request.headers))
        form = await request.form()
        upload = form.get("file")
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        self.fields.append(fields)
        if not isinstance(upload, UploadFile):
            return error(400, "Missing required parameter: 'file'.", "file")
        model = fields.get("model", "")
        self.calls[model] = self.calls.get(model, 0) + 1
        if failure := _failure(model, self.calls[model]):
            return failure
        slow = re.fullmatch(r"slow-(once-)?(\d+)", model)
        if slow and (not slow.group(1) or self.calls[model] == 1):
            await _wait_unless_gone(request, int(slow.group(2)) / 1000)
        text = f"heard {len(await upload.read())} bytes of {upload.filename}"
        if task == "translate":
            text = "translated: " + text
        response_format = fields.get("response_format", "json")
        if fields.get("stream") == "true" and model != "whisper-1":
            events = _cut(text) if model == "cut-stream" else _events(text)
            return StreamingResponse(events, media_type="text/event-stream")
        return _formatted(text, response_format, model, task)


async def _wait_unless_gone(request: Request, seconds: float) -> None:
    """``seconds``, or until the caller disconnects (its body is read: the next ASGI message
    is its ``http.disconnect``)."""
    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gone(), seconds)


def _failure(model: str, call: int) -> Response | None:
    if match := re.fullmatch(r"error-(\d{3})", model):
        return error(int(match.group(1)), f"fake error {match.group(1)}")
    if (match := re.fullmatch(r"flaky-(\d+)-(\d{3})", model)) and call <= int(match.group(1)):
        return error(int(match.group(2)), f"fake error {match.group(2)}")
    return None


def _formatted(text: str, response_format: str, model: str, task: str) -> Response:
    usage = {"type": "duration", "seconds": 2}
    if response_format == "text":
        return PlainTextResponse(text + "\n")
    if response_format == "srt":
        return PlainTextResponse(f"1\n00:00:00,000 --> 00:00:02,000\n{text}\n\n")
    if response_format == "vtt":
        return PlainTextResponse(f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{text}\n\n")
    if response_format == "verbose_json":
        return JSONResponse({"task": task, "language": "english", "duration": 2.0, "text": text,
                             "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 2.0,
                                           "text": " " + text, "tokens": [1, 2],
                                           "temperature": 0.0, "avg_logprob": -0.2,
                                           "compression_ratio": 1.0,
                                           "no_speech_prob": 0.01}],
                             "usage": usage})
    if response_format == "diarized_json":
        if "diarize" not in model:
            return error(400, f"response_format 'diarized_json' is not compatible with {model}.",
                         "response_format")
        words = text.split()
        half = len(words) // 2
        segments = [{"type": "transcript.text.segment", "id": f"seg_{i}", "start": float(i),
                     "end": float(i + 1), "text": " ".join(part), "speaker": speaker}
                    for i, (speaker, part) in enumerate((("A", words[:half]),
                                                          ("B", words[half:])))]
        return JSONResponse({"task": "transcribe", "duration": 2.0, "text": text,
                             "segments": segments, "usage": usage})
    return JSONResponse({"text": text, "usage": usage})


async def _events(text: str) -> AsyncIterator[bytes]:
    words = text.split(" ")
    for i, word in enumerate(words):
        delta = word if i == 0 else " " + word
        yield sse({"type": "transcript.text.delta", "delta": delta})
    yield sse({"type": "transcript.text.done", "text": text,
               "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": len(words),
                         "total_tokens": 10 + len(words)}})


async def _cut(text: str) -> AsyncIterator[bytes]:
    yield sse({"type": "transcript.text.delta", "delta": text})
    raise ConnectionAbortedError("the fake upstream breaks the stream")


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def error(status: int, message: str, param: str | None = None) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": None}}, status_code=status)
