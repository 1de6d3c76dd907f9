"""``parallel: N`` on local models, end to end through the official openai SDK with the tiny
test models (tests/models/): generations that overlap, a slot freed by a client that left
taken by the next request at once, seeds that give the same answer on any slot and under
load, queue limits with N slots, embeddings on several slots. The overlap is shown by events
(tests/local_hold.py and the slots' log), never by timing."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.local_clients import alone_and_together
from tests.local_hold import Hold
from tests.models.make_tiny_gguf import make_tiny_gguf

pytest.importorskip("llama_cpp", reason="the local extra: pip install -e '.[local]'")
pytest.importorskip("onnxruntime_genai", reason="the local extra: pip install -e '.[local]'")

TINY_ONNX = Path(__file__).resolve().parent / "models" / "tiny-onnx"
MODELS = ["tiny-llama", "tiny-onnx"]
HELLO = [{"role": "user", "content": "hello there"}]
HELD = 40  # max_tokens of a generation the probe holds (tests/local_hold.py: HOLD_FROM)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


def models(gguf: Path, **extra: Any) -> dict[str, Any]:
    common = {"n_threads": 1, "n_ctx": 512, **extra}
    return {"models": [
        {"name": "tiny-llama", "provider": "llama-cpp", "path": str(gguf), **common},
        {"name": "tiny-onnx", "provider": "onnx", "path": str(TINY_ONNX), **common},
        {"name": "tiny-embed", "provider": "llama-cpp", "path": str(gguf), "embedding": True,
         **common},
    ]}


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Hold]:
    probe = Hold(monkeypatch, caplog)
    yield probe
    probe.release.set()


class Streamed:
    """A stream opened through the SDK, read up to its first content."""

    def __init__(self, client: openai.OpenAI, model: str, **kwargs: Any) -> None:
        self.stream = client.chat.completions.create(
            model=model, messages=HELLO, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True}, **{"max_tokens": HELD, **kwargs})
        self._chunks = iter(self.stream)
        first = next(self._chunks)
        assert first.choices[0].delta.role == "assistant"
        self.text = first.choices[0].delta.content or ""
        assert self.text

    def finish(self) -> tuple[str, int]:
        """The whole answer and its completion tokens (from the usage chunk)."""
        tokens = 0
        for chunk in self._chunks:
            self.text += "".join(c.delta.content or "" for c in chunk.choices)
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        return self.text, tokens


def alone(client: openai.OpenAI, model: str, **kwargs: Any) -> str:
    answer = client.chat.completions.create(model=model, messages=HELLO,  # type: ignore[arg-type]
                                            **{"max_tokens": HELD, **kwargs})
    return answer.choices[0].message.content or ""


@pytest.mark.parametrize("model", MODELS)
def test_two_generations_in_flight_at_once(make_gateway: GatewayFactory, tiny_gguf: Path,
                                           hold: Hold, model: str) -> None:
    """parallel 2: the second client's first token comes while the first generation is held
    mid-answer (it cannot end before the release), so both run at once; each answer is what
    the same request gets alone, with its usage."""
    client = sdk(make_gateway(models(tiny_gguf, parallel=2)))
    seeds = [{"temperature": 1.0, "seed": 11}, {"temperature": 1.0, "seed": 12}]
    first, second = Streamed(client, model, **seeds[0]), Streamed(client, model, **seeds[1])
    assert hold.starts(model) == [(0, 1), (1, 2)]  # slot, generations in flight
    hold.release.set()
    together = [first.finish(), second.finish()]
    assert together == [(alone(client, model, **seeds[0]), HELD),
                        (alone(client, model, **seeds[1]), HELD)]
    assert together[0] != together[1]


@pytest.mark.parametrize("model", MODELS)
def test_parallel_one_is_one_at_a_time(make_gateway: GatewayFactory, tiny_gguf: Path,
                                       hold: Hold, model: str) -> None:
    """The default, parallel 1: while one generation holds the model, another request with no
    room to wait (max_queue 0) is refused at once."""
    client = sdk(make_gateway(models(tiny_gguf, max_queue=0)))
    held = Streamed(client, model)
    with pytest.raises(openai.RateLimitError) as refused:
        alone(client, model, max_tokens=2)
    assert int(refused.value.response.headers["retry-after"]) >= 1
    hold.release.set()
    assert held.finish()[1] == HELD
    assert hold.starts(model) == [(0, 1)]


@pytest.mark.parametrize("model", MODELS)
def test_client_that_leaves_frees_its_slot_for_the_next(make_gateway: GatewayFactory,
                                                        tiny_gguf: Path, hold: Hold,
                                                        model: str) -> None:
    """parallel 2, max_queue 1: two held streams fill both slots; of two more requests one waits
    and one is refused (429, Retry-After). The first client leaves: its generation stops and
    the waiting request gets that slot at once (the other slot stays held)."""
    client = sdk(make_gateway(models(tiny_gguf, parallel=2, max_queue=1)))
    leaving, staying = Streamed(client, model), Streamed(client, model)
    with ThreadPoolExecutor(2) as pool:
        requests: list[Future[str]] = [pool.submit(alone, client, model, max_tokens=3)
                                       for _ in range(2)]
        done, pending = wait(requests, timeout=30, return_when=FIRST_COMPLETED)
        assert len(done) == 1 and len(pending) == 1
        refused = done.pop().exception()
        assert isinstance(refused, openai.RateLimitError)
        assert int(refused.response.headers["retry-after"]) >= 1
        assert refused.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        leaving.stream.close()
        served = pending.pop().result(timeout=30)
    assert len(served) > 0
    assert len(hold.wait_stopped(model, 1)) == 1
    assert hold.starts(model) == [(0, 1), (1, 2), (0, 2)]  # the freed slot, the other held
    hold.release.set()
    assert staying.finish()[1] == HELD


@pytest.mark.parametrize("model", MODELS)
def test_seeds_hold_on_every_slot_under_load(make_gateway: GatewayFactory, tiny_gguf: Path,
                                             model: str) -> None:
    """parallel 2, 4 clients at once (streamed and not): each answer is the one its seed gives
    alone."""
    url = make_gateway(models(tiny_gguf, parallel=2))
    sequential, together = alone_and_together(url, model, "hi {i}", max_tokens=30,
                                              temperature=1.2)
    assert together == sequential and len(set(sequential)) == 4


def test_embeddings_on_slots(make_gateway: GatewayFactory, tiny_gguf: Path) -> None:
    """parallel 2 on an embedding deployment: lists (one batch each) sent at once get the
    vectors each text gets alone."""
    url = make_gateway(models(tiny_gguf, parallel=2))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    texts = [f"text number {i} " * (i % 5 + 1) for i in range(16)]

    async def run() -> tuple[list[Any], list[Any]]:
        single = [await client.embeddings.create(model="tiny-embed", input=t,
                                                 encoding_format="float") for t in texts]
        lists = await asyncio.gather(*(client.embeddings.create(
            model="tiny-embed", input=texts[i::2], encoding_format="float") for i in range(2)))
        return single, list(lists)

    single, lists = asyncio.run(run())
    for half, answer in enumerate(lists):
        assert [d.index for d in answer.data] == list(range(8))
        assert answer.usage.prompt_tokens == sum(s.usage.prompt_tokens
                                                 for s in single[half::2])
        for got, one in zip(answer.data, single[half::2], strict=True):
            assert got.embedding == pytest.approx(one.data[0].embedding, abs=1e-4)
            assert math.isclose(math.fsum(x * x for x in got.embedding), 1.0, rel_tol=1e-4)
