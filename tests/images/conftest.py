"""The gateway the image tests run against: OpenAI-speaking deployments on the fake OpenAI
upstream, Gemini ones on the fake Gemini upstream, a chat-only Anthropic one, and a broken
one that falls back to Gemini; the official openai SDK as the client."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def images_config(openai_url: str, gemini_url: str, anthropic_url: str) -> dict[str, Any]:
    remote: dict[str, Any] = {"api_base": openai_url, "api_key": "sk-upstream"}
    gemini: dict[str, Any] = {"provider": "gemini", "api_base": gemini_url,
                              "api_key": "gm-upstream"}
    return {"models": [
        {"name": "gpt-image", "provider": "openai", "model": "gpt-image-1", **remote},
        {"name": "dalle", "provider": "openai-compatible", "model": "dall-e-2", **remote},
        {"name": "nano", "model": "gemini-2.5-flash-image", **gemini},
        {"name": "gemini/*", "retries": 0, **gemini},
        {"name": "claude", "provider": "anthropic", "model": "echo", "api_base": anthropic_url,
         "api_key": "sk-ant"},
        {"name": "broken-images", "provider": "openai-compatible", "model": "error-503",
         "retries": 0, "fallbacks": ["nano"], **remote},
    ]}


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI, fake_gemini: FakeGemini,
            fake_anthropic: FakeAnthropic) -> str:
    return make_gateway(images_config(fake_openai.url, fake_gemini.url,  # type: ignore[attr-defined]
                                      fake_anthropic.url))


@pytest.fixture
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)


def decoded(answer: openai.types.ImagesResponse, i: int = 0) -> bytes:
    assert answer.data is not None
    return base64.b64decode(answer.data[i].b64_json or "")


def usage_of(gateway: str, model: str) -> dict[str, Any]:
    time.sleep(0.05)  # (usage is recorded just after the response is sent)
    totals: dict[str, Any] = httpx.get(f"{gateway}/v1/usage", params={"model": model},
                                       headers=ADMIN).json()["totals"]
    return totals
