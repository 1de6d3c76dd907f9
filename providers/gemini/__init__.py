"""Google Gemini: ``wire`` (typed vendor models), ``request`` (OpenAI → Gemini), ``embeddings``,
``images`` (OpenAI's image API on Gemini's image output), ``provider`` (the call, and Gemini
answers and streams → OpenAI)."""

from providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]
