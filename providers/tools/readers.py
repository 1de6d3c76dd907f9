"""OCR engines: a page image in, its lines (text, confidence 0..1, box) out, top to bottom.

``rapidocr``: PaddleOCR's PP-OCRv4 models run on onnxruntime, as ``rapidocr_onnxruntime``
ships them (Chinese and English; Apache-2.0). ``tesseract``: the Debian ``tesseract-ocr``
program through pytesseract, in the ``languages`` installed for it (``tesseract-ocr-kor``
reads Korean). Both are the ``tools`` extra; each is imported when its engine loads. A reader
is called from several threads at once (pages in parallel).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from wire.tools import OCRLine


class Reader(Protocol):
    def read(self, image: Any) -> list[OCRLine]: ...

    def close(self) -> None: ...


class RapidReader:
    """``path``: a folder with the ONNX files to use instead of the bundled ones (``*det*``,
    ``*rec*`` and optionally ``*cls*``, as PaddleOCR names them)."""

    def __init__(self, path: Path | None, threads: int) -> None:
        from rapidocr_onnxruntime import RapidOCR

        options: dict[str, Any] = {"intra_op_num_threads": threads}
        if path is not None:
            options |= paddle_models(path)
        self._ocr = RapidOCR(**options)

    def read(self, image: Any) -> list[OCRLine]:
        import numpy as np

        found, _ = self._ocr(np.asarray(image)[:, :, ::-1])  # RGB -> OpenCV's BGR
        lines = []
        for points, text, score in found or ():
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            box = (round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1))
            lines.append(OCRLine(text=str(text), confidence=round(float(score), 4), box=box))
        return lines

    def close(self) -> None:
        del self._ocr


def paddle_models(folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in ("det", "rec", "cls"):
        files = sorted(folder.glob(f"*{part}*.onnx"))
        if files:
            found[f"{part}_model_path"] = str(files[0])
    if "det_model_path" not in found or "rec_model_path" not in found:
        raise ValueError(f"path: {folder} holds no *det*.onnx and *rec*.onnx models")
    return found


class TesseractReader:
    """``path``: a tessdata folder to use instead of the installed one. One tesseract run per
    page writes both its text (whose spacing is tesseract's own: Korean words are not split
    into syllables) and its word table (for the lines' boxes and confidences)."""

    def __init__(self, path: Path | None, languages: tuple[str, ...], psm: int,
                 timeout_s: float = 0) -> None:
        from pytesseract import pytesseract

        self._tesseract = pytesseract
        config = f"--psm {psm} -c tessedit_create_tsv=1"
        if path is not None:
            config += f' --tessdata-dir "{path}"'
        self._config = config
        self._lang = "+".join(languages)
        self._timeout = int(timeout_s)  # a page's longest run (0: none); then an error
        # Pages run in parallel on threads: one OpenMP thread per tesseract process.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")

    def read(self, image: Any) -> list[OCRLine]:
        tesseract = self._tesseract
        with tesseract.save(image) as (base, filename):
            tesseract.run_tesseract(filename, base, "txt tsv", self._lang, self._config,
                                    timeout=self._timeout)
            text = Path(f"{base}.txt").read_text(encoding="utf-8")
            table = tesseract.file_to_dict(Path(f"{base}.tsv").read_text(encoding="utf-8"),
                                           "\t", 11)
        return tesseract_lines(table, [line for line in text.splitlines() if line.strip()])

    def close(self) -> None:
        pass


def tesseract_lines(data: dict[str, list[Any]], texts: list[str] | None = None
                    ) -> list[OCRLine]:
    """Tesseract's word table grouped into lines: the line's box around its words, its
    confidence their mean, its text the matching line of ``texts`` (tesseract's own text
    output) when there are as many, else the words joined by spaces."""
    grouped: dict[tuple[int, int, int], list[int]] = {}
    for i, word in enumerate(data["text"]):
        if str(word).strip() and float(data["conf"][i]) >= 0:
            key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
            grouped.setdefault(key, []).append(i)
    if texts is not None and len(texts) != len(grouped):
        texts = None
    lines = []
    for n, words in enumerate(grouped.values()):
        left = min(int(data["left"][i]) for i in words)
        top = min(int(data["top"][i]) for i in words)
        right = max(int(data["left"][i]) + int(data["width"][i]) for i in words)
        bottom = max(int(data["top"][i]) + int(data["height"][i]) for i in words)
        confidence = sum(float(data["conf"][i]) for i in words) / len(words) / 100
        text = texts[n].strip() if texts else " ".join(str(data["text"][i]).strip()
                                                       for i in words)
        lines.append(OCRLine(text=text, confidence=round(confidence, 4),
                             box=(left, top, right, bottom)))
    return lines


def installed_tesseract_languages() -> set[str]:
    import pytesseract

    return set(pytesseract.get_languages(config=""))


ReaderFactory = Callable[..., Reader]
