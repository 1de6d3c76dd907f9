"""models.yaml loading and the CLI: every config problem is one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import ConfigError, interpolate, load, validate
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import free_port

ROOT = Path(__file__).resolve().parent.parent


def gateway_cli(*args: str, env: dict[str, str] | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("models:\n  - name: a\n    provider: nope\n",
     "models[0].provider: unknown provider 'nope' (known: openai, openai-compatible, "),
    ("models:\n  - name: a\n    provider: openai-compatible\n", "models[0].api_base: missing"),
    ("models:\n  - name: a\n    provider: openai\n    colour: red\n",
     "models[0].colour: unknown key"),
    ("models:\n  - provider: openai\n", "models[0].name: missing"),
    ("models:\n  - name: a\n    provider: openai\n    api_key: ${GW_TEST_UNSET}\n",
     "models[0].api_key: environment variable GW_TEST_UNSET is not set and has no default"),
    ("models:\n  - name: a\n    provider: openai\n    fallbacks: [b]\n",
     "models[0].fallbacks[0]: no model named 'b' is configured"),
    ("models: [\n", "bad YAML"),
    ("- 1\n", "the top level must be a mapping"),
    ("server:\n  max_body_mb: 0\n", "server.max_body_mb: Input should be greater than 0"),
    ("cache:\n  mode: fuzzy\n", "cache.mode: Input should be"),
])
def test_config_errors_are_one_line(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}") and expected in message and "\n" not in message


NATIVE = "provider: openai\n    responses: native\n"


@pytest.mark.parametrize(("entries", "expected"), [
    (f"  - name: a\n    {NATIVE}  - name: b\n    provider: openai\n"
     "  - name: a\n    provider: anthropic\n",
     "models[2]: the deployments named 'a' must agree on 'responses' (all 'native' or all "
     "'translate'): models[0] (openai) is 'native', models[2] (anthropic, it has no "
     "'responses') is 'translate'"),
    ("  - name: a\n    provider: openai\n    responses: translate\n"
     f"  - name: a\n    {NATIVE}",
     "models[1]: the deployments named 'a' must agree on 'responses' (all 'native' or all "
     "'translate'): models[0] (openai) is 'translate', models[1] (openai) is 'native'"),
])
def test_deployments_of_one_name_agree_on_responses(tmp_path: Path, entries: str,
                                                     expected: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n" + entries)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == f"{path}: {expected}"
    checked = gateway_cli("check", "--config", str(path))
    assert checked.returncode == 1 and expected in checked.stderr + checked.stdout
    assert "Traceback" not in checked.stderr


def test_deployments_that_agree_on_responses_load(tmp_path: Path) -> None:
    """All native, or all translating (one saying so, one without the setting), and a
    fallback of the other way: fine."""
    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  - name: a\n    {NATIVE}    fallbacks: [b]\n"
                    f"  - name: a\n    {NATIVE}  - name: b\n    provider: openai\n"
                    "    responses: translate\n  - name: b\n    provider: anthropic\n")
    assert [d.name for d in load(path).deployments] == ["a", "a", "b", "b"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.yaml")


def test_interpolation() -> None:
    env = {"KEY": "sk-1", "PORT": "8081"}
    tree = {"a": "${KEY}", "b": ["x-${PORT}-${MISSING:-d}", 3], "c": "${MISSING:-}"}
    assert interpolate(tree, env) == {"a": "sk-1", "b": ["x-8081-d", 3], "c": ""}


def test_defaults_and_values() -> None:
    config = validate({"models": [{"name": "m", "provider": "openai", "rpm": "5"}],
                       "limits": {"rpm": 10}, "cache": {"ttl_s": 5}})
    deployment = config.deployments[0]
    assert deployment.api_base == "https://api.openai.com/v1"  # type: ignore[attr-defined]
    assert (deployment.rpm, deployment.retries, deployment.upstream_model("m")) == (5, 2, "m")
    assert config.server.max_body_mb == 32 and config.cache is not None
    assert config.cache.mode == "deterministic" and config.limits.fail_open is False


@pytest.mark.parametrize(("name", "model", "requested", "upstream"), [
    ("openai/*", None, "openai/gpt-4.1", "gpt-4.1"),
    ("gpt-*", "gpt-*", "gpt-4o", "gpt-4o"),
    ("plain", None, "plain", "plain"),
    ("alias", "real-id", "alias", "real-id"),
])
def test_upstream_model(name: str, model: str | None, requested: str, upstream: str) -> None:
    config = validate({"models": [{"name": name, "provider": "openai", "model": model}]})
    assert config.deployments[0].upstream_model(requested) == upstream


def test_check_prints_the_example_table() -> None:
    result = gateway_cli("check", "--config", "config/models.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "gpt-4o-mini" in result.stdout and "openai/*" in result.stdout
    entries = (ROOT / "config" / "models.example.yaml").read_text().count("\n  - name:")
    assert f"ok: {entries} deployments" in result.stdout
    assert "claude-haiku  anthropic" in result.stdout and "gemini-flash  gemini" in result.stdout


def test_check_and_serve_reject_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  - name: a\n    provider: nope\n")
    for command in ("check", "serve"):
        result = gateway_cli(command, "--config", str(path))
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "models[0].provider" in lines[0] and str(path) in lines[0]
        assert "Traceback" not in result.stderr


def test_config_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("models:\n  - name: from-env\n    provider: openai\n")
    result = gateway_cli("check", env={"GATEWAY_CONFIG": str(path)})
    assert result.returncode == 0 and "from-env" in result.stdout


def test_serve_refuses_public_bind_with_auth_off() -> None:
    env = {"GATEWAY_MASTER_KEY": ""}
    result = gateway_cli("serve", "--config", "config/models.example.yaml", "--host", "0.0.0.0",
                         env=env)
    assert result.returncode == 1 and "--insecure" in result.stderr


def test_console_script_is_installed() -> None:
    result = subprocess.run(["gateway", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "serve" in result.stdout


def test_serve_with_workers_sums_metrics(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """Two worker processes; /metrics on either one counts the requests of both."""
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - name: m\n    provider: openai-compatible\n"
                    f"    model: echo\n    api_base: {fake_openai.url}\n")  # type: ignore[attr-defined]
    port = free_port()
    env = {**os.environ, "GATEWAY_MASTER_KEY": "sk-w", "PROMETHEUS_MULTIPROC_DIR": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--port", str(port),
         "--workers", "2", "--log-level", "warning"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(headers={"authorization": "Bearer sk-w"}) as client:
            for _ in range(12):  # fresh connections, so both workers get some
                assert client.post(f"{url}/v1/chat/completions", json=body,
                                   headers={"connection": "close"}).status_code == 200
        for _ in range(3):  # whichever worker answers the scrape, the sum is the same
            assert _chat_requests(httpx.get(f"{url}/metrics").text) == 12
    finally:
        process.terminate()
        process.wait(20)


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("gateway serve did not come up")


def _chat_requests(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "gateway_requests":
            return sum(s.value for s in family.samples if s.name == "gateway_requests_total"
                       and s.labels["endpoint"] == "/v1/chat/completions"
                       and s.labels["status"] == "200")
    return 0.0
