"""The tools' wire format (contract section 6): what ``POST /v1/tools/ocr`` and
``POST /v1/tools/detect`` take and answer.

A request is the uploaded file and the typed form fields; an answer is a pydantic model whose
JSON is the public shape, so a remote tool service's answer is checked by the same models that
write a local one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in the original image's pixels


@dataclass(frozen=True, slots=True)
class ToolFile:
    """An uploaded file: its bytes, the name and the media type the client gave it."""

    data: bytes
    filename: str = "file"
    content_type: str = "application/octet-stream"


# -- OCR ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OCRRequest:
    file: ToolFile
    lines: bool = False  # ?detail=lines


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OCRLine(_Answer):
    text: str
    confidence: float
    box: Box


class OCRPage(_Answer):
    page: int = Field(ge=1)
    text: str
    method: str  # "text": the PDF's own text layer; "ocr": read from the pixels
    lines: list[OCRLine] | None = None


class OCRResult(_Answer):
    text: str
    pages: list[OCRPage]

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


# -- detection ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectRequest:
    file: ToolFile
    confidence: float | None = None  # None: the deployment's default
    iou: float | None = None
    classes: tuple[str, ...] | None = None  # labels to keep; None: all
    max_detections: int | None = None
    draw: bool = False  # ?format=png: answer the image with the boxes drawn on it


class Detection(_Answer):
    label: str
    confidence: float
    box: Box


class DetectResult(_Answer):
    width: int
    height: int
    objects: list[Detection]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


@dataclass(frozen=True, slots=True)
class DetectAnswer:
    """A detection's result, and, when the request asked for ``format=png``, the image with
    the boxes drawn."""

    result: DetectResult | None
    png: bytes | None = None
