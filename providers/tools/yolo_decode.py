"""The arithmetic of a YOLO detector around its ONNX graph, in numpy (pure functions):
letterboxing the image into the model's input, reading the output of any of the common export
layouts, class-wise non-maximum suppression, and boxes back in the original image's pixels.

Output layouts (``layout_of``):
- ``anchors``: YOLOv8, v9, YOLO11 (and v10 exported without end-to-end NMS):
  ``(1, 4 + classes, anchors)``: cx, cy, w, h, then one score per class;
- ``objectness``: YOLOv5/v7 style ``(1, anchors, 5 + classes)``: cx, cy, w, h, objectness,
  class scores (a score is objectness times the class score);
- ``end2end``: YOLOv10 and exports with NMS inside, ``(1, detections, 6)``: x1, y1, x2, y2,
  score, class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Layout = Literal["anchors", "objectness", "end2end"]
PAD_GREY = 114  # Ultralytics' letterbox colour
MAX_CANDIDATES = 30_000  # boxes going into NMS, best first
_COORD_OFFSET = 7680.0  # shifts each class's boxes apart so one NMS pass is class-wise


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the model's input: ``scale``, then ``pad`` added left/top."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(image: Any, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """A PIL RGB image resized to fit ``size`` (height, width) keeping its aspect, centred on
    grey; returns the (1, 3, h, w) float32 input in 0..1 and how it was placed."""
    from PIL import Image

    height, width = size
    scale = min(height / image.height, width / image.width)
    new_w, new_h = round(image.width * scale), round(image.height * scale)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    resized = image if (new_w, new_h) == image.size else image.resize(
        (new_w, new_h), Image.Resampling.BILINEAR)
    canvas = np.full((height, width, 3), PAD_GREY, dtype=np.uint8)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = np.asarray(resized)
    tensor = np.empty((1, 3, height, width), dtype=np.float32)
    np.multiply(canvas.transpose(2, 0, 1), np.float32(1 / 255), out=tensor[0])
    return tensor, Letterbox(scale, pad_x, pad_y)


def layout_of(shape: tuple[int, ...], classes: int | None) -> tuple[Layout, bool]:
    """The output's layout and whether its last two axes are swapped relative to the one
    described above; a ValueError when the shape is none of them."""
    if len(shape) != 3:
        raise ValueError(f"a YOLO output has 3 dimensions, this one has shape {shape}")
    a, b = shape[1], shape[2]
    if classes is not None:
        for layout, extra in (("anchors", 4), ("objectness", 5)):
            if a == extra + classes:
                return layout, layout == "objectness"  # type: ignore[return-value]
            if b == extra + classes:
                return layout, layout == "anchors"  # type: ignore[return-value]
    if b == 6:
        return "end2end", False
    if classes is None and a < b:
        return "anchors", False
    raise ValueError(f"cannot read a YOLO output of shape {shape} for {classes} classes")


def candidates(output: np.ndarray, layout: Layout, transposed: bool, confidence: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x1, y1, x2, y2 in the model's input pixels), scores and class ids scoring at
    least ``confidence``."""
    rows = output[0]
    if (layout == "anchors") != transposed:  # the canonical anchors layout is channels first
        rows = rows.T
    if layout == "end2end":
        keep = rows[:, 4] >= confidence
        rows = rows[keep]
        return rows[:, :4].astype(np.float32), rows[:, 4], rows[:, 5].astype(np.int64)
    scores_all = rows[:, 4:] if layout == "anchors" else rows[:, 5:] * rows[:, 4:5]
    class_ids = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(len(rows)), class_ids]
    keep = scores >= confidence
    rows, scores, class_ids = rows[keep], scores[keep], class_ids[keep]
    if len(scores) > MAX_CANDIDATES:
        best = np.argpartition(-scores, MAX_CANDIDATES)[:MAX_CANDIDATES]
        rows, scores, class_ids = rows[best], scores[best], class_ids[best]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2] / 2, rows[:, 3] / 2
    boxes = np.stack([cx - w, cy - h, cx + w, cy + h], axis=1).astype(np.float32)
    return boxes, scores, class_ids.astype(np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float,
        limit: int) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression within each class, best first, at
    most ``limit``."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    shifted = boxes + (class_ids[:, None] * _COORD_OFFSET)
    x1, y1, x2, y2 = shifted.T
    areas = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def to_original(boxes: np.ndarray, placed: Letterbox, width: int, height: int) -> np.ndarray:
    """Boxes from the model's input back to the original image's pixels, clipped to it."""
    out = boxes.copy()
    out[:, [0, 2]] = ((out[:, [0, 2]] - placed.pad_x) / placed.scale).clip(0, width)
    out[:, [1, 3]] = ((out[:, [1, 3]] - placed.pad_y) / placed.scale).clip(0, height)
    return out


def names_from_metadata(value: str | None) -> list[str] | None:
    """Ultralytics' ``names`` metadata (a Python dict literal ``{0: 'person', ...}``) as a
    list; None when absent or unreadable."""
    if not value:
        return None
    import ast

    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None
    if isinstance(parsed, dict) and all(isinstance(k, int) for k in parsed):
        return [str(parsed[k]) for k in sorted(parsed)]
    if isinstance(parsed, list | tuple):
        return [str(v) for v in parsed]
    return None


def input_size(shape: list[Any], imgsz_metadata: str | None, configured: int | None
               ) -> tuple[int, int]:
    """(height, width) of the model's input: the deployment's ``imgsz``, else a fixed shape
    in the graph, else the export's ``imgsz`` metadata, else 640."""
    if configured:
        return configured, configured
    h, w = shape[2] if len(shape) == 4 else None, shape[3] if len(shape) == 4 else None
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    if imgsz_metadata:
        import ast

        try:
            size = ast.literal_eval(imgsz_metadata)
        except (ValueError, SyntaxError):
            size = None
        if isinstance(size, list | tuple) and len(size) == 2:
            return int(size[0]), int(size[1])
        if isinstance(size, int):
            return size, size
    return 640, 640
