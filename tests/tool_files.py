"""Real files for the tool tests: PDFs with a text layer (reportlab, with Debian's Nanum
Gothic for Korean), scanned pages (text drawn with Pillow, saved as image-only PDFs or as
images), and photographs that ship with scikit-image."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

NANUM = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")  # fonts-nanum
SCAN_DPI = 150

KOREAN_NOTE = [
    "주간 회의록",
    "참석자: 김민수, 이지은, 박서준",
    "1. 다음 주 월요일에 새 버전을 출시합니다.",
    "2. 서버 비용을 줄이는 방안을 검토합니다.",
]


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(NANUM), size)  # Korean and Latin glyphs


def scanned_page(lines: list[str], *, size: tuple[int, int] = (900, 420),
                 font_size: int = 30) -> Image.Image:
    """A white page with ``lines`` drawn on it, as a scanner would see it."""
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    face = font(font_size)
    for i, line in enumerate(lines):
        draw.text((50, 50 + i * int(font_size * 2.2)), line, font=face, fill="black")
    return page


def image_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def scanned_pdf(pages: list[Image.Image]) -> bytes:
    """An image-only PDF (no text layer), one page per image, at ``SCAN_DPI``."""
    out = io.BytesIO()
    pages[0].save(out, format="PDF", resolution=SCAN_DPI, save_all=True,
                  append_images=pages[1:])
    return out.getvalue()


def text_pdf(pages: list[list[str]], *, encrypt: str | None = None,
             scanned_after: list[Image.Image] | None = None) -> bytes:
    """A PDF whose pages carry a real text layer (Nanum Gothic, so Korean works), optionally
    followed by scanned pages (images only) and optionally encrypted with a password."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("Nanum", str(NANUM)))
    out = io.BytesIO()
    width, height = 432, 216  # 6 x 3 inches
    pdf = canvas.Canvas(out, pagesize=(width, height), encrypt=encrypt)
    for lines in pages:
        pdf.setFont("Nanum", 14)
        for i, line in enumerate(lines):
            pdf.drawString(36, height - 40 - i * 24, line)
        pdf.showPage()
    for image in scanned_after or []:
        w, h = image.width * 72 / SCAN_DPI, image.height * 72 / SCAN_DPI
        pdf.setPageSize((w, h))
        pdf.drawImage(ImageReader(image), 0, 0, width=w, height=h)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def photograph(name: str) -> bytes:
    """A photograph from skimage.data as PNG bytes (``motorcycle``: the left stereo view)."""
    from skimage import data

    pixels = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return image_bytes(Image.fromarray(pixels), "PNG")
