"""``--log-format json``: the lines a real ``gateway serve`` (and ``gateway worker``) writes.

One JSON object per line; one line per answered request with its id, key id (never the key),
user, model, deployment, status, latency, time to first token (streams), tokens, cost and
cache result; no secret, prompt or answer text anywhere in the log.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, RedisServer

MASTER = "sk-logs-master-secret"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
PROMPT = "zanzibar quokka marmalade"  # words that must never reach the log


def config(upstream: str) -> dict[str, Any]:
    return {"cache": {"ttl_s": 60}, "server": {"max_body_mb": 0.01}, "models": [
        {"name": "gpt-test", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream, "api_key": "sk-upstream-secret",
         "input_cost_per_mtok": 2.0, "output_cost_per_mtok": 8.0},
        {"name": "broken", "provider": "openai-compatible", "model": "error-500",
         "api_base": upstream, "retries": 0}]}


@pytest.fixture(scope="module")
def json_gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI
                 ) -> Iterator[tuple[GatewayProcess, Path]]:
    folder = tmp_path_factory.mktemp("logs")
    path = folder / "models.yaml"
    path.write_text(json.dumps(config(fake_openai_server.url)))  # type: ignore[attr-defined]
    log_path = folder / "gateway.log"
    with log_path.open("wb") as log_file:
        gateway = GatewayProcess(str(path), {"GATEWAY_MASTER_KEY": MASTER},
                                 "--log-level", "info", "--log-format", "json",
                                 stderr=log_file, stdout=log_file)
        try:
            yield gateway.wait_ready(), log_path
        finally:
            gateway.stop()


def lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, each one a JSON object (json.loads fails the test if not)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def request_line(path: Path, request_id: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [line for line in lines(path) if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)


def chat(url: str, key: str, request_id: str, headers: dict[str, str] | None = None,
         **extra: Any) -> httpx.Response:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": PROMPT}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {key}", "x-request-id": request_id,
                               **(headers or {})})


def test_one_json_line_per_request_with_what_an_operator_needs(
        json_gateway: tuple[GatewayProcess, Path]) -> None:
    gateway, log_path = json_gateway
    made = httpx.post(f"{gateway.url}/v1/keys", json={"name": "logs"}, headers=ADMIN).json()
    key, key_id = made["key"], made["id"]

    assert chat(gateway.url, key, "req-plain", user="alice", temperature=0).status_code == 200
    line = request_line(log_path, "req-plain")
    assert line["logger"] == "gateway.request" and line["level"] == "info"
    assert (line["method"], line["endpoint"], line["status"]) == (
        "POST", "/v1/chat/completions", 200)
    assert (line["key_id"], line["user"], line["model"]) == (key_id, "alice", "gpt-test")
    assert (line["deployment"], line["provider"]) == ("echo", "openai-compatible")
    assert line["cache"] == "miss" and line["ttft_ms"] is None and line["error"] is None
    assert line["prompt_tokens"] > 0 and line["completion_tokens"] > 0
    expected = (line["prompt_tokens"] * 2.0 + line["completion_tokens"] * 8.0) / 1e6
    assert line["cost_usd"] == pytest.approx(expected)
    assert 0 < line["latency_ms"] < 30_000

    # the same request again: a cache hit, no deployment, nothing spent
    assert chat(gateway.url, key, "req-hit", user="alice", temperature=0).status_code == 200
    hit = request_line(log_path, "req-hit")
    assert (hit["cache"], hit["deployment"], hit["cost_usd"]) == ("hit", None, 0.0)


def test_a_stream_logs_its_time_to_first_token_and_usage(
        json_gateway: tuple[GatewayProcess, Path]) -> None:
    gateway, log_path = json_gateway
    answer = chat(gateway.url, MASTER, "req-stream", stream=True,
                  headers={"x-user-id": "bob"}, messages=[
                      {"role": "user", "content": f"{PROMPT} streamed"}])
    assert answer.status_code == 200 and answer.text.endswith("data: [DONE]\n\n")
    line = request_line(log_path, "req-stream")
    assert line["key_id"] is None  # the master key has no id, and is never written
    assert 0 < line["ttft_ms"] <= line["latency_ms"]
    assert line["completion_tokens"] > 0 and line["cache"] == "miss"


def test_errors_are_logged_with_their_code(json_gateway: tuple[GatewayProcess, Path]) -> None:
    gateway, log_path = json_gateway
    unknown = chat(gateway.url, MASTER, "req-unknown", model="no-such-model")
    assert unknown.status_code == 404
    line = request_line(log_path, "req-unknown")
    assert (line["status"], line["error"], line["model"]) == (404, "model_not_found", None)
    upstream = chat(gateway.url, MASTER, "req-broken", model="broken")
    assert upstream.status_code >= 500
    line = request_line(log_path, "req-broken")
    assert line["status"] == upstream.status_code and line["model"] == "broken"
    assert line["deployment"] is None and line["prompt_tokens"] is None
    too_large = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"x" * 20_000,
                           headers={**ADMIN, "x-request-id": "req-413"})
    assert too_large.status_code == 413
    line = request_line(log_path, "req-413")
    assert (line["endpoint"], line["error"]) == ("/v1/chat/completions", "request_too_large")
    refused = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": "Bearer sk-bad",
                                                             "x-request-id": "req-401"})
    assert refused.status_code == 401
    assert request_line(log_path, "req-401")["error"] == "invalid_api_key"


def test_no_secret_prompt_or_answer_is_ever_logged(
        json_gateway: tuple[GatewayProcess, Path]) -> None:
    gateway, log_path = json_gateway
    made = httpx.post(f"{gateway.url}/v1/keys", json={"name": "quiet"}, headers=ADMIN).json()
    assert chat(gateway.url, made["key"], "req-quiet").status_code == 200
    request_line(log_path, "req-quiet")
    text = log_path.read_text()
    for secret in (MASTER, made["key"], "sk-upstream-secret", "zanzibar", "quokka"):
        assert secret not in text
    assert any(line["logger"] == "uvicorn.error" for line in lines(log_path))  # JSON too


def line_where(path: Path, timeout_s: float = 10, **match: Any) -> dict[str, Any]:
    """The one log line whose fields include ``match``, waiting for it to be written."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [line for line in lines(path)
                 if all(line.get(k) == v for k, v in match.items())]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)


def test_health_checks_and_scrapes_are_left_out(
        json_gateway: tuple[GatewayProcess, Path]) -> None:
    gateway, log_path = json_gateway
    for path in ("/health", "/health/ready", "/metrics"):
        assert httpx.get(f"{gateway.url}{path}",
                         headers={"x-request-id": f"req-skip{path}"}).status_code == 200
    missing = httpx.get(f"{gateway.url}/v1/models",
                        headers={**ADMIN, "x-request-id": "req-after-skips"})
    assert missing.status_code == 200
    request_line(log_path, "req-after-skips")  # written after the three
    assert not [line for line in lines(log_path)
                if str(line.get("request_id", "")).startswith("req-skip")]


def test_log_skip_paths_chooses_them(tmp_path: Path, fake_openai_server: FakeOpenAI) -> None:
    """``--log-skip-paths`` replaces the default: /metrics is logged now, /v1/models not, in
    the JSON request line and in uvicorn's access log alike; a failed answer on a skipped path
    is logged all the same."""
    path = tmp_path / "models.yaml"
    path.write_text(json.dumps(config(fake_openai_server.url)))  # type: ignore[attr-defined]
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        gateway = GatewayProcess(str(path), {"GATEWAY_MASTER_KEY": MASTER},
                                 "--log-level", "info", "--log-format", "json", "--access-log",
                                 "--log-skip-paths", "/v1/models, /v1/keys",
                                 stderr=log_file, stdout=log_file).wait_ready()
        try:
            assert httpx.get(f"{gateway.url}/v1/models", headers={
                **ADMIN, "x-request-id": "req-models"}).status_code == 200
            refused = httpx.get(f"{gateway.url}/v1/keys", headers={
                "Authorization": "Bearer sk-bad", "x-request-id": "req-keys-401"})
            assert refused.status_code == 401
            assert httpx.get(f"{gateway.url}/metrics",
                             headers={"x-request-id": "req-metrics"}).status_code == 200
            assert request_line(log_path, "req-metrics")["endpoint"] == "/metrics"
            assert request_line(log_path, "req-keys-401")["status"] == 401
        finally:
            gateway.stop()
    logged = lines(log_path)
    assert not [line for line in logged if line.get("request_id") == "req-models"]
    access = [line["message"] for line in logged if line["logger"] == "uvicorn.access"]
    assert any("/metrics" in message for message in access), access
    assert any("/v1/keys" in message and "401" in message for message in access), access
    assert not [message for message in access if "/v1/models" in message]


def test_one_line_per_ended_job_without_its_text(
        json_gateway: tuple[GatewayProcess, Path]) -> None:
    from tests.test_jobs import wait

    gateway, log_path = json_gateway
    made = httpx.post(f"{gateway.url}/v1/keys", json={"name": "jobs"}, headers=ADMIN).json()
    key = {"Authorization": f"Bearer {made['key']}"}
    posted = httpx.post(f"{gateway.url}/v1/tools/summarize", headers=key, json={
        "text": f"Anna: {PROMPT} ships on Friday.", "models": ["gpt-test"]})
    assert posted.status_code == 202, posted.text
    job = wait(gateway.url, posted.json()["id"], headers=key)
    assert job["status"] == "succeeded", job
    line = line_where(log_path, job_id=job["id"])
    assert (line["logger"], line["level"]) == ("gateway.job", "info")
    assert (line["kind"], line["status"], line["key_id"]) == ("summarize", "succeeded",
                                                             made["id"])
    assert line["prompt_tokens"] > 0 and line["completion_tokens"] > 0
    assert 0 < line["duration_ms"] < 60_000 and line["error"] is None

    failed = httpx.post(f"{gateway.url}/v1/tools/summarize", headers=ADMIN, json={
        "text": "Ben: the notes.", "models": ["broken"]}).json()
    assert wait(gateway.url, failed["id"], headers=ADMIN)["status"] == "failed"
    line = line_where(log_path, job_id=failed["id"])
    assert (line["status"], line["key_id"], line["prompt_tokens"]) == ("failed", None, 0)
    assert line["error"] == "upstream_error"
    text = log_path.read_text()
    assert "zanzibar" not in text and "Friday" not in text and made["key"] not in text


def test_text_stays_the_default(caplog: pytest.LogCaptureFixture, gateway: str) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.request"):
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{gateway}/v1/chat/completions", json=body,
                          headers={"Authorization": "Bearer sk-test-master"}).status_code == 200
    assert not [r for r in caplog.records if r.name == "gateway.request"]


def test_the_worker_logs_json_when_asked(tmp_path: Path, redis_server: RedisServer) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(json.dumps({"models": [{"name": "m", "provider": "openai-compatible",
                                            "api_base": "http://127.0.0.1:9/v1"}]}))
    worker = subprocess.Popen(
        [sys.executable, "-m", "gateway", "worker", "--config", str(path),
         "--log-format", "json"], stderr=subprocess.PIPE, text=True,
        env={**os.environ, "REDIS_URL": redis_server.url})
    try:
        assert worker.stderr is not None
        first = json.loads(worker.stderr.readline())
        while first["message"] != "worker ready: taking jobs":
            first = json.loads(worker.stderr.readline())
        assert (first["level"], first["logger"]) == ("info", "gateway")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
