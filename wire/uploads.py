"""A file of a multipart request, as every upload endpoint (audio, image edits, tools) and the
multipart sent upstream carry it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file of a multipart request: the form field it came in, its name and type as the
    client gave them (``""`` when it gave none), and its bytes."""

    field: str
    filename: str
    content_type: str
    data: bytes
