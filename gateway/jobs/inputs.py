"""A job's uploaded inputs, stored once and named by a reference the job carries (never the
bytes in the job record): small ones in the gateway's store (Redis, or memory), larger ones
(over ``jobs.inline_max_mb``) in object storage through obstore (a local directory, or any
S3-compatible store)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

from gateway.config import StorageConfig
from gateway.store import Store

_STORE = "store:"
_OBJECT = "object:"
STORE_PREFIX = "gateway:jobs:input:"


def object_store(config: StorageConfig) -> Any:
    import obstore.store

    if config.backend == "local":
        root = Path(config.path).resolve() / config.prefix
        root.mkdir(parents=True, exist_ok=True)
        return obstore.store.LocalStore(root)
    options: dict[str, Any] = {"region": config.region}
    if config.endpoint:
        options.update(endpoint=config.endpoint, virtual_hosted_style_request=False)
    if config.access_key_id and config.secret_access_key:
        options.update(access_key_id=config.access_key_id,
                       secret_access_key=config.secret_access_key)
    client: Any = {"allow_http": True} if (config.endpoint or "").startswith("http://") else None
    return obstore.store.S3Store(config.bucket or "", prefix=config.prefix,
                                 client_options=client, **options)


class Inputs:
    def __init__(self, store: Store, storage: StorageConfig, inline_max_mb: float,
                 ttl_s: float) -> None:
        self._store, self._config = store, storage
        self._inline_max = int(inline_max_mb * 1024 * 1024)
        self._ttl_s = ttl_s
        self._objects: Any = None

    def _bucket(self) -> Any:
        if self._objects is None:
            self._objects = object_store(self._config)
        return self._objects

    async def put(self, data: bytes) -> str:
        name = uuid.uuid4().hex
        if len(data) <= self._inline_max:
            await self._store.set(STORE_PREFIX + name, data, self._ttl_s)
            return _STORE + name
        import obstore

        await obstore.put_async(self._bucket(), name, data)
        return _OBJECT + name

    async def get(self, ref: str) -> bytes | None:
        if ref.startswith(_STORE):
            return await self._store.get(STORE_PREFIX + ref.removeprefix(_STORE))
        import obstore

        try:
            result = await obstore.get_async(self._bucket(), ref.removeprefix(_OBJECT))
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    async def delete(self, ref: str) -> None:
        if ref.startswith(_STORE):
            await self._store.delete(STORE_PREFIX + ref.removeprefix(_STORE))
            return
        import obstore

        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self._bucket(), ref.removeprefix(_OBJECT))
