"""Who is calling.

A caller shows a key as ``Authorization: Bearer KEY`` or ``x-api-key: KEY``. The master key may
do everything. Keys are only ever held as SHA-256 digests and compared in constant time. When
no key is configured at all, auth is off and every caller is an anonymous admin (the CLI then
refuses to bind beyond loopback without ``--insecure``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import AuthenticationError, PermissionDenied


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str | None  # None: the master key, or nobody when auth is off
    is_admin: bool
    models: frozenset[str] | None = None  # None: every model

    def check_model(self, model: str) -> None:
        if self.models is not None and model not in self.models:
            raise PermissionDenied(f"This key may not use the model '{model}'.", param="model")

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


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
    def __init__(self, master_key: str | None) -> None:
        self._master = digest(master_key) if master_key else None

    @property
    def enabled(self) -> bool:
        return self._master is not None

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        if self._master is None:
            return ANONYMOUS
        key = presented_key(headers)
        if key is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.")
        if hmac.compare_digest(digest(key), self._master):
            return MASTER
        raise AuthenticationError("Incorrect API key provided.")
