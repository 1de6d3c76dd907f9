"""The response cache end to end: the official openai SDK and httpx through the gateway to
the fake upstream, with the store in memory and in a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import RedisServer, free_port
from tests.test_metrics import samples, value

MESSAGES = [{"role": "user", "content": "hello big world"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = "/v1/chat/completions"


@dataclass
class Gateway:
    url: str
    client: openai.OpenAI

    def post(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.post(f"{self.url}{CHAT}", json=body, headers={**AUTH, **headers})

    def chat(self, **params: Any) -> tuple[str, Any]:
        """(x-gateway-cache, the SDK's parsed answer)"""
        raw = self.client.chat.completions.with_raw_response.create(**params)
        return raw.headers["x-gateway-cache"], raw.parse()

    def stream(self, **params: Any) -> tuple[str, list[Any]]:
        """(x-gateway-cache, the SDK's parsed chunks)"""
        with self.client.chat.completions.with_streaming_response.create(
                stream=True, **params) as response:
            return response.headers["x-gateway-cache"], list(response.parse())


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "memory":
        yield None
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as client:
        client.flushdb()
    yield server.url


@pytest.fixture
def start(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, redis_url: str | None):
    def start(cache: dict[str, Any] | None = None, **extra: Any) -> Gateway:
        config = gateway_config(fake_openai.url, cache=cache or {}, **extra)  # type: ignore[attr-defined]
        url = make_gateway(config, redis_url=redis_url)
        return Gateway(url, openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY,
                                          max_retries=0))
    return start


def chats(fake: FakeOpenAI) -> int:
    """How many chat requests reached the upstream (embeddings have no messages)."""
    return sum(1 for r in fake.requests if "messages" in r)


def text_of(chunks: list[Any], index: int = 0) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks
                   if c.choices and c.choices[0].index == index)


def test_miss_then_hit(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    header, first = gw.chat(model="gpt-test", messages=MESSAGES, temperature=0)
    assert header == "miss" and first.choices[0].message.content == "echo: hello big world"
    header, second = gw.chat(model="gpt-test", messages=MESSAGES, temperature=0)
    assert header == "hit" and second.model_dump() == first.model_dump()
    assert chats(fake_openai) == 1, "a hit does not call the upstream"


def test_key_ignores_stream_fields_and_user(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    gw.post({"model": "gpt-test", "messages": MESSAGES, "seed": 1, "user": "a"})
    hit = gw.post({"seed": 1, "messages": MESSAGES, "user": "b", "model": "gpt-test"})
    assert hit.headers["x-gateway-cache"] == "hit"
    other = gw.post({"model": "gpt-test", "messages": MESSAGES, "seed": 2})
    assert other.headers["x-gateway-cache"] == "miss"
    assert chats(fake_openai) == 2


def test_stream_miss_then_non_stream_hit(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    with httpx.stream("POST", f"{gw.url}{CHAT}", headers=AUTH, json={
            "model": "gpt-test", "messages": MESSAGES, "temperature": 0, "stream": True}) as r:
        raw = r.read()
    assert r.headers["x-gateway-cache"] == "miss"
    assert b'"usage"' not in raw, "the usage chunk the cache keeps is not sent to this client"
    header, answer = gw.chat(model="gpt-test", messages=MESSAGES, temperature=0)
    assert header == "hit" and chats(fake_openai) == 1
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "echo: hello big world"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens == 7


@pytest.mark.parametrize("include_usage", [False, True])
def test_non_stream_miss_then_stream_hit(start: Any, fake_openai: FakeOpenAI,
                                         include_usage: bool) -> None:
    gw = start()
    _, whole = gw.chat(model="gpt-test", messages=MESSAGES, temperature=0)
    header, chunks = gw.stream(model="gpt-test", messages=MESSAGES, temperature=0,
                               stream_options={"include_usage": include_usage})
    assert header == "hit" and chats(fake_openai) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {whole.id}
    assert text_of(chunks) == whole.choices[0].message.content
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
        assert chunks[-2].choices[0].finish_reason == "stop"
        assert all(c.usage is None for c in chunks[:-1])
    else:
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert all(c.usage is None for c in chunks)


def test_stream_hit_wire_format(start: Any) -> None:
    gw = start()
    body = {"model": "gpt-test", "messages": MESSAGES, "temperature": 0, "stream": True}
    gw.post(body)
    with httpx.stream("POST", f"{gw.url}{CHAT}", headers=AUTH, json=body) as response:
        raw = response.read()
    assert response.headers["x-gateway-cache"] == "hit"
    assert response.headers["content-type"].startswith("text/event-stream")
    events = raw.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert all(e.startswith(b"data: {") for e in events[:-2]) and b'"usage"' not in raw


def test_stream_miss_then_stream_hit(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    _, live = gw.stream(model="gpt-test", messages=MESSAGES, seed=3,
                        stream_options={"include_usage": True})
    _, replayed = gw.stream(model="gpt-test", messages=MESSAGES, seed=3,
                            stream_options={"include_usage": True})
    assert chats(fake_openai) == 1
    assert text_of(replayed) == text_of(live) == "echo: hello big world"
    assert replayed[-1].usage == live[-1].usage and replayed[-1].usage.completion_tokens == 4


def test_tool_calls_replayed(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    params = {"model": "fake/tool-call", "messages": MESSAGES, "tools": TOOLS, "temperature": 0}
    _, live = gw.stream(**params)
    header, whole = gw.chat(**params)
    assert header == "hit" and chats(fake_openai) == 1
    call = whole.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name) == ("call_fake1", "get_weather")
    assert call.function.arguments == '{"city": "Paris"}'
    assert whole.choices[0].finish_reason == "tool_calls"
    _, replayed = gw.stream(**params)
    for chunks in (live, replayed):
        deltas = [c.choices[0].delta.tool_calls[0] for c in chunks
                  if c.choices[0].delta.tool_calls]
        assert deltas[0].id == "call_fake1" and deltas[0].function.name == "get_weather"
        assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chats(fake_openai) == 1


def test_several_choices_replayed(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    _, whole = gw.chat(model="gpt-test", messages=MESSAGES, temperature=0, n=2)
    header, chunks = gw.stream(model="gpt-test", messages=MESSAGES, temperature=0, n=2)
    assert header == "hit" and chats(fake_openai) == 1
    assert [text_of(chunks, i) for i in (0, 1)] == [c.message.content for c in whole.choices]
    finishes = {c.choices[0].index: c.choices[0].finish_reason for c in chunks
                if c.choices[0].finish_reason}
    assert finishes == {0: "stop", 1: "stop"}


def test_deterministic_mode_caches_only_temperature_zero_or_seed(start: Any,
                                                                 fake_openai: FakeOpenAI) -> None:
    gw = start()
    for _ in range(2):
        assert gw.post({"model": "gpt-test", "messages": MESSAGES}
                       ).headers["x-gateway-cache"] == "miss"
        assert gw.post({"model": "gpt-test", "messages": MESSAGES, "temperature": 0.7}
                       ).headers["x-gateway-cache"] == "miss"
    assert chats(fake_openai) == 4
    gw.post({"model": "gpt-test", "messages": MESSAGES, "temperature": 0.7, "seed": 5})
    assert gw.post({"model": "gpt-test", "messages": MESSAGES, "temperature": 0.7, "seed": 5}
                   ).headers["x-gateway-cache"] == "hit"


def test_all_mode(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start({"mode": "all"})
    body = {"model": "gpt-test", "messages": MESSAGES, "temperature": 1.2}
    assert [gw.post(body).headers["x-gateway-cache"] for _ in range(2)] == ["miss", "hit"]
    assert chats(fake_openai) == 1


def test_no_cache_and_no_store(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start({"mode": "all"})
    body = {"model": "gpt-test", "messages": MESSAGES}
    # no-store: neither looked up nor stored
    assert gw.post(body, **{"cache-control": "no-store"}).headers["x-gateway-cache"] == "miss"
    # no-cache: not looked up, but stored
    assert gw.post(body, **{"cache-control": "no-cache"}).headers["x-gateway-cache"] == "miss"
    assert chats(fake_openai) == 2
    assert gw.post(body).headers["x-gateway-cache"] == "hit"
    for directive in ("no-cache", "No-Store, max-age=0"):
        assert gw.post(body, **{"cache-control": directive}).headers["x-gateway-cache"] == "miss"
    assert chats(fake_openai) == 4


def test_ttl_expiry(start: Any, fake_openai: FakeOpenAI) -> None:
    import time
    gw = start({"ttl_s": 0.3})
    body = {"model": "gpt-test", "messages": MESSAGES, "temperature": 0}
    assert [gw.post(body).headers["x-gateway-cache"] for _ in range(2)] == ["miss", "hit"]
    time.sleep(0.4)  # the issue asks for a TTL: the entry must be gone after it
    assert gw.post(body).headers["x-gateway-cache"] == "miss"
    assert chats(fake_openai) == 2


@pytest.mark.parametrize("model", ["fake/cut-stream", "fake/midstream-error"])
def test_broken_stream_is_not_stored(start: Any, fake_openai: FakeOpenAI, model: str) -> None:
    gw = start()
    body = {"model": model, "messages": MESSAGES, "temperature": 0, "stream": True}
    for _ in range(2):
        with httpx.stream("POST", f"{gw.url}{CHAT}", headers=AUTH, json=body) as response:
            raw = response.read()
        assert response.headers["x-gateway-cache"] == "miss"
        assert b'"error"' in raw and not raw.endswith(b"data: [DONE]\n\n")
    assert chats(fake_openai) == 2
    assert gw.post({**body, "stream": False}).headers["x-gateway-cache"] == "miss"


def test_upstream_error_is_not_stored(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start()
    body = {"model": "fake/error-500", "messages": MESSAGES, "temperature": 0}
    for stream in (False, False, True):
        response = gw.post({**body, "stream": stream})
        assert response.status_code == 502 and response.headers["x-gateway-cache"] == "miss"
    assert chats(fake_openai) == 3


def test_hit_needs_a_valid_key(start: Any) -> None:
    gw = start()
    body = {"model": "gpt-test", "messages": MESSAGES, "temperature": 0}
    gw.post(body)
    assert httpx.post(f"{gw.url}{CHAT}", json=body).status_code == 401
    wrong = httpx.post(f"{gw.url}{CHAT}", json=body, headers={"authorization": "Bearer sk-no"})
    assert wrong.status_code == 401 and "x-gateway-cache" not in wrong.headers
    assert gw.post({**body, "model": "nope"}).status_code == 404


def test_metrics_count_lookups(start: Any) -> None:
    gw = start()
    body = {"model": "gpt-test", "messages": MESSAGES, "temperature": 0}
    for _ in range(3):
        gw.post(body)
    gw.post({**body, "temperature": 1})  # not cacheable in deterministic mode: no lookup
    gw.post(body, **{"cache-control": "no-store"})  # no lookup
    data = samples(gw.url)
    assert value(data, "gateway_cache_requests_total", result="miss") == 1
    assert value(data, "gateway_cache_requests_total", result="hit") == 2


def test_no_cache_configured_means_no_header(make_gateway: GatewayFactory,
                                             fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url))  # type: ignore[attr-defined]
    response = httpx.post(f"{url}{CHAT}", headers=AUTH,
                          json={"model": "gpt-test", "messages": MESSAGES, "temperature": 0})
    assert response.status_code == 200 and "x-gateway-cache" not in response.headers


def test_store_down_still_answers(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                  caplog: pytest.LogCaptureFixture) -> None:
    """Redis gone: every request is a miss, answered by the upstream, never a failure."""
    config = gateway_config(fake_openai.url, cache={"mode": "all"},  # type: ignore[attr-defined]
                            limits={"fail_open": True})
    url = make_gateway(config, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-test",
                                                               messages=MESSAGES)  # type: ignore[arg-type]
        assert raw.headers["x-gateway-cache"] == "miss"
        assert raw.parse().choices[0].message.content == "echo: hello big world"
    chunks = list(client.chat.completions.create(model="gpt-test", messages=MESSAGES,  # type: ignore[arg-type]
                                                 stream=True))
    assert text_of(chunks) == "echo: hello big world"
    assert chats(fake_openai) == 4
    warnings = [r for r in caplog.records if "response cache" in r.getMessage()]
    assert len(warnings) == 1, "warned once, not on every request"


def test_replicas_share_entries(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    config = gateway_config(fake_openai.url, cache={"mode": "all"})  # type: ignore[attr-defined]
    one, two = (make_gateway(config, redis_url=redis_server.url) for _ in range(2))
    body = {"model": "gpt-test", "messages": MESSAGES}
    assert httpx.post(f"{one}{CHAT}", headers=AUTH, json=body).headers["x-gateway-cache"] == "miss"
    assert httpx.post(f"{two}{CHAT}", headers=AUTH, json=body).headers["x-gateway-cache"] == "hit"
    assert chats(fake_openai) == 1


QUESTION = "Could you please tell me what the capital city of France is"
PARAPHRASE = "Please tell me, what is the capital city of France?"  # cosine 0.92 to QUESTION
OTHER = "How tall is Mount Everest in meters?"


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]


def embeddings(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.requests if "input" in r)


SEMANTIC = {"mode": "semantic", "embedding_model": "gpt-test", "similarity": 0.9}


def test_semantic_near_duplicate_hits(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start(SEMANTIC)
    header, _ = gw.chat(model="gpt-test", messages=ask(QUESTION), temperature=0.5)
    assert header == "miss" and chats(fake_openai) == 1 and embeddings(fake_openai) == 1
    header, second = gw.chat(model="gpt-test", messages=ask(PARAPHRASE), temperature=0.5)
    assert header == "hit" and second.choices[0].message.content == f"echo: {QUESTION}"
    assert chats(fake_openai) == 1 and embeddings(fake_openai) == 2
    header, _ = gw.chat(model="gpt-test", messages=ask(QUESTION), temperature=0.5)
    assert header == "hit" and embeddings(fake_openai) == 2, "an exact hit needs no embedding"
    header, third = gw.chat(model="gpt-test", messages=ask(OTHER), temperature=0.5)
    assert header == "miss" and third.choices[0].message.content == f"echo: {OTHER}"
    assert chats(fake_openai) == 2


def test_semantic_stream_hit(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start(SEMANTIC)
    gw.stream(model="gpt-test", messages=ask(QUESTION))
    header, chunks = gw.stream(model="gpt-test", messages=ask(PARAPHRASE),
                               stream_options={"include_usage": True})
    assert header == "hit" and chats(fake_openai) == 1
    assert text_of(chunks) == f"echo: {QUESTION}" and chunks[-1].usage is not None


def test_semantic_compares_only_equal_parameters(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start(SEMANTIC)
    gw.chat(model="gpt-test", messages=ask(QUESTION), max_tokens=50)
    assert gw.chat(model="gpt-test", messages=ask(PARAPHRASE), max_tokens=60)[0] == "miss"
    assert gw.chat(model="openai-test", messages=ask(PARAPHRASE), max_tokens=50)[0] == "miss"
    assert gw.chat(model="gpt-test", messages=ask(PARAPHRASE), max_tokens=50)[0] == "hit"
    assert chats(fake_openai) == 3


def test_semantic_threshold(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start({**SEMANTIC, "similarity": 0.99})
    gw.chat(model="gpt-test", messages=ask(QUESTION))
    assert gw.chat(model="gpt-test", messages=ask(PARAPHRASE))[0] == "miss"
    assert chats(fake_openai) == 2


def test_semantic_skips_images(start: Any, fake_openai: FakeOpenAI) -> None:
    gw = start(SEMANTIC)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}

    def with_image(text: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "text", "text": text}, image]}]
    gw.chat(model="gpt-test", messages=with_image(QUESTION))
    assert gw.chat(model="gpt-test", messages=with_image(PARAPHRASE))[0] == "miss"
    assert gw.chat(model="gpt-test", messages=with_image(QUESTION))[0] == "hit"
    assert embeddings(fake_openai) == 0 and chats(fake_openai) == 2


def test_semantic_embedding_failure_still_answers(start: Any, fake_openai: FakeOpenAI) -> None:
    broken = {"name": "emb-broken", "provider": "openai-compatible", "model": "error-500",
              "api_base": fake_openai.url}  # type: ignore[attr-defined]
    gw = start({**SEMANTIC, "embedding_model": "emb-broken"},
               models=[*gateway_config(fake_openai.url)["models"], broken])  # type: ignore[attr-defined]
    for text, expected in ((QUESTION, "miss"), (PARAPHRASE, "miss"), (QUESTION, "hit")):
        header, answer = gw.chat(model="gpt-test", messages=ask(text))
        assert header == expected and answer.choices[0].message.content.startswith("echo:")
    assert chats(fake_openai) == 2, "the exact cache still works"


def test_semantic_group_is_bounded(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                   redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
        config = gateway_config(fake_openai.url, cache={**SEMANTIC, "max_entries": 2})  # type: ignore[attr-defined]
        client_of = openai.OpenAI(base_url=f"{make_gateway(config, redis_url=redis_server.url)}"
                                  "/v1", api_key=MASTER_KEY, max_retries=0)
        for i, text in enumerate([QUESTION, OTHER, "Name three colours", "Spell cat"]):
            client_of.chat.completions.create(model="gpt-test", messages=ask(f"{text} {i}"))  # type: ignore[arg-type]
        groups = client.keys("gw:cache:sem:*")
        assert len(groups) == 1
        fields = client.hkeys(groups[0])
        assert len(fields) == 3 and b"#v" in fields  # two entries and the version
        assert 0 < client.pttl(groups[0]) <= 600_000
    gw = Gateway("", client_of)
    assert gw.chat(model="gpt-test", messages=ask("spell CAT, 3"))[0] == "hit"
    assert gw.chat(model="gpt-test", messages=ask(f"{PARAPHRASE} 0"))[0] == "miss"  # evicted


def test_semantic_replicas_share_entries(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                         redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    config = gateway_config(fake_openai.url, cache=SEMANTIC)  # type: ignore[attr-defined]
    one, two = (Gateway(url, openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY))
                for url in (make_gateway(config, redis_url=redis_server.url) for _ in range(2)))
    assert one.chat(model="gpt-test", messages=ask(QUESTION))[0] == "miss"
    assert two.chat(model="gpt-test", messages=ask(PARAPHRASE))[0] == "hit"
    # a later entry made by one reaches two, whose copy of the group is now stale
    assert one.chat(model="gpt-test", messages=ask(OTHER))[0] == "miss"
    header, answer = two.chat(model="gpt-test", messages=ask("how tall is Mount Everest, meters"))
    assert header == "hit" and answer.choices[0].message.content == f"echo: {OTHER}"
    assert chats(fake_openai) == 2
