"""multipart/form-data bodies for upstreams that take uploads (OpenAI's image edits): the
client's fields and files, re-encoded with a fresh boundary (pure; no I/O)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from wire.uploads import UploadedFile

# Names and file names are quoted strings: as browsers and httpx do, a quote and CR/LF are
# percent-escaped, the rest goes as UTF-8.
_ESCAPES = {ord('"'): "%22", ord("\r"): "%0D", ord("\n"): "%0A"}


def _quoted(value: str) -> bytes:
    return b'"' + value.translate(_ESCAPES).encode() + b'"'


def encode(fields: Iterable[tuple[str, str]], files: Iterable[UploadedFile]
           ) -> tuple[bytes, str]:
    """The body and its ``content-type`` (with the boundary): text fields first, then the
    files in the order given."""
    boundary = secrets.token_hex(16).encode()
    parts: list[bytes] = []
    for name, value in fields:
        parts += [b"--", boundary, b"\r\nContent-Disposition: form-data; name=", _quoted(name),
                  b"\r\n\r\n", value.encode(), b"\r\n"]
    for upload in files:
        parts += [b"--", boundary, b"\r\nContent-Disposition: form-data; name=",
                  _quoted(upload.field), b"; filename=", _quoted(upload.filename or "file"),
                  b"\r\nContent-Type: ", (upload.content_type or "application/octet-stream")
                  .encode(), b"\r\n\r\n", upload.data, b"\r\n"]
    parts += [b"--", boundary, b"--\r\n"]
    return b"".join(parts), f"multipart/form-data; boundary={boundary.decode()}"
