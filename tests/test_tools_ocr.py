"""POST /v1/tools/ocr end to end, as curl would call it (httpx multipart), on real files:
PDFs with a text layer (reportlab), scanned pages (Pillow) read by rapidocr's bundled models,
and a Korean meeting note (Debian's Nanum Gothic) read by Tesseract (tesseract-ocr-kor)."""

from __future__ import annotations

import difflib
import logging
import re
import sys
import time
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory

pytest.importorskip("rapidocr_onnxruntime", reason="the tools extra: pip install -e '.[tools]'")
pytest.importorskip("reportlab", reason="the dev extra: the test PDFs")

from PIL import Image

from tests.tool_files import (
    KOREAN_NOTE,
    image_bytes,
    scanned_page,
    scanned_pdf,
    text_pdf,
)

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
ENGLISH = ["Invoice 2024-117", "Total due: 4,250 EUR"]


def ocr_models(**extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": "ocr", "provider": "ocr", "max_pages": 5, **extra},
        {"name": "ocr-kor", "provider": "ocr", "engine": "tesseract",
         "languages": ["kor", "eng"], **extra},
    ]


@pytest.fixture
def ocr_gateway(make_gateway: GatewayFactory) -> str:
    return make_gateway({"models": ocr_models()})


def ocr(url: str, data: bytes, *, query: str = "", filename: str = "doc.pdf",
        **fields: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/tools/ocr{query}", headers=AUTH,
                      files={"file": (filename, data, "application/octet-stream")},
                      data={k: str(v) for k, v in fields.items()}, timeout=120)


def similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, " ".join(a.split()), " ".join(b.split())).ratio()


def test_text_layer_pages_are_read_without_ocr(ocr_gateway: str) -> None:
    pdf = text_pdf([ENGLISH, KOREAN_NOTE])
    response = ocr(ocr_gateway, pdf, model="ocr")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"text", "pages"}
    assert [p["page"] for p in answer["pages"]] == [1, 2]
    assert [p["method"] for p in answer["pages"]] == ["text", "text"]
    assert answer["pages"][0]["text"].split("\n") == ENGLISH
    assert answer["pages"][1]["text"].split("\n") == KOREAN_NOTE  # exact: no OCR involved
    assert answer["text"] == "\n\n".join(p["text"] for p in answer["pages"])
    assert all("lines" not in p for p in answer["pages"])


def test_scanned_pages_are_read_by_rapidocr(ocr_gateway: str) -> None:
    pdf = text_pdf([["A page with text"]], scanned_after=[scanned_page(ENGLISH)])
    answer = ocr(ocr_gateway, pdf, model="ocr").json()
    assert [p["method"] for p in answer["pages"]] == ["text", "ocr"]
    assert answer["pages"][0]["text"] == "A page with text"
    assert similar(answer["pages"][1]["text"], "\n".join(ENGLISH)) > 0.9, answer


def test_detail_lines_give_boxes_and_confidence(ocr_gateway: str) -> None:
    pdf = text_pdf([ENGLISH], scanned_after=[scanned_page(ENGLISH)])
    pages = ocr(ocr_gateway, pdf, query="?detail=lines").json()["pages"]
    for page in pages:
        lines = page["lines"]
        assert len(lines) == 2, page
        assert all(set(line) == {"text", "confidence", "box"} for line in lines)
        assert similar(lines[0]["text"], ENGLISH[0]) > 0.85
        assert all(0 < line["confidence"] <= 1 for line in lines)
        first, second = lines[0]["box"], lines[1]["box"]
        assert first[0] < first[2] and first[1] < first[3]
        assert first[3] <= second[1] + 5  # the first line is above the second
    # the text layer and OCR agree on where the first line is (both in pixels at 200 dpi
    # for the text layer; the scanned page at its own 150 dpi is rendered at 200 dpi too)
    text_box, ocr_box = pages[0]["lines"][0]["box"], pages[1]["lines"][0]["box"]
    assert text_box[0] == pytest.approx(36 * 200 / 72, abs=6)  # 0.5 inch from the left
    assert 25 * 200 / 72 < text_box[1] < 40 * 200 / 72 < text_box[3]  # baseline 40 pt down
    assert ocr_box[0] == pytest.approx(50 * 200 / 150, abs=15)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_images(ocr_gateway: str, fmt: str) -> None:
    data = image_bytes(scanned_page(ENGLISH), fmt)
    answer = ocr(ocr_gateway, data, filename=f"scan.{fmt.lower()}").json()
    assert [(p["page"], p["method"]) for p in answer["pages"]] == [(1, "ocr")]
    assert similar(answer["text"], "\n".join(ENGLISH)) > 0.9, answer


def test_a_multipage_tiff_is_one_page_per_frame(ocr_gateway: str) -> None:
    frames = [scanned_page([ENGLISH[0]]), scanned_page([ENGLISH[1]])]
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    pages = ocr(ocr_gateway, data, filename="scan.tiff").json()["pages"]
    assert [p["page"] for p in pages] == [1, 2]
    assert similar(pages[0]["text"], ENGLISH[0]) > 0.9
    assert similar(pages[1]["text"], ENGLISH[1]) > 0.9


def test_korean_through_tesseract(ocr_gateway: str) -> None:
    note = scanned_page([*KOREAN_NOTE, "Action items: update the release notes."],
                        size=(1100, 560))
    answer = ocr(ocr_gateway, scanned_pdf([note]), model="ocr-kor", query="?detail=lines").json()
    page = answer["pages"][0]
    assert page["method"] == "ocr"
    expected = [*KOREAN_NOTE, "Action items: update the release notes."]
    assert similar(page["text"], "\n".join(expected)) > 0.9, page["text"]
    assert "월요일에" in page["text"]  # Korean words are not split into syllables
    assert len(page["lines"]) == len(expected)
    assert similar(page["lines"][0]["text"], KOREAN_NOTE[0]) > 0.8


def error_of(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def empty_pdf() -> bytes:
    import io

    import pypdfium2 as pdfium

    out = io.BytesIO()
    pdfium.PdfDocument.new().save(out)
    return out.getvalue()


def test_bad_files_are_clear_400s_and_the_server_keeps_serving(ocr_gateway: str) -> None:
    url = ocr_gateway
    encrypted = error_of(ocr(url, text_pdf([ENGLISH], encrypt="secret")))
    assert encrypted["param"] == "file" and "encrypted" in encrypted["message"]
    corrupt = text_pdf([ENGLISH])[:300]
    assert "damaged" in error_of(ocr(url, corrupt))["message"]
    assert "empty" in error_of(ocr(url, b""))["message"]
    assert error_of(ocr(url, empty_pdf()))["param"] == "file"  # PDFium refuses 0 pages
    assert "neither a PDF nor an image" in error_of(ocr(url, b"hello, world"))["message"]
    too_long = error_of(ocr(url, text_pdf([["page"]] * 6), model="ocr"))
    assert "6 pages" in too_long["message"] and "at most 5" in too_long["message"]
    assert "max_pages" in too_long["message"]
    assert error_of(ocr(url, b"%PDF", query="?detail=words"))["param"] == "detail"
    truncated_png = image_bytes(scanned_page(ENGLISH), "PNG")[:500]
    assert error_of(ocr(url, truncated_png))["param"] == "file"
    assert ocr(url, text_pdf([ENGLISH])).status_code == 200  # still serving


def test_without_the_tools_extra_text_layers_still_work(
        make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if rapidocr were not installed (find_spec answers None for a None module).
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    url = make_gateway({"models": [{"name": "ocr", "provider": "ocr"}]})
    assert ocr(url, text_pdf([ENGLISH])).json()["pages"][0]["method"] == "text"
    error = error_of(ocr(url, scanned_pdf([scanned_page(ENGLISH)])), 503)
    assert "pip install -e '.[tools]'" in error["message"]


def test_a_client_that_goes_away_stops_the_pages_not_started(
        make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    url = make_gateway({"models": [{"name": "ocr", "provider": "ocr", "threads": 1,
                                    "max_pages": 50}]})
    pages = [scanned_page([f"Page {i}", *ENGLISH]) for i in range(30)]
    document = scanned_pdf(pages)
    with caplog.at_level(logging.INFO, logger="gateway"):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/tools/ocr", headers=AUTH, timeout=httpx.Timeout(5, read=3),
                       files={"file": ("scan.pdf", document, "application/pdf")})
        deadline = time.monotonic() + 60
        while "pages not read" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
    assert re.search(r"the request ended; (\d+) of 30 pages not read", caplog.text)
    assert int(re.search(r"(\d+) of 30", caplog.text)[1]) > 10  # type: ignore[index]
    # and the deployment is free again for the next document
    assert ocr(url, text_pdf([ENGLISH])).status_code == 200


def test_a_text_pdf_in_an_image_field_name_is_still_sniffed(ocr_gateway: str) -> None:
    data = text_pdf([ENGLISH])
    answer = ocr(ocr_gateway, data, filename="looks-like.png").json()
    assert answer["pages"][0]["method"] == "text"


def test_a_page_with_nothing_on_it(ocr_gateway: str) -> None:
    blank = image_bytes(Image.new("RGB", (400, 200), "white"), "PNG")
    answer = ocr(ocr_gateway, blank).json()
    assert answer == {"text": "", "pages": [{"page": 1, "text": "", "method": "ocr"}]}


def test_path_points_at_other_models(make_gateway: GatewayFactory) -> None:
    """``path``: a folder of PaddleOCR ONNX models (here the bundled ones, found through the
    package's file list), or a tessdata folder (here Debian's)."""
    import importlib.metadata
    from pathlib import Path

    files = importlib.metadata.distribution("rapidocr-onnxruntime").files or []
    det = next(f for f in files if f.name.endswith("det_infer.onnx"))
    models = Path(str(det.locate())).parent
    tessdata = next(Path("/usr/share/tesseract-ocr").glob("*/tessdata"))
    url = make_gateway({"models": [
        {"name": "paddle", "provider": "ocr", "path": str(models)},
        {"name": "tess", "provider": "ocr", "engine": "tesseract", "path": str(tessdata)},
    ]})
    scan = image_bytes(scanned_page(ENGLISH), "PNG")
    for model in ("paddle", "tess"):
        answer = ocr(url, scan, model=model).json()
        assert similar(answer["text"], "\n".join(ENGLISH)) > 0.9, (model, answer)
