"""A big prompt's tokens are counted in a thread, not on the event loop (a 30 MB prompt takes
tiktoken seconds; bench/soak.py shows that other streams do not stall meanwhile)."""

from __future__ import annotations

import threading

from gateway.access.limits import create_limiter
from gateway.access.quotas import THREAD_COUNT_CHARS, Quotas
from gateway.config import LimitsConfig
from gateway.metrics import Metrics
from gateway.store import create_store
from wire.openai import ChatRequest, EmbeddingRequest


class Counter:
    """A provider with its own tokenizer: notes the thread each count runs in."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        self.threads.append(threading.get_ident())
        return 7


def chat(text: str) -> ChatRequest:
    return ChatRequest.parse({"model": "m", "messages": [{"role": "user", "content": text}],
                              "max_tokens": 3})


async def test_a_big_prompt_is_counted_in_a_thread() -> None:
    quotas = Quotas(create_limiter(create_store(None)), LimitsConfig(), Metrics())
    counter = Counter()
    assert await quotas.chat_cost(chat("hello"), counter) == 10
    assert await quotas.chat_cost(chat("x" * (THREAD_COUNT_CHARS + 1)), counter) == 10
    loop_thread = threading.get_ident()
    assert counter.threads[0] == loop_thread and counter.threads[1] != loop_thread
    # without the provider's tokenizer: tiktoken, the same answer on and off the loop
    words = "the quick brown fox jumps over the lazy dog "
    big = words * (THREAD_COUNT_CHARS // len(words) + 1)
    assert await quotas.chat_cost(chat(big), object()) == (
        quotas.estimator.count_messages(chat(big)) + 3)
    inputs = EmbeddingRequest.parse({"model": "m", "input": [big, "hi"]})
    assert await quotas.embedding_cost(inputs) == quotas.estimator.count_text(big) + 1


async def test_a_long_text_counted_in_pieces_counts_the_same() -> None:
    from gateway.tokens import PIECE_CHARS, TokenEstimator

    estimator = TokenEstimator()
    await estimator.ready()
    text = "Hello, world! Ünïcode and   spaces,\nnew lines. " * (3 * PIECE_CHARS // 40)
    assert len(text) > 2 * PIECE_CHARS
    whole = len(estimator._encoding.encode(text, disallowed_special=()))
    assert estimator.count_text(text) == whole
