"""End to end: vendor usage details (cached, reasoning tokens), several Gemini candidates,
embeddings, and the gateway's token metrics, through the official openai SDK."""

from __future__ import annotations

import base64
import re
import struct

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama

MESSAGES = [{"role": "user", "content": "hello big world"}]




def test_anthropic_cached_tokens_are_prompt_tokens(client: openai.OpenAI) -> None:
    """input_tokens 3 + cache creation 2 + cache read 3: OpenAI counts all as prompt."""
    answer = client.chat.completions.create(model="anthropic/cache-hit", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.usage is not None and answer.usage.prompt_tokens == 8
    assert answer.usage.prompt_tokens_details.cached_tokens == 3  # type: ignore[union-attr]
    chunks = list(client.chat.completions.create(
        model="anthropic/cache-hit", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (8, 4)


def test_anthropic_thinking_blocks_are_not_content(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="anthropic/thinking", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "echo: hello big world"
    chunks = list(client.chat.completions.create(model="anthropic/thinking",  # type: ignore[arg-type]
                                                 messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello big world"


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_thoughts_are_completion_tokens(client: openai.OpenAI, stream: bool) -> None:
    if stream:
        chunks = list(client.chat.completions.create(
            model="gemini/think", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        answer = client.chat.completions.create(model="gemini/think", messages=MESSAGES)  # type: ignore[arg-type]
        text, usage = answer.choices[0].message.content or "", answer.usage
    assert text == "echo: hello big world"  # the thought part is not the answer
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 4 + 5)
    assert usage.completion_tokens_details.reasoning_tokens == 5  # type: ignore[union-attr]
    assert usage.prompt_tokens_details.cached_tokens == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_n_is_candidate_count(client: openai.OpenAI, fake_gemini: FakeGemini,
                                     stream: bool) -> None:
    if stream:
        chunks = list(client.chat.completions.create(model="gemini", messages=MESSAGES, n=2,  # type: ignore[arg-type]
                                                     stream=True))
        texts = {i: "".join(c.choices[0].delta.content or "" for c in chunks
                            if c.choices[0].index == i) for i in (0, 1)}
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
        assert list(texts.values()) == ["echo: hello big world"] * 2
        assert finishes == ["stop", "stop"]
    else:
        answer = client.chat.completions.create(model="gemini", messages=MESSAGES, n=2)  # type: ignore[arg-type]
        assert [c.index for c in answer.choices] == [0, 1]
        assert {c.message.content for c in answer.choices} == {"echo: hello big world"}
    assert fake_gemini.requests[-1]["generationConfig"] == {"candidateCount": 2}


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_safety(client: openai.OpenAI, stream: bool) -> None:
    for model in ("gemini/safety", "gemini/blocked"):
        if stream:
            chunks = list(client.chat.completions.create(model=model, messages=MESSAGES,  # type: ignore[arg-type]
                                                         stream=True))
            finish = chunks[-1].choices[0].finish_reason
        else:
            answer = client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
            finish = answer.choices[0].finish_reason
        assert finish == "content_filter"


def floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.mark.parametrize("vendor", ["gemini", "ollama"])
def test_embeddings(client: openai.OpenAI, fake_gemini: FakeGemini, fake_ollama: FakeOllama,
                    vendor: str) -> None:
    many = client.embeddings.create(model=vendor, input=["one two", "three"], dimensions=3)
    assert [d.index for d in many.data] == [0, 1]
    assert [d.embedding for d in many.data] == [[7.0, 0.5, -1.0], [5.0, 0.5, -1.0]]
    one = client.embeddings.create(model=vendor, input="four", encoding_format="float")
    assert one.data[0].embedding == [4.0, 0.5, -1.0, 0.25]
    if vendor == "gemini":
        assert fake_gemini.paths[-2:] == ["/v1beta/models/echo:batchEmbedContents",
                                          "/v1beta/models/echo:embedContent"]
        assert fake_gemini.requests[-2]["requests"][0]["outputDimensionality"] == 3
    else:
        assert fake_ollama.requests[-2] == {"model": "echo", "input": ["one two", "three"],
                                            "dimensions": 3}
        assert many.usage.prompt_tokens == 3


def test_embeddings_base64_on_the_wire(gateway: str) -> None:
    response = httpx.post(f"{gateway}/v1/embeddings", headers={
        "authorization": f"Bearer {MASTER_KEY}"}, json={
        "model": "ollama", "input": "one", "encoding_format": "base64"})
    assert floats(response.json()["data"][0]["embedding"]) == [3.0, 0.5, -1.0, 0.25]


def test_anthropic_has_no_embeddings(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="does not support embeddings"):
        client.embeddings.create(model="anthropic", input="x")


def test_token_metrics_count_every_stream(gateway: str, client: openai.OpenAI) -> None:
    """The usage-only chunk is always made and counted, even for a client that did not ask
    for usage (and so never sees it)."""
    for vendor in ("anthropic", "gemini", "ollama"):
        list(client.chat.completions.create(model=vendor, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        metrics = httpx.get(f"{gateway}/metrics").text
        for kind, count in (("prompt", 3), ("completion", 4)):
            found = re.search(rf'gateway_tokens_total{{model="{vendor}",type="{kind}"}} (\S+)',
                              metrics)
            assert found and float(found.group(1)) == count
