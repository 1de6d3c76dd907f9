"""The tools' pure parts: YOLO output layouts, NMS, letterbox arithmetic, file sniffing,
tesseract's word table as lines."""

from __future__ import annotations

import numpy as np
import pytest

from providers.tools import documents
from providers.tools import yolo_decode as yd
from providers.tools.readers import tesseract_lines
from wire.errors import InvalidRequest


def test_layouts_of_the_common_exports() -> None:
    assert yd.layout_of((1, 84, 8400), 80) == ("anchors", False)  # v8, v9, YOLO11
    assert yd.layout_of((1, 8400, 84), 80) == ("anchors", True)
    assert yd.layout_of((1, 25200, 85), 80) == ("objectness", False)  # v5, v7
    assert yd.layout_of((1, 300, 6), 80) == ("end2end", False)  # v10, nms=True exports
    assert yd.layout_of((1, 7, 2100), None) == ("anchors", False)  # 3 classes, no names
    with pytest.raises(ValueError):
        yd.layout_of((1, 84), 80)
    with pytest.raises(ValueError):
        yd.layout_of((1, 50, 50), 80)


def anchors_output(rows: list[list[float]]) -> np.ndarray:
    """(1, 4 + classes, anchors) from per-anchor rows [cx, cy, w, h, scores...]."""
    return np.asarray(rows, dtype=np.float32).T[None]


def test_candidates_and_classwise_nms() -> None:
    output = anchors_output([
        [50, 50, 20, 20, 0.9, 0.0],   # class 0
        [52, 50, 20, 20, 0.8, 0.0],   # overlaps the first: suppressed
        [51, 50, 20, 20, 0.0, 0.7],   # same place, class 1: kept (NMS is per class)
        [150, 150, 10, 10, 0.6, 0.0],  # elsewhere: kept
        [10, 10, 4, 4, 0.1, 0.0],     # below the threshold
    ])
    boxes, scores, ids = yd.candidates(output, "anchors", False, 0.25)
    assert len(scores) == 4
    np.testing.assert_allclose(boxes[0], [40, 40, 60, 60])
    kept = yd.nms(boxes, scores, ids, 0.5, 100)
    assert [round(float(scores[k]), 2) for k in kept] == [0.9, 0.7, 0.6]
    assert list(ids[kept]) == [0, 1, 0]
    assert len(yd.nms(boxes, scores, ids, 0.5, 2)) == 2
    assert len(yd.nms(boxes[:0], scores[:0], ids[:0], 0.5, 10)) == 0


def test_objectness_and_end2end_outputs() -> None:
    rows = np.asarray([[50, 50, 20, 20, 0.5, 0.2, 0.9]], dtype=np.float32)[None]
    boxes, scores, ids = yd.candidates(rows, "objectness", False, 0.25)
    assert list(ids) == [1] and scores[0] == pytest.approx(0.45)
    end2end = np.asarray([[10, 20, 30, 40, 0.8, 3], [0, 0, 1, 1, 0.1, 2]],
                         dtype=np.float32)[None]
    boxes, scores, ids = yd.candidates(end2end, "end2end", False, 0.25)
    assert list(ids) == [3]
    np.testing.assert_allclose(boxes[0], [10, 20, 30, 40])


def test_letterbox_and_back() -> None:
    from PIL import Image

    image = Image.new("RGB", (1280, 640), (255, 0, 0))
    tensor, placed = yd.letterbox(image, (640, 640))
    assert tensor.shape == (1, 3, 640, 640) and tensor.dtype == np.float32
    assert placed.scale == 0.5 and (placed.pad_x, placed.pad_y) == (0, 160)
    assert tensor[0, 0, 0, 0] == pytest.approx(114 / 255)  # grey padding above
    assert tensor[0, 0, 320, 320] == pytest.approx(1.0)  # red image
    back = yd.to_original(np.asarray([[0, 160, 640, 480], [-5, 100, 700, 500]], np.float32),
                          placed, 1280, 640)
    np.testing.assert_allclose(back, [[0, 0, 1280, 640], [0, 0, 1280, 640]])


def test_names_and_input_size_from_metadata() -> None:
    assert yd.names_from_metadata("{0: 'person', 1: 'bicycle'}") == ["person", "bicycle"]
    assert yd.names_from_metadata("['a', 'b']") == ["a", "b"]
    assert yd.names_from_metadata("not python") is None
    assert yd.input_size(["batch", 3, "height", "width"], "[640, 640]", None) == (640, 640)
    assert yd.input_size([1, 3, 320, 416], None, None) == (320, 416)
    assert yd.input_size([1, 3, 320, 416], None, 512) == (512, 512)
    assert yd.input_size(["b", 3, "h", "w"], None, None) == (640, 640)


@pytest.mark.parametrize(("head", "kind"), [
    (b"%PDF-1.7\n", "pdf"), (b"\x89PNG\r\n\x1a\n....", "png"), (b"\xff\xd8\xff\xe0", "jpeg"),
    (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"), (b"BM....", "bmp"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"), (b"\n\n%PDF-1.4", "pdf"),
])
def test_sniff(head: bytes, kind: str) -> None:
    assert documents.sniff(head) == kind


def test_sniff_refuses_other_files() -> None:
    for data in (b"", b"GIF89a", b"PK\x03\x04"):
        with pytest.raises(InvalidRequest):
            documents.sniff(data)


def test_tesseract_word_table_as_lines() -> None:
    table = {
        "block_num": [1, 1, 1, 1, 1], "par_num": [1, 1, 1, 1, 1], "line_num": [1, 1, 1, 2, 2],
        "text": ["", "월", "요일에", "Next", "line"], "conf": [-1, 90, 80, 70, 90],
        "left": [0, 10, 40, 10, 60], "top": [0, 10, 12, 50, 52],
        "width": [0, 25, 50, 40, 30], "height": [0, 20, 20, 18, 18],
    }
    lines = tesseract_lines(table, ["월요일에", "Next line"])
    assert [line.text for line in lines] == ["월요일에", "Next line"]
    assert lines[0].box == (10, 10, 90, 32) and lines[0].confidence == pytest.approx(0.85)
    # without tesseract's own text (or when it does not match), words joined by spaces
    assert tesseract_lines(table, ["only one"])[0].text == "월 요일에"
