"""Virtual keys: made by the master key, stored only as SHA-256 digests, in the shared store.

All keys live in one store hash, ``gw:keys``, field = the hex digest of the secret, value = the
key's record as JSON. A replica keeps the keys it has seen in memory, so a request costs no
store round trip to authenticate; a revoke publishes the key's digest on ``gw:keys:revoked``
and every replica drops its copy the moment it hears it. A replica that is not subscribed
(starting, or its connection to Redis lost) keeps no copies and reads every key from the store,
so a revoke can never be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from gateway.guardrails.config import GuardrailConfig
from gateway.store import Store, StoreUnavailable
from wire.admin import KeyFields

KEYS_HASH = "gw:keys"
KEY_PREFIX = "sk-gw-"


def digest_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyCreate(BaseModel):
    """The body of ``POST /v1/keys``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(default=None, max_length=200)
    models: list[str] | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    expires_at: int | None = Field(default=None, gt=0)
    rpd: PositiveInt | None = None
    max_parallel: PositiveInt | None = None
    max_budget_usd: float | None = Field(default=None, ge=0)
    budget_period: Literal["day", "month", "total"] = "total"
    guardrails: list[GuardrailConfig] | None = None


class VirtualKey(KeyFields):
    """A key's record: the fields the API shows (wire/admin.py), its guardrails typed."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    guardrails: tuple[GuardrailConfig, ...] | None = None

    @field_validator("budget_period", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Any:
        return value or "total"  # (a record written without one)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, Any]:
        """The key as the API shows it (never with its secret)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, raw: bytes) -> VirtualKey:
        return cls.model_validate_json(raw)


REVOKED_CHANNEL = "gw:keys:revoked"
MAX_CACHED = 100_000


class KeyStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, VirtualKey] = {}  # digest -> key, only while subscribed
        self._subscribed = False
        self._generation = 0  # bumped by every revoke heard: a lookup racing one is not kept
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch())

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        delay = 0.1
        while True:
            try:
                async for digest in self._store.subscribe(REVOKED_CHANNEL):
                    if digest is None:
                        self._subscribed, delay = True, 0.1
                    else:
                        self._forget(digest.decode())
            except StoreUnavailable:
                pass  # lost: stop trusting copies until subscribed again
            self._subscribed = False
            self._forget(None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _forget(self, digest: str | None) -> None:
        self._generation += 1
        if digest is None:
            self._cache.clear()
        else:
            self._cache.pop(digest, None)

    async def create(self, spec: KeyCreate) -> tuple[VirtualKey, str]:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = VirtualKey(id="key_" + secrets.token_hex(12), name=spec.name, models=spec.models,
                         rpm=spec.rpm, tpm=spec.tpm, created=int(time.time()),
                         expires_at=spec.expires_at, rpd=spec.rpd,
                         max_parallel=spec.max_parallel, max_budget_usd=spec.max_budget_usd,
                         budget_period=spec.budget_period,
                         guardrails=tuple(spec.guardrails) if spec.guardrails else None)
        await self._store.hset(KEYS_HASH, digest_hex(secret), orjson.dumps(key.public()))
        return key, secret

    async def all(self) -> list[VirtualKey]:
        records = await self._store.hgetall(KEYS_HASH)
        return sorted((VirtualKey.from_json(raw) for raw in records.values()),
                      key=lambda key: (key.created, key.id))

    async def revoke(self, key_id: str) -> bool:
        for field, raw in (await self._store.hgetall(KEYS_HASH)).items():
            if VirtualKey.from_json(raw).id == key_id:
                deleted = await self._store.hdel(KEYS_HASH, field)
                self._forget(field)
                await self._store.publish(REVOKED_CHANNEL, field.encode())
                return deleted
        return False

    async def lookup(self, secret: str) -> VirtualKey | None:
        digest = digest_hex(secret)
        key = self._cache.get(digest)
        if key is not None:
            return key
        generation = self._generation
        raw = await self._store.hget(KEYS_HASH, digest)
        if raw is None:
            return None
        key = VirtualKey.from_json(raw)
        if self._subscribed and generation == self._generation:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = key
        return key

    async def exist(self) -> bool:
        return await self._store.hlen(KEYS_HASH) > 0
