"""multipart/form-data request bodies (OpenAI's uploads): text fields and files, read whole.
Starlette parses them (python-multipart); a malformed body is a 400, a body over
``server.max_body_mb`` the middleware's 413."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from wire.errors import InvalidRequest
from wire.images import UploadedFile

MAX_FILES = 32
MAX_FIELDS = 100


async def read_form(request: Request) -> tuple[dict[str, str], list[UploadedFile]]:
    """The form's text fields (a repeated name: its last value) and its files, in order."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("The request body must be multipart/form-data "
                             f"(got '{content_type or 'none'}').")
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except HTTPException as exc:
        raise InvalidRequest(f"The multipart body cannot be read: {exc.detail}") from None
    fields: dict[str, str] = {}
    files: list[UploadedFile] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append(UploadedFile(name, value.filename or "", value.content_type or "",
                                          await value.read()))
            else:
                fields[name] = value
    finally:
        await form.close()
    return fields, files
