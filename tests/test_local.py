"""Local models end to end: the official openai SDK → the gateway → llama-cpp / onnx, with tiny
random models (tests/models/): a GGUF generated for the session and the committed ONNX folder
made from it. Their text is random printable ASCII and never ends before ``max_tokens``."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jinja2
import openai
import pytest
from tokenizers import Tokenizer

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.local_clients import alone_and_together
from tests.models.make_tiny_gguf import CHAT_TEMPLATE, make_tiny_gguf

pytest.importorskip("llama_cpp", reason="the local extra: pip install -e '.[local]'")
pytest.importorskip("onnxruntime_genai", reason="the local extra: pip install -e '.[local]'")

TINY_ONNX = Path(__file__).resolve().parent / "models" / "tiny-onnx"
MODELS = ["tiny-llama", "tiny-onnx"]
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


def local_models(gguf: Path, **extra: Any) -> list[dict[str, Any]]:
    common = {"n_threads": 1, **extra}
    return [
        {"name": "tiny-llama", "provider": "llama-cpp", "path": str(gguf), "n_ctx": 256,
         **common},
        {"name": "tiny-onnx", "provider": "onnx", "path": str(TINY_ONNX), "n_ctx": 256,
         **common},
        {"name": "tiny-long", "provider": "llama-cpp", "path": str(gguf), "n_ctx": 32768,
         **common},
        {"name": "tiny-embed", "provider": "llama-cpp", "path": str(gguf), "n_ctx": 256,
         "embedding": True, **common},
    ]


@pytest.fixture
def local_gateway(make_gateway: GatewayFactory, tiny_gguf: Path) -> str:
    return make_gateway({"models": local_models(tiny_gguf)})


@pytest.fixture
def client(local_gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{local_gateway}/v1", api_key=MASTER_KEY, max_retries=0)


def expected_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """The prompt's length by the model's own tokenizer.json and chat template, independently
    of the gateway."""
    tokenizer = Tokenizer.from_file(str(TINY_ONNX / "tokenizer.json"))
    text = jinja2.Template(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def complete(client: openai.OpenAI, model: str, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, **{"messages": HELLO, **kwargs})


@pytest.mark.parametrize("model", MODELS)
def test_non_stream(client: openai.OpenAI, model: str) -> None:
    answer = complete(client, model, max_tokens=12, temperature=0)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    assert answer.model == model and answer.object == "chat.completion"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 12
    assert answer.usage.prompt_tokens == expected_prompt_tokens(HELLO)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 12


@pytest.mark.parametrize("model", MODELS)
def test_stream_matches_non_stream(client: openai.OpenAI, model: str) -> None:
    whole = complete(client, model, max_tokens=16, temperature=0)
    chunks = list(complete(client, model, max_tokens=16, temperature=0, stream=True,
                           stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.id == chunks[0].id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 16
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


@pytest.mark.parametrize("model", MODELS)
def test_stream_without_usage_has_no_usage_chunk(local_gateway: str, model: str) -> None:
    body = {"model": model, "messages": HELLO, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{local_gateway}/v1/chat/completions", json=body,
                      headers={"authorization": f"Bearer {MASTER_KEY}"}) as response:
        raw = response.read()
    events = raw.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert b'"usage"' not in raw and len(events) == 4 + 1 + 2  # 4 tokens, finish, [DONE]


@pytest.mark.parametrize("model", MODELS)
def test_seed_and_temperature(client: openai.OpenAI, model: str) -> None:
    def text(**kwargs: Any) -> str:
        content = complete(client, model, max_tokens=24, **kwargs).choices[0].message.content
        assert content is not None
        return content

    assert text(temperature=1.5, seed=7) == text(temperature=1.5, seed=7)
    assert text(temperature=1.5, seed=7) != text(temperature=1.5, seed=8)
    assert text(temperature=0, seed=1) == text(temperature=0, seed=2)  # greedy ignores seed


@pytest.mark.parametrize("model", MODELS)
def test_stop_sequence(client: openai.OpenAI, model: str) -> None:
    full = complete(client, model, max_tokens=30, temperature=0).choices[0].message.content
    assert full is not None and len(full) > 12
    stop = full[8:11]
    answer = complete(client, model, max_tokens=30, temperature=0, stop=["@@@@", stop])
    assert answer.choices[0].message.content == full[:full.index(stop)]
    assert answer.choices[0].finish_reason == "stop"
    streamed = complete(client, model, max_tokens=30, temperature=0, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == full[:full.index(stop)]


@pytest.mark.parametrize("model", MODELS)
def test_max_completion_tokens(client: openai.OpenAI, model: str) -> None:
    answer = complete(client, model, max_completion_tokens=3)
    assert answer.usage is not None and answer.usage.completion_tokens == 3


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_context_overflow(client: openai.OpenAI, model: str, stream: bool) -> None:
    long = [{"role": "user", "content": "word " * 300}]
    with pytest.raises(openai.BadRequestError) as caught:
        complete(client, model, messages=long, stream=stream)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert "256" in error["message"]


@pytest.mark.parametrize("model", MODELS)
def test_context_fills_up(client: openai.OpenAI, model: str) -> None:
    """No max_tokens: the answer runs until the context is full."""
    answer = complete(client, model)
    assert answer.usage is not None and answer.usage.total_tokens == 256
    assert answer.choices[0].finish_reason == "length"


@pytest.mark.parametrize(("field", "value"), [
    ("n", 2), ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    ("logprobs", True), ("logit_bias", {"50": -100}),
])
@pytest.mark.parametrize("model", MODELS)
def test_unsupported_fields_are_400(client: openai.OpenAI, model: str, field: str,
                                    value: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        complete(client, model, **{field: value})
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == field


@pytest.mark.parametrize("model", MODELS)
def test_image_content_is_400(client: openai.OpenAI, model: str) -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]
    with pytest.raises(openai.BadRequestError) as caught:
        complete(client, model, messages=messages)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "messages[0].content"


@pytest.mark.parametrize("model", MODELS)
def test_json_schema_response_format(client: openai.OpenAI, model: str) -> None:
    schema = {"type": "object", "properties": {
        "ok": {"type": "boolean"}, "colour": {"enum": ["red", "green", "blue"]}},
        "required": ["ok", "colour"], "additionalProperties": False}
    answer = complete(client, model, max_tokens=200, response_format={
        "type": "json_schema", "json_schema": {"name": "r", "schema": schema}})
    data = json.loads(answer.choices[0].message.content or "")
    assert set(data) == {"ok", "colour"} and isinstance(data["ok"], bool)
    assert data["colour"] in ("red", "green", "blue")
    assert answer.choices[0].finish_reason == "stop"


def test_json_object_response_format(client: openai.OpenAI) -> None:
    answer = complete(client, "tiny-llama", max_tokens=200, temperature=0,
                      response_format={"type": "json_object"})
    text = answer.choices[0].message.content or ""
    if answer.choices[0].finish_reason == "stop":
        json.loads(text)
    else:  # the grammar holds even where max_tokens cut the object short
        assert text.lstrip().startswith(("{", "["))


def test_concurrent_clients_are_all_served(local_gateway: str) -> None:
    """4 clients at once on one model: each gets its own complete answer, the same as alone."""
    alone, together = alone_and_together(local_gateway, "tiny-llama", "client {i} says hi",
                                         max_tokens=40, temperature=1)
    assert together == alone and len(set(alone)) == 4


def _stream_open(url: str, model: str, max_tokens: int) -> tuple[httpx.Client, httpx.Response]:
    http = httpx.Client(timeout=30)
    body = {"model": model, "messages": HELLO, "max_tokens": max_tokens, "stream": True}
    request = http.build_request("POST", f"{url}/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {MASTER_KEY}"})
    response = http.send(request, stream=True)
    assert response.status_code == 200
    return http, response


def _read_events(lines: Iterator[str], count: int) -> int:
    """Read ``count`` events of a stream, leaving it open (breaking out of httpx's line
    iterator would close the connection)."""
    read = 0
    while read < count:
        if next(lines).startswith("data: {"):
            read += 1
    return read


def _stopped_after(caplog: pytest.LogCaptureFixture, model: str) -> int:
    pattern = re.compile(rf"model {model}: the client went away; generation stopped after "
                         r"(\d+) tokens")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in caplog.records:
            if match := pattern.search(record.getMessage()):
                return int(match.group(1))
        time.sleep(0.01)
    raise AssertionError("the generation did not stop")


def test_disconnect_stops_generation(local_gateway: str, client: openai.OpenAI,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    budget = 30000
    http, response = _stream_open(local_gateway, "tiny-long", budget)
    assert _read_events(response.iter_lines(), 3) == 3
    response.close()
    http.close()
    stopped = _stopped_after(caplog, "tiny-long")
    assert 3 <= stopped < budget // 10
    # the model is free again at once
    answer = complete(client, "tiny-long", max_tokens=2)
    assert answer.usage is not None and answer.usage.completion_tokens == 2


def test_queue_full_is_429_with_retry_after(make_gateway: GatewayFactory,
                                            tiny_gguf: Path) -> None:
    """max_queue 1: one request generates, one waits (and is served), a third is refused."""
    url = make_gateway({"models": local_models(tiny_gguf, max_queue=1)})
    http, response = _stream_open(url, "tiny-long", 30000)
    lines = response.iter_lines()
    _read_events(lines, 1)  # the first request holds the model

    async def two_more() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     headers={"authorization": f"Bearer {MASTER_KEY}"}) as c:
            body = {"model": "tiny-long", "messages": HELLO, "max_tokens": 2}
            requests = [asyncio.create_task(c.post("/v1/chat/completions", json=body))
                        for _ in range(2)]
            refused = await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
            assert all(t.result().status_code == 429 for t in refused[0])
            response.close()  # the first client leaves: the waiting request gets the model
            return [await t for t in requests]

    try:
        statuses = asyncio.run(two_more())
    finally:
        http.close()
    assert sorted(r.status_code for r in statuses) == [200, 429]
    refused = next(r for r in statuses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("model", ["tiny-long", "tiny-onnx"])
def test_health_answers_while_generating(local_gateway: str, model: str) -> None:
    """/health within 50 ms while the model generates (a client keeps it busy meanwhile)."""
    done, tokens = threading.Event(), [0]

    def keep_busy() -> None:
        with httpx.Client(base_url=local_gateway, timeout=30,
                          headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
            body = {"model": model, "messages": HELLO, "max_tokens": 500, "stream": True}
            while not done.is_set():
                with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    for line in response.iter_lines():
                        tokens[0] += line.startswith("data: {")
                        if done.is_set():
                            break

    busy = threading.Thread(target=keep_busy, daemon=True)
    busy.start()
    try:
        with httpx.Client(base_url=local_gateway) as probe:
            probe.get("/health")
            deadline = time.monotonic() + 10
            while tokens[0] < 10 and time.monotonic() < deadline:
                time.sleep(0.005)
            # probe at least 10 times, and on until tokens have come out meanwhile (between
            # two answers the model may be reading the next prompt)
            before, timings = tokens[0], []
            deadline = time.monotonic() + 10
            while len(timings) < 10 or (tokens[0] <= before and time.monotonic() < deadline):
                started = time.perf_counter()
                assert probe.get("/health").json() == {"status": "ok"}
                timings.append(time.perf_counter() - started)
            assert tokens[0] > before, "the model was not generating"
    finally:
        done.set()
        busy.join(10)
    print(f"/health while {model} generates: max {max(timings) * 1000:.1f} ms")
    assert max(timings) < 0.050, timings


def test_embeddings(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="tiny-embed", input=["hello", "big world"],
                                      encoding_format="float")
    packed = client.embeddings.create(model="tiny-embed", input=["hello", "big world"])
    assert [d.index for d in floats.data] == [0, 1]
    for a, b in zip(floats.data, packed.data, strict=True):
        assert len(a.embedding) == 64
        assert math.isclose(math.fsum(x * x for x in a.embedding), 1.0, rel_tol=1e-4)
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 2


def test_embedding_and_chat_models_are_kept_apart(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny-llama", input="hello")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny-onnx", input="hello")
    with pytest.raises(openai.BadRequestError):
        complete(client, "tiny-embed")
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="tiny-embed", input="word " * 300)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "context_length_exceeded"


def test_models_are_listed(client: openai.OpenAI) -> None:
    assert {m.id for m in client.models.list()} >= {"tiny-llama", "tiny-onnx", "tiny-embed"}


def test_penalties(client: openai.OpenAI) -> None:
    plain = complete(client, "tiny-llama", max_tokens=40, temperature=0)
    penalized = complete(client, "tiny-llama", max_tokens=40, temperature=0,
                         frequency_penalty=2.0)
    assert plain.choices[0].message.content != penalized.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as caught:
        complete(client, "tiny-onnx", presence_penalty=1.0)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "presence_penalty"
