"""Documents as pages: what a file is (by its first bytes), a PDF page's own text layer, a
page rendered to pixels, an image's frames. Blocking work; the OCR provider runs it on threads.

PDFs are read with pypdfium2 (a core dependency: PDF text layers work without the ``tools``
extra); images with Pillow (the ``tools`` extra). PDFium is not thread-safe, not even across
documents, so every call into it holds ``PDFIUM_LOCK``. A box is ``[x1, y1, x2, y2]`` in the
pixels of the page as rendered for OCR (``dpi``), origin top left, for both ways of reading.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wire.errors import InvalidRequest
from wire.tools import OCRLine

PDFIUM_LOCK = threading.Lock()
MAX_RENDER_PIXELS = 40_000_000  # a page larger than this at ``dpi`` is rendered smaller
IMAGE_KINDS = ("png", "jpeg", "tiff", "webp", "bmp")
_MAGIC = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
)
_PDFIUM_PASSWORD, _PDFIUM_SECURITY = 4, 5  # FPDF_ERR_PASSWORD, FPDF_ERR_SECURITY


def bad_file(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="file")


def sniff(data: bytes) -> str:
    """``pdf`` or one of ``IMAGE_KINDS``, from the file's first bytes; a 400 for anything else."""
    if not data:
        raise bad_file("The file is empty.")
    head = data[:1024]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"%PDF-" in head:  # a PDF may start with a few junk bytes
        return "pdf"
    raise bad_file("The file is neither a PDF nor an image (png, jpeg, tiff, webp, bmp).")


def check_pages(count: int, max_pages: int) -> None:
    if count == 0:
        raise bad_file("The document has no pages.")
    if count > max_pages:
        raise bad_file(f"The document has {count} pages; this model reads at most {max_pages} "
                       "(its max_pages).")


# -- PDF ----------------------------------------------------------------------------------------


def open_pdf(data: bytes) -> Any:
    """A ``pypdfium2.PdfDocument``; a 400 for an encrypted or unreadable file."""
    import pypdfium2 as pdfium

    try:
        with PDFIUM_LOCK:
            return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (_PDFIUM_PASSWORD, _PDFIUM_SECURITY):
            raise bad_file("The PDF is encrypted (password-protected); send it without the "
                           "password.") from None
        raise bad_file("The PDF is damaged or not a PDF: PDFium cannot open it.") from None


@dataclass(frozen=True, slots=True)
class PdfText:
    """A page's own text layer."""

    text: str
    lines: list[OCRLine]


def page_scale(width_pt: float, height_pt: float, dpi: float) -> float:
    """Pixels per PDF point for a page rendered at ``dpi``, less for a huge page."""
    scale = dpi / 72
    pixels = width_pt * height_pt * scale * scale
    return scale if pixels <= MAX_RENDER_PIXELS else scale * (MAX_RENDER_PIXELS / pixels) ** 0.5


def _page_error(index: int) -> InvalidRequest:
    return bad_file(f"Page {index + 1} of the PDF is damaged: PDFium cannot read it.")


def pdf_text(document: Any, index: int, dpi: float, with_lines: bool) -> PdfText | None:
    """Page ``index``'s text layer, or None when it has none (a scanned page)."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            page = document[index]
            textpage = page.get_textpage()
        except pdfium.PdfiumError:
            raise _page_error(index) from None
        try:
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
            if not text.strip():
                return None
            scale = page_scale(page.get_width(), page.get_height(), dpi)
            lines = _pdf_lines(textpage, page.get_height(), scale) if with_lines else []
        finally:
            textpage.close()
            page.close()
    return PdfText(text.strip(), lines)


def _pdf_lines(textpage: Any, height: float, scale: float) -> list[OCRLine]:
    """The text layer's runs (PDFium's text rectangles), in rendered pixels."""
    lines = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        text = textpage.get_text_bounded(left, bottom, right, top).strip()
        if text:
            box = (round(left * scale, 1), round((height - top) * scale, 1),
                   round(right * scale, 1), round((height - bottom) * scale, 1))
            lines.append(OCRLine(text=text, confidence=1.0, box=box))
    return lines


def render_pdf_page(document: Any, index: int, dpi: float) -> Any:
    """Page ``index`` as a PIL image (RGB) at ``dpi`` (see ``page_scale``)."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            page = document[index]
        except pdfium.PdfiumError:
            raise _page_error(index) from None
        try:
            scale = page_scale(page.get_width(), page.get_height(), dpi)
            return page.render(scale=scale).to_pil().convert("RGB")
        except pdfium.PdfiumError:
            raise _page_error(index) from None
        finally:
            page.close()


def close_pdf(document: Any) -> None:
    with PDFIUM_LOCK:
        document.close()


# -- images -------------------------------------------------------------------------------------


def open_image(data: bytes) -> Any:
    """A PIL image (not yet decoded); a 400 when Pillow cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise bad_file(f"The image cannot be read: {exc}") from None
    except Image.DecompressionBombError:
        raise bad_file("The image is too large (more pixels than Pillow's safety limit).") \
            from None
    return image


def frame_count(image: Any) -> int:
    return int(getattr(image, "n_frames", 1))


def frames(image: Any) -> Iterator[Any]:
    """Each frame (a multi-page TIFF has several) as an RGB image."""
    for i in range(frame_count(image)):
        try:
            image.seek(i)
            yield image.convert("RGB")
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise bad_file(f"Page {i + 1} of the image cannot be read: {exc}") from None
