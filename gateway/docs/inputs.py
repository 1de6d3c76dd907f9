"""The inputs that routes read by hand rather than through one pydantic model: the multipart
forms of the upload endpoints and the query strings, as pydantic models for the OpenAPI
document. Their allowed values come from the code that checks them (``FORMATS``,
``STATUSES``, the routes' own form models), so the document follows when those change;
tests/test_openapi.py sends real requests that the document describes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.access.usage import RETENTION_DAYS
from gateway.jobs.engine import Status
from gateway.prompts.conversations import MAX_LIMIT
from gateway.routes.summarize import SummarizeBody
from gateway.routes.tools import DetectForm
from wire.audio import FORMATS
from wire.images import ImageEditRequest

Granularity = Literal["segment", "word"]
_UPLOAD = "The file, as a multipart upload."


def _string_fields(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = {"type": "string"}  # (a form's other fields: text)


class _Form(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              json_schema_extra=_string_fields)


class TranslationForm(_Form):
    file: bytes = Field(description="The audio file (mp3, mp4, mpeg, mpga, m4a, wav, webm...).")
    model: str = Field(min_length=1, examples=["whisper-1"])
    prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    response_format: str = Field(default="json", json_schema_extra={"enum": [
        f for f in FORMATS if f != "diarized_json"]})
    stream: bool = False
    user: str | None = None


class TranscriptionForm(TranslationForm):
    language: str | None = Field(default=None, description="ISO-639-1, e.g. 'en'.")
    response_format: str = Field(default="json", json_schema_extra={"enum": list(FORMATS)})
    timestamp_granularities: list[Granularity] | None = Field(
        default=None, alias="timestamp_granularities[]",
        description="With verbose_json: 'segment' and/or 'word'.")
    num_speakers: int | None = Field(default=None, ge=1, le=32,
                                     description="With diarized_json: the number of speakers.")


def _image_files(schema: dict[str, Any]) -> None:
    schema["properties"] = {
        "image": {"type": "string", "format": "binary",
                  "description": "The image to edit (several: repeat 'image[]')."},
        "mask": {"type": "string", "format": "binary",
                 "description": "A PNG whose transparent pixels mark what to change."},
        **schema["properties"]}
    schema["required"] = ["image", *schema.get("required", ())]
    _string_fields(schema)


class ImageEditForm(ImageEditRequest):
    """ImageEditRequest's fields (the route validates them with it) and its files."""

    model_config = ConfigDict(json_schema_extra=_image_files)


class OCRForm(_Form):
    file: bytes = Field(description="A PDF or an image (PNG, JPEG, TIFF, WebP...).")
    model: str | None = Field(default=None, description="An OCR model; default: the first.")
    user: str | None = None


class DetectUpload(DetectForm):
    model_config = ConfigDict(json_schema_extra=_string_fields)
    file: bytes = Field(description="The image (PNG, JPEG, WebP...).")
    model: str | None = Field(default=None, description="A detection model; default: the "
                                                        "first.")
    user: str | None = None


class ExtractForm(_Form):
    file: bytes = Field(description="The document: text, PDF or an image.")
    model: str | None = Field(default=None, description="The chat model that extracts; "
                                                        "default: the first.")
    ocr_model: str | None = Field(default=None, description="For PDFs and images.")
    prompt: str | None = None
    prompt_file: bytes | None = Field(default=None, description="The prompt, as a UTF-8 file.")
    schema_: str | None = Field(default=None, alias="schema",
                                description="A JSON Schema the answer must validate against.")
    schema_file: bytes | None = Field(default=None, description="The schema, as a file.")
    user: str | None = None


class SummarizeForm(TranscriptionForm):
    models: str | None = Field(default=None, description="Chat models, comma-separated.")


# -- query strings ------------------------------------------------------------------------------


class UsageQuery(BaseModel):
    key_id: str | None = Field(default=None, description="Master key only: one key's usage.")
    user: str | None = None
    model: str | None = None
    from_: str | None = Field(default=None, alias="from", description="YYYY-MM-DD.")
    to: str | None = Field(default=None, description=f"YYYY-MM-DD; at most {RETENTION_DAYS} "
                                                     "days after 'from'.")


class JobsQuery(BaseModel):
    status: Status | None = None
    limit: int = Field(default=20, ge=1, le=100)
    after: str | None = Field(default=None, description="A job id: the page after it.")


class ConversationsQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    after: str | None = None


class InputItemsQuery(BaseModel):
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=20, ge=1, le=100)
    after: str | None = None


class PromptQuery(BaseModel):
    version: int | None = Field(default=None, ge=1)


class OCRQuery(BaseModel):
    detail: Literal["pages", "lines"] = Field(default="pages", description="lines: each "
                                              "line's text, confidence and box too.")


class DetectQuery(BaseModel):
    format: Literal["json", "png"] = Field(default="json", description="png: the image with "
                                           "the boxes drawn.")


__all__ = ["SummarizeBody"]
