"""OpenAI's answer shapes, built for providers whose vendor speaks another wire format.

``chat.completion`` bodies, ``chat.completion.chunk`` streams and ``/v1/embeddings`` lists,
as ready-to-send JSON bytes with the ``Usage`` the gateway counts riding alongside. Pure
functions and one small per-stream state object; no I/O.
"""

from __future__ import annotations

import base64
import secrets
import sys
import time
from array import array
from dataclasses import dataclass
from typing import Any

import orjson

from wire.openai import ChatResult, StreamChunk, Usage


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


@dataclass(slots=True, frozen=True)
class TokenCounts:
    """A vendor's token counts in OpenAI's terms: ``prompt`` includes ``cached``,
    ``completion`` includes ``reasoning``."""

    prompt: int = 0
    completion: int = 0
    cached: int | None = None
    reasoning: int | None = None

    def usage(self) -> Usage:
        return Usage(self.prompt, self.completion, self.cached or 0)

    def body(self) -> dict[str, Any]:
        usage: dict[str, Any] = {"prompt_tokens": self.prompt,
                                 "completion_tokens": self.completion,
                                 "total_tokens": self.prompt + self.completion}
        if self.cached is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached}
        if self.reasoning is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning}
        return usage


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


@dataclass(slots=True)
class Choice:
    """One whole answer of a ``chat.completion``."""

    content: str | None
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = None
    index: int = 0

    def body(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return {"index": self.index, "message": message, "logprobs": None,
                "finish_reason": self.finish_reason}


def completion(model: str, choices: list[Choice], tokens: TokenCounts, *,
               response_id: str | None = None) -> ChatResult:
    body = {"id": response_id or completion_id(), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [choice.body() for choice in choices], "usage": tokens.body()}
    return ChatResult(orjson.dumps(body), tokens.usage())


class ChunkWriter:
    """The chunks of one stream: one ``id`` and ``created`` for all of them, ``role`` on the
    first delta of each choice, and a final usage-only chunk."""

    __slots__ = ("_base", "_started")

    def __init__(self, model: str) -> None:
        self._base = {"id": completion_id(), "object": "chat.completion.chunk",
                      "created": int(time.time()), "model": model}
        self._started: set[int] = set()

    def set_model(self, model: str) -> None:
        """The model the vendor says answered (before the first chunk)."""
        self._base["model"] = model

    def _chunk(self, choice: dict[str, Any]) -> StreamChunk:
        return StreamChunk(orjson.dumps({**self._base, "choices": [choice]}))

    def delta(self, delta: dict[str, Any], index: int = 0) -> StreamChunk:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        return self._chunk({"index": index, "delta": delta, "logprobs": None,
                            "finish_reason": None})

    def content(self, text: str, index: int = 0) -> StreamChunk:
        return self.delta({"content": text}, index)

    def tool_call(self, position: int, call_id: str, name: str, arguments: str = "",
                  index: int = 0) -> StreamChunk:
        return self.delta({"tool_calls": [{"index": position,
                                           **tool_call(call_id, name, arguments)}]}, index)

    def tool_arguments(self, position: int, arguments: str, index: int = 0) -> StreamChunk:
        return self.delta({"tool_calls": [{"index": position,
                                           "function": {"arguments": arguments}}]}, index)

    def finish(self, reason: str, index: int = 0) -> StreamChunk:
        delta: dict[str, Any] = {}
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", "content": ""}
        return self._chunk({"index": index, "delta": delta, "logprobs": None,
                            "finish_reason": reason})

    def usage(self, tokens: TokenCounts) -> StreamChunk:
        data = orjson.dumps({**self._base, "choices": [], "usage": tokens.body()})
        return StreamChunk(data, usage=tokens.usage(), usage_only=True)


def embedding_list(model: str, vectors: list[list[float]], prompt_tokens: int | None, *,
                   encoding_format: str | None) -> ChatResult:
    """An OpenAI ``/v1/embeddings`` answer; ``base64`` packs each vector as little-endian
    float32, as OpenAI does."""
    encode = _base64_floats if encoding_format == "base64" else None
    data = [{"object": "embedding", "index": i,
             "embedding": encode(vector) if encode else vector}
            for i, vector in enumerate(vectors)]
    tokens = prompt_tokens or 0
    body = {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return ChatResult(orjson.dumps(body),
                      Usage(prompt_tokens) if prompt_tokens is not None else None)


def _base64_floats(vector: list[float]) -> str:
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
