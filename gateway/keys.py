"""Virtual keys: made by the master key, stored only as SHA-256 digests, in the shared store.

All keys live in one store hash, ``gw:keys``, field = the hex digest of the secret, value = the
key's record as JSON. Every request looks its key up there (one ``HGET``): there is no
per-replica copy, so a key revoked through any replica is refused by every replica at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from gateway.store import Store

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


@dataclass(frozen=True, slots=True)
class VirtualKey:
    id: str
    name: str | None
    models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    created: int
    expires_at: int | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, Any]:
        """The key as the API shows it (never with its secret)."""
        record = asdict(self)
        record["models"] = list(self.models) if self.models is not None else None
        return record

    @classmethod
    def from_json(cls, raw: bytes) -> VirtualKey:
        data = orjson.loads(raw)
        models = data.get("models")
        return cls(id=data["id"], name=data.get("name"),
                   models=tuple(models) if models is not None else None,
                   rpm=data.get("rpm"), tpm=data.get("tpm"), created=data["created"],
                   expires_at=data.get("expires_at"))


class KeyStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        # Parsed records by their stored bytes: a key used again costs no JSON parsing, and a
        # changed or revoked record is never served from here (the lookup still goes to the
        # store every time).
        self._parsed: dict[bytes, VirtualKey] = {}

    async def create(self, spec: KeyCreate) -> tuple[VirtualKey, str]:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = VirtualKey(id="key_" + secrets.token_hex(12), name=spec.name,
                         models=tuple(spec.models) if spec.models is not None else None,
                         rpm=spec.rpm, tpm=spec.tpm, created=int(time.time()),
                         expires_at=spec.expires_at)
        await self._store.hset(KEYS_HASH, digest_hex(secret), orjson.dumps(key.public()))
        return key, secret

    async def all(self) -> list[VirtualKey]:
        records = await self._store.hgetall(KEYS_HASH)
        return sorted((VirtualKey.from_json(raw) for raw in records.values()),
                      key=lambda key: (key.created, key.id))

    async def revoke(self, key_id: str) -> bool:
        for field, raw in (await self._store.hgetall(KEYS_HASH)).items():
            if VirtualKey.from_json(raw).id == key_id:
                return await self._store.hdel(KEYS_HASH, field)
        return False

    async def lookup(self, secret: str) -> VirtualKey | None:
        raw = await self._store.hget(KEYS_HASH, digest_hex(secret))
        if raw is None:
            return None
        key = self._parsed.get(raw)
        if key is None:
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            key = self._parsed[raw] = VirtualKey.from_json(raw)
        return key

    async def exist(self) -> bool:
        return await self._store.hlen(KEYS_HASH) > 0
