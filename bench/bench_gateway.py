"""The gateway as the limits and soak benchmarks start it: ``gateway serve`` with one
deployment, ``bench``, in front of a fake upstream (auth on with the bench master key), and a
virtual key made on it."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import KEY, Processes, Target, free_port, wait_http


def start_bench_gateway(procs: Processes, workdir: Path, upstream: Target,
                        name: str = "gateway", *, config: dict[str, Any] | None = None,
                        env: dict[str, str | None] | None = None) -> Target:
    """Start it and wait for /health. ``config``: more top-level models.yaml sections;
    ``env``: variables to set over this process's (None: unset)."""
    path = workdir / f"{name}.yaml"  # JSON is YAML
    path.write_text(json.dumps({
        "models": [{"name": "bench", "provider": "openai-compatible", "model": "bench",
                    "api_base": f"{upstream.base_url}/v1", "api_key": "sk-x"}],
        **(config or {})}))
    environ = {**os.environ, "GATEWAY_MASTER_KEY": KEY}
    for variable, value in (env or {}).items():
        if value is None:
            environ.pop(variable, None)
        else:
            environ[variable] = value
    port, log = free_port(), workdir / f"{name}.log"
    proc = procs.start([sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(path),
                        "--port", str(port)], log, env=environ)
    target = Target(name, f"http://127.0.0.1:{port}", proc.pid)
    wait_http(f"{target.base_url}/health", proc, log, f"the gateway '{name}'")
    return target


def make_key(target: Target, **limits: Any) -> str:
    """A new virtual key's secret (``limits``: rpm, tpm, ... as ``POST /v1/keys`` takes)."""
    request = urllib.request.Request(
        f"{target.base_url}/v1/keys", method="POST",
        data=json.dumps({"name": "bench", **limits}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        key: str = json.load(response)["key"]
    return key
