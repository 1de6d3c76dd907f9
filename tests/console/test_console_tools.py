"""The tools in the browser, on the real backends: a PDF's facts extracted as a job (the
progress bar following its events to the end) and its text read by OCR, objects detected by
yolo with their boxes drawn on the canvas, a recording transcribed by whisper."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.console.conftest import sign_in, snap
from tests.tool_files import photograph, text_pdf

pytest.importorskip("onnxruntime", reason="the tools extra: pip install -e '.[tools]'")

SCHEMA = {"type": "object", "properties": {"invoice": {"type": "string"},
                                           "total": {"type": "number"}},
          "required": ["invoice", "total"]}
INVOICE = ["Invoice INV-7 from Acme Ltd", 'ANSWER: {"invoice": "INV-7", "total": 42.5}']
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#469990", "#9a6324"]  # detect.js's, one per label in order of appearance


def test_a_document_is_extracted_with_a_live_progress_bar(page: Page) -> None:
    sign_in(page, where="#documents")
    pdf = FilePayload(name="invoice.pdf", mimeType="application/pdf",
                      buffer=text_pdf([INVOICE]))
    page.set_input_files("#doc-file", pdf)
    page.select_option("#doc-model", "reader")
    page.fill("#doc-prompt", "Extract the invoice number and total.")
    page.fill("#doc-schema", json.dumps(SCHEMA))
    with page.expect_response("**/v1/jobs/*/events") as events:
        page.click("#doc-run")
    assert events.value.headers["content-type"].startswith("text/event-stream")
    bar = page.locator("#doc-progress")
    expect(bar).to_have_attribute("data-state", "succeeded")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar.locator(".label")).to_contain_text("succeeded")
    assert json.loads(page.locator("#doc-data").inner_text()) == {"invoice": "INV-7",
                                                                   "total": 42.5}
    snap(page, "extract")
    # the same document read by OCR (its text layer), answered at once
    page.select_option("#doc-mode", "ocr")
    expect(page.locator("#doc-ocr-model")).to_have_value("ocr")
    page.click("#doc-run")
    expect(page.locator("#doc-result pre").first).to_contain_text("Invoice INV-7 from Acme Ltd")
    expect(bar).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#doc-result h4").first).to_have_text("Page 1 (text)")


def test_the_example_schema_comes_from_the_gateway(page: Page) -> None:
    sign_in(page, where="#documents")
    page.click("#doc-example")
    expect(page.locator("#doc-prompt")).not_to_be_empty()
    schema = json.loads(page.locator("#doc-schema").input_value())
    assert schema["type"] == "object"
    page.click("#doc-run")  # no file chosen
    expect(page.locator("#doc-error")).to_have_text("Choose a document first.")


def test_detected_objects_are_drawn_on_the_image(page: Page) -> None:
    sign_in(page, where="#detect")
    expect(page.locator("#detect-model")).to_have_value("yolo")
    photo = FilePayload(name="astronaut.png", mimeType="image/png",
                        buffer=photograph("astronaut"))
    page.set_input_files("#detect-file", photo)
    with page.expect_response("**/v1/tools/detect") as detected:
        page.click("#detect-run")
    answer = detected.value.json()
    canvas = page.locator("#detect-canvas")
    expect(canvas).to_have_attribute("data-boxes", str(len(answer["objects"])))
    assert (answer["width"], answer["height"]) == (512, 512)
    assert "person" in page.locator("#detect-objects tbody").inner_text()
    # the last box drawn is on top: its left edge has its label's colour on the canvas
    labels = list(dict.fromkeys(o["label"] for o in answer["objects"]))
    last = answer["objects"][-1]
    x1, y1, _, y2 = last["box"]
    pixel = page.evaluate(
        "([x, y]) => Array.from(document.getElementById('detect-canvas')"
        ".getContext('2d').getImageData(x, y, 1, 1).data)", [int(x1), int((y1 + y2) / 2)])
    colour = COLOURS[labels.index(last["label"]) % len(COLOURS)]
    assert pixel[:3] == [int(colour[i:i + 2], 16) for i in (1, 3, 5)], (pixel, colour)
    snap(page, "detect")


def test_a_recording_is_transcribed(page: Page) -> None:
    pytest.importorskip("faster_whisper", reason="the tools extra: pip install -e '.[tools]'")
    from tests.audio import speech

    recording = speech.wav_bytes(speech.say("Hello world. This is a test of the speech gateway."))
    sign_in(page, where="#transcribe")
    expect(page.locator("#tr-model")).to_have_value("whisper-1")
    page.set_input_files("#tr-file", FilePayload(name="hello.wav", mimeType="audio/wav",
                                                 buffer=recording))
    page.click("#tr-run")
    text = page.locator("#tr-text")
    expect(text).to_contain_text("gateway", ignore_case=True, timeout=120_000)
    assert {"test", "speech", "gateway"} <= set(re.findall(r"[a-z]+", text.inner_text().lower()))
    expect(page.locator("#tr-result table tbody tr").first).to_be_visible()  # timed segments
    expect(page.locator("#tr-progress")).to_have_attribute("data-state", "succeeded")
    snap(page, "transcribe")
    # the same as a job (/v1/tools/transcribe), its progress bar following the job's events
    page.check("#tr-job")
    with page.expect_response("**/v1/tools/transcribe") as posted:
        page.click("#tr-run")
        expect(page.locator("#tr-result")).to_be_hidden()
    assert posted.value.status == 202
    expect(page.locator("#tr-progress")).to_have_attribute("aria-valuenow", "100",
                                                           timeout=120_000)
    expect(page.locator("#tr-progress")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#tr-result")).to_be_visible()  # hidden at the start, shown again
    expect(text).to_contain_text("gateway", ignore_case=True)
