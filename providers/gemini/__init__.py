"""Google Gemini: ``wire`` (typed vendor models), ``request`` (OpenAI → Gemini), ``embeddings``,
``provider`` (the call, and Gemini answers and streams → OpenAI)."""

from providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]
