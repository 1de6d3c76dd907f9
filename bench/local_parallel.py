"""``parallel: N`` slots under load: 4 clients at once on one local model, for each slots
setting and provider, in one run (``bench/local.py`` runs this after its bare/gateway
comparison; ``--parallel-only`` runs only this).

For each provider (``llama-cpp`` with the GGUF; ``onnx`` with ``--onnx DIR``, or the GGUF
converted by ``gateway convert-onnx`` where torch is installed) and each ``PARALLELxTHREADS``
of ``--slots`` (default ``1x1,1x2,2x1,4x1``: slots x ``n_threads`` per slot), a fresh
``gateway serve`` answers one warm-up request, then 4 clients stream at once (10 ms apart, so
that they arrive in order). Reported: each client's time to first token, the aggregate
tokens/s (all clients' tokens / time until the last finished), and the gateway's memory from
``/proc/PID/smaps_rollup`` (RSS, PSS, anonymous) and from ``/proc/PID/smaps`` for the model's
own file (its mapped pages, counted in RSS once per mapping, in PSS once). Targets, for
``parallel: 2`` against ``parallel: 1`` at one thread per slot: aggregate >= 1.7x and the
second client's first token within 0.3 s. Last, embeddings of 64 short texts on an
``embedding: true`` deployment of the GGUF: as one list, and one request per text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.local import CLIENTS, ROOT, served, stream
from bench.overhead import BenchError

AGGREGATE_TARGET = 1.7
TTFT_TARGET_S = 0.3


@dataclass
class Result:
    provider: str
    parallel: int
    threads: int
    clients: list[dict[str, float]] = field(default_factory=list)
    aggregate_tps: float = 0.0
    memory_mib: dict[str, float] = field(default_factory=dict)
    health_ms: dict[str, float] = field(default_factory=dict)  # /health while the 4 stream

    @property
    def label(self) -> str:
        return f"{self.provider} parallel {self.parallel} x {self.threads} thread" + (
            "s" if self.threads > 1 else "")


def slot_settings(spec: str) -> list[tuple[int, int]]:
    """``"1x1,2x1"`` → [(1, 1), (2, 1)]: (parallel, n_threads per slot)."""
    settings = []
    for item in spec.split(","):
        parallel, _, threads = item.strip().partition("x")
        settings.append((int(parallel), int(threads or 1)))
    return settings


def memory(pid: int, model: Path) -> dict[str, float]:
    """MiB: the process's RSS, PSS and anonymous memory, and the model file's mapped pages."""
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        rollup[key] = int(value.split()[0]) / 1024
    mapped = {"Rss": 0.0, "Pss": 0.0}
    inside = False
    model_path = str(model.resolve())
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5:  # a mapping's header line
            inside = line.rstrip().endswith(model_path) or (
                model.is_dir() and model_path in line)
        elif inside and parts and parts[0].rstrip(":") in mapped:
            mapped[parts[0].rstrip(":")] += int(parts[1]) / 1024
    return {"rss": rollup["Rss"], "pss": rollup["Pss"], "anonymous": rollup["Anonymous"],
            "model_file_rss": mapped["Rss"], "model_file_pss": mapped["Pss"]}


async def health_while(http: httpx.AsyncClient, done: asyncio.Event) -> dict[str, float]:
    """Milliseconds that ``/health`` takes, asked every 50 ms until ``done``: median and max."""
    times = []
    while not done.is_set():
        started = time.perf_counter()
        (await http.get("/health")).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.05)
    times.sort()
    return {"p50": times[len(times) // 2], "max": times[-1]} if times else {}


async def four_clients(url: str, max_tokens: int
                       ) -> tuple[list[dict[str, float]], float, dict[str, float]]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await stream(http, 99, max_tokens)  # warm-up

        async def client(i: int) -> tuple[Any, float]:
            await asyncio.sleep(i * 0.01)
            return await stream(http, i, max_tokens)

        started, streaming_ended = time.perf_counter(), asyncio.Event()
        health = asyncio.create_task(health_while(http, streaming_ended))
        finished = await asyncio.gather(*(client(i) for i in range(CLIENTS)))
        streaming_ended.set()
        health_ms = await health
    clients = [{"ttft_s": run.ttft_s, "tokens": run.tokens, "decode_tps": run.decode_tps,
                "finished_s": done - started} for run, done in finished]
    total = sum(c["tokens"] for c in clients)
    return clients, total / max(c["finished_s"] for c in clients), health_ms


def measure(provider: str, path: Path, parallel: int, threads: int, args: argparse.Namespace
            ) -> Result:
    result = Result(provider, parallel, threads)
    deployment = {"name": "bench", "provider": provider, "path": str(path), "n_ctx": args.n_ctx,
                  "n_threads": threads, "parallel": parallel, "preload": True,
                  "max_queue": CLIENTS}
    with served(deployment, "gateway-bench-parallel-") as (proc, url):
        result.clients, result.aggregate_tps, result.health_ms = asyncio.run(
            four_clients(url, args.max_tokens))
        result.memory_mib = memory(proc.pid, path)
    return result


def onnx_model(args: argparse.Namespace, workdir: Path) -> Path | None:
    if args.onnx is not None:
        return Path(args.onnx)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("onnx: skipped (no --onnx DIR, and converting the GGUF needs torch)")
        return None
    out = workdir / "onnx"
    subprocess.run([sys.executable, "-m", "gateway", "convert-onnx", str(args.model), str(out)],
                   check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   stdout=subprocess.DEVNULL)
    return out


def report(results: list[Result]) -> dict[str, Any]:
    print(f"\n{CLIENTS} clients at once, {'':30}aggregate   TTFT s per client       "
          "RSS    PSS  anon  model file RSS/PSS (MiB)  /health ms p50/max")
    for r in results:
        ttfts = " ".join(f"{c['ttft_s']:5.2f}" for c in r.clients)
        m = r.memory_mib
        print(f"{r.label:42}{r.aggregate_tps:7.1f} t/s  {ttfts}  {m['rss']:6.0f} {m['pss']:6.0f}"
              f" {m['anonymous']:5.0f}  {m['model_file_rss']:6.0f}/{m['model_file_pss']:.0f}"
              f"  {r.health_ms.get('p50', 0):6.1f}/{r.health_ms.get('max', 0):.1f}")
    verdicts = {}
    for provider in dict.fromkeys(r.provider for r in results):
        by = {(r.parallel, r.threads): r for r in results if r.provider == provider}
        if (1, 1) in by and (2, 1) in by:
            ratio = by[(2, 1)].aggregate_tps / by[(1, 1)].aggregate_tps
            second = by[(2, 1)].clients[1]["ttft_s"]
            verdicts[provider] = {"aggregate_ratio": ratio, "second_ttft_s": second}
            print(f"{provider}: parallel 2 / parallel 1 aggregate {ratio:.2f}x (target >= "
                  f"{AGGREGATE_TARGET}x: {'ok' if ratio >= AGGREGATE_TARGET else 'BELOW'}); "
                  f"second client's first token {second:.2f} s (target <= {TTFT_TARGET_S} s: "
                  f"{'ok' if second <= TTFT_TARGET_S else 'ABOVE'})")
    return {"runs": [r.__dict__ | {"label": r.label} for r in results], "verdicts": verdicts}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-onnx-") as tmp:
        providers = args.providers.split(",")
        models = {"llama-cpp": args.model if "llama-cpp" in providers else None,
                  "onnx": onnx_model(args, Path(tmp)) if "onnx" in providers else None}
        for provider, path in models.items():
            if path is None:
                continue
            for parallel, threads in slot_settings(args.slots):
                print(f"{provider}: parallel {parallel}, n_threads {threads} ...", flush=True)
                results.append(measure(provider, path, parallel, threads, args))
    if not results:
        raise BenchError("nothing to measure")
    return report(results) | {"embeddings": embeddings(args)}


# --- embeddings ------------------------------------------------------------------------------

TEXTS = [f"Short text number {i} about {('bread', 'dragons', 'rain', 'trains')[i % 4]}."
         for i in range(64)]


async def embed_rates(url: str, runs: int) -> dict[str, float]:
    """inputs/s: the 64 texts as one request (one list), and as 64 requests one after another."""
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        async def post(value: str | list[str]) -> None:
            response = await http.post("/v1/embeddings", json={"model": "bench-embed",
                                                                "input": value})
            if response.status_code != 200:
                raise BenchError(f"embeddings: HTTP {response.status_code}: {response.text}")

        await post(TEXTS)  # warm-up
        lists, singles = [], []
        for _ in range(runs):
            started = time.perf_counter()
            await post(TEXTS)
            lists.append(len(TEXTS) / (time.perf_counter() - started))
            started = time.perf_counter()
            for text in TEXTS:
                await post(text)
            singles.append(len(TEXTS) / (time.perf_counter() - started))
    return {"list_inputs_per_s": sorted(lists)[len(lists) // 2],
            "one_by_one_inputs_per_s": sorted(singles)[len(singles) // 2]}


def embeddings(args: argparse.Namespace) -> dict[str, float]:
    deployment = {"name": "bench-embed", "provider": "llama-cpp", "path": str(args.model),
                  "n_ctx": args.n_ctx, "n_threads": args.threads, "embedding": True,
                  "preload": True}
    with served(deployment, "gateway-bench-embed-") as (_, url):
        rates = asyncio.run(embed_rates(url, args.runs))
    print(f"\nembeddings, {len(TEXTS)} short texts, n_threads {args.threads}: one request with "
          f"the list {rates['list_inputs_per_s']:.0f} inputs/s; one request per text "
          f"{rates['one_by_one_inputs_per_s']:.0f} inputs/s")
    return rates
