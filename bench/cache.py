"""What the response cache costs a request, measured in-process in one run.

For the store in memory and in a real redis-server (started here on a free port): the
cache's work on a miss (key, lookup, storing the answer), on a hit (key, lookup), and a
stream miss's assembly; then the semantic search over one group of stored vectors (1536
dimensions, like OpenAI's small embedding model), with numpy and in plain Python. Prints
p50 and p99 in microseconds.

    PYTHONPATH=. python bench/cache.py [--iterations 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gateway.cache import semantic as semantic_cache
from gateway.cache.response import ResponseCache
from gateway.cache.semantic import Group, pack, unit_vector
from gateway.cache.stream import StreamAssembler
from gateway.config import CacheConfig
from gateway.metrics import Metrics
from gateway.store import MemoryStore, RedisStore, Store
from tests.fakes.serve import RedisServer
from wire.openai import ChatRequest

ANSWER = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "word " * 60},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 60, "total_tokens": 80}})
CHUNKS = [orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                        "model": "m", "choices": [{"index": 0, "delta": {"content": "word "},
                                                   "finish_reason": None}]})] * 60 + [
    orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                  "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})]


NUMPY = semantic_cache.numpy


def request(i: int) -> ChatRequest:
    return ChatRequest.parse({"model": "m", "temperature": 0, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"Question number {i}: what is the capital of France?"}]})


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1e6
    p99 = ordered[int(len(ordered) * 0.99)] * 1e6
    return f"p50 {p50:8.1f} us   p99 {p99:8.1f} us"


async def timed(n: int, step: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await step(i)
        samples.append(time.perf_counter() - started)
    return samples


async def bench_store(name: str, store: Store, n: int) -> None:
    cache = ResponseCache(CacheConfig(), store, Metrics())
    requests = [request(i) for i in range(n)]

    async def miss(i: int) -> None:
        lookup = await cache.lookup("m", requests[i], {})
        assert lookup.result == "miss"
        await lookup.save(ANSWER)

    async def hit(i: int) -> None:
        assert (await cache.lookup("m", requests[i], {})).result == "hit"

    print(f"{name:7} miss (lookup + store): {percentiles(await timed(n, miss))}")
    print(f"{name:7} hit  (lookup):         {percentiles(await timed(n, hit))}")


async def bench_assembly(n: int) -> None:
    async def assemble(i: int) -> None:
        assembler = StreamAssembler()
        for data in CHUNKS:
            assembler.feed(data)
        assert assembler.completion() is not None
    print(f"stream of {len(CHUNKS)} chunks assembled:   {percentiles(await timed(n, assemble))}")


def bench_semantic(entries: int, dims: int = 1536) -> None:
    rng = random.Random(1)

    def vector() -> Any:
        return unit_vector([rng.gauss(0, 1) for _ in range(dims)])
    fields = {f"{i:064x}": pack(time.time(), vector()) for i in range(entries)}
    query = vector()
    for label, numpy in (("numpy", NUMPY), ("python", None)):
        if label == "numpy" and numpy is None:
            continue
        semantic_cache.numpy = numpy
        started = time.perf_counter()
        group = Group.build(fields, dims)
        built = time.perf_counter() - started
        runs = [0.0] * 20
        for k in range(len(runs)):
            started = time.perf_counter()
            group.best(query, 0)
            runs[k] = time.perf_counter() - started
        print(f"semantic, {entries} x {dims} ({label:6}): build {built * 1e3:7.2f} ms, "
              f"search p50 {statistics.median(runs) * 1e3:7.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    n = parser.parse_args().iterations
    await bench_store("memory", MemoryStore(), n)
    server = RedisServer().start()
    try:
        store = RedisStore(server.url)
        await bench_store("redis", store, n)
        await store.aclose()
    finally:
        server.stop()
    await bench_assembly(n)
    for entries in (16, 256):
        bench_semantic(entries)
    semantic_cache.numpy = NUMPY


if __name__ == "__main__":
    asyncio.run(main())
