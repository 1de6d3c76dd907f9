from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from gateway.app import Settings, create_app
from gateway.config import validate
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_audio_server import FakeOpenAIAudio
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import RedisServer, ServerThread

MASTER_KEY = "sk-test-master"


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server = ServerThread(fake.app).start()
    fake.url = f"{server.url}/v1"  # type: ignore[attr-defined]
    yield fake
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.reset()
    return fake_openai_server


def gateway_config(upstream: str, **extra: Any) -> dict[str, Any]:
    """A config routing to the fake: ``gpt-test`` (echo), ``fake/*`` (any behaviour; no
    retries, so that an upstream error reaches the client at once), ``lb`` (two deployments of
    one name) and ``openai-test`` (provider openai)."""
    config: dict[str, Any] = {"models": [
        {"name": "gpt-test", "provider": "openai-compatible", "model": "echo",
         "api_base": upstream, "api_key": "sk-upstream"},
        {"name": "fake/*", "provider": "openai-compatible", "api_base": upstream,
         "api_key": "sk-upstream", "timeout_s": 5, "retries": 0},
        {"name": "lb", "provider": "openai-compatible", "model": "echo-a", "api_base": upstream},
        {"name": "lb", "provider": "openai-compatible", "model": "echo-b", "api_base": upstream},
        {"name": "openai-test", "provider": "openai", "model": "echo", "api_base": upstream + "/",
         "api_key": "sk-upstream"},
    ]}
    config.update(extra)
    return config


GatewayFactory = Callable[..., str]


@pytest.fixture
def make_gateway() -> Iterator[GatewayFactory]:
    """Start a gateway on a free port for a config dict; returns its base URL."""
    servers: list[ServerThread] = []

    def start(config: dict[str, Any], *, master_key: str | None = MASTER_KEY,
              redis_url: str | None = None) -> str:
        app = create_app(validate(config), Settings(master_key=master_key, redis_url=redis_url))
        server = ServerThread(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> str:
    return make_gateway(gateway_config(fake_openai.url))  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def redis_url_or_none(request: pytest.FixtureRequest) -> str | None:
    """Run a test twice: with state in memory (None), and in a flushed real redis-server."""
    if request.param == "memory":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return server.url


# -- fake vendor upstreams (anthropic, gemini, ollama) ------------------------------------


F = TypeVar("F", FakeAnthropic, FakeGemini, FakeOllama)


def _served(fake: F) -> Iterator[F]:
    """A fake on a loopback port for the session; its ``url`` is the vendor's base URL."""
    server = ServerThread(fake.app).start()
    fake.url = server.url
    yield fake
    server.stop()


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    yield from _served(FakeAnthropic())


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic_server.reset()
    return fake_anthropic_server


@pytest.fixture(scope="session")
def fake_gemini_server() -> Iterator[FakeGemini]:
    yield from _served(FakeGemini())


@pytest.fixture
def fake_gemini(fake_gemini_server: FakeGemini) -> FakeGemini:
    fake_gemini_server.reset()
    return fake_gemini_server


@pytest.fixture(scope="session")
def fake_audio_server() -> Iterator[FakeOpenAIAudio]:
    """The fake OpenAI audio upstream for the session; its ``url`` is the SDK's base URL."""
    fake = FakeOpenAIAudio()
    server = ServerThread(fake.app).start()
    fake.url = f"{server.url}/v1"
    yield fake
    server.stop()


@pytest.fixture
def fake_audio(fake_audio_server: FakeOpenAIAudio) -> FakeOpenAIAudio:
    fake_audio_server.reset()
    return fake_audio_server


@pytest.fixture(scope="session")
def fake_ollama_server() -> Iterator[FakeOllama]:
    yield from _served(FakeOllama())


@pytest.fixture
def fake_ollama(fake_ollama_server: FakeOllama) -> FakeOllama:
    fake_ollama_server.reset()
    return fake_ollama_server
