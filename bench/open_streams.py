"""Resident memory per open stream: N streams held open at once through the gateway and
through the floor proxy (``bench/floor_proxy.py``), against a fake upstream that sends each
stream's first event and then holds it (``"hold":true``, ``bench/fake_upstream.py``).

For each server: a few streams opened and closed first (warm-up), its resident memory read
from /proc, then N streams opened and each read until its first event, the memory read
again; (after - before) / N is the memory one open stream holds (its client and upstream
connections, its task, its buffers). Target for the gateway: <= 50 KB.

    python bench/open_streams.py [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import (
    CHAT_PATH,
    KEY,
    BenchError,
    Processes,
    Target,
    run_bench,
    start_floor,
    start_gateway,
    start_upstream,
)

BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hi"}],
                   "stream": True, "hold": True}, separators=(",", ":")).encode()
TARGET_KB = 50


def resident_kb(pid: int) -> int:
    """VmRSS of ``pid`` and its children (a one-worker server has none), in KB."""
    total, frontier = 0, [pid]
    while frontier:
        current = frontier.pop()
        status = Path(f"/proc/{current}/status").read_text()
        total += int(next(ln.split()[1] for ln in status.splitlines()
                          if ln.startswith("VmRSS:")))
        children = Path(f"/proc/{current}/task/{current}/children")
        frontier += [int(c) for c in children.read_text().split()] if children.exists() else []
    return total


async def open_stream(host: str, port: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST {CHAT_PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json"
                 f"\r\nauthorization: Bearer {KEY}\r\ncontent-length: {len(BODY)}\r\n\r\n"
                 .encode() + BODY)
    seen = b""
    while b"data: " not in seen:
        piece = await asyncio.wait_for(reader.read(65536), 30)
        if not piece:
            raise BenchError(f"a stream closed before its first event: {seen[:300]!r}")
        seen += piece
    if not seen.startswith(b"HTTP/1.1 200"):
        raise BenchError(f"a stream was refused: {seen[:300]!r}")
    return writer


async def hold(target: Target, count: int) -> tuple[int, int]:
    """Resident KB before and with ``count`` streams open."""
    host, port = target.base_url.removeprefix("http://").split(":")
    for writer in [await open_stream(host, int(port)) for _ in range(20)]:  # warm-up
        writer.close()
    await asyncio.sleep(1)
    before = resident_kb(target.pid)
    writers: list[asyncio.StreamWriter] = []
    for start in range(0, count, 100):
        writers += await asyncio.gather(*(open_stream(host, int(port))
                                          for _ in range(min(100, count - start))))
    await asyncio.sleep(1)
    during = resident_kb(target.pid)
    for writer in writers:
        writer.close()
    await asyncio.sleep(1)
    return before, during


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> dict[str, Any]:
    upstream = start_upstream(procs, workdir, "raw")
    targets = [start_gateway(procs, workdir, upstream, args),
               start_floor(procs, workdir, upstream)]
    print(f"{args.streams} streams held open at once (upstream: raw, holding each stream)")
    print(f"{'server':<9}{'before MB':>10}{'with them MB':>14}{'per stream KB':>15}")
    report: dict[str, Any] = {"streams": args.streams}
    for target in targets:
        before, during = asyncio.run(hold(target, args.streams))
        per_stream = (during - before) / args.streams
        report[target.name] = {"before_kb": before, "during_kb": during,
                               "per_stream_kb": round(per_stream, 1)}
        print(f"{target.name:<9}{before / 1024:>10.1f}{during / 1024:>14.1f}{per_stream:>15.1f}")
    gateway = report["gateway"]["per_stream_kb"]
    print(f"gateway: {gateway:.1f} KB per open stream (target <= {TARGET_KB} KB): "
          f"{'PASS' if gateway <= TARGET_KB else 'FAIL'}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    args = parser.parse_args()
    args.workers, args.http_client = 1, "aiohttp"
    return run_bench(args, run)


if __name__ == "__main__":
    sys.exit(main())
