"""A live gateway to fuzz: ``gateway serve`` as its own process, with a master key, state and
jobs in a real redis-server, routing to the fake OpenAI upstreams of tests/fakes (chat,
embeddings, images, audio), and the schemathesis command line run against its
/openapi.json. Used by tests/test_fuzz.py (a bounded run in CI) and bench/fuzz.py (a longer
one)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.openai_audio_server import FakeOpenAIAudio
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, ServerThread

MASTER_KEY = "sk-fuzz-master"
# What schemathesis checks on every answer (contract sections 4, 5): no 5xx but an
# upstream's documented 502/503/504, statuses, media types, headers and bodies as the
# document says (every error in the one error shape), and more: tests/schemathesis.toml.
CONFIG = Path(__file__).with_name("schemathesis.toml")


def fuzz_config(openai_url: str, audio_url: str) -> dict[str, Any]:
    """The example bodies' models (gpt-4o-mini, ...) on the fakes, and every other name on
    the fake chat upstream too (``*``), so that generated names reach an upstream."""
    def model(name: str, upstream: str, url: str, provider: str = "openai") -> dict[str, Any]:
        return {"name": name, "provider": provider, "model": upstream, "api_base": url,
                "api_key": "sk-upstream", "timeout_s": 5, "retries": 0}

    return {"models": [
        model("gpt-4o-mini", "echo", openai_url),
        model("text-embedding-3-small", "embed", openai_url),
        model("dall-e-3", "dall-e-3", openai_url),
        model("whisper-1", "gpt-4o-transcribe", audio_url),
        {"name": "*", "provider": "openai-compatible", "api_base": openai_url,
         "api_key": "sk-upstream", "timeout_s": 5, "retries": 0},
    ]}


@dataclass(frozen=True)
class Target:
    url: str
    process: GatewayProcess
    log: Path  # the gateway's stdout and stderr


@contextmanager
def live_gateway(tmp: Path, redis_url: str) -> Iterator[Target]:
    """The fakes in threads and ``gateway serve`` in a process, stopped on the way out."""
    fake, audio = FakeOpenAI(), FakeOpenAIAudio()
    servers = [ServerThread(fake.app).start(), ServerThread(audio.app).start()]
    config = tmp / "models.yaml"  # JSON is YAML
    config.write_text(json.dumps(fuzz_config(f"{servers[0].url}/v1", f"{servers[1].url}/v1")))
    log = (tmp / "gateway.log").open("wb")
    process = GatewayProcess(str(config), {"GATEWAY_MASTER_KEY": MASTER_KEY,
                                           "REDIS_URL": redis_url}, stdout=log, stderr=log)
    try:
        yield Target(process.wait_ready().url, process, tmp / "gateway.log")
    finally:
        process.stop()
        log.close()
        for server in servers:
            server.stop()


def run_schemathesis(url: str, report: Path, *, max_examples: int, seed: int = 1,
                     workers: int = 2, extra: tuple[str, ...] = ()
                     ) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` over every operation of ``url``/openapi.json; its JUnit report
    (one test case per operation, failures in it) is written to ``report``."""
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               f"{url}/openapi.json",
               "--header", f"Authorization: Bearer {MASTER_KEY}",
               "--max-examples", str(max_examples), "--seed", str(seed),
               "--workers", str(workers), "--request-timeout", "20",
               "--report", "junit", "--report-junit-path", str(report),
               "--output-truncate", "true", "--no-color", *extra]
    # (in the report's folder: schemathesis keeps a .schemathesis/ cache where it runs)
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False,
                          cwd=report.parent)
