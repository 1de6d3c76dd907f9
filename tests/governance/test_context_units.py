"""Context windows and truncation, on their own."""

from __future__ import annotations

from typing import Any

from gateway.config import validate
from gateway.prompts.context import context_window, truncate


def deployment(**extra: Any) -> Any:
    config = validate({"models": [{"name": "m", "provider": "openai-compatible",
                                   "api_base": "http://x", **extra}]})
    return config.deployments[0]


def test_window_sources() -> None:
    assert context_window(deployment(context_window=5000), "gpt-4o") == 5000
    assert context_window(deployment(), "gpt-4o-mini-2024-07-18") == 128_000
    assert context_window(deployment(), "gpt-4.1-nano") == 1_047_576
    assert context_window(deployment(), "claude-3-5-haiku-latest") == 200_000
    assert context_window(deployment(), "models/gemini-1.5-pro-002") == 2_097_152
    assert context_window(deployment(), "my-own-model") is None


def m(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": text}


def test_whole_turns_go_oldest_first_and_system_messages_stay() -> None:
    history = [m("system", "s"), m("user", "u1"), m("assistant", "a1"), m("tool", "t1"),
               m("user", "u2"), m("assistant", "a2")]
    rest = [m("user", "u3")]

    def fits_under(limit: int) -> Any:
        return lambda messages: len(messages) <= limit

    assert truncate([], history, rest, fits_under(7)) == (history, 0)
    kept, dropped = truncate([], history, rest, fits_under(5))
    assert dropped == 1 and kept == [m("system", "s"), m("user", "u2"), m("assistant", "a2")]
    kept, dropped = truncate([], history, rest, fits_under(2))
    assert dropped == 2 and kept == [m("system", "s")]
