"""Retries, fallbacks, the circuit breaker and timeouts, through the gateway over loopback
against the fake OpenAI upstream, with the official SDK (its own retries off)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.config import validate
from gateway.metrics import Metrics
from gateway.routing.router import Router
from providers.base import EmbeddingProvider
from providers.http import create_http_client
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import free_port
from tests.test_metrics import samples, value
from wire.errors import InvalidRequest, UpstreamTimeout, UpstreamUnavailable
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest

MESSAGES: Any = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def model(name: str, upstream_id: str, api_base: str, **keys: Any) -> dict[str, Any]:
    """A deployment of ``name`` answered by the fake's behaviour ``upstream_id``; backoff tiny."""
    return {"name": name, "provider": "openai-compatible", "model": upstream_id,
            "api_base": api_base, "retry_backoff_s": 0.01, **keys}


class Setup:
    def __init__(self, make_gateway: GatewayFactory, fake: FakeOpenAI) -> None:
        self.make_gateway, self.fake = make_gateway, fake
        self.api_base: str = fake.url  # type: ignore[attr-defined]

    def model(self, name: str, upstream_id: str, **keys: Any) -> dict[str, Any]:
        return model(name, upstream_id, self.api_base, **keys)

    def gateway(self, *models: dict[str, Any]) -> str:
        return self.make_gateway({"models": [*models, self.model("ok", "echo-ok", retries=0)]})

    def sdk(self, url: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)

    def answer(self, url: str, name: str, *, stream: bool = False) -> str:
        sdk = self.sdk(url)
        if stream:
            chunks = sdk.chat.completions.create(model=name, messages=MESSAGES, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        answer = sdk.chat.completions.create(model=name, messages=MESSAGES)
        return answer.choices[0].message.content or ""

    def called(self) -> list[str]:
        """The upstream model ids the fake was asked for, in order."""
        return [r["model"] for r in self.fake.requests]


@pytest.fixture
def setup(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> Setup:
    return Setup(make_gateway, fake_openai)


def post(url: str, name: str, *, stream: bool = False) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers=AUTH, timeout=20,
                      json={"model": name, "messages": MESSAGES, "stream": stream})


def stream_events(url: str, name: str) -> list[bytes]:
    with httpx.stream("POST", f"{url}/v1/chat/completions", headers=AUTH, timeout=20,
                      json={"model": name, "messages": MESSAGES, "stream": True}) as response:
        assert response.status_code == 200
        return [e for e in response.read().split(b"\n\n") if e]


@pytest.mark.parametrize("stream", [False, True])
def test_5xx_is_retried_then_answers(setup: Setup, stream: bool) -> None:
    url = setup.gateway(setup.model("m", "flaky-2-503"))
    assert setup.answer(url, "m", stream=stream) == "echo: hello there"
    assert setup.fake.calls["flaky-2-503"] == 3  # two failures, two retries
    errors = value(samples(url), "gateway_upstream_errors_total", model="m",
                   provider="openai-compatible", reason="upstream_error")
    assert errors == 2


def test_retries_spent_the_client_gets_the_error(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "flaky-5-500", retries=2))
    with pytest.raises(openai.InternalServerError) as caught:
        setup.answer(url, "m")
    assert caught.value.status_code == 502 and setup.fake.calls["flaky-5-500"] == 3


@pytest.mark.parametrize(("upstream_id", "waited"), [("ratelimit-1-300ms", 0.3),
                                                      ("ratelimit-1-1", 1.0)])
def test_429_retry_after_is_honoured(setup: Setup, upstream_id: str, waited: float) -> None:
    url = setup.gateway(setup.model("m", upstream_id))
    started = time.monotonic()
    assert setup.answer(url, "m") == "echo: hello there"
    assert time.monotonic() - started >= waited
    assert setup.fake.calls[upstream_id] == 2


def test_long_retry_after_is_not_slept(setup: Setup) -> None:
    """The fake's Retry-After is 7 s, over retry_max_wait_s: no wait, no retry of that
    deployment; the client gets the 429 with the upstream's Retry-After."""
    url = setup.gateway(setup.model("m", "error-429", retry_max_wait_s=2))
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        setup.answer(url, "m")
    assert time.monotonic() - started < 5
    assert caught.value.response.headers["retry-after"] == "7"
    assert setup.fake.calls["error-429"] == 1


def test_long_retry_after_moves_on_to_the_fallback(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "error-429", retry_max_wait_s=1, fallbacks=["ok"]))
    started = time.monotonic()
    assert setup.answer(url, "m") == "echo: hello there"
    assert time.monotonic() - started < 5
    assert setup.called() == ["error-429", "echo-ok"]


def test_a_retry_goes_to_another_deployment_of_the_name_first(setup: Setup) -> None:
    """One deployment always fails, the other answers: every request succeeds, and a failed
    deployment is never tried twice in a row, although without backoff it could be."""
    keys = {"retries": 1, "retry_backoff_s": 0, "cooldown_failures": 0}
    url = setup.gateway(setup.model("two", "error-500", **keys),
                        setup.model("two", "echo-b", **keys))
    for _ in range(4):
        assert setup.answer(url, "two") == "echo: hello there"
    called = setup.called()
    assert called.count("echo-b") == 4 and called.count("error-500") >= 1
    assert all(a != b for a, b in itertools.pairwise(called))


@pytest.mark.parametrize("status", [400, 404])
def test_client_errors_are_not_retried_nor_fallen_back(setup: Setup, status: int) -> None:
    url = setup.gateway(setup.model("m", f"error-{status}", fallbacks=["ok"]))
    response = post(url, "m")
    assert response.status_code == status
    assert setup.called() == [f"error-{status}"]


@pytest.mark.parametrize("stream", [False, True])
def test_refused_connection_is_retried_then_the_fallback_answers(setup: Setup,
                                                                 stream: bool) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    url = setup.gateway(model("m", "echo", closed, retries=2, fallbacks=["ok"]))
    assert setup.answer(url, "m", stream=stream) == "echo: hello there"
    assert value(samples(url), "gateway_upstream_errors_total", model="m",
                 provider="openai-compatible", reason="upstream_unavailable") == 3
    assert setup.called() == ["echo-ok"]


def test_fallback_chain_is_depth_first_in_order_without_cycles(setup: Setup) -> None:
    """a → [b, c], b → [d, a], d → [b]: a, b, d, then c answers; nobody is tried twice."""
    keys = {"retries": 0}
    url = setup.gateway(
        setup.model("a", "flaky-9-500", fallbacks=["b", "c"], **keys),
        setup.model("b", "flaky-9-502", fallbacks=["d", "a"], **keys),
        setup.model("c", "echo-c", **keys),
        setup.model("d", "flaky-9-503", fallbacks=["b"], **keys))
    assert setup.answer(url, "a") == "echo: hello there"
    assert setup.called() == ["flaky-9-500", "flaky-9-502", "flaky-9-503", "echo-c"]
    # every failure is counted under the name the client sent (contract section 7)
    assert value(samples(url), "gateway_upstream_errors_total", model="a",
                 provider="openai-compatible", reason="upstream_error") == 3


def test_a_cycle_of_failing_fallbacks_ends(setup: Setup) -> None:
    url = setup.gateway(setup.model("a", "flaky-9-500", retries=0, fallbacks=["b"]),
                        setup.model("b", "flaky-9-503", retries=0, fallbacks=["a"]))
    response = post(url, "a")
    assert response.status_code == 502
    assert setup.called() == ["flaky-9-500", "flaky-9-503"]


def test_stream_is_not_retried_after_its_first_chunk(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "midstream-error", retries=2, fallbacks=["ok"]))
    events = stream_events(url, "m")
    assert events[0].startswith(b'data: {"id"') and events[-1].startswith(b'data: {"error"')
    assert setup.called() == ["midstream-error"]


def test_total_timeout_is_a_504_then_the_fallback(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "hang", timeout_s=0.3, retries=0, fallbacks=["ok"]))
    assert setup.answer(url, "m") == "echo: hello there"
    assert value(samples(url), "gateway_upstream_errors_total", model="m",
                 provider="openai-compatible", reason="upstream_timeout") == 1


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: a connection attempt hangs (no refusal)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def test_connect_timeout_is_a_504_then_the_fallback(setup: Setup, unanswered_port: int) -> None:
    hanging = f"http://127.0.0.1:{unanswered_port}/v1"
    url = setup.gateway(model("m", "echo", hanging, connect_timeout_s=0.2, timeout_s=60,
                              retries=1, fallbacks=["ok"]))
    started = time.monotonic()
    assert setup.answer(url, "m") == "echo: hello there"
    assert time.monotonic() - started < 10  # the connect timeout, not the total one
    assert value(samples(url), "gateway_upstream_errors_total", model="m",
                 provider="openai-compatible", reason="upstream_timeout") == 2


def test_stream_idle_timeout_before_the_first_chunk_falls_back(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "hang", timeout_s=60, stream_idle_timeout_s=0.3,
                                    retries=0, fallbacks=["ok"]))
    started = time.monotonic()
    assert setup.answer(url, "m", stream=True) == "echo: hello there"
    assert time.monotonic() - started < 10
    assert setup.called() == ["hang", "echo-ok"]


def test_stream_idle_timeout_between_chunks_ends_the_stream(setup: Setup) -> None:
    """gated-stream sends one chunk and then waits (for a gate nobody opens)."""
    url = setup.gateway(setup.model("m", "gated-stream", timeout_s=60,
                                    stream_idle_timeout_s=0.3, fallbacks=["ok"]))
    try:
        events = stream_events(url, "m")
    finally:
        setup.fake.gate.set()
    assert b'"upstream_timeout"' in events[-1] and len(events) == 2
    assert setup.called() == ["gated-stream"]


def test_breaker_opens_and_skips_the_deployment(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "flaky-9-500", retries=0, cooldown_failures=2))
    assert [post(url, "m").status_code for _ in range(2)] == [502, 502]
    response = post(url, "m")  # cooling down for 30 s: the upstream is not called
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert setup.fake.calls["flaky-9-500"] == 2


def test_breaker_probe_closes_it_again(setup: Setup) -> None:
    url = setup.gateway(setup.model("m", "flaky-2-500", retries=0, cooldown_failures=2,
                                    cooldown_s=0.2))
    assert [post(url, "m").status_code for _ in range(2)] == [502, 502]
    time.sleep(0.3)  # past the cooldown: the next request is the probe
    assert [post(url, "m").status_code for _ in range(3)] == [200, 200, 200]
    assert setup.fake.calls["flaky-2-500"] == 5


def test_every_deployment_cooling_is_503_then_the_fallbacks(setup: Setup) -> None:
    keys = {"retries": 1, "cooldown_failures": 1}
    url = setup.gateway(setup.model("pair", "flaky-9-500", **keys),
                        setup.model("pair", "flaky-9-503", **keys),
                        setup.model("pair2", "flaky-8-500", fallbacks=["ok"], **keys))
    assert post(url, "pair").status_code == 502  # both tried once, both now cooling
    response = post(url, "pair")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert setup.called() == ["flaky-9-500", "flaky-9-503"] or \
        setup.called() == ["flaky-9-503", "flaky-9-500"]
    assert setup.answer(url, "pair2") == "echo: hello there"  # fails, cools, falls back
    assert setup.answer(url, "pair2") == "echo: hello there"  # cooling: straight to ok
    assert setup.fake.calls["flaky-8-500"] == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_half_open_lets_one_probe_through_and_a_failed_probe_reopens(
        fake_openai: FakeOpenAI) -> None:
    """The router alone, with the breakers on a clock of the test's own."""
    config = validate({"models": [model("m", "hang", fake_openai.url, timeout_s=0.5,  # type: ignore[attr-defined]
                                        retries=0, cooldown_failures=1, cooldown_s=30)]})
    clock, http = FakeClock(), create_http_client()
    router = Router(config.deployments, http, Metrics(), clock=clock)
    route, request = router.resolve("m"), ChatRequest.parse({"model": "m", "messages": MESSAGES})
    try:
        with pytest.raises(UpstreamTimeout):
            await router.chat(route, request)
        with pytest.raises(UpstreamUnavailable):
            await router.chat(route, request)  # open
        clock.now += 30
        fake_openai.hung.clear()
        probe = asyncio.create_task(router.chat(route, request))
        assert await asyncio.to_thread(fake_openai.hung.wait, 5)  # the probe is upstream
        with pytest.raises(UpstreamUnavailable):
            await router.chat(route, request)  # half-open, the probe is out: no second one
        with pytest.raises(UpstreamTimeout):
            await probe
        with pytest.raises(UpstreamUnavailable):
            await router.chat(route, request)  # the failed probe opened it again
        assert fake_openai.calls["hang"] == 2
    finally:
        await http.aclose()


async def test_a_retry_prefers_an_untried_deployment_even_a_busier_one(
        fake_openai: FakeOpenAI) -> None:
    """Least busy would pick the failed deployment again (no backoff): the retry still goes to
    the one not tried yet."""
    keys = {"retries": 1, "retry_backoff_s": 0, "cooldown_failures": 0}
    config = validate({"models": [model("two", "error-500", fake_openai.url, **keys),  # type: ignore[attr-defined]
                                  model("two", "echo-b", fake_openai.url, **keys)]})  # type: ignore[attr-defined]
    http = create_http_client()
    router = Router(config.deployments, http, Metrics())
    route = router.resolve("two")
    route.deployments[1].in_flight = 5  # as if busy with other requests
    try:
        await router.chat(route, ChatRequest.parse({"model": "two", "messages": MESSAGES}))
    finally:
        await http.aclose()
    assert [r["model"] for r in fake_openai.requests] == ["error-500", "echo-b"]


async def test_invoke_runs_a_capability_with_retries_and_only_capable_fallbacks(
        fake_openai: FakeOpenAI) -> None:
    """``Router.invoke``, the entry the tools use: a model without the capability is a 400;
    a failing deployment is retried and fallen back from, skipping a fallback that lacks it."""
    url = fake_openai.url  # type: ignore[attr-defined]
    config = validate({"models": [
        model("bad", "error-500", url, retries=1, retry_backoff_s=0, fallbacks=["claude", "good"]),
        {"name": "claude", "provider": "anthropic", "api_base": url, "api_key": "k"},
        model("good", "echo-good", url)]})
    http = create_http_client()
    router = Router(config.deployments, http, Metrics())
    request = EmbeddingRequest.parse({"model": "x", "input": "hello"})

    async def embed(provider: EmbeddingProvider, upstream: str) -> ChatResult:
        return await provider.embed(request, upstream)

    try:
        with pytest.raises(InvalidRequest, match="does not support embeddings"):
            await router.invoke(router.resolve("claude"), EmbeddingProvider, embed,
                                what="embeddings")
        result = await router.invoke(router.resolve("bad"), EmbeddingProvider, embed,
                                     what="embeddings")
    finally:
        await http.aclose()
    assert b'"embedding"' in result.body
    assert [r["model"] for r in fake_openai.requests] == ["error-500", "error-500", "echo-good"]
