"""Soak: the gateway under long and heavy use, against the canned upstream of
``bench/fake_upstream.py`` (auth on, one worker). Prints three figures:

1. streams: 1,000 streams held open at once, then released: resident memory before, with
   them and after, and ``gateway_in_flight_requests`` back to 0 (``bench/open_streams.py``);
2. a 30 MB prompt: one chat of 30 MB from a virtual key with a tpm limit (so its tokens are
   counted, in a thread) while 8 clients stream answers back to back; the largest gap
   between two events any of them saw during the big request, against the largest gap in
   an equal time before it;
3. memory: 50,000 requests (half streamed) after a warm-up of 5,000, at 32 at a time; the
   growth of resident memory (target < 5%).

    python bench/soak.py [--streams 1000] [--requests 50000] [--prompt-mb 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import make_key, start_bench_gateway
from open_streams import hold, resident_kb
from overhead import KEY, BenchError, Processes, Target, run_bench, start_upstream

CHAT = "/v1/chat/completions"
MAX_GROWTH = 0.05


def in_flight(target: Target) -> float:
    with urllib.request.urlopen(f"{target.base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(ln for ln in text.splitlines() if ln.startswith("gateway_in_flight_requests"))
    return float(line.split()[-1]) - 1  # (less this scrape, in flight while it is answered)


def streams(target: Target, count: int) -> dict[str, Any]:
    before, during = asyncio.run(hold(target, count))
    time.sleep(1)
    after, left = resident_kb(target.pid), in_flight(target)
    print(f"1. {count} streams held open, then released: resident {before / 1024:.1f} MB -> "
          f"{during / 1024:.1f} MB with them ({(during - before) / count:.1f} KB each) -> "
          f"{after / 1024:.1f} MB after; in flight after: {left:.0f}")
    if left != 0:
        raise BenchError(f"{left} requests still in flight after the streams were closed")
    return {"streams": count, "before_kb": before, "during_kb": during, "after_kb": after,
            "in_flight_after": left}


# -- 2: a 30 MB prompt among streams ----------------------------------------------------------


async def _streamer(session: aiohttp.ClientSession, url: str, stamps: list[float],
                    stop: asyncio.Event) -> None:
    body = {"model": "bench", "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "Count"}]}
    while not stop.is_set():
        async with session.post(url, json=body) as response:
            async for _ in response.content.iter_any():
                stamps.append(time.perf_counter())


def _gap(stamps: list[list[float]], start: float, end: float) -> float:
    """The largest gap between two events of one client within [start, end], in ms."""
    worst = 0.0
    for times in stamps:
        inside = [t for t in times if start <= t <= end]
        worst = max(worst, *(b - a for a, b in itertools.pairwise(inside)), 0.0)
    return worst * 1000


async def big_prompt(target: Target, megabytes: int, key: str) -> dict[str, Any]:
    """``key``: a virtual key with a tpm limit of 10**9 (so its tokens are counted)."""
    admin = {"authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(headers=admin) as session:
        words = ("lorem ipsum dolor sit amet, consectetur adipiscing elit " * 20_000)
        text = (words * (megabytes * 1024 * 1024 // len(words) + 1))[:megabytes * 1024 * 1024]
        payload = json.dumps({"model": "bench", "messages": [{"role": "user",
                                                              "content": text}]}).encode()
        stamps: list[list[float]] = [[] for _ in range(8)]
        stop = asyncio.Event()
        url = f"{target.base_url}{CHAT}"
        clients = [asyncio.create_task(_streamer(session, url, s, stop)) for s in stamps]
        await asyncio.sleep(3)
        started = time.perf_counter()
        async with session.post(url, data=payload, headers={
                "authorization": f"Bearer {key}", "content-type": "application/json"}) as big:
            status, body = big.status, await big.read()
            remaining = big.headers.get("x-ratelimit-remaining-tokens")
        ended = time.perf_counter()
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*clients)
    if status != 200:
        raise BenchError(f"the {megabytes} MB prompt got HTTP {status}: {body[:300]!r}")
    counted = 10**9 - int(remaining) if remaining else None
    seconds = ended - started
    during, before = _gap(stamps, started, ended), _gap(stamps, started - seconds, started)
    events = sum(len([t for t in s if started <= t <= ended]) for s in stamps)
    print(f"2. a {megabytes} MB prompt ({counted} tokens counted) answered in {seconds:.2f} s "
          f"while 8 clients streamed ({events} events meanwhile): largest gap between two "
          f"events {during:.0f} ms during it, {before:.0f} ms in as long before it")
    return {"megabytes": megabytes, "tokens_counted": counted, "seconds": round(seconds, 2),
            "largest_gap_ms": round(during), "largest_gap_before_ms": round(before),
            "events_during": events}


# -- 3: memory over 50,000 requests -----------------------------------------------------------


async def _requests(target: Target, count: int, concurrency: int = 32) -> int:
    url = f"{target.base_url}{CHAT}"
    plain = {"model": "bench", "messages": [{"role": "user", "content": "Say hi"}]}
    bodies = [plain, {**plain, "stream": True}]
    done = failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, failed
        while done < count:
            done += 1
            async with session.post(url, json=bodies[done % 2]) as response:
                await response.read()
                failed += response.status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector,
                                     headers={"authorization": f"Bearer {KEY}"}) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return failed


def memory(target: Target, count: int) -> dict[str, Any]:
    asyncio.run(_requests(target, 5_000))
    time.sleep(1)
    before = resident_kb(target.pid)
    started = time.perf_counter()
    failed = asyncio.run(_requests(target, count))
    seconds = time.perf_counter() - started
    time.sleep(1)
    after = resident_kb(target.pid)
    growth = (after - before) / before
    print(f"3. {count} requests after 5,000 of warm-up ({count / seconds:.0f} req/s, "
          f"{failed} failed): resident {before / 1024:.1f} MB -> {after / 1024:.1f} MB, "
          f"growth {growth:+.1%} (target < {MAX_GROWTH:.0%}): "
          f"{'PASS' if growth < MAX_GROWTH and not failed else 'FAIL'}")
    return {"requests": count, "failed": failed, "req_per_s": round(count / seconds),
            "before_kb": before, "after_kb": after, "growth": round(growth, 4)}


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> dict[str, Any]:
    upstream = start_upstream(procs, workdir, "raw")
    target = start_bench_gateway(procs, workdir, upstream,
                                 config={"server": {"max_body_mb": 64}})
    print(f"load before: {os.getloadavg()[0]:.2f}")
    report = {"streams": streams(target, args.streams),
              "big_prompt": asyncio.run(big_prompt(target, args.prompt_mb,
                                                   make_key(target, tpm=10**9))),
              "memory": memory(target, args.requests)}
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--prompt-mb", type=int, default=30)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    return run_bench(parser.parse_args(), run)


if __name__ == "__main__":
    sys.exit(main())
