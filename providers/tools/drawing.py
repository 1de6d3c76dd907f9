"""Detections drawn on their image (``?format=png``): a box and a label per object (Pillow)."""

from __future__ import annotations

import io
from typing import Any

from wire.tools import Detection

# Ultralytics' palette, so boxes look as users know them from its tools.
PALETTE = ((255, 56, 56), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49),
           (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187),
           (44, 153, 168), (0, 194, 255), (52, 69, 147), (100, 115, 255), (0, 24, 236),
           (132, 56, 255), (82, 0, 133), (203, 56, 255), (255, 149, 200), (255, 55, 199))


def draw_detections(image: Any, objects: list[Detection]) -> bytes:
    """A PNG of ``image`` (PIL, RGB; left unchanged) with each object's box and label."""
    from PIL import ImageDraw, ImageFont

    canvas = image.copy()
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 50)))
    colours: dict[str, tuple[int, int, int]] = {}
    for obj in objects:
        colour = colours.setdefault(obj.label, PALETTE[len(colours) % len(PALETTE)])
        x1, y1, x2, y2 = obj.box
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        text = f"{obj.label} {obj.confidence:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text, font=font)
        height = bottom - top + 2 * line
        y = y1 - height if y1 - height >= 0 else y1
        draw.rectangle((x1, y, x1 + right - left + 2 * line, y + height), fill=colour)
        draw.text((x1 + line, y + line - (top - y1)), text, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
