"""Stored responses, in the shared store (so every replica sees them).

``gw:resp:{id}`` holds one record (JSON: owner, the ``response`` object, its input items, and
the whole exchange up to and including its answer, which a later ``previous_response_id`` puts
first: as chat messages for a translated call and as Responses items for a native one),
expiring after ``responses.ttl_s``. The owner is the
virtual key that made it (``None``: the master key, or everyone when auth is off); a key reads
and deletes only its own (404 otherwise), the master key every one. The messages are stored as
the model saw them: after the guardrails' masking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store import Store
from wire.errors import NotFound


@dataclass(slots=True)
class StoredResponse:
    owner: str | None
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # the chat history through this response's answer
    items: list[dict[str, Any]] | None = None  # the same as Responses items (None: not kept)


def _may_see(owner: str | None, key_id: str | None, is_admin: bool) -> bool:
    return (is_admin and key_id is None) or owner == key_id


class ResponseStore:
    def __init__(self, store: Store, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s

    async def save(self, stored: StoredResponse) -> None:
        await self._store.set(f"gw:resp:{stored.response['id']}", orjson.dumps({
            "owner": stored.owner, "response": stored.response,
            "input_items": stored.input_items, "messages": stored.messages,
            "items": stored.items}), self._ttl_s)

    async def get(self, response_id: str, key_id: str | None, is_admin: bool,
                  param: str | None = None) -> StoredResponse:
        raw = await self._store.get(f"gw:resp:{response_id}")
        data = orjson.loads(raw) if raw is not None else None
        if data is None or not _may_see(data["owner"], key_id, is_admin):
            raise NotFound(f"Response with id '{response_id}' not found.", param=param)
        return StoredResponse(data["owner"], data["response"], data["input_items"],
                              data["messages"], data.get("items"))

    async def delete(self, response_id: str, key_id: str | None, is_admin: bool) -> None:
        await self.get(response_id, key_id, is_admin)  # (404 when not the caller's)
        await self._store.delete(f"gw:resp:{response_id}")
