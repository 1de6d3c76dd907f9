"""The gateway against the floor proxy (``bench/overhead.py --vs floor``): issue 14's targets,
CPU per request and per relayed chunk, and the latency histograms that show the tail."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any, Protocol

# upper bounds of the histogram's buckets, in ms (the last one catches the rest)
BUCKETS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000)
MIN_VS_FLOOR = {"non-stream c=32": 0.7, "stream c=32": 0.85}
MAX_P99_OVER_P50 = 3.0
MAX_ADDED_P50_MS = 0.35
MAX_CPU_PER_CHUNK_VS_FLOOR = 1.3


class ScenarioLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def connections(self) -> int: ...

    @property
    def chunks(self) -> int: ...


class ResultLike(Protocol):
    target: str
    scenario: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float
    distribution_us: list[list[float]] | None


def _row(name: str, value: str, goal: str, ok: bool | None) -> dict[str, Any]:
    mark = "" if ok is None else ("PASS" if ok else "FAIL")
    print(f"{name:<38} {value:>22}  {goal:<22} {mark}")
    return {"check": name, "value": value, "goal": goal, "met": ok}


def print_vs_floor(scenarios: Sequence[ScenarioLike], direct: Sequence[ResultLike],
                   gateway: Sequence[ResultLike], floor: Sequence[ResultLike]
                   ) -> list[dict[str, Any]]:
    """Issue 14's targets, each a ratio within this one run."""
    print("\nThe gateway against the floor proxy (issue 14's targets):")
    rows = []
    for scenario, d, g, f in zip(scenarios, direct, gateway, floor, strict=True):
        name = scenario.name
        if name in MIN_VS_FLOOR:
            ratio = g.rps / f.rps
            rows.append(_row(f"{name}: req/s gateway / floor", f"{ratio:.2f}x",
                             f">= {MIN_VS_FLOOR[name]}x", ratio >= MIN_VS_FLOOR[name]))
        if scenario.connections > 1 and scenario.chunks == 5:
            spread = g.p99_ms / g.p50_ms
            rows.append(_row(f"{name}: gateway p99 / p50",
                             f"{g.p99_ms:.1f} / {g.p50_ms:.1f} = {spread:.1f}x",
                             f"<= {MAX_P99_OVER_P50:g}x", spread <= MAX_P99_OVER_P50))
        if scenario.connections == 1:
            added = g.p50_ms - d.p50_ms
            rows.append(_row(f"{name}: gateway added p50", f"{added:+.3f} ms",
                             f"<= {MAX_ADDED_P50_MS} ms", added <= MAX_ADDED_P50_MS))
        rows.append(_row(f"{name}: server CPU per request",
                         f"{g.server_cpu_us:,.0f} / {f.server_cpu_us:,.0f} us", "", None))
        if scenario.chunks > 5:
            g_chunk, f_chunk = g.server_cpu_us / scenario.chunks, f.server_cpu_us / scenario.chunks
            ratio = g_chunk / f_chunk
            rows.append(_row(f"{name}: CPU per relayed chunk",
                             f"{g_chunk:.1f} / {f_chunk:.1f} us = {ratio:.2f}x",
                             f"<= {MAX_CPU_PER_CHUNK_VS_FLOOR}x",
                             ratio <= MAX_CPU_PER_CHUNK_VS_FLOOR))
    return rows


def histogram(distribution: list[list[float]], requests: int) -> list[int]:
    """Requests per bucket of BUCKETS_MS (and one over the last), from wrk's percentiles."""
    weights = [0.0] * (len(BUCKETS_MS) + 1)
    previous = 0.0
    for percentile, latency_us in distribution:
        weights[bisect.bisect_left(BUCKETS_MS, latency_us / 1000)] += percentile - previous
        previous = percentile
    if distribution:  # (the slowest 0.01%: with the last percentile)
        weights[bisect.bisect_left(BUCKETS_MS, distribution[-1][1] / 1000)] += 100 - previous
    return [round(w / 100 * requests) for w in weights]


def print_histograms(results: Sequence[ResultLike]) -> None:
    """One column per run: how many requests took how long."""
    runs = [r for r in results if r.distribution_us]
    if not runs:
        return
    columns = [histogram(r.distribution_us or [], r.requests) for r in runs]
    print("\nLatency histogram at c=32 (requests per bucket; from wrk's percentiles):")
    print(f"{'<= ms':>7}" + "".join(f"{(r.target + ' ' + r.scenario)[:22]:>24}" for r in runs))
    for i, bound in enumerate([*BUCKETS_MS, float("inf")]):
        if all(column[i] == 0 for column in columns):
            continue
        label = f"{bound:g}" if bound != float("inf") else "more"
        print(f"{label:>7}" + "".join(f"{column[i]:>24,}" for column in columns))
