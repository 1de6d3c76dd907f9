"""Putting masked values back into an answer (``restore: true``), whole or streamed.

In a stream a placeholder may arrive split over several chunks (``<EMA`` + ``IL_1>``): the
text from a ``<`` that may still become a placeholder is held back until it either completes
(and is replaced) or cannot (and is sent as it was), so nothing half-restored is sent. What is
held when a choice finishes goes out with its finishing chunk.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from wire.openai import StreamChunk

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
_PARTIAL = re.compile(r"<[A-Z0-9_]*\Z")


def restore_text(text: str, values: dict[str, str]) -> str:
    if "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: values.get(m.group(), m.group()), text)


def _restore_message(message: Any, values: dict[str, str]) -> None:
    if not isinstance(message, dict):
        return
    if isinstance(message.get("content"), str):
        message["content"] = restore_text(message["content"], values)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            function["arguments"] = restore_text(function["arguments"], values)


def remask(document: Any, values: dict[str, str]) -> Any:
    """``document`` (any JSON value) with each original value put back behind its placeholder:
    what a restored answer is stored as, so that masked values are never kept in clear."""
    if not values:
        return document
    text = orjson.dumps(document).decode()
    for placeholder, value in sorted(values.items(), key=lambda pv: -len(pv[1])):
        text = text.replace(orjson.dumps(value).decode()[1:-1], placeholder)
    return orjson.loads(text)


def restore_body(body: bytes, values: dict[str, str]) -> bytes:
    """A ``chat.completion`` body with the placeholders replaced by ``values``."""
    if not values:
        return body
    data = orjson.loads(body)
    for choice in data.get("choices") or ():
        if isinstance(choice, dict):
            _restore_message(choice.get("message"), values)
    return orjson.dumps(data)


class StreamRestorer:
    """Restores the content deltas of one stream, choice by choice."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self._longest = max(len(p) for p in values)
        self._held: dict[int, str] = {}
        self._last: dict[str, Any] | None = None

    def _split(self, text: str) -> tuple[str, str]:
        """(what may go out now, what is held back)."""
        at = text.rfind("<")
        if at < 0 or len(text) - at > self._longest or not _PARTIAL.match(text, at):
            return text, ""
        return text[:at], text[at:]

    def chunk(self, chunk: StreamChunk) -> StreamChunk:
        data = orjson.loads(chunk.data)
        if not isinstance(data, dict) or not data.get("choices"):
            return chunk
        self._last = data
        for choice in data["choices"]:
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            text = self._held.pop(index, "") + (delta.get("content") or "")
            if choice.get("finish_reason") is None:
                text, held = self._split(text)
                if held:
                    self._held[index] = held
            if text or "content" in delta:
                delta["content"] = restore_text(text, self._values)
                choice["delta"] = delta
        return StreamChunk(orjson.dumps(data), chunk.usage, chunk.usage_only)

    def rest(self) -> StreamChunk | None:
        """What is still held when the stream ends without finishing its choices."""
        if not self._held or self._last is None:
            return None
        choices = [{"index": index, "delta": {"content": restore_text(text, self._values)},
                    "logprobs": None, "finish_reason": None}
                   for index, text in sorted(self._held.items())]
        self._held.clear()
        return StreamChunk(orjson.dumps({**self._last, "choices": choices}))


async def restored(chunks: AsyncGenerator[StreamChunk, None], values: dict[str, str]
                   ) -> AsyncGenerator[StreamChunk, None]:
    restorer = StreamRestorer(values)
    try:
        async for chunk in chunks:
            for part in chunk.split():  # (several when batched as the upstream sent them)
                yield restorer.chunk(part)
        rest = restorer.rest()
        if rest is not None:
            yield rest
    finally:
        await chunks.aclose()
