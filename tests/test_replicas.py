"""Several replicas on one redis-server behave as one: two ``gateway serve`` processes."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, RedisServer, replica_pair

MASTER = "sk-replica-master"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def replicas(tmp_path: Path, fake_openai: FakeOpenAI, redis_server: RedisServer
             ) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    with replica_pair(tmp_path, {
            "cache": {"ttl_s": 60},
            "models": [{"name": "gpt-test", "provider": "openai-compatible", "model": "echo",
                        "api_base": fake_openai.url}]},  # type: ignore[attr-defined]
            redis_server, MASTER) as pair:
        yield pair


def chat(url: str, key: str, text: str = "hello") -> int:
    return httpx.post(f"{url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "gpt-test",
                            "messages": [{"role": "user", "content": text}]}).status_code


def test_rpm_holds_across_replicas(replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas
    key = httpx.post(f"{a.url}/v1/keys", json={"rpm": 10}, headers=ADMIN).json()["key"]
    urls = [a.url, b.url] * 15  # 30 calls, concurrently, half on each replica
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda url: chat(url, key, f"q{urls.index(url)}"), urls))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 20


def test_revoked_through_one_is_refused_by_the_other(
        replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas
    made = httpx.post(f"{a.url}/v1/keys", json={}, headers=ADMIN).json()
    assert chat(b.url, made["key"]) == 200
    assert httpx.delete(f"{a.url}/v1/keys/{made['id']}", headers=ADMIN).status_code == 200
    assert chat(b.url, made["key"]) == 401
    assert chat(a.url, made["key"]) == 401


def test_keys_cli_mirrors_the_api(replicas: tuple[GatewayProcess, GatewayProcess]) -> None:
    a, b = replicas

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "keys", "--url", a.url, *args],
                              capture_output=True, text=True, timeout=30, cwd=ROOT,
                              env={"GATEWAY_MASTER_KEY": MASTER, "PATH": "/usr/bin:/bin"})

    made = cli("create", "--name", "ci", "--models", "gpt-test", "--rpm", "7")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["name"] == "ci" and created["models"] == ["gpt-test"] and created["rpm"] == 7
    assert chat(b.url, created["key"]) == 200
    listed = cli("list")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [created["id"]]
    assert created["key"] not in listed.stdout
    assert cli("revoke", created["id"]).returncode == 0
    assert chat(b.url, created["key"]) == 401
    missing = cli("revoke", created["id"])
    assert missing.returncode == 1 and "404" in missing.stderr


def test_a_cache_entry_made_by_one_is_a_hit_on_the_other(
        replicas: tuple[GatewayProcess, GatewayProcess], fake_openai: FakeOpenAI) -> None:
    a, b = replicas
    body = {"model": "gpt-test", "temperature": 0,
            "messages": [{"role": "user", "content": "shared answer"}]}
    first = httpx.post(f"{a.url}/v1/chat/completions", json=body, headers=ADMIN)
    assert first.headers["x-gateway-cache"] == "miss"
    calls = len(fake_openai.requests)
    second = httpx.post(f"{b.url}/v1/chat/completions", json=body, headers=ADMIN)
    assert second.headers["x-gateway-cache"] == "hit"
    assert second.json() == first.json()
    assert len(fake_openai.requests) == calls  # the upstream was not asked again
