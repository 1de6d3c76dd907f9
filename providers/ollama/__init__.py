"""Ollama's native /api/chat: ``wire`` (typed vendor models) and ``provider`` (translation
both ways and the call)."""

from providers.ollama.provider import OllamaProvider

__all__ = ["OllamaProvider"]
