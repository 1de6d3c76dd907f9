"""OpenAI's audio requests (``/v1/audio/transcriptions``, ``/v1/audio/translations``): the
multipart form as a typed request, and the multipart encoding a request passes upstream with.

Pure functions, no I/O: the route hands over the form's text fields (in the order sent) and
its file; ``parse_transcription`` checks them, a bad value being a 400 naming the field.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from wire.errors import InvalidRequest
from wire.uploads import UploadedFile

Task = Literal["transcribe", "translate"]
FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
GRANULARITIES = ("segment", "word")


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    """One transcription or translation. ``fields``: every text field as sent (passthrough)."""

    task: Task
    model: str
    file: UploadedFile
    fields: tuple[tuple[str, str], ...]
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    stream: bool = False
    num_speakers: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # other fields (upstream-only ones)
    body: bytes = b""  # the multipart exactly as the client sent it, and its content type
    content_type: str = ""
    # a job's progress: the share of the audio decoded so far (local whisper calls it)
    progress: Callable[[float], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AudioAnswer:
    """A whole answer: its bytes and media type; ``seconds`` of audio, when known."""

    body: bytes
    media_type: str
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class AudioStream:
    """A streamed answer: server-sent events, already encoded, as they come. Its opening (the
    first event, or the upstream's first answer) has already been awaited."""

    events: AsyncGenerator[bytes, None]
    media_type: str = "text/event-stream"


_KNOWN = {"model", "language", "prompt", "temperature", "response_format",
          "timestamp_granularities[]", "timestamp_granularities", "stream", "num_speakers"}


def parse_transcription(task: Task, fields: Sequence[tuple[str, str]],
                        file: UploadedFile | None, body: bytes = b"",
                        content_type: str = "") -> TranscriptionRequest:
    """The request of a form, checked; a 400 naming the first bad field."""
    values: dict[str, str] = {}
    granularities: list[str] = []
    for name, value in fields:
        if name.startswith("timestamp_granularities"):
            granularities.append(value)
        else:
            values.setdefault(name, value)
    if file is None:
        raise InvalidRequest("Missing required parameter: 'file'.", param="file")
    model = values.get("model", "")
    if not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    response_format = values.get("response_format") or "json"
    allowed = FORMATS if task == "transcribe" else FORMATS[:-1]
    if response_format not in allowed:
        raise InvalidRequest(f"Invalid value for 'response_format': '{response_format}'; "
                             f"expected one of {', '.join(allowed)}.", param="response_format")
    for value in granularities:
        if value not in GRANULARITIES:
            raise InvalidRequest(f"Invalid value for 'timestamp_granularities[]': '{value}'; "
                                 "expected segment or word.",
                                 param="timestamp_granularities[]")
    return TranscriptionRequest(
        task=task, model=model, file=file, fields=tuple(fields),
        language=values.get("language") or None,
        prompt=values.get("prompt") or None,
        temperature=_temperature(values.get("temperature")),
        response_format=response_format,
        granularities=tuple(dict.fromkeys(granularities)),
        stream=_boolean(values.get("stream"), "stream"),
        num_speakers=_speakers(values.get("num_speakers")),
        extra={k: v for k, v in values.items() if k not in _KNOWN},
        body=body, content_type=content_type)


def _temperature(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= 1:
        raise InvalidRequest(f"Invalid value for 'temperature': '{value}'; expected a number "
                             "from 0 to 1.", param="temperature")
    return number


def _boolean(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("", "false", "0"):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise InvalidRequest(f"Invalid value for '{name}': '{value}'; expected true or false.",
                         param=name)


def _speakers(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 32:
        raise InvalidRequest(f"Invalid value for 'num_speakers': '{value}'; expected a whole "
                             "number from 1 to 32.", param="num_speakers")
    return int(value)


# --- the multipart sent upstream -------------------------------------------------------------


def multipart(request: TranscriptionRequest, model: str) -> tuple[bytes, str]:
    """The request as ``multipart/form-data`` for an upstream (its fields in the client's order,
    ``model`` replaced by the upstream id, the file last): the body and its content type. When
    the upstream id is the client's, the client's own bytes go unchanged."""
    if model == request.model and request.body:
        return request.body, request.content_type
    boundary = f"gateway-{secrets.token_hex(16)}"
    parts: list[bytes] = []
    for name, value in request.fields:
        if name == "model":
            value = model
        parts.append(_part(boundary, name) + value.encode() + b"\r\n")
    upload = request.file
    parts.append(_part(boundary, "file", upload.filename,
                       upload.content_type or "application/octet-stream")
                 + upload.data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _part(boundary: str, name: str, filename: str | None = None,
          content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{_quoted(name)}"'
    if filename is not None:
        disposition += f'; filename="{_quoted(filename)}"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode()


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
