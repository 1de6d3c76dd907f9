"""Server-kept conversations, in the shared store.

``gw:conv:{id}`` holds a conversation's record (JSON: id, owner, created, messages); the hash
``gw:convs`` indexes them (id -> owner and creation time, in ms) for listing. The owner is the
virtual key that made it (``None``: the master key, or everyone when auth is off); a key sees
and deletes only its own, the master key every one. Messages are stored as the model saw them:
after the guardrails' masking, so masked values are never stored in clear. A turn is appended
only when its answer ended cleanly; two replicas appending to one conversation at the same
moment: the last write wins.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.store import Store
from wire.errors import InvalidRequest, NotFound

INDEX = "gw:convs"
MAX_LIMIT = 100


@dataclass(slots=True)
class Conversation:
    id: str
    owner: str | None
    created: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    is_new: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "object": "conversation", "created": self.created,
                "messages": self.messages}


def _may_see(owner: str | None, key_id: str | None, is_admin: bool) -> bool:
    return (is_admin and key_id is None) or owner == key_id


class ConversationStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(self, conversation_id: Any, key_id: str | None, is_admin: bool
                   ) -> Conversation:
        """The conversation a chat request names (``"new"``: a new one, stored once its first
        answer has ended)."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise InvalidRequest("'conversation_id' must be a conversation id or \"new\".",
                                 param="conversation_id")
        if conversation_id == "new":
            return Conversation("conv_" + secrets.token_hex(12), key_id, int(time.time()),
                                is_new=True)
        return await self.get(conversation_id, key_id, is_admin)

    async def get(self, conversation_id: str, key_id: str | None, is_admin: bool
                  ) -> Conversation:
        raw = await self._store.get(f"gw:conv:{conversation_id}")
        data = orjson.loads(raw) if raw is not None else None
        if data is None or not _may_see(data["owner"], key_id, is_admin):
            raise NotFound(f"No conversation with id '{conversation_id}'.",
                           param="conversation_id")
        return Conversation(data["id"], data["owner"], data["created"], data["messages"])

    async def append(self, conversation: Conversation, messages: list[dict[str, Any]]) -> None:
        conversation.messages = [*conversation.messages, *messages]
        await self._store.set(f"gw:conv:{conversation.id}", orjson.dumps({
            "id": conversation.id, "owner": conversation.owner,
            "created": conversation.created, "messages": conversation.messages}))
        if conversation.is_new:
            conversation.is_new = False
            await self._store.hset(INDEX, conversation.id, orjson.dumps(
                [conversation.owner, time.time_ns() // 1_000_000]))

    async def delete(self, conversation_id: str, key_id: str | None, is_admin: bool) -> None:
        await self.get(conversation_id, key_id, is_admin)  # (404 when not the caller's)
        await self._store.delete(f"gw:conv:{conversation_id}")
        await self._store.hdel(INDEX, conversation_id)

    async def page(self, key_id: str | None, is_admin: bool, limit: int, after: str | None
                   ) -> tuple[list[dict[str, Any]], bool]:
        """The caller's conversations, newest first, ``limit`` after the id ``after``."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"'limit' must be between 1 and {MAX_LIMIT}.", param="limit")
        entries = []
        for conversation_id, raw in (await self._store.hgetall(INDEX)).items():
            owner, created_ms = orjson.loads(raw)
            if _may_see(owner, key_id, is_admin):
                entries.append((created_ms, conversation_id))
        entries.sort(reverse=True)
        ids = [conversation_id for _, conversation_id in entries]
        start = 0
        if after is not None:
            if after not in ids:
                raise InvalidRequest(f"No conversation with id '{after}'.", param="after")
            start = ids.index(after) + 1
        chosen = entries[start:start + limit]
        data = [{"id": conversation_id, "object": "conversation", "created": created // 1000}
                for created, conversation_id in chosen]
        return data, start + limit < len(ids)
