"""What the fake vendor servers share: the echo answer, a JSON body reader, the SSE encoder."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

TOOL_ARGUMENTS = {"city": "Paris"}


async def read_body(request: Request, requests: list[dict[str, Any]],
                    headers: list[dict[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(await request.body())
    requests.append(body)
    headers.append(dict(request.headers))
    return body


def echo_words(text: str, limit: int | None = None) -> tuple[list[str], bool]:
    """The echo answer as stream pieces ('echo:' then each word), and whether ``limit``
    words cut it short."""
    words = ["echo:", *text.split()]
    cut = limit is not None and len(words) > limit
    if limit is not None:
        words = words[:limit]
    return [w if i == 0 else " " + w for i, w in enumerate(words)], cut


def stop_at(words: list[str], stops: list[str]) -> tuple[list[str], str | None]:
    """The words before the first stop sequence, and the sequence that stopped them."""
    text = "".join(words)
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            kept: list[str] = []
            for word in words:
                if len("".join(kept)) + len(word) > at:
                    break
                kept.append(word)
            return kept, stop
    return words, None


def count_words(value: Any, key: str = "text") -> int:
    """Words in the texts of a JSON value (strings under ``text`` or ``content`` keys): the
    fakes' token count."""
    if isinstance(value, str):
        return len(value.split()) if key in ("text", "content") else 0
    if isinstance(value, dict):
        return sum(count_words(v, k) for k, v in value.items())
    if isinstance(value, list):
        return sum(count_words(v, key) for v in value)
    return 0


def sse(data: dict[str, Any], event: str | None = None, line_end: str = "\n") -> bytes:
    head = f"event: {event}{line_end}" if event else ""
    text = json.dumps(data, separators=(",", ":"))
    return f"{head}data: {text}{line_end}{line_end}".encode()


class StreamWatch:
    """What a fake's streams let a test see: ``closed`` once a stream has ended (or its
    client left); a ``gated-stream`` model holds after its first event until ``gate``."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.closed = threading.Event()

    def reset(self) -> None:
        self.gate.clear()
        self.closed.clear()

    async def watch(self, model: str, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            first = True
            async for event in events:
                yield event
                if first and model == "gated-stream":
                    await asyncio.to_thread(self.gate.wait, 10)
                first = False
        finally:
            self.closed.set()
