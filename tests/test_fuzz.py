"""Fuzzing from the OpenAPI document (issue 17): schemathesis against a live ``gateway serve``
(fake upstreams, a real redis-server) over every documented operation, with the checks of
tests/schemathesis.toml: no 5xx, every error in the contract's shape, statuses, media types,
headers and bodies as documented. A bounded run; bench/fuzz.py runs a longer one."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

from tests.fakes.serve import RedisServer
from tests.fuzz_target import live_gateway, run_schemathesis

MAX_EXAMPLES = 20  # per operation and phase: ~60 s on 2 cores


def test_schemathesis_finds_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    report = tmp_path / "junit.xml"
    with live_gateway(tmp_path, redis_server.url) as target:
        operations = sum(len(item) for item in
                         httpx.get(f"{target.url}/openapi.json").json()["paths"].values())
        result = run_schemathesis(target.url, report, max_examples=MAX_EXAMPLES)
        log = target.log.read_text(errors="replace")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    cases = ET.parse(report).getroot().findall(".//testcase")
    tested = {case.get("name") for case in cases} - {"Stateful tests"}
    assert len(tested) >= operations - 1  # (all but /openapi.json, which it reads itself)
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated is not None and int(generated[1]) > 2000, output[-3000:]
    print(f"schemathesis: {len(tested)} operations, {generated[1]} cases, 0 failures")
    # no request died with an unexpected exception (the middleware's 500 logs one; a job a
    # client's bad input failed is saq's "Error processing job", not a request's)
    assert "unhandled error in" not in log, log[-5000:]
    assert "stream failed" not in log, log[-5000:]
