"""The check shared by OpenAI's passed-through whole answers (images, native responses): the
body is a JSON object holding a list under one field; anything else is an ``UpstreamError``."""

from __future__ import annotations

from typing import Any

import orjson

from wire.errors import UpstreamError


def listing(body: bytes, field: str, missing: str) -> dict[str, Any]:
    """``body`` parsed, checked to be a JSON object with a list under ``field``; ``missing``
    is the error's message when it is JSON of another shape."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("The upstream answered with something that is not JSON.") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get(field), list):
        raise UpstreamError(missing)
    return parsed
