"""What Redis-backed limits and the response cache add to a request, on vs off, in one run.

One fake upstream (bench/fake_upstream.py), one redis-server, and three gateways in front of
the upstream, loaded in turn by wrk with one connection (c=1), every request a new question
(bench/wrk/unique.lua), so the cache misses every time and stores every answer:

- ``off``: no Redis, the master key (no key limits), no cache: the bare gateway;
- ``limits``: REDIS_URL set, a virtual key with rpm and tpm limits (the key looked up in
  Redis, one Lua script deciding, token estimate by tiktoken, usage and settlement written
  after the response);
- ``limits+cache``: the same plus ``cache: {mode: all}`` (a lookup before each call and a
  store after it).

The three run in turn, ``--rounds`` times (default 3), and each figure is the median over the
rounds, so that a burst of noise on a shared machine moves one round, not the result. It
prints req/s and p50/p99 for each and the p50 each adds to ``off``; target <= 0.3 ms.

    python bench/limits.py [--duration 10] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import make_key, start_bench_gateway
from overhead import (
    KEY,
    WARMUP_S,
    BenchError,
    Processes,
    Target,
    free_port,
    run_bench,
    start_upstream,
    wrk_numbers,
)

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "unique.lua"
TARGET_ADDED_P50_MS = 0.3


def start_redis(procs: Processes, workdir: Path) -> str:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError("redis-server is not installed (apt-get install redis-server)")
    procs.start([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], workdir / "redis.log")
    return f"redis://127.0.0.1:{port}/0"


def run_wrk(target: Target, key: str, duration: int) -> dict[str, Any]:
    numbers = wrk_numbers(["wrk", "-t1", "-c1", f"-d{duration}s", "-s", str(LUA_SCRIPT),
                           f"{target.base_url}/v1/chat/completions", "--", key], duration)
    errors = {k: v for k, v in numbers["errors"].items() if v}
    if errors or numbers["requests"] == 0:
        raise BenchError(f"{target.name}: {numbers['requests']} requests, errors {errors}")
    return numbers


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> dict[str, Any]:
    upstream = start_upstream(procs, workdir, "starlette")
    redis_url = start_redis(procs, workdir)
    targets = [(start_bench_gateway(procs, workdir, upstream, "off",
                                    env={"REDIS_URL": None}), KEY)]
    for name, cache in (("limits", False), ("limits+cache", True)):
        target = start_bench_gateway(procs, workdir, upstream, name,
                                     config={"cache": {"mode": "all", "ttl_s": 600}} if cache
                                     else None, env={"REDIS_URL": redis_url})
        targets.append((target, make_key(target, rpm=10**9, tpm=10**12)))
    print(f"wrk -c1, {args.duration}s per run after a {WARMUP_S}s warm-up, a new question "
          f"every request, {args.rounds} rounds", flush=True)
    for target, key in targets:
        run_wrk(target, key, WARMUP_S)
    runs: dict[str, list[dict[str, float]]] = {target.name: [] for target, _ in targets}
    for _ in range(args.rounds):
        for target, key in targets:
            n = run_wrk(target, key, args.duration)
            runs[target.name].append({
                "req_s": n["requests"] / (n["duration_us"] / 1e6),
                "p50_ms": n["p50_us"] / 1000, "p99_ms": n["p99_us"] / 1000})
    added = {name: [r["p50_ms"] - off["p50_ms"] for r, off in zip(rs, runs["off"], strict=True)]
             for name, rs in runs.items()}
    rows = [{"gateway": name,
             **{k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]},
             "added_p50_ms": round(statistics.median(added[name]), 3)}
            for name, rs in runs.items()]
    print(f"\n{'gateway':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}")
    for row in rows:
        verdict = ""
        if row["gateway"] != "off":
            verdict = "  (target <= 0.3: " + (
                "met)" if row["added_p50_ms"] <= TARGET_ADDED_P50_MS else "NOT met)")
        print(f"{row['gateway']:<14}{row['req_s']:>9.0f}{row['p50_ms']:>9.3f}"
              f"{row['p99_ms']:>9.3f}{row['added_p50_ms']:>+11.3f}{verdict}")
    return {"duration": args.duration, "results": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return run_bench(parser.parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
