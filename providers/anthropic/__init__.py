"""Anthropic Messages API: ``wire`` (typed vendor models), ``request`` (OpenAI → Anthropic),
``provider`` (the call, and Anthropic answers and streams → OpenAI)."""

from providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
