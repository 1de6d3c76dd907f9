"""Four clients of one local model, each with its own seed, through the official openai SDK:
their answers one after another, then the same requests all at once (every other one
streamed). A server that serves clients together must give each the answer it gets alone."""

from __future__ import annotations

import asyncio
from typing import Any

import openai

from tests.conftest import MASTER_KEY

CLIENTS = 4


def alone_and_together(url: str, model: str, prompt: str, *, max_tokens: int,
                       temperature: float) -> tuple[list[str], list[str]]:
    """The answers alone and together; client ``i`` says ``prompt.format(i=i)`` with seed i."""
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)

    async def one(i: int, stream: bool) -> str:
        args: Any = {"model": model, "messages": [{"role": "user", "content": prompt.format(i=i)}],
                     "max_tokens": max_tokens, "temperature": temperature, "seed": i}
        if not stream:
            answer = await client.chat.completions.create(**args)
            return answer.choices[0].message.content or ""
        parts = []
        async for chunk in await client.chat.completions.create(**args, stream=True):
            parts.extend(c.delta.content or "" for c in chunk.choices)
        return "".join(parts)

    async def run() -> tuple[list[str], list[str]]:
        alone = [await one(i, False) for i in range(CLIENTS)]
        together = await asyncio.gather(*(one(i, i % 2 == 0) for i in range(CLIENTS)))
        return alone, list(together)

    return asyncio.run(run())
