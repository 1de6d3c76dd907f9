"""OpenAI and any server that speaks its API: requests and answers pass through as bytes."""

from providers.openai.provider import OpenAICompatibleProvider, OpenAIProvider

__all__ = ["OpenAICompatibleProvider", "OpenAIProvider"]
