"""Who is calling.

A caller shows a key as ``Authorization: Bearer KEY`` or ``x-api-key: KEY``. The master key may
do everything; virtual keys (gateway/access/keys.py) are limited to their models and rates. Keys are
only ever held as SHA-256 digests: the master key's digest is compared in constant time, a
virtual key is found by its digest. When there is neither a master key nor any virtual key,
auth is off and every caller is an anonymous admin (the CLI then refuses to bind beyond
loopback without ``--insecure``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.access.keys import KeyStore, VirtualKey
from wire.errors import AuthenticationError, PermissionDenied


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str | None  # None: the master key, or nobody when auth is off
    is_admin: bool
    models: frozenset[str] | None = None  # None: every model; names may end in "*"
    rpm: int | None = None
    tpm: int | None = None
    key: VirtualKey | None = None  # the virtual key's record (budget, rpd, guardrails...)

    def check_model(self, model: str) -> None:
        if not self.may_use(model):
            raise PermissionDenied(f"This key may not use the model '{model}'.", param="model")

    def may_use(self, model: str) -> bool:
        if self.models is None or model in self.models:
            return True
        return any(allowed.endswith("*") and model.startswith(allowed[:-1])
                   for allowed in self.models)


ANONYMOUS = Caller(key_id=None, is_admin=True)
MASTER = Caller(key_id=None, is_admin=True)


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or None


class Authenticator:
    def __init__(self, master_key: str | None, keys: KeyStore) -> None:
        self._master = digest(master_key) if master_key else None
        self.keys = keys

    @property
    def has_master(self) -> bool:
        return self._master is not None

    async def authenticate(self, headers: Mapping[str, str], *, now: float | None = None
                           ) -> Caller:
        if self._master is None and not await self.keys.exist():
            return ANONYMOUS  # auth is off: no master key and no virtual key
        key = presented_key(headers)
        if key is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.")
        if self._master is not None and hmac.compare_digest(digest(key), self._master):
            return MASTER
        virtual = await self.keys.lookup(key)
        if virtual is None:
            raise AuthenticationError("Incorrect API key provided.")
        if virtual.expired(time.time() if now is None else now):
            raise AuthenticationError("This API key has expired.")
        return Caller(key_id=virtual.id, is_admin=False,
                      models=frozenset(virtual.models) if virtual.models is not None else None,
                      rpm=virtual.rpm, tpm=virtual.tpm, key=virtual)

    def require_admin(self, caller: Caller) -> None:
        if not caller.is_admin:
            raise PermissionDenied("Only the master key may manage virtual keys.",
                                   code="admin_only")
