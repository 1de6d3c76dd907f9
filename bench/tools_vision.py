"""What the gateway adds to object detection, and how fast it reads documents, in one run.

1. Detection: the same photograph (skimage's ``coffee``, 600x400) through ``gateway serve``
   (a ``yolo`` deployment of the default yolo11n.onnx, ``threads`` intra-op threads), one
   request after another over a kept-alive connection, interleaved with the same work done
   bare in this process: onnxruntime with the same threads on the same file, with the same
   pre- and post-processing (decode, letterbox, NMS), and the session's ``run`` alone.
   Prints the medians and the gateway's added milliseconds per image (target <= 10 ms).
2. OCR: pages per second through the gateway for a PDF with a text layer and for a scanned
   one (image-only pages at 150 dpi), with rapidocr and with tesseract.

    PYTHONPATH=. flock -x /tmp/cpu.lock python bench/tools_vision.py [--images 40]
        [--threads 2] [--text-pages 50] [--scanned-pages 4] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import BenchError, free_port, wait_http  # noqa: E402
from tests.tool_files import photograph, scanned_page, scanned_pdf, text_pdf  # noqa: E402

TARGET_ADDED_MS = 10.0
LINES = ["Quarterly report of the operations team", "Revenue grew by 12 percent",
         "Costs fell in every region but one", "The new release ships on Monday"] * 3


def start_gateway(workdir: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "models.yaml"
    config.write_text(json.dumps({"models": [
        {"name": "yolo", "provider": "yolo", "threads": threads, "preload": True},
        {"name": "ocr", "provider": "ocr", "threads": threads, "max_pages": 1000},
        {"name": "ocr-tesseract", "provider": "ocr", "engine": "tesseract",
         "threads": threads, "max_pages": 1000},
    ]}))
    port = free_port()
    log = workdir / "gateway.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_MASTER_KEY": ""}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                                 str(config), "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, log, "gateway")
    return proc, url


def bare_detector(threads: int) -> tuple[Any, Any]:
    """The whole bare pipeline (decode, letterbox, session.run, NMS) and session.run alone,
    as two callables on image bytes, on one onnxruntime session with ``threads`` threads."""
    from PIL import Image

    from providers.tools import yolo_decode
    from providers.tools.yolo import YoloConfig, YoloEngine
    from wire.tools import DetectRequest, ToolFile

    engine = YoloEngine(YoloConfig(name="bare", provider="yolo", threads=threads))
    session = engine._session
    image = Image.open(io.BytesIO(photograph("coffee"))).convert("RGB")
    tensor, _ = yolo_decode.letterbox(image, engine.size)
    feed = {session.get_inputs()[0].name: tensor}

    def pipeline(data: bytes) -> int:
        result = engine.detect(DetectRequest(ToolFile(data))).result
        assert result is not None
        return len(result.objects)

    def run_only(_: bytes) -> int:
        return len(session.run(None, feed))

    return pipeline, run_only


def bench_detection(url: str, images: int, threads: int) -> dict[str, float]:
    photo = photograph("coffee")
    pipeline, run_only = bare_detector(threads)
    gateway_s, bare_s, run_s = [], [], []
    with httpx.Client(timeout=60) as client:
        def through_gateway(_: bytes = photo) -> int:
            response = client.post(f"{url}/v1/tools/detect", data={"model": "yolo"},
                                   files={"file": ("coffee.png", photo, "image/png")})
            response.raise_for_status()
            return len(response.json()["objects"])

        expected = pipeline(photo)
        if through_gateway() != expected:
            raise BenchError("the gateway and the bare pipeline found different objects")
        for _ in range(3):  # warm up both
            through_gateway(), pipeline(photo), run_only(photo)
        for _ in range(images):
            for samples, fn in ((gateway_s, through_gateway), (bare_s, pipeline),
                                (run_s, run_only)):
                started = time.perf_counter()
                fn(photo)
                samples.append(time.perf_counter() - started)
    gateway_ms = statistics.median(gateway_s) * 1e3
    bare_ms = statistics.median(bare_s) * 1e3
    run_ms = statistics.median(run_s) * 1e3
    return {"gateway_ms": gateway_ms, "bare_pipeline_ms": bare_ms, "bare_run_ms": run_ms,
            "added_ms": gateway_ms - bare_ms, "added_vs_run_ms": gateway_ms - run_ms}


def pages_per_s(url: str, model: str, document: bytes, pages: int, method: str,
                runs: int = 2) -> float:
    times = []
    with httpx.Client(timeout=600) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.post(f"{url}/v1/tools/ocr", data={"model": model},
                                   files={"file": ("doc.pdf", document, "application/pdf")})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            got = response.json()["pages"]
            if len(got) != pages or {p["method"] for p in got} != {method}:
                raise BenchError(f"{model}: unexpected answer {response.text[:300]}")
    return pages / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text-pages", type=int, default=50)
    parser.add_argument("--scanned-pages", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_gateway(Path(tmp), args.threads)
        try:
            detection = bench_detection(url, args.images, args.threads)
            text = text_pdf([LINES[:6]] * args.text_pages)
            scan = scanned_pdf([scanned_page(LINES, size=(1240, 1754), font_size=28)]
                               * args.scanned_pages)
            ocr = {
                "text_pdf_pages_s": pages_per_s(url, "ocr", text, args.text_pages, "text"),
                "scanned_rapidocr_pages_s": pages_per_s(url, "ocr", scan, args.scanned_pages,
                                                        "ocr"),
                "scanned_tesseract_pages_s": pages_per_s(url, "ocr-tesseract", scan,
                                                         args.scanned_pages, "ocr"),
            }
        finally:
            proc.terminate()
            proc.wait(10)
    after = os.getloadavg()
    result = {"detection": detection, "ocr": ocr, "threads": args.threads,
              "load_before": load, "load_after": after}
    print(f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} (2 cores)")
    print(f"detection, coffee 600x400, yolo11n, {args.threads} threads, median of "
          f"{args.images}:")
    print(f"  bare session.run       {detection['bare_run_ms']:7.1f} ms")
    print(f"  bare pipeline          {detection['bare_pipeline_ms']:7.1f} ms  (decode, "
          "letterbox, run, NMS)")
    print(f"  through the gateway    {detection['gateway_ms']:7.1f} ms  (HTTP, multipart)")
    verdict = "ok" if detection["added_ms"] <= TARGET_ADDED_MS else "OVER TARGET"
    print(f"  added by the gateway   {detection['added_ms']:7.1f} ms per image "
          f"(target <= {TARGET_ADDED_MS:g} ms: {verdict}); vs session.run alone "
          f"{detection['added_vs_run_ms']:.1f} ms")
    print(f"OCR pages/s: text PDF {ocr['text_pdf_pages_s']:.1f} ({args.text_pages} pages), "
          f"scanned 150 dpi A4 ({args.scanned_pages} pages) rapidocr "
          f"{ocr['scanned_rapidocr_pages_s']:.2f}, tesseract "
          f"{ocr['scanned_tesseract_pages_s']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
