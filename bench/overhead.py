"""How much the gateway costs: the same load sent straight to an upstream and through the gateway.

One run starts a canned fake OpenAI upstream (``bench/fake_upstream.py``) and the gateway in
front of it (auth on), then loads each with wrk (``bench/wrk/chat.lua``) in four scenarios:
{non-stream, stream} x {1 connection (-t1 -c1), 32 connections (-t2 -c32)}, each after a
2-second warm-up. It prints req/s and p50/p99 latency for both, the throughput ratio
gateway/direct and the p50 latency the gateway adds, against the targets: >= 0.5x throughput
at c=32 and <= 1 ms added p50 at c=1. Any socket error or status >= 400 stops the run.

    python bench/overhead.py [--duration 10] [--workers 1] [--http-client aiohttp|httpx]
                             [--upstream starlette|raw] [--vs litellm|floor] [--litellm-bin PATH]
                             [--only TEXT] [--rounds N] [--json PATH]

The default upstream is an ordinary Python server (Starlette on uvicorn) serving canned
answers, each stream event written on its own; ``--upstream raw`` is a bare httptools server
that answers ~70k req/s here, to show the gateway's own ceiling.

Needs ``wrk`` on PATH. The CPU table shows how busy each process was (100% = one core), to
tell whether the upstream or wrk rather than the server was the bottleneck.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead_report as report

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "chat.lua"
FAKE_UPSTREAM = BENCH_DIR / "fake_upstream.py"
KEY = "sk-bench"
CHAT_PATH = "/v1/chat/completions"
WARMUP_S = 2
START_TIMEOUT_S = 60.0
MIN_RATIO_C32 = 0.5
MAX_ADDED_P50_MS_C1 = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something that makes the numbers meaningless: the run stops with this message."""


@dataclass(frozen=True)
class Scenario:
    stream: bool
    connections: int
    threads: int
    chunks: int = 5  # content chunks per streamed answer (long: 500)

    @property
    def name(self) -> str:
        kind = "long stream" if self.chunks > 5 else "stream" if self.stream else "non-stream"
        return f"{kind} c={self.connections}"

    @property
    def mode(self) -> str:  # bench/wrk/chat.lua's first argument
        return "long" if self.chunks > 5 else "stream" if self.stream else "plain"


LONG_CHUNKS = 500
SCENARIOS = (Scenario(False, 1, 1), Scenario(False, 32, 2),
             Scenario(True, 1, 1), Scenario(True, 32, 2),
             Scenario(True, 8, 2, LONG_CHUNKS))


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    pid: int  # the server process whose CPU time (with its children's) is measured


@dataclass
class Result:
    target: str
    scenario: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    cpu_percent: dict[str, float]  # of one core: upstream, server, wrk
    server_cpu_us: float = 0.0  # the server's CPU time per request, in microseconds
    distribution_us: list[list[float]] | None = None  # [[percentile, latency us], ...]


# --- processes -------------------------------------------------------------------------------


class Processes:
    """The servers this run starts, each in its own session so that all of a server's
    processes (uvicorn workers included) stop together."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
              stdout: int | None = None) -> subprocess.Popen[bytes]:
        with log.open("wb") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file if stdout is None else stdout,
                                    stderr=log_file, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    _signal_group(proc, signal.SIGKILL)  # any worker left behind by its parent
    if proc.stdout:
        proc.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with code {proc.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{name} did not answer 200 on {url} in {START_TIMEOUT_S:.0f}s:\n"
                     f"{log_tail(log)}")


def start_upstream(procs: Processes, workdir: Path, kind: str) -> Target:
    log = workdir / "upstream.log"
    proc = procs.start([sys.executable, str(FAKE_UPSTREAM), "--server", kind], log,
                       stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline() if ready else b""
    if not line.strip().isdigit():
        raise BenchError(f"the fake upstream did not start:\n{log_tail(log)}")
    return Target("direct", f"http://127.0.0.1:{int(line)}", proc.pid)


def start_gateway(procs: Processes, workdir: Path, upstream: Target,
                  args: argparse.Namespace) -> Target:
    config = workdir / "models.yaml"  # JSON is YAML
    config.write_text(json.dumps({
        "models": [{"name": "bench", "provider": "openai-compatible", "model": "bench",
                    "api_base": f"{upstream.base_url}/v1", "api_key": "sk-x"}],
        "server": {"http_client": args.http_client},
    }))
    env = {**os.environ, "GATEWAY_MASTER_KEY": KEY}
    if args.workers > 1:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
        (workdir / "metrics").mkdir()
    port, log = free_port(), workdir / "gateway.log"
    cmd = [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    proc = procs.start(cmd, log, env=env)
    target = Target("gateway", f"http://127.0.0.1:{port}", proc.pid)
    wait_http(f"{target.base_url}/health", proc, log, "the gateway")
    return target


def start_floor(procs: Processes, workdir: Path, upstream: Target) -> Target:
    port, log = free_port(), workdir / "floor.log"
    proc = procs.start([sys.executable, str(BENCH_DIR / "floor_proxy.py"), upstream.base_url,
                        str(port)], log)
    target = Target("floor", f"http://127.0.0.1:{port}", proc.pid)
    wait_http(f"{target.base_url}/health", proc, log, "the floor proxy")
    return target


def start_litellm(procs: Processes, workdir: Path, upstream: Target,
                  args: argparse.Namespace) -> Target | None:
    exe = args.litellm_bin or shutil.which("litellm")
    if exe is None:
        print("litellm is not installed: skipping --vs litellm", flush=True)
        return None
    config = workdir / "litellm.yaml"
    config.write_text(json.dumps({
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/bench", "api_base": f"{upstream.base_url}/v1", "api_key": "sk-x"}}],
        "general_settings": {"master_key": KEY},
    }))
    port, log = free_port(), workdir / "litellm.log"
    proc = procs.start([exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                        "--num_workers", str(args.workers)], log)
    target = Target("litellm", f"http://127.0.0.1:{port}", proc.pid)
    wait_http(f"{target.base_url}/health/liveliness", proc, log, "litellm")
    return target


# --- checks ----------------------------------------------------------------------------------


def post_chat(target: Target, stream: bool) -> tuple[str, bytes]:
    body: dict[str, Any] = {"model": "bench", "messages": [{"role": "user", "content": "Say hi"}]}
    if stream:
        body["stream"] = True
    request = urllib.request.Request(
        target.base_url + CHAT_PATH, data=json.dumps(body, separators=(",", ":")).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{target.name}: HTTP {exc.code} to a {'stream' if stream else 'plain'}"
                         f" request: {exc.read()[:500]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"{target.name}: request failed: {exc}") from None


def check_stream_body(name: str, content_type: str, body: bytes) -> None:
    if not content_type.startswith("text/event-stream"):
        raise BenchError(f"{name}: stream answered with content-type {content_type!r}")
    data = [line[5:].strip() for line in body.splitlines() if line.startswith(b"data:")]
    if not data or data[-1] != b"[DONE]":
        raise BenchError(f"{name}: the stream did not end with [DONE]: {body[-300:]!r}")
    for payload in data[:-1]:
        chunk = json.loads(payload)
        if chunk.get("object") != "chat.completion.chunk" or "error" in chunk:
            raise BenchError(f"{name}: unexpected stream event: {payload[:300]!r}")


def check_target(target: Target) -> None:
    """One request of each kind, read whole: wrk only sees status codes, not bodies."""
    _, body = post_chat(target, stream=False)
    if "choices" not in json.loads(body):
        raise BenchError(f"{target.name}: the answer has no choices: {body[:300]!r}")
    check_stream_body(target.name, *post_chat(target, stream=True))


# --- load ------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of one process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its living descendants (Linux only)."""
    stats = {int(p.name): s for p in Path("/proc").glob("[0-9]*")
             if (s := _proc_stat(int(p.name))) is not None}
    total, frontier = 0.0, {root}
    while frontier:
        total += sum(stats[pid][1] for pid in frontier if pid in stats)
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier}
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def cpu_meter(pids: dict[str, int], out: dict[str, float]) -> Iterator[None]:
    """Fill ``out`` with each process tree's CPU use during the block, in % of one core;
    "wrk" is this process's waited-for children (wrk is the only one)."""
    before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    wrk_before, started = children_cpu_seconds(), time.monotonic()
    yield
    wall = time.monotonic() - started
    for name, pid in pids.items():
        out[name] = round(100 * (tree_cpu_seconds(pid) - before[name]) / wall, 1)
    out["wrk"] = round(100 * (children_cpu_seconds() - wrk_before) / wall, 1)


def wrk_numbers(cmd: Sequence[str], duration: int) -> dict[str, Any]:
    """Run wrk with one of bench/wrk's scripts; the numbers of its ``BENCH_RESULT`` line."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed (code {done.returncode}):\n{done.stdout}{done.stderr}")
    numbers: dict[str, Any] = json.loads(lines[-1].split(" ", 1)[1])
    return numbers


def run_wrk(target: Target, scenario: Scenario, duration: int) -> dict[str, Any]:
    numbers = wrk_numbers(
        ["wrk", f"-t{scenario.threads}", f"-c{scenario.connections}", f"-d{duration}s",
         "--timeout", "30s",
         "-s", str(LUA_SCRIPT), target.base_url + CHAT_PATH,
         "--", scenario.mode, KEY], duration)
    errors = {k: v for k, v in numbers["errors"].items() if v}
    if numbers["requests"] == 0 or (errors and target.name in ("direct", "gateway")):
        raise BenchError(f"{target.name} {scenario.name}: {numbers['requests']} requests, "
                         f"errors {errors} (status = responses >= 400)")
    return numbers


def measure(target: Target, scenario: Scenario, duration: int, upstream: Target) -> Result:
    run_wrk(target, scenario, WARMUP_S)
    pids = {"upstream": upstream.pid}
    if target.pid != upstream.pid:
        pids["server"] = target.pid
    cpu: dict[str, float] = {}
    with cpu_meter(pids, cpu):
        n = run_wrk(target, scenario, duration)
    seconds = n["duration_us"] / 1e6
    server_cpu = cpu.get("server", cpu["upstream"]) / 100 * seconds
    return Result(target.name, scenario.name, n["requests"], round(seconds, 3),
                  round(n["requests"] / seconds, 1), n["p50_us"] / 1000, n["p99_us"] / 1000,
                  n["errors"], cpu, round(server_cpu / n["requests"] * 1e6, 1),
                  n.get("distribution_us"))


def bench_all(upstream: Target, proxies: list[Target], duration: int,
              scenarios: Sequence[Scenario] = SCENARIOS) -> dict[str, list[Result]]:
    """Every scenario straight to the upstream and through each proxy, back to back within a
    scenario so that they share the machine's conditions of the moment."""
    targets = [upstream, *proxies]
    for target in targets:
        check_target(target)
    results: dict[str, list[Result]] = {t.name: [] for t in targets}
    for scenario in scenarios:
        for target in targets:
            print(f"  {scenario.name:<16} {target.name:<8} ...", end=" ", flush=True)
            result = measure(target, scenario, duration, upstream)
            print(f"{result.rps:>8,.0f} req/s, p50 {result.p50_ms:.3f} ms", flush=True)
            results[target.name].append(result)
    for target in targets:
        check_target(target)
    return results


# --- report ----------------------------------------------------------------------------------


def compare(scenario: Scenario, direct: Result, other: Result) -> dict[str, Any]:
    ratio = other.rps / direct.rps
    added = other.p50_ms - direct.p50_ms
    if scenario.connections == 1:
        goal, ok = f"added p50 <= {MAX_ADDED_P50_MS_C1:g} ms", added <= MAX_ADDED_P50_MS_C1
    else:
        goal, ok = f"throughput >= {MIN_RATIO_C32:g}x", ratio >= MIN_RATIO_C32
    return {"target": other.target, "scenario": other.scenario, "throughput_ratio": ratio,
            "added_p50_ms": added, "goal": goal, "met": ok}


def print_comparison(direct: list[Result], other: list[Result],
                     scenarios: Sequence[Scenario] = SCENARIOS) -> list[dict[str, Any]]:
    name = other[0].target
    print(f"\n{'scenario':<16}| {'direct req/s':>12} {'p50 ms':>7} {'p99 ms':>7} "
          f"| {name + ' req/s':>13} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>6} {'+p50 ms':>8}"
          f" | target")
    rows = []
    for scenario, d, o in zip(scenarios, direct, other, strict=True):
        row = compare(scenario, d, o)
        rows.append(row)
        mark = f"{row['goal']}: {'PASS' if row['met'] else 'FAIL'}"
        failed = {k: v for k, v in o.errors.items() if v}
        if failed:
            mark += f" ({sum(failed.values())} failed requests: {failed})"
        print(f"{d.scenario:<16}| {d.rps:>12,.0f} {d.p50_ms:>7.3f} {d.p99_ms:>7.3f} "
              f"| {o.rps:>13,.0f} {o.p50_ms:>7.3f} {o.p99_ms:>7.3f} "
              f"| {row['throughput_ratio']:>5.2f}x {row['added_p50_ms']:>+8.3f} | {mark}")
    return rows


def print_cpu(results: list[Result]) -> None:
    print(f"\nCPU during each run, % of one core ({os.cpu_count()} cores):")
    print(f"{'target':<9}{'scenario':<17}{'upstream':>9}{'server':>8}{'wrk':>7}")
    for r in results:
        server = r.cpu_percent.get("server")
        print(f"{r.target:<9}{r.scenario:<17}{r.cpu_percent['upstream']:>9.0f}"
              f"{'-' if server is None else f'{server:.0f}':>8}{r.cpu_percent['wrk']:>7.0f}")


def warn_on_logs(workdir: Path) -> None:
    for log in sorted(workdir.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text or " ERROR " in text:
            print(f"\nwarning: {log.name} logged errors; its tail:\n{log_tail(log)}")


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--http-client", choices=["aiohttp", "httpx"], default="aiohttp")
    parser.add_argument("--upstream", choices=["starlette", "raw"], default="starlette",
                        help="the fake upstream: an ordinary Python server (starlette, the "
                             "default) or a raw httptools one that no Python proxy can keep "
                             "up with (raw)")
    parser.add_argument("--vs", choices=["litellm", "floor"],
                        help="also bench another proxy: litellm, or floor (bench/floor_proxy.py, "
                             "the least a Starlette + aiohttp proxy can cost)")
    parser.add_argument("--litellm-bin", metavar="PATH",
                        help="the litellm command (default: litellm on PATH), e.g. from a venv")
    parser.add_argument("--only", metavar="TEXT", help="only the scenarios whose name contains "
                        "TEXT, e.g. 'c=32' or 'long'")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="run every scenario N times (interleaved) and report, per "
                             "scenario, the round with the median gateway ratio: this VM's "
                             "speed drifts by 20-40%% between runs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    return parser.parse_args(argv)


def median_round(rounds: list[dict[str, list[Result]]], reference: str
                 ) -> dict[str, list[Result]]:
    """Per scenario, the results of the round whose gateway / ``reference`` throughput ratio
    is the median one (each round's targets ran back to back, so a round is one fair run);
    every round's ratio is printed to show the spread."""
    chosen: dict[str, list[Result]] = {name: [] for name in rounds[0]}
    print(f"\nrounds: gateway / {reference} req/s per round (the median round is reported)")
    for i in range(len(rounds[0]["gateway"])):
        ratios = sorted((r["gateway"][i].rps / r[reference][i].rps, n)
                        for n, r in enumerate(rounds))
        median = ratios[len(ratios) // 2][1]
        listed = ", ".join(f"{ratio:.2f}x" for ratio, _ in ratios)
        print(f"  {rounds[0]['gateway'][i].scenario:<16} {listed}")
        for name in chosen:
            chosen[name].append(rounds[median][name][i])
    return chosen


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> dict[str, Any]:
    upstream = start_upstream(procs, workdir, args.upstream)
    proxies = [start_gateway(procs, workdir, upstream, args)]
    if args.vs == "litellm" and (litellm := start_litellm(procs, workdir, upstream, args)):
        proxies.append(litellm)
    if args.vs == "floor":
        proxies.append(start_floor(procs, workdir, upstream))
    print(f"wrk: {args.duration}s per run after a {WARMUP_S}s warm-up; gateway: "
          f"{args.workers} worker(s), http_client={args.http_client}; "
          f"upstream: {args.upstream}", flush=True)
    scenarios = [s for s in SCENARIOS if not args.only or args.only in s.name]
    rounds = [bench_all(upstream, proxies, args.duration, scenarios)
              for _ in range(max(1, args.rounds))]
    results = (rounds[0] if len(rounds) == 1
               else median_round(rounds, "floor" if args.vs == "floor" else "direct"))
    comparisons = [row for name, rs in results.items() if name != "direct"
                   for row in print_comparison(results["direct"], rs, scenarios)]
    print_cpu([r for rs in results.values() for r in rs])
    if "floor" in results:
        comparisons += report.print_vs_floor(scenarios, results["direct"], results["gateway"],
                                             results["floor"])
    report.print_histograms([r for rs in results.values() for r in rs
                             if r.scenario in ("non-stream c=32", "stream c=32")])
    warn_on_logs(workdir)
    return {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "results": [asdict(r) for rs in results.values() for r in rs],
            "comparisons": comparisons}


def run_bench(args: argparse.Namespace,
              run: Callable[[argparse.Namespace, Processes, Path], dict[str, Any]]) -> int:
    """Run a wrk benchmark: its processes in a temporary folder, stopped at the end; a
    BenchError is one line and exit code 1; ``--json`` gets the report."""
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
            try:
                report = run(args, procs, Path(tmp))
            finally:
                procs.close()
    except BenchError as exc:
        print(f"\nbench: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
