"""The semantic side of the response cache (``cache.mode: semantic``).

A request's messages are embedded with the configured embedding model; the answer of a
stored request whose embedding is close enough (cosine similarity at least
``cache.similarity``) is the answer. Only requests with the same model and exactly the same
other parameters are compared: each such group is one hash in the store (so all replicas
share it with Redis), its fields the entries' ids holding the time they were made and their
unit-length vector as packed little-endian float32, plus a version counter (``#v``) that every
change bumps. A replica keeps a copy of the groups it reads and fetches one again only when
its version moved, so a lookup in a quiet group costs one small round trip besides the
embedding. A group holds at most ``cache.max_entries`` entries; the oldest go first.

The similarity is one matrix product with numpy when it is installed, else plain Python;
either moves to a worker thread when a group is large, to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import logging
import math
import operator
import struct
import sys
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from gateway.config import CacheConfig
from gateway.routing.router import Router
from gateway.store import Store
from wire.errors import GatewayError
from wire.openai import ChatRequest, EmbeddingRequest

try:
    import numpy
except ImportError:  # optional: the pure-Python path below does the same, slower
    numpy = None  # type: ignore[assignment]

log = logging.getLogger("gateway")

VERSION_FIELD = "#v"
_TIME = struct.Struct("<d")
EMBED_RETRY_S = 2.0  # after a failed embedding, requests go unembedded this long
LOCAL_BUDGET_FLOATS = 8 * 1024 * 1024  # the groups' copies kept by one replica (32 MiB)
# above this many multiply-adds a search goes to a worker thread
THREAD_WORK = 4_000_000 if numpy is not None else 20_000

T = TypeVar("T")


def request_text(chat: ChatRequest) -> str | None:
    """The text a request is compared by: each message as ``role: text``. None for a request
    with images, audio or files, which text alone cannot tell apart."""
    lines = []
    for message in chat.messages:
        content = message.content
        if isinstance(content, list):
            if any(part.get("type") != "text" for part in content):
                return None
            content = " ".join(str(part.get("text", "")) for part in content)
        text = content or ""
        if message.tool_calls:
            text += " " + orjson.dumps(message.tool_calls).decode()
        lines.append(f"{message.role}: {text}")
    return "\n".join(lines)


def unit_vector(values: Sequence[float]) -> array[float] | None:
    norm = math.sqrt(math.fsum(x * x for x in values))
    if not norm or not math.isfinite(norm):
        return None
    return array("f", (x / norm for x in values))


def pack(created: float, vector: array[float]) -> bytes:
    if sys.byteorder == "big":
        vector = array("f", vector)
        vector.byteswap()
    return _TIME.pack(created) + vector.tobytes()


def unpack(value: bytes) -> tuple[float, array[float]]:
    vector = array("f", value[_TIME.size:])
    if sys.byteorder == "big":
        vector.byteswap()
    return _TIME.unpack_from(value)[0], vector


@dataclass(slots=True)
class Group:
    """A replica's copy of one group: its entries' ids, times and vectors (a float32 matrix
    with numpy, else a list of arrays)."""

    version: bytes | None
    ids: list[str]
    created: list[float]
    dims: int
    vectors: Any  # numpy matrix (entries x dims) or list[array]

    @classmethod
    def build(cls, fields: dict[str, bytes], dims: int) -> Group:
        ids, created, raw = [], [], []
        for entry_id, value in fields.items():
            if entry_id == VERSION_FIELD or len(value) != _TIME.size + 4 * dims:
                continue  # the counter, or a vector of another embedding model
            ids.append(entry_id)
            created.append(_TIME.unpack_from(value)[0])
            raw.append(value)
        vectors: Any
        if numpy is not None:
            vectors = numpy.frombuffer(b"".join(v[_TIME.size:] for v in raw), dtype="<f4")
            vectors = vectors.reshape(len(raw), dims)
        else:
            vectors = [unpack(v)[1] for v in raw]
        return cls(fields.get(VERSION_FIELD), ids, created, dims, vectors)

    @property
    def floats(self) -> int:
        return len(self.ids) * self.dims

    def best(self, query: array[float], newer_than: float) -> tuple[str | None, float]:
        """The live entry most similar to ``query`` (unit vectors: cosine = dot product)."""
        if not self.ids:
            return None, -1.0
        if numpy is not None:
            scores = self.vectors @ numpy.frombuffer(query, dtype=numpy.float32)
            scores[numpy.asarray(self.created) <= newer_than] = -2.0
            best = int(scores.argmax())
            return self.ids[best], float(scores[best])
        best_id, best_score = None, -1.0
        for entry_id, created, vector in zip(self.ids, self.created, self.vectors, strict=True):
            if created > newer_than:
                score = sum(map(operator.mul, vector, query))
                if score > best_score:
                    best_id, best_score = entry_id, score
        return best_id, best_score


class SemanticIndex:
    def __init__(self, config: CacheConfig, router: Router, store: Store) -> None:
        assert config.embedding_model is not None, "checked by the config"
        self._name = config.embedding_model
        self._route = router.resolve(config.embedding_model)
        self._router, self._store = router, store
        self._threshold = config.similarity
        self._max_entries = config.max_entries
        self._ttl_s = config.ttl_s
        self._groups: OrderedDict[str, Group] = OrderedDict()
        self._next_warning = self._resting_until = 0.0

    async def embed(self, chat: ChatRequest) -> array[float] | None:
        """The request's unit vector; None when it has none (images) or the embedding model
        failed (then embedding rests for ``EMBED_RETRY_S``; logged now and then)."""
        text = request_text(chat)
        if text is None or time.monotonic() < self._resting_until:
            return None
        request = EmbeddingRequest.parse({"model": self._name, "input": text})
        try:
            result = await self._router.embed(self._route, request)
            values = orjson.loads(result.body)["data"][0]["embedding"]
            return unit_vector([float(x) for x in values])
        except GatewayError as exc:
            self._warn(f"{exc.status} {exc.message}")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            self._warn(f"unreadable embeddings answer ({type(exc).__name__})")
        return None

    def _warn(self, problem: str) -> None:
        now = time.monotonic()
        self._resting_until = now + EMBED_RETRY_S
        if now >= self._next_warning:
            self._next_warning = now + 60
            log.warning("semantic cache: embedding with '%s' failed, requests are not compared "
                        "for %gs: %s", self._name, EMBED_RETRY_S, problem)

    async def find(self, group_key: str, vector: array[float]) -> str | None:
        """The id of the stored entry similar enough to ``vector``, if any."""
        group = await self._load(group_key, len(vector))
        if group is None:
            return None
        entry_id, score = await _off_loop(group.floats, group.best, vector,
                                          time.time() - self._ttl_s)
        return entry_id if score >= self._threshold else None

    async def _load(self, group_key: str, dims: int) -> Group | None:
        version = await self._store.hget(group_key, VERSION_FIELD)
        if version is None:
            return None
        group = self._groups.get(group_key)
        if group is None or group.version != version or group.dims != dims:
            fields = await self._store.hgetall(group_key)
            group = await _off_loop(len(fields) * dims, Group.build, fields, dims)
            self._keep(group_key, group)
        else:
            self._groups.move_to_end(group_key)
        return group

    def _keep(self, group_key: str, group: Group) -> None:
        self._groups[group_key] = group
        self._groups.move_to_end(group_key)
        total = sum(g.floats for g in self._groups.values())
        while total > LOCAL_BUDGET_FLOATS and len(self._groups) > 1:
            total -= self._groups.popitem(last=False)[1].floats

    async def add(self, group_key: str, entry_id: str, vector: array[float]) -> None:
        store = self._store
        await store.hset(group_key, entry_id, pack(time.time(), vector))
        # the counter tells other replicas' copies they are stale, and keeps the group
        # alive as long as its newest entry
        await store.hincrby(group_key, {VERSION_FIELD: 1}, ttl_s=self._ttl_s)
        if await store.hlen(group_key) > self._max_entries + 1:
            await self._evict(group_key)

    async def _evict(self, group_key: str) -> None:
        """Drop the expired entries, then the oldest beyond ``max_entries``."""
        fields = await self._store.hgetall(group_key)
        entries = sorted((_TIME.unpack_from(value)[0], entry_id)
                         for entry_id, value in fields.items() if entry_id != VERSION_FIELD)
        cutoff = time.time() - self._ttl_s
        expired = sum(1 for created, _ in entries if created <= cutoff)
        excess = max(0, len(entries) - expired - self._max_entries)
        doomed = [entry_id for _, entry_id in entries[:expired + excess]]
        for entry_id in doomed:
            await self._store.hdel(group_key, entry_id)
        await self._store.hincrby(group_key, {VERSION_FIELD: 1}, ttl_s=self._ttl_s)


async def _off_loop(work: int, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` here when it is quick, in a worker thread when it is not."""
    if work > THREAD_WORK:
        return await asyncio.to_thread(function, *args)
    return function(*args)
