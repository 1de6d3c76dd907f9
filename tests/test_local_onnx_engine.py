"""``onnx`` slots on ``og.Engine``, end to end through the official openai SDK with the tiny
ONNX model (tests/models/tiny-onnx): which requests the engine runs and which a generator runs
(seeded samples), greedy answers equal to the generator's, slots in flight at once on their
engines (shown by the probe of tests/local_hold.py, not by timing), a client that leaves
cancelling its engine turn and the slot serving the next request, seeds kept beside engine
requests, and a grammar the engine cannot build refused as a 400."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from providers.local.base import Sampling
from providers.local.onnx import OnnxConfig, OnnxEngine
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.local_hold import Hold

pytest.importorskip("onnxruntime_genai", reason="the local extra: pip install -e '.[local]'")

TINY_ONNX = Path(__file__).resolve().parent / "models" / "tiny-onnx"
MODEL = "tiny-onnx"
HELD = 40  # max_tokens of a generation the probe holds (tests/local_hold.py: HOLD_FROM)


def deployment(**extra: Any) -> dict[str, Any]:
    return {"models": [{"name": MODEL, "provider": "onnx", "path": str(TINY_ONNX),
                        "n_threads": 1, "n_ctx": 512, **extra}]}


def ask(client: openai.OpenAI, content: str = "hello there", **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}],
        **{"max_tokens": 30, **kwargs})


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which way each generation ran: "engine" (og.Engine) or "generator" (og.Generator)."""
    used: list[str] = []
    for name, label in (("_engine_tokens", "engine"), ("_generator_tokens", "generator")):
        original = getattr(OnnxEngine, name)

        def spy(self: OnnxEngine, *args: Any, _original: Any = original, _label: str = label
                ) -> Iterator[int]:
            used.append(_label)
            result: Iterator[int] = _original(self, *args)
            return result

        monkeypatch.setattr(OnnxEngine, name, spy)
    return used


@pytest.fixture
def client(make_gateway: GatewayFactory) -> openai.OpenAI:
    url = make_gateway(deployment(parallel=2))
    return openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)


def test_engine_runs_all_but_seeded_samples(client: openai.OpenAI, paths: list[str]) -> None:
    """Greedy answers (seed or not) and unseeded samples run on the engine; a sample with a
    seed runs on a generator, and gives its seed's answer every time."""
    ask(client, temperature=0)
    ask(client, temperature=0, seed=3)
    ask(client, temperature=1.0)
    seeded = [ask(client, temperature=1.0, seed=5).choices[0].message.content for _ in range(2)]
    assert paths == ["engine", "engine", "engine", "generator", "generator"]
    assert seeded[0] == seeded[1]


def test_engine_greedy_answer_is_the_generators() -> None:
    """The same prompt at temperature 0, free and with a JSON schema: the engine's tokens are
    the generator's (one model, on this thread, which owns the engine)."""
    config = OnnxConfig.model_validate({"name": MODEL, "provider": "onnx",
                                        "path": str(TINY_ONNX), "n_threads": 1})
    engine = OnnxEngine(config)
    try:
        prompt = engine.encode_chat([{"role": "user", "content": "hello there"}])
        for schema in (None, {"type": "object", "properties": {"a": {"type": "integer"}}}):
            sampling = Sampling(max_tokens=40, temperature=0, top_p=1.0, seed=1, stop=(),
                                json_schema=schema)
            by_engine = list(engine._engine_tokens(prompt, sampling, 40))
            by_generator = list(engine._generator_tokens(prompt, sampling, 40))
            assert by_engine == by_generator and len(by_engine) > 0
    finally:
        engine.close()


def test_unseeded_samples_differ(client: openai.OpenAI, paths: list[str]) -> None:
    """Without a seed each request samples with its own random stream (the engine's)."""
    answers = {ask(client, temperature=1.0).choices[0].message.content for _ in range(3)}
    assert len(answers) == 3
    assert paths == ["engine"] * 3


def test_engine_slots_in_flight_at_once(client: openai.OpenAI, hold: Hold, paths: list[str]
                                        ) -> None:
    """parallel 2: two greedy streams, each held after its first token so that neither can
    end, are both in flight on their slots' engines; each answer and its usage is what the
    request gets alone."""
    streams = [ask(client, f"question {i}", temperature=0, max_tokens=HELD, stream=True,
                   stream_options={"include_usage": True}) for i in range(2)]
    firsts = [next(iter(s)) for s in streams]
    assert hold.starts(MODEL) == [(0, 1), (1, 2)]  # slot, generations in flight
    hold.release.set()
    together = []
    for first, stream in zip(firsts, streams, strict=True):
        text, tokens = first.choices[0].delta.content or "", 0
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
            tokens = chunk.usage.completion_tokens if chunk.usage else tokens
        together.append((text, tokens))
    alone = [ask(client, f"question {i}", temperature=0, max_tokens=HELD) for i in range(2)]
    assert together == [(a.choices[0].message.content, a.usage.completion_tokens)
                        for a in alone]
    assert paths == ["engine"] * 4


def test_client_that_leaves_cancels_its_turn(client: openai.OpenAI, hold: Hold) -> None:
    """A client leaves a held engine stream: its turn is cancelled after the token in hand and
    the slot's engine, left clean, gives the next requests the answers they get alone."""
    short = {"temperature": 0, "max_tokens": 12}  # under the probe's HOLD_FROM: not held
    before = ask(client, **short).choices[0].message.content
    with ask(client, temperature=0, max_tokens=HELD, stream=True) as leaving:
        next(iter(leaving))
    assert len(hold.wait_stopped(MODEL, 1)) == 1
    for _ in range(2):  # both slots, whichever took the first
        assert ask(client, **short).choices[0].message.content == before


def test_seeds_hold_beside_engine_requests(make_gateway: GatewayFactory) -> None:
    """parallel 4: seeded samples (generators) and greedy answers (engines) at once; each is
    what it is alone."""
    url = make_gateway(deployment(parallel=4))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)

    async def one(i: int) -> str:
        extra = {"temperature": 1.2, "seed": i} if i % 2 else {"temperature": 0}
        answer = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=30,
            **extra)  # type: ignore[call-overload]
        return answer.choices[0].message.content or ""

    async def run() -> tuple[list[str], list[str]]:
        alone = [await one(i) for i in range(4)]
        return alone, list(await asyncio.gather(*(one(i) for i in range(4))))

    alone, together = asyncio.run(run())
    assert together == alone


def test_grammar_the_engine_cannot_build_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, temperature=0, response_format={"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "no-such-type"}}})
    assert refused.value.body["param"] == "response_format"  # type: ignore[index]
    assert ask(client, temperature=0).choices[0].message.content  # still serving


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Hold]:
    probe = Hold(monkeypatch, caplog)
    yield probe
    probe.release.set()


def test_engine_belongs_to_its_thread() -> None:
    """onnxruntime-genai refuses engine calls from any thread but the one that made it: why
    each slot makes its engine on its own thread (ModelWorker)."""
    config = OnnxConfig.model_validate({"name": MODEL, "provider": "onnx",
                                        "path": str(TINY_ONNX)})
    made: list[OnnxEngine] = []
    thread = threading.Thread(target=lambda: made.append(OnnxEngine(config)))
    thread.start()
    thread.join()
    engine = made[0]
    prompt = engine.encode_chat([{"role": "user", "content": "hi"}])
    sampling = Sampling(max_tokens=3, temperature=0, top_p=1.0, seed=1, stop=())
    with pytest.raises(RuntimeError, match="owner thread"):
        list(engine._engine_tokens(prompt, sampling, 3))
    engine.close()
