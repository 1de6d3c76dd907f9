"""The ground floor: OpenAI's wire models (``wire.openai``), server-sent events (``wire.sse``) and
the one error hierarchy (``wire.errors``). Both ``gateway`` and ``providers`` stand on it; it
imports neither."""
