"""The chat provider every local backend is: ``parallel`` engines (a loaded model's slots: chat
template, tokenizer, token generation) behind a ``ModelWorker`` (a thread per slot) and a
``TurnQueue`` that hands out the slots.

A request is checked and its prompt tokenized (off the event loop) before it queues, so a bad
field or a prompt longer than the context is a 400 at once. Streams follow the gateway's
convention: content chunks (the first with ``role``), a finish chunk, then always one
usage-only chunk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from functools import partial
from typing import Protocol

from providers.local.base import (
    Answer,
    Finish,
    LocalConfig,
    Sampling,
    chat_messages,
    completion_budget,
    sampling_from,
)
from providers.local.runtime import ModelWorker, TurnQueue
from wire.errors import InvalidRequest
from wire.openai import ChatRequest, ChatResult, StreamChunk, Usage


class Engine(Protocol):
    """One slot of a loaded model. ``encode_chat`` may run on any thread; ``generate`` runs on
    the slot's own thread and yields text pieces, then one ``Finish``."""

    n_ctx: int

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]: ...

    def generate(self, prompt: list[int], sampling: Sampling, budget: int,
                 stop: threading.Event) -> Iterator[str | Finish]: ...

    def close(self) -> None: ...


Job = Callable[[threading.Event], Iterator[str | Finish]]


def _job(prompt: list[int], sampling: Sampling, budget: int, engine: Engine) -> Job:
    """The generation, on the engine of the slot this request was given."""
    return partial(engine.generate, prompt, sampling, budget)


class LocalChatProvider:
    """chat, stream, start/aclose (ManagedProvider) and count_prompt_tokens (TokenCounter)."""

    def __init__(self, config: LocalConfig, loader: Callable[[], Engine],
                 more: Callable[[Engine], Engine] | None = None) -> None:
        """``loader()``: the first slot's engine; ``more(first)``: each further slot's."""
        self._name = config.name
        self._preload = config.preload
        self._worker: ModelWorker[Engine] = ModelWorker(config.name, loader, config.parallel,
                                                        more)
        self._queue = TurnQueue(config.name, config.max_queue, config.queue_timeout_s,
                                config.parallel)

    async def start(self) -> None:
        if self._preload:
            await self._worker.load()

    async def aclose(self) -> None:
        await self._worker.aclose()

    def count_prompt_tokens(self, request: ChatRequest) -> int | None:
        """The prompt's tokens with the model's own template and tokenizer; None until the
        model is loaded or for messages it cannot take. Runs where it is called (SmolLM2: 0.2 ms
        for 50 tokens, 4 ms for 2,000)."""
        engine = self._worker.loaded
        if engine is None:
            return None
        try:
            return len(engine.encode_chat(chat_messages(request)))
        except InvalidRequest:
            return None

    def _check(self, request: ChatRequest) -> None:
        """A backend's own refusals, before anything is loaded."""

    async def _prepare(self, request: ChatRequest) -> tuple[int, Callable[[Engine], Job]]:
        """The prompt's token count, and the generation to run once it is this request's turn."""
        self._check(request)
        sampling = sampling_from(request)
        messages = chat_messages(request)
        engine = await self._worker.load()
        prompt = await asyncio.to_thread(engine.encode_chat, messages)
        budget = completion_budget(len(prompt), engine.n_ctx, sampling.max_tokens)
        return len(prompt), partial(_job, prompt, sampling, budget)

    async def chat(self, request: ChatRequest, model: str) -> ChatResult:
        prompt_tokens, job = await self._prepare(request)
        parts: list[str] = []
        finish = Finish("stop", 0)
        async with self._queue.turn() as slot, aclosing(
                self._worker.run(job(self._worker.engine(slot)), slot)) as events:
            async for event in events:
                if isinstance(event, Finish):
                    finish = event
                else:
                    parts.append(event)
        usage = Usage(prompt_tokens, finish.completion_tokens)
        return ChatResult(Answer(model).completion("".join(parts), finish.reason, usage), usage)

    async def stream(self, request: ChatRequest, model: str
                     ) -> AsyncGenerator[StreamChunk, None]:
        prompt_tokens, job = await self._prepare(request)
        answer = Answer(model)
        finish = Finish("stop", 0)
        first = True
        async with self._queue.turn() as slot, aclosing(
                self._worker.run(job(self._worker.engine(slot)), slot)) as events:
            async for event in events:
                if isinstance(event, Finish):
                    finish = event
                    continue
                delta = {"role": "assistant", "content": event} if first else {"content": event}
                first = False
                yield StreamChunk(answer.chunk(delta))
        if first:
            yield StreamChunk(answer.chunk({"role": "assistant", "content": ""}))
        yield StreamChunk(answer.chunk({}, finish.reason))
        usage = Usage(prompt_tokens, finish.completion_tokens)
        yield StreamChunk(answer.usage_chunk(usage), usage=usage, usage_only=True)
