"""The gateway in front of the three fake vendor upstreams, and the official openai SDK as its
client: the fixtures every end-to-end vendor test uses (``gateway`` and ``client`` here
stand in for the OpenAI ones of tests/conftest.py)."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.vendor_gateway import vendor_config

Fake = FakeAnthropic | FakeGemini | FakeOllama


@pytest.fixture
def fakes(fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini,
          fake_ollama: FakeOllama) -> dict[str, Fake]:
    return {"anthropic": fake_anthropic, "gemini": fake_gemini, "ollama": fake_ollama}


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fakes: dict[str, Fake]) -> str:
    return make_gateway(vendor_config({name: fake.url for name, fake in fakes.items()}))


@pytest.fixture
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
