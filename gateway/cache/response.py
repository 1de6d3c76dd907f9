"""The response cache (``cache:`` in models.yaml).

An answer is keyed by the model name the client sent and the normalized request: the body
with sorted keys, less the fields that do not change the answer (``stream``,
``stream_options``, ``user``). So the entry is shared by every key, and a stream and a
non-stream request for the same thing share it. It holds one form of the answer, the
``chat.completion`` JSON with its usage; a stream is put together into it as it passes, and a
stream hit is played back from it (``gateway.cache.stream``). A Responses API call sent to a
``responses: native`` upstream is keyed the same way by the body the upstream gets, and its
entry (under ``RESPONSES_PREFIX``) holds the final ``response`` (``lookup_response``).

Which requests: ``mode: deterministic`` (the default) those with ``temperature: 0`` or a
``seed``; ``all`` every request; ``semantic`` every request, also answered from a stored
request whose messages mean nearly the same (``gateway.cache.semantic``). An answer is stored
only when the upstream finished cleanly: a whole answer, or a stream that reached its end
with a finish reason on every choice. ``Cache-Control: no-cache`` skips the lookup but
stores the answer; ``no-store`` does neither.

Entries live in the gateway's store under ``gw:cache:`` with ``ttl_s``, shared by all
replicas with Redis. A store that fails never fails a request: the request is a miss, nothing
is stored, the cache rests for ``STORE_RETRY_S``, and a warning is logged now and then.
"""

from __future__ import annotations

import hashlib
import logging
import time
from array import array
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gateway.cache.semantic import SemanticIndex
from gateway.cache.stream import StreamAssembler
from gateway.config import CacheConfig
from gateway.metrics import Metrics
from gateway.routing.router import Router
from gateway.store import Store, StoreUnavailable
from wire.openai import ChatRequest, StreamChunk

log = logging.getLogger("gateway")

PREFIX = "gw:cache:"
SEMANTIC_PREFIX = "gw:cache:sem:"
RESPONSES_PREFIX = "resp:"  # (in gw:cache:) native Responses API answers, kept apart from chat
IGNORED_FIELDS = frozenset({"stream", "stream_options", "user"})
STORE_RETRY_S = 2.0  # after a store failure, the cache rests this long
WARN_EVERY_S = 60.0

Result = Literal["hit", "miss"]
HIT_HEADERS = {"x-gateway-cache": "hit"}
MISS_HEADERS = {"x-gateway-cache": "miss"}


def normalized(model: str, raw: Mapping[str, Any], *, without: frozenset[str] = frozenset()
               ) -> bytes:
    """The request as the cache sees it: sorted keys, without what does not change the
    answer (and without ``without``)."""
    body = {k: v for k, v in raw.items() if k not in IGNORED_FIELDS and k not in without}
    body["model"] = model
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_directives(value: str | None) -> frozenset[str]:
    """The directive names of a ``Cache-Control`` header, lower case."""
    if not value:
        return frozenset()
    return frozenset(part.split("=", 1)[0].strip().lower() for part in value.split(","))


@dataclass(slots=True)
class Lookup:
    """One request's dealings with the cache: the answer on a hit; on a miss, what it takes
    to store the answer (``saving``) when the request may be stored."""

    result: Result
    answer: bytes | None = None  # the stored chat.completion JSON, on a hit
    cache: ResponseCache | None = None  # set when the answer is to be stored
    entry_id: str = ""
    chat: ChatRequest | None = None
    group: str | None = None  # semantic: the group of requests this one is compared with
    vector: array[float] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return HIT_HEADERS if self.result == "hit" else MISS_HEADERS

    @property
    def saving(self) -> bool:
        return self.cache is not None

    async def save(self, answer: bytes) -> None:
        """Store a whole answer (a ``chat.completion`` from a clean upstream finish)."""
        if self.cache is not None:
            await self.cache.save(self, answer)

    async def record(self, chunks: AsyncGenerator[StreamChunk, None]
                     ) -> AsyncGenerator[StreamChunk, None]:
        """Pass every chunk on (the usage-only one too: the route drops it when the client
        did not ask for usage), and store the answer they make once the stream has ended
        cleanly."""
        assembler = StreamAssembler()
        async with aclosing(chunks):
            async for chunk in chunks:
                for part in chunk.split():  # (several when batched as the upstream sent them)
                    assembler.feed(part.data)
                yield chunk
        completion = assembler.completion()
        if completion is not None:
            await self.save(orjson.dumps(completion))


NOT_STORED = Lookup("miss")


class ResponseCache:
    def __init__(self, config: CacheConfig, store: Store, metrics: Metrics,
                 semantic: SemanticIndex | None = None) -> None:
        self._store = store
        self._ttl_s = config.ttl_s
        self._any_request = config.mode != "deterministic"
        self._semantic = semantic
        self._counters = {result: metrics.cache_requests.labels(result)
                          for result in ("hit", "miss")}
        self._resting_until = 0.0
        self._next_warning = 0.0

    def _cacheable(self, chat: ChatRequest) -> bool:
        return self._any_request or chat.temperature == 0 or chat.seed is not None

    async def lookup(self, model: str, chat: ChatRequest, headers: Mapping[str, str]
                     ) -> Lookup:
        """The cached answer to ``chat`` for ``model`` (the name the client sent), or a miss
        ready to store the answer when it may be stored."""
        return await self._lookup(model, chat.raw, chat, self._cacheable(chat), headers)

    async def lookup_response(self, model: str, body: Mapping[str, Any],
                              headers: Mapping[str, str]) -> Lookup:
        """The same for a Responses API body as its upstream gets it (``responses: native``):
        the stored answer is the upstream's ``response`` object, under a prefix of its own.
        Matched exactly only, in ``semantic`` mode too. (The Responses API has no ``seed``;
        one passed through counts as in chat.)"""
        cacheable = (self._any_request or body.get("temperature") == 0
                     or body.get("seed") is not None)
        return await self._lookup(model, body, None, cacheable, headers,
                                  prefix=RESPONSES_PREFIX)

    async def _lookup(self, model: str, raw: Mapping[str, Any], chat: ChatRequest | None,
                      cacheable: bool, headers: Mapping[str, str], *, prefix: str = ""
                      ) -> Lookup:
        directives = cache_directives(headers.get("cache-control"))
        if "no-store" in directives or not cacheable:
            return NOT_STORED
        lookup = Lookup("miss", cache=self, entry_id=prefix + digest(normalized(model, raw)),
                        chat=chat)
        if self._semantic is not None and chat is not None:
            lookup.group = SEMANTIC_PREFIX + digest(normalized(model, raw,
                                                               without=frozenset({"messages"})))
        if "no-cache" in directives:
            return lookup
        if not self._resting():
            try:
                lookup.answer = await self._find(lookup)
            except StoreUnavailable as exc:
                self._failed(exc)
        if lookup.answer is not None:
            lookup.result, lookup.cache = "hit", None
        self._counters[lookup.result].inc()
        return lookup

    async def _find(self, lookup: Lookup) -> bytes | None:
        answer = await self._store.get(PREFIX + lookup.entry_id)
        semantic = self._semantic
        if answer is not None or semantic is None or lookup.group is None:
            return answer
        assert lookup.chat is not None
        lookup.vector = await semantic.embed(lookup.chat)
        if lookup.vector is None:
            return None
        similar = await semantic.find(lookup.group, lookup.vector)
        return None if similar is None else await self._store.get(PREFIX + similar)

    async def save(self, lookup: Lookup, answer: bytes) -> None:
        if self._resting():
            return
        try:
            await self._store.set(PREFIX + lookup.entry_id, answer, ttl_s=self._ttl_s)
            if self._semantic is not None and lookup.group is not None:
                assert lookup.chat is not None
                if lookup.vector is None:  # no lookup happened (no-cache)
                    lookup.vector = await self._semantic.embed(lookup.chat)
                if lookup.vector is not None:
                    await self._semantic.add(lookup.group, lookup.entry_id, lookup.vector)
        except StoreUnavailable as exc:
            self._failed(exc)

    def _resting(self) -> bool:
        return bool(self._resting_until) and time.monotonic() < self._resting_until

    def _failed(self, error: StoreUnavailable) -> None:
        now = time.monotonic()
        self._resting_until = now + STORE_RETRY_S
        if now >= self._next_warning:
            self._next_warning = now + WARN_EVERY_S
            log.warning("response cache: %s; requests go uncached, trying again every %gs",
                        error.message, STORE_RETRY_S)


def create_cache(config: CacheConfig | None, store: Store, router: Router, metrics: Metrics
                 ) -> ResponseCache | None:
    if config is None:
        return None
    semantic = SemanticIndex(config, router, store) if config.mode == "semantic" else None
    return ResponseCache(config, store, metrics, semantic)
