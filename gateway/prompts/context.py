"""Fitting a conversation into a model's context window.

The window: the deployment's ``context_window``, else a local model's ``n_ctx``, else the
table of well-known OpenAI, Anthropic and Gemini models below (by upstream model id, longest
prefix first); unknown: no truncation. The history's oldest turns (a user message and every
message up to the next user message) go first, system messages stay, until the prompt plus the
room the answer asked for (``max_tokens``) fits; counted with the model's own tokenizer where
the provider has one (local models), else tiktoken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from providers.base import DeploymentConfig

# Context windows of well-known models, in tokens (vendors' model pages).
KNOWN_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385, "gpt-4": 8_192, "gpt-4-32k": 32_768, "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000, "gpt-4o-mini": 128_000, "gpt-4.1": 1_047_576, "gpt-4.5": 128_000,
    "gpt-5": 400_000, "o1": 200_000, "o1-mini": 128_000, "o3": 200_000, "o3-mini": 200_000,
    "o4-mini": 200_000, "chatgpt-4o": 128_000,
    "claude-": 200_000, "claude-2": 100_000, "claude-instant": 100_000,
    "gemini-1.0-pro": 32_760, "gemini-1.5-pro": 2_097_152, "gemini-1.5-flash": 1_048_576,
    "gemini-2.0": 1_048_576, "gemini-2.5": 1_048_576, "gemini-3": 1_048_576,
}
_BY_LENGTH = sorted(KNOWN_WINDOWS, key=len, reverse=True)


def context_window(config: DeploymentConfig, upstream_model: str) -> int | None:
    if config.context_window is not None:
        return config.context_window
    n_ctx = getattr(config, "n_ctx", None)
    if isinstance(n_ctx, int):
        return n_ctx
    model = upstream_model.rsplit("/", 1)[-1].lower()
    for prefix in _BY_LENGTH:
        if model.startswith(prefix):
            return KNOWN_WINDOWS[prefix]
    return None


def _turns(history: list[dict[str, Any]]) -> list[list[int]]:
    """The indexes of each turn's non-system messages, oldest first."""
    turns: list[list[int]] = []
    for i, message in enumerate(history):
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "user" or not turns:
            turns.append([])
        turns[-1].append(i)
    return turns


def truncate(head: list[dict[str, Any]], history: list[dict[str, Any]],
             rest: list[dict[str, Any]], fits: Callable[[list[dict[str, Any]]], bool]
             ) -> tuple[list[dict[str, Any]], int]:
    """``history`` less its oldest turns until ``head + history + rest`` ``fits``; returns the
    kept history and how many turns were dropped. Blocking (it counts tokens): run it in a
    thread."""
    if fits([*head, *history, *rest]):
        return history, 0
    turns = _turns(history)
    dropped: set[int] = set()
    for count, turn in enumerate(turns, start=1):
        dropped.update(turn)
        kept = [m for i, m in enumerate(history) if i not in dropped]
        if fits([*head, *kept, *rest]):
            return kept, count
    return [m for i, m in enumerate(history) if i not in dropped], len(turns)
