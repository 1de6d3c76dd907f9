"""The pure parts of the OpenAI pass-through: the multipart body rebuilt for the upstream and
the usage read from answers and stream events."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from python_multipart import parse_form

from providers import multipart
from providers.openai.images import edit_body, event_usage, images_from_upstream
from wire.errors import UpstreamError
from wire.images import ImageEditRequest
from wire.openai import Usage
from wire.uploads import UploadedFile


def parsed(body: bytes, content_type: str) -> tuple[dict[str, str], list[tuple[str, str, bytes]]]:
    fields: dict[str, str] = {}
    files: list[tuple[str, str, bytes]] = []

    def on_field(field: Any) -> None:
        fields[field.field_name.decode()] = field.value.decode()

    def on_file(file: Any) -> None:
        file.file_object.seek(0)
        files.append((file.field_name.decode(), file.file_name.decode(),
                      file.file_object.read()))

    parse_form({"Content-Type": content_type.encode(), "Content-Length": str(len(body)).encode()},
               io.BytesIO(body), on_field, on_file)
    return fields, files


def test_multipart_round_trip_with_awkward_names() -> None:
    image = bytes(range(256)) * 4  # every byte value, CR and LF included
    body, content_type = multipart.encode(
        [("prompt", "a \"quoted\"\r\nprompt"), ("n", "2")],
        [UploadedFile("image[]", 'cat "one".png', "image/png", image),
         UploadedFile("image[]", "고양이.png", "image/png", b"\x89PNG")])
    fields, files = parsed(body, content_type)
    assert fields == {"prompt": "a \"quoted\"\r\nprompt", "n": "2"}
    assert files == [("image[]", "cat %22one%22.png", image),
                     ("image[]", "고양이.png", b"\x89PNG")]


def test_edit_body_replaces_only_the_model() -> None:
    request = ImageEditRequest.parse({"model": "mine", "prompt": "hat", "size": "512x512"})
    request = request.with_files([UploadedFile("image", "a.png", "image/png", b"img"),
                                  UploadedFile("mask", "m.png", "image/png", b"mask")])
    fields, files = parsed(*edit_body(request, "dall-e-2"))
    assert fields == {"model": "dall-e-2", "prompt": "hat", "size": "512x512"}
    assert [(f, n) for f, n, _ in files] == [("image", "a.png"), ("mask", "m.png")]


def test_answers_and_events() -> None:
    answer = orjson.dumps({"created": 1, "data": [{"b64_json": "x"}],
                           "usage": {"input_tokens": 5, "output_tokens": 7}})
    assert images_from_upstream(answer).usage == Usage(5, 7)
    assert images_from_upstream(b'{"created": 1, "data": []}').usage is None
    for bad in (b"<html>", b'{"created": 1}', b"[1]"):
        with pytest.raises(UpstreamError):
            images_from_upstream(bad)
    completed = orjson.dumps({"type": "image_edit.completed", "b64_json": "x",
                              "usage": {"input_tokens": 1, "output_tokens": 2}})
    assert event_usage(completed) == Usage(1, 2)
    assert event_usage(b'{"type": "image_edit.partial_image", "b64_json": "x"}') is None
    assert event_usage(b'{"type": "x.completed"') is None  # (cut short: not JSON)
