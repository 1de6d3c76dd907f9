"""What a chat request becomes before it goes upstream, and what it leaves behind.

In order: the stored conversation's history (``conversation_id``) goes before the request's
messages; the prompt template (``prompt``) puts its system first and its template last; the
guardrails mask (or block) every message; the history's oldest turns are dropped until it all
fits the model's context window. The gateway's own body fields are removed. When the answer has
ended cleanly, the turn (the request's masked messages and the answer, still masked) is
appended to the conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.cache.stream import StreamAssembler
from gateway.guardrails.pii import Guardrails, Vault
from gateway.prompts.context import truncate
from gateway.prompts.conversations import Conversation, ConversationStore
from gateway.prompts.templates import PROMPT_FIELDS, PromptStore, render_prompt
from wire.openai import StreamChunk

GATEWAY_FIELDS = PROMPT_FIELDS | {"conversation_id"}


@dataclass(slots=True)
class Prepared:
    body: dict[str, Any]  # the body to send (without the gateway's fields)
    placeholders: dict[str, str] = field(default_factory=dict)  # to restore in the answer
    conversation: Conversation | None = None
    turn: list[dict[str, Any]] = field(default_factory=list)  # to append, with the answer
    truncated: int = 0
    masked: dict[str, str] = field(default_factory=dict)  # every placeholder -> its value

    def headers(self) -> dict[str, str]:
        if self.conversation is None:
            return {}
        headers = {"x-conversation-id": self.conversation.id}
        if self.truncated:
            headers["x-conversation-truncated"] = str(self.truncated)
        return headers


Fits = Callable[[list[dict[str, Any]]], bool]


async def prepare(raw: dict[str, Any], *, prompts: PromptStore,
                  conversations: ConversationStore, guards: list[Guardrails],
                  key_id: str | None, is_admin: bool, fits: Fits | None,
                  fits_in_thread: bool = True) -> Prepared:
    """``fits``: whether messages fit the model's context (None: unknown window);
    ``fits_in_thread``: count in a worker thread (tiktoken), or not (a local model's own
    tokenizer, which belongs to its model's thread)."""
    conversation = None
    history: list[dict[str, Any]] = []
    if "conversation_id" in raw:
        conversation = await conversations.open(raw["conversation_id"], key_id, is_admin)
        history = conversation.messages
    head, tail = await render_prompt(prompts, raw)
    own = [*(raw.get("messages") or []), *tail]
    vault = Vault()
    vault.seed(history)
    for guard in guards:
        head, own = guard.apply(head, vault), guard.apply(own, vault)
    truncated = 0
    if history and fits is not None:
        if fits_in_thread:
            history, truncated = await asyncio.to_thread(truncate, head, history, own, fits)
        else:
            history, truncated = truncate(head, history, own, fits)
    body = {k: v for k, v in raw.items() if k not in GATEWAY_FIELDS}
    body["messages"] = [*head, *history, *own]
    masked = {placeholder: value for (_, value), placeholder in vault.placeholders.items()}
    return Prepared(body, vault.restore, conversation, own, truncated, masked)


def answer_message(completion: dict[str, Any]) -> dict[str, Any] | None:
    """The first choice's message of a ``chat.completion``, as a history message."""
    choices = completion.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        return None
    kept = {k: v for k, v in message.items() if k in ("role", "content", "tool_calls")
            and v is not None}
    kept.setdefault("role", "assistant")
    return kept


async def remember(conversations: ConversationStore, prepared: Prepared, answer: bytes
                   | dict[str, Any]) -> None:
    """Append the turn and its (masked) answer to the conversation."""
    if prepared.conversation is None:
        return
    completion = orjson.loads(answer) if isinstance(answer, bytes) else answer
    message = answer_message(completion)
    if message is None:
        return
    await conversations.append(prepared.conversation, [*prepared.turn, message])


async def remembered(chunks: AsyncGenerator[StreamChunk, None],
                     conversations: ConversationStore, prepared: Prepared
                     ) -> AsyncGenerator[StreamChunk, None]:
    """Relay a stream; once it has ended cleanly, append the turn to the conversation. An
    aborted stream leaves the history as it was."""
    assembler = StreamAssembler()
    try:
        async for chunk in chunks:
            for part in chunk.split():  # (several when batched as the upstream sent them)
                assembler.feed(part.data)
            yield chunk
    finally:
        await chunks.aclose()
    completion = assembler.completion()
    if completion is not None:
        await remember(conversations, prepared, completion)
