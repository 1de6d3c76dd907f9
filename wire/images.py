"""OpenAI's image endpoints as the gateway reads them: ``/v1/images/generations`` (JSON) and
``/v1/images/edits`` (multipart). Validated for shape only; what a model accepts (sizes, ``n``)
is the upstream's to judge, or the translating provider's. The original fields ride along
(``raw``) so that an OpenAI-speaking upstream gets them as the client sent them, gpt-image-1's
own (``background``, ``output_format``, ``moderation``...) included.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, PrivateAttr

from wire.errors import InvalidRequest
from wire.openai import APIRequest
from wire.uploads import UploadedFile

IMAGE_FIELDS = ("image", "image[]")  # the OpenAI SDK sends one image as ``image``, several as
MASK_FIELD = "mask"                  # ``image[]``


class ImageGenerationRequest(APIRequest):
    prompt: str = Field(min_length=1)
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    user: str | None = None
    stream: bool = False


class ImageEditRequest(APIRequest):
    """The text fields of an edit (form values are strings: ``n=2`` is read as 2) and its
    files, in the order they came."""

    model_config = ConfigDict(extra="allow", strict=False)
    prompt: str = Field(min_length=1)
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    user: str | None = None
    stream: bool = False
    _files: tuple[UploadedFile, ...] = PrivateAttr(default=())

    def with_files(self, files: list[UploadedFile]) -> Self:
        """Keep the request's files; at least one image is required."""
        if not any(f.field in IMAGE_FIELDS for f in files):
            raise InvalidRequest("Missing required parameter: 'image'.", param="image")
        self._files = tuple(files)
        return self

    @property
    def files(self) -> tuple[UploadedFile, ...]:
        return self._files

    @property
    def images(self) -> tuple[UploadedFile, ...]:
        return tuple(f for f in self._files if f.field in IMAGE_FIELDS)

    @property
    def mask(self) -> UploadedFile | None:
        return next((f for f in self._files if f.field == MASK_FIELD), None)
