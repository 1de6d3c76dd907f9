"""The dashboard and the alerts against a real gateway: a ``gateway serve`` process (fake
upstreams), traffic that moves every metric, then

- every PromQL query of the dashboard and of the alerts names metrics and labels that its
  /metrics really exports (tests/deploy/queries.py);
- Debian's real Prometheus, with the shipped config/prometheus/prometheus.yml pointed at it,
  scrapes it, loads the alerts, answers a gateway metric through its HTTP API, and answers every
  dashboard query with data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.queries import (
    ALERTS,
    ROOT,
    QueryError,
    alert_queries,
    check,
    dashboard_queries,
    exported,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, free_port, stop_process

MASTER = "sk-deploy-master"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
PROMETHEUS = shutil.which("prometheus")


def models(upstream: str) -> dict[str, Any]:
    return {"cache": {"ttl_s": 60}, "models": [
        {"name": "gpt-test", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream, "input_cost_per_mtok": 2.0, "output_cost_per_mtok": 8.0},
        {"name": "broken", "provider": "openai-compatible", "model": "error-500",
         "api_base": upstream, "retries": 0}]}


def chat(url: str, key: str = MASTER, model: str = "gpt-test", **extra: Any) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}],
            "temperature": 0, **extra}
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                        headers={"Authorization": f"Bearer {key}"})
    return answer.status_code


def run_a_job(url: str) -> None:
    posted = httpx.post(f"{url}/v1/tools/extract", headers=ADMIN, timeout=30,
                        files={"file": ("notes.txt", b"The meeting starts at 10.", "text/plain")},
                        data={"model": "gpt-test", "prompt": "When does it start?"})
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{posted.json()['id']}", headers=ADMIN).json()
        if job["status"] in ("succeeded", "failed"):
            assert job["status"] == "succeeded", job
            return
        time.sleep(0.05)
    raise AssertionError("the job did not end")


def traffic(url: str) -> None:
    """Requests that move every metric the dashboard and the alerts read."""
    assert chat(url) == 200 and chat(url) == 200  # tokens, cost, a cache miss then a hit
    assert chat(url, stream=True, temperature=1) == 200  # time to first token
    assert chat(url, model="no-such-model") == 404
    assert chat(url, model="broken") == 502  # an upstream error
    limited = httpx.post(f"{url}/v1/keys", json={"name": "slow", "rpm": 1}, headers=ADMIN)
    key = limited.json()["key"]
    assert [chat(url, key), chat(url, key)] == [200, 429]  # rate limited (scope key)
    run_a_job(url)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI
         ) -> Iterator[tuple[GatewayProcess, str]]:
    """A gateway process after the traffic, and its /metrics then."""
    path = tmp_path_factory.mktemp("live") / "models.yaml"
    path.write_text(json.dumps(models(fake_openai_server.url)))  # type: ignore[attr-defined]
    gateway = GatewayProcess(str(path), {"GATEWAY_MASTER_KEY": MASTER})
    try:
        gateway.wait_ready()
        traffic(gateway.url)
        yield gateway, httpx.get(f"{gateway.url}/metrics").text
    finally:
        gateway.stop()


def test_every_dashboard_query_names_exported_metrics_and_labels(
        live: tuple[GatewayProcess, str]) -> None:
    series = exported(live[1])
    read: set[str] = set()
    for title, expr, legend in dashboard_queries():
        try:
            read |= check(expr, series, legend)
        except QueryError as error:
            raise AssertionError(f"panel {title!r}: {error}") from None
    families = {"gateway_requests_total", "gateway_request_duration_seconds_bucket",
                "gateway_time_to_first_token_seconds_bucket", "gateway_tokens_total",
                "gateway_cost_usd_total", "gateway_cache_requests_total",
                "gateway_rate_limited_total", "gateway_upstream_errors_total",
                "gateway_in_flight_requests", "gateway_jobs_queued", "gateway_jobs_total"}
    assert families <= read  # what the issue asks the dashboard to show


def test_every_alert_names_exported_metrics_and_labels(live: tuple[GatewayProcess, str]
                                                       ) -> None:
    series = exported(live[1])
    for name, expr, used in alert_queries():
        try:
            check(expr, series, used)
        except QueryError as error:
            raise AssertionError(f"alert {name}: {error}") from None


def test_the_check_refuses_what_is_not_exported(live: tuple[GatewayProcess, str]) -> None:
    series = exported(live[1])
    assert check('sum by (model) (rate(gateway_tokens_total{type="prompt"}[1m]))', series,
                 frozenset({"model"})) == {"gateway_tokens_total"}
    for wrong in ("rate(gateway_request_total[1m])",  # no such metric
                  'gateway_tokens_total{kind="prompt"}',  # no such label
                  "sum by (provider) (gateway_tokens_total)",  # nor grouping label
                  "histogram_quantile(0.9, sum by (model) "
                  "(rate(gateway_request_duration_seconds_bucket[1m])))"):
        with pytest.raises(QueryError):
            check(wrong, series, frozenset({"le"}) if "histogram" in wrong else frozenset())
    with pytest.raises(QueryError):  # a legend label the result does not have
        check("sum(rate(gateway_tokens_total[1m]))", series, frozenset({"model"}))


# -- Debian's real Prometheus -------------------------------------------------------------


class Prometheus:
    """/usr/bin/prometheus on a free port, scraping ``target`` every second, with the
    shipped config (its targets and intervals replaced) and alerts."""

    def __init__(self, folder: Path, target: str) -> None:
        assert PROMETHEUS is not None, "apt-get install prometheus (scripts/test does)"
        config = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(ALERTS)]
        config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The first non-empty answer to ``expr``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise AssertionError(f"prometheus exited: {self.process.stderr.read()!r}")
            try:
                ready = httpx.get(f"{self.url}/-/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and (result := self.query(expr)):
                return result
            time.sleep(0.2)
        raise AssertionError(f"prometheus never answered {expr}")

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, live: tuple[GatewayProcess, str]
               ) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), live[0].url.split("//")[1])
    try:
        # three scrapes at least: rate() over the dashboard's window has two points to use
        server.wait_for("count_over_time(up[1m]) >= 3")
        yield server
    finally:
        server.stop()


def test_prometheus_scrapes_the_gateway_and_answers_its_metrics(prometheus: Prometheus,
                                                                live: tuple[GatewayProcess, str]
                                                                ) -> None:
    up = prometheus.query('up{job="ai-gateway"}')
    assert [sample["value"][1] for sample in up] == ["1"]
    unknown = prometheus.query(
        'gateway_requests_total{endpoint="/v1/chat/completions",status="404"}')
    # (an unknown model is counted as model="", which Prometheus stores as no label)
    assert [(s["metric"].get("model"), s["value"][1]) for s in unknown] == [(None, "1")]
    tokens = prometheus.query('sum by (type) (gateway_tokens_total{model="gpt-test"})')
    counted = {s["metric"]["type"]: float(s["value"][1]) for s in tokens}
    assert counted["prompt"] > 0 and counted["completion"] > 0


def test_prometheus_answers_every_dashboard_query_with_data(prometheus: Prometheus) -> None:
    empty = [(title, expr) for title, expr, _ in dashboard_queries()
             if not prometheus.query(expr)]
    assert not empty, empty


def test_prometheus_loads_the_alerts(prometheus: Prometheus) -> None:
    answer = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()
    rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == {name for name, _, _ in alert_queries()}
    assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules
