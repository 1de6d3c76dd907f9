"""The command line a new user meets: help with defaults, --version, singular counts, and a
warning naming the entry whose api_key came out empty."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway import __version__
from tests.conftest import GatewayFactory
from tests.fakes.openai_server import FakeOpenAI
from tests.test_config import gateway_cli

EMPTY_KEY = """\
models:
  - name: fine
    provider: openai-compatible
    api_base: http://127.0.0.1:9/v1
  - name: keyless
    provider: openai
    api_key: ${GW_TEST_SURELY_UNSET:-}
"""


def test_version() -> None:
    result = gateway_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"gateway {__version__}"


def test_serve_help_gives_the_defaults() -> None:
    result = gateway_cli("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for expected in ("--host HOST the address to listen on (default: 127.0.0.1)",
                     "--port PORT the port to listen on (default: 8000)",
                     "--workers WORKERS server processes (default: 1)",
                     "(default: $GATEWAY_CONFIG, else ./models.yaml; with neither, the "
                     "embedded SmolLM2 model)",
                     "(default: info)"):
        assert expected in text, expected


def test_keys_help_explains_url() -> None:
    result = gateway_cli("keys", "--help", env={"GATEWAY_URL": "http://gw.example:9000"})
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "the running gateway's base URL (default: http://gw.example:9000;" in text


def test_check_counts_in_the_singular(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("models:\n  - name: a\n    provider: openai\n    api_key: sk-x\n")
    result = gateway_cli("check", "--config", str(path))
    assert result.returncode == 0 and result.stdout.endswith("ok: 1 deployment\n")
    assert result.stderr == ""


def test_check_warns_about_an_empty_api_key(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(EMPTY_KEY)
    result = gateway_cli("check", "--config", str(path))
    assert result.returncode == 0 and "ok: 2 deployments" in result.stdout
    assert result.stderr.splitlines() == [
        "gateway: warning: models[1] (keyless): api_key is empty (an unset ${VAR:-}?); its "
        "upstream will refuse requests sent without a key"]


def test_serve_warns_about_an_empty_api_key(make_gateway: GatewayFactory,
                                            fake_openai: FakeOpenAI,
                                            caplog: pytest.LogCaptureFixture) -> None:
    config = {"models": [
        {"name": "keyed", "provider": "openai", "api_key": "sk-1"},
        {"name": "keyless", "provider": "openai", "api_key": ""},
        {"name": "local-upstream", "provider": "openai-compatible",
         "api_base": fake_openai.url},  # type: ignore[attr-defined]  # no key at all: fine
    ]}
    with caplog.at_level(logging.INFO, logger="gateway"):
        make_gateway(config)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("models[1] (keyless): api_key is empty")
    assert any("gateway ready: 3 deployments," in r.getMessage() for r in caplog.records)
