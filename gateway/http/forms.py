"""multipart/form-data request bodies (OpenAI's uploads): text fields and files, read whole,
for every upload endpoint (audio, image edits, tools, jobs). Starlette parses them
(python-multipart); a malformed body is a 400, a body over ``server.max_body_mb`` the
middleware's 413."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from wire.errors import InvalidRequest
from wire.uploads import UploadedFile

MAX_FILES = 32
MAX_FIELDS = 100


@dataclass(frozen=True, slots=True)
class Form:
    """A read form: every text field in the order sent (a repeated name kept each time, as
    ``timestamp_granularities[]`` needs) and its files, in order."""

    pairs: tuple[tuple[str, str], ...]
    uploads: tuple[UploadedFile, ...]

    @property
    def fields(self) -> dict[str, str]:
        """The text fields by name (a repeated name: its last value)."""
        return dict(self.pairs)

    def file(self, name: str = "file") -> UploadedFile | None:
        """The first file sent under ``name``."""
        return next((f for f in self.uploads if f.field == name), None)

    def required_file(self, what: str, name: str = "file") -> UploadedFile:
        upload = self.file(name)
        if upload is None:
            raise InvalidRequest(f"Missing required parameter: '{name}' ({what}, as a file "
                                 "upload).", param=name)
        return upload


async def read_form(request: Request, param: str | None = None) -> Form:
    """The form; a body that is not one is a 400 naming ``param`` (the upload it lacks)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("The request body must be multipart/form-data "
                             f"(got '{content_type or 'none'}').", param=param)
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except HTTPException as exc:  # Starlette's word for a malformed multipart body
        raise InvalidRequest("The request body is not valid multipart/form-data: "
                             f"{exc.detail}", param=param) from None
    pairs: list[tuple[str, str]] = []
    uploads: list[UploadedFile] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append(UploadedFile(name, value.filename or "", value.content_type or "",
                                            await value.read()))
            else:
                pairs.append((name, value))
    finally:
        await form.close()
    return Form(tuple(pairs), tuple(uploads))
