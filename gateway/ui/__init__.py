"""The web console's files (``static/``: plain HTML, CSS and JavaScript, no build step), read
once from the installed package and served by ``gateway/routes/console.py``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str  # a strong validator: the content's hash, quoted


@cache
def assets() -> dict[str, Asset]:
    """Every file of ``static/`` by name (a flat folder: a name never holds a path)."""
    found: dict[str, Asset] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind("."):]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:20]
            found[entry.name] = Asset(body, _TYPES[suffix], f'"{digest}"')
    return found
