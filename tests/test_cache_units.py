"""The response cache's pure parts: the key, Cache-Control, the stream assembler and replay,
the semantic vectors and similarity, and the cache: config."""

from __future__ import annotations

import json
import math
from array import array
from typing import Any

import orjson
import pytest

from gateway import store as store_module
from gateway.cache import semantic as semantic_cache
from gateway.cache.response import cache_directives, digest, normalized
from gateway.cache.semantic import Group, pack, request_text, unit_vector, unpack
from gateway.cache.stream import StreamAssembler, replay_chunks
from gateway.config import ConfigError, validate
from tests.fakes.openai_server import bag_of_words
from wire.openai import ChatRequest

MESSAGES = [{"role": "user", "content": "hi"}]


def key(model: str, body: dict[str, Any]) -> str:
    return digest(normalized(model, body))


def test_key_normalization() -> None:
    body = {"model": "m", "messages": MESSAGES, "temperature": 0,
            "response_format": {"type": "json_schema", "json_schema": {"b": 1, "a": 2}}}
    reordered = {"response_format": {"json_schema": {"a": 2, "b": 1}, "type": "json_schema"},
                 "temperature": 0, "messages": MESSAGES, "model": "m"}
    assert key("m", body) == key("m", reordered), "key order, nested too, does not matter"
    assert key("m", body) == key("m", {**body, "stream": True, "user": "u",
                                       "stream_options": {"include_usage": True}})
    assert key("m", body) != key("other", body), "the model name is part of the key"
    for change in ({"temperature": 0.5}, {"n": 2}, {"messages": [{"role": "user",
                                                                  "content": "ho"}]}):
        assert key("m", body) != key("m", {**body, **change})
    messages_only = normalized("m", body, without=frozenset({"messages"}))
    assert b"messages" not in messages_only and b'"temperature":0' in messages_only


def test_cache_control_directives() -> None:
    assert cache_directives(None) == frozenset()
    assert cache_directives("No-Cache") == {"no-cache"}
    assert cache_directives("max-age=0, no-store") == {"max-age", "no-store"}


def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 5,
                         "model": "m", "system_fingerprint": "fp", "choices": choices, **extra})


def delta(index: int, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}


def test_assembler_joins_content_tool_calls_and_choices() -> None:
    assembler = StreamAssembler()
    for data in [
        chunk([delta(0, role="assistant", content=""), delta(1, role="assistant", content="")]),
        chunk([delta(1, content="B1 ")]),
        chunk([delta(0, content="A1 ")]),
        chunk([delta(0, content="A2")]),
        chunk([delta(1, tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "f", "arguments": ""}}])]),
        chunk([delta(1, tool_calls=[{"index": 1, "id": "call_2", "type": "function",
                                     "function": {"name": "g", "arguments": "{}"}}])]),
        chunk([delta(1, tool_calls=[{"index": 0, "function": {"arguments": '{"a":'}}])]),
        chunk([delta(1, tool_calls=[{"index": 0, "function": {"arguments": " 1}"}}])]),
        chunk([delta(0, "stop"), delta(1, "tool_calls")]),
        chunk([], usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    ]:
        assembler.feed(data)
    completion = assembler.completion()
    assert completion is not None
    assert completion["object"] == "chat.completion" and completion["id"] == "c1"
    assert completion["system_fingerprint"] == "fp"
    first, second = completion["choices"]
    assert first["message"] == {"role": "assistant", "content": "A1 A2", "refusal": None}
    assert first["finish_reason"] == "stop"
    assert second["message"]["content"] == "B1 "
    assert second["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]
    assert second["finish_reason"] == "tool_calls"
    assert completion["usage"]["total_tokens"] == 7


@pytest.mark.parametrize("chunks", [
    [],  # nothing at all
    [chunk([delta(0, role="assistant", content="x")])],  # no finish reason
    [chunk([delta(0, content="x"), delta(1, content="y")]), chunk([delta(0, "stop")])],
    [chunk([delta(0, content="x")]), b"not json", chunk([delta(0, "stop")])],
    [chunk([{"delta": {"content": "no index"}, "finish_reason": "stop"}])],
])
def test_assembler_refuses_an_unfinished_or_broken_stream(chunks: list[bytes]) -> None:
    assembler = StreamAssembler()
    for data in chunks:
        assembler.feed(data)
    assert assembler.completion() is None


def test_replay_then_assemble_gives_the_same_answer() -> None:
    completion = {
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "service_tier": "default",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello", "refusal": None},
             "logprobs": {"content": [{"token": "hello", "logprob": -0.1}]},
             "finish_reason": "length"},
            {"index": 1, "message": {"role": "assistant", "content": None, "refusal": None,
                                     "tool_calls": [{"id": "c", "type": "function", "function":
                                                     {"name": "f", "arguments": "{}"}}]},
             "logprobs": None, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    chunks = replay_chunks(completion, include_usage=True)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == completion["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assembler = StreamAssembler()
    for c in chunks:
        assembler.feed(orjson.dumps(c))
    assert assembler.completion() == completion
    assert all("usage" not in c for c in replay_chunks(completion, include_usage=False))


def test_request_text() -> None:
    chat = ChatRequest.parse({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]})
    assert request_text(chat) == 'system: be brief\nuser: a b\nassistant:  [{"id":"1"}]'
    image = ChatRequest.parse({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:,"}}]}]})
    assert request_text(image) is None


def test_vectors_pack_and_normalize() -> None:
    vector = unit_vector([3.0, 4.0])
    assert vector is not None and list(vector) == pytest.approx([0.6, 0.8])
    assert unit_vector([0.0, 0.0]) is None
    created, back = unpack(pack(12.5, vector))
    assert created == 12.5 and back == vector
    assert len(pack(0, vector)) == 8 + 4 * 2


@pytest.mark.parametrize("with_numpy", [True, False])
def test_group_finds_the_most_similar_live_entry(monkeypatch: pytest.MonkeyPatch,
                                                 with_numpy: bool) -> None:
    if with_numpy:
        pytest.importorskip("numpy")
    else:
        monkeypatch.setattr(semantic_cache, "numpy", None)

    def vec(text: str) -> array[float]:
        made = unit_vector(bag_of_words(text))
        assert made is not None
        return made
    fields = {"#v": b"4", "a": pack(100, vec("the capital of france")),
              "b": pack(100, vec("how tall is everest")),
              "c": pack(50, vec("the capital city of france")),  # older than the cutoff below
              "odd": pack(100, array("f", [1.0, 0.0]))}  # another model's dimensions
    group = Group.build(fields, len(bag_of_words("")))
    assert group.version == b"4" and sorted(group.ids) == ["a", "b", "c"]
    entry, score = group.best(vec("the capital city of france"), newer_than=60)
    assert entry == "a" and score == pytest.approx(4 / math.sqrt(4 * 5), abs=1e-6)
    entry, score = group.best(vec("the capital city of france"), newer_than=0)
    assert entry == "c" and score == pytest.approx(1.0, abs=1e-6)
    assert Group.build({"#v": b"1"}, 3).best(array("f", [1, 0, 0]), 0) == (None, -1.0)


def test_fake_embeddings_are_bags_of_words() -> None:
    same = bag_of_words("The capital of France?"), bag_of_words("the capital of france")
    assert same[0] == same[1] and sum(same[0]) == 4
    assert json.dumps(bag_of_words("a")).count("1.0") == 1


@pytest.mark.parametrize(("cache", "problem"), [
    ({"mode": "semantic"},
     "cache.embedding_model: missing (mode: semantic embeds requests with this model)"),
    ({"mode": "semantic", "embedding_model": "nope"},
     "cache.embedding_model: no model named 'nope' is configured"),
    ({"ttl": 5}, "cache.ttl: unknown key"),
    ({"similarity": 1.5}, "cache.similarity: Input should be less than or equal to 1"),
    ({"mode": "fuzzy"}, "cache.mode: Input should be 'deterministic', 'all' or 'semantic'"),
])
def test_cache_config_errors(cache: dict[str, Any], problem: str) -> None:
    models = [{"name": "m", "provider": "openai", "api_key": "x"}]
    with pytest.raises(ConfigError) as caught:
        validate({"cache": cache, "models": models}, "models.yaml")
    assert str(caught.value) == f"models.yaml: {problem}"


def test_cache_config_semantic_ok() -> None:
    models = [{"name": "openai/*", "provider": "openai", "api_key": "x"}]
    config = validate({"cache": {"mode": "semantic",
                                 "embedding_model": "openai/text-embedding-3-small"},
                       "models": models})
    assert config.cache is not None and config.cache.similarity == 0.95
    assert config.cache.ttl_s == 600 and config.cache.max_entries == 256


async def test_memory_store_sweeps_expired_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache entries nobody reads again must not pile up in a single replica's memory."""
    now = [1000.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: now[0])
    store = store_module.MemoryStore()
    await store.set("keep", b"v")
    for i in range(store_module.SWEEP_MIN - 2):
        await store.set(f"gw:cache:{i}", b"answer", ttl_s=10)
    now[0] += 11  # every cache entry has expired; the next write sweeps
    await store.set("new", b"v", ttl_s=10)
    assert len(store._data) == 2
    assert await store.get("keep") == b"v" and await store.get("new") == b"v"
