"""``ocr``: documents (PDF) and images read as text, ``POST /v1/tools/ocr``.

A PDF page's own text layer is used when it has one (``method: "text"``; pypdfium2, in the
core install); a page without one, and every image, is rendered and read by an OCR engine
(``method: "ocr"``; the ``tools`` extra): ``rapidocr`` (bundled PP-OCRv4 models: Chinese and
English) or ``tesseract`` (the ``languages`` installed for Debian's tesseract-ocr, e.g.
``[kor, eng]``). Pages are read in parallel on ``threads`` threads while the next ones are
rendered (PDFium itself is serialized); one document at a time per deployment, the others wait
in a fair queue (``max_queue``, ``queue_timeout_s``). A client that goes away stops the pages
not yet started. With ``api_base`` the deployment calls a remote OCR service instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, PositiveInt, ValidationError, model_validator

from providers.base import DeploymentConfig
from providers.http import HTTPClient
from providers.local.runtime import ModelWorker, TurnQueue
from providers.tools import documents
from providers.tools.readers import RapidReader, Reader, TesseractReader, paddle_models
from providers.tools.service import INSTALL_HINT, RemoteTool, ToolConfig, require_tools
from wire.errors import UpstreamError, UpstreamUnavailable
from wire.tools import OCRLine, OCRPage, OCRRequest, OCRResult

log = logging.getLogger("gateway")

ENGINE_MODULES = {"rapidocr": "rapidocr_onnxruntime", "tesseract": "pytesseract"}


class OCRConfig(ToolConfig):
    provider: Literal["ocr"]
    engine: Literal["rapidocr", "tesseract"] = "rapidocr"
    languages: tuple[str, ...] = ("eng",)  # tesseract's language codes, e.g. [kor, eng]
    psm: int = Field(default=6, ge=0, le=13)  # tesseract's page segmentation mode
    dpi: float = Field(default=200, ge=50, le=600)  # PDF pages are rendered at this for OCR
    max_pages: PositiveInt = 200  # a longer document is a 400
    threads: PositiveInt = 2  # pages read at once

    @model_validator(mode="after")
    def _engine_installed(self) -> Self:
        if self.remote:
            return self
        # Without the tools extra an ocr deployment still reads PDF text layers; an engine
        # the config names on purpose must be installed.
        if "engine" in self.model_fields_set:
            require_tools(ENGINE_MODULES[self.engine], "ocr")
        if self.path is not None:
            _check_path(self.path, self.engine, self.languages)
        elif self.engine == "tesseract" and _installed(ENGINE_MODULES["tesseract"]):
            _check_tesseract(self.languages)
        return self


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_tesseract(languages: tuple[str, ...]) -> None:
    if shutil.which("tesseract") is None:
        raise ValueError("engine tesseract needs the tesseract program: apt-get install "
                         "tesseract-ocr")
    from providers.tools.readers import installed_tesseract_languages

    installed = installed_tesseract_languages()
    for code in languages:
        if code not in installed:
            raise ValueError(f"languages: '{code}' is not installed for tesseract (installed: "
                             f"{', '.join(sorted(installed))}); apt-get install "
                             f"tesseract-ocr-{code}")


def _check_path(path: Path, engine: str, languages: tuple[str, ...]) -> None:
    """``path`` is a folder of PaddleOCR ONNX models (rapidocr) or a tessdata folder."""
    if not path.is_dir():
        raise ValueError(f"path: not a folder: {path}")
    if engine == "rapidocr":
        paddle_models(path)
        return
    for code in languages:
        if not (path / f"{code}.traineddata").is_file():
            raise ValueError(f"path: {path} has no {code}.traineddata")


def _load_reader(config: OCRConfig) -> Reader:
    if config.engine == "tesseract":
        return TesseractReader(config.path, config.languages, config.psm, config.timeout_s)
    return RapidReader(config.path, 1 if config.threads > 1 else -1)


class OCRTool:
    """ocr (OCRProvider), start/aclose (ManagedProvider)."""

    Config: ClassVar[type[DeploymentConfig]] = OCRConfig

    def __init__(self, config: OCRConfig, http: HTTPClient) -> None:
        self._name = config.name
        self._config = config
        self._remote = RemoteTool(config, http, "ocr") if config.remote else None
        self._worker: ModelWorker[Reader] = ModelWorker(config.name,
                                                        partial(_load_reader, config))
        self._queue = TurnQueue(config.name, config.max_queue, config.queue_timeout_s)
        self._pool = ThreadPoolExecutor(config.threads, thread_name_prefix=f"ocr-{config.name}")

    def _engine_installed(self) -> bool:
        return _installed(ENGINE_MODULES[self._config.engine]) and _installed("PIL")

    async def start(self) -> None:
        if self._remote is None and not self._engine_installed():
            log.warning("ocr model %s reads PDF text layers only: images and scanned pages "
                        "need the tools extra (%s)", self._name, INSTALL_HINT)
        elif self._remote is None and self._config.preload:
            await self._worker.load()

    async def aclose(self) -> None:
        await self._worker.aclose()
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    async def ocr(self, request: OCRRequest, model: str) -> OCRResult:
        if self._remote is not None:
            return await self._ocr_remote(request, model)
        kind = documents.sniff(request.file.data)
        async with self._queue.turn():
            if kind == "pdf":
                pages = await self._read_pdf(request)
            else:
                pages = await self._read_image(request)
        return OCRResult(text="\n\n".join(p.text for p in pages if p.text), pages=pages)

    async def _reader(self) -> Reader:
        if not self._engine_installed():
            raise UpstreamUnavailable(
                f"The model '{self._name}' reads PDF text layers only: reading images and "
                f"scanned pages needs the {self._config.engine} engine ({INSTALL_HINT}).")
        return await self._worker.load()

    async def _read_pdf(self, request: OCRRequest) -> list[OCRPage]:
        config = self._config
        document = await asyncio.to_thread(documents.open_pdf, request.file.data)
        try:
            count = await asyncio.to_thread(_page_count, document)
            documents.check_pages(count, config.max_pages)
            return await self._pages(document, count, request.lines)
        finally:
            await asyncio.to_thread(documents.close_pdf, document)

    async def _pages(self, document: Any, count: int, lines: bool) -> list[OCRPage]:
        """Each page's text layer, or its pixels read by OCR on the pool (at most twice as
        many rendered pages waiting as there are threads)."""
        dpi, room = self._config.dpi, asyncio.Semaphore(2 * self._config.threads)
        pages: list[OCRPage | asyncio.Future[OCRPage]] = []
        try:
            for i in range(count):
                layer = await asyncio.to_thread(documents.pdf_text, document, i, dpi, lines)
                if layer is not None:
                    pages.append(OCRPage(page=i + 1, text=layer.text, method="text",
                                         lines=layer.lines if lines else None))
                    continue
                reader = await self._reader()
                await room.acquire()
                image = await asyncio.to_thread(documents.render_pdf_page, document, i, dpi)
                pages.append(self._read_on_pool(reader, image, i + 1, lines, room))
            return [p if isinstance(p, OCRPage) else await p for p in pages]
        except BaseException:
            _stop(self._name, pages, count)
            raise

    def _read_on_pool(self, reader: Reader, image: Any, number: int, lines: bool,
                      room: asyncio.Semaphore | None = None) -> asyncio.Future[OCRPage]:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, _read_page, reader, image, number, lines)
        if room is not None:
            future.add_done_callback(lambda _: room.release())
        return future

    async def _read_image(self, request: OCRRequest) -> list[OCRPage]:
        reader = await self._reader()
        image = await asyncio.to_thread(documents.open_image, request.file.data)
        count = documents.frame_count(image)
        documents.check_pages(count, self._config.max_pages)
        frames = documents.frames(image)
        pages: list[OCRPage | asyncio.Future[OCRPage]] = []
        try:
            for number in range(1, count + 1):
                frame = await asyncio.to_thread(next, frames)
                pages.append(self._read_on_pool(reader, frame, number, request.lines))
            return [p if isinstance(p, OCRPage) else await p for p in pages]
        except BaseException:
            _stop(self._name, pages, count)
            raise

    async def _ocr_remote(self, request: OCRRequest, model: str) -> OCRResult:
        assert self._remote is not None
        body, _ = await self._remote.post([("model", model)], request.file,
                                          "detail=lines" if request.lines else "")
        try:
            return OCRResult.model_validate_json(body)
        except ValidationError:
            raise UpstreamError("The remote OCR service answered with something that is not "
                                "an OCR result.") from None


def _page_count(document: Any) -> int:
    with documents.PDFIUM_LOCK:
        return len(document)


def _read_page(reader: Reader, image: Any, number: int, lines: bool) -> OCRPage:
    try:
        found: list[OCRLine] = reader.read(image)
    except Exception as exc:  # the engine's own failure (a tesseract error, ...)
        log.exception("ocr: the engine failed on page %d", number)
        raise UpstreamError(f"The OCR engine failed on page {number}: {exc}") from None
    return OCRPage(page=number, text="\n".join(line.text for line in found), method="ocr",
                   lines=found if lines else None)


def _stop(name: str, pages: list[OCRPage | asyncio.Future[OCRPage]], count: int) -> None:
    """The request ended early (the client went away, or a page failed): the pages not yet
    started are dropped."""
    for page in pages:
        if isinstance(page, asyncio.Future) and not page.done():
            page.cancel()
    read = sum(1 for p in pages if isinstance(p, OCRPage) or (
        p.done() and not p.cancelled() and p.exception() is None))
    log.info("ocr model %s: the request ended; %d of %d pages not read", name, count - read,
             count)
