"""End to end, for each vendor: its error answers and broken streams, as the OpenAI errors
the official SDK raises (classified by HTTP status)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.app import Settings, create_app
from gateway.config import validate
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.serve import ServerThread
from tests.vendor_gateway import VENDORS, vendor_config

MESSAGES = [{"role": "user", "content": "hello big world"}]


@pytest.fixture(scope="module")
def gateway(fake_anthropic_server: FakeAnthropic, fake_gemini_server: FakeGemini,
            fake_ollama_server: FakeOllama) -> Iterator[str]:
    """One gateway in front of the three fakes for the whole module (its start-up, 0.3 s, was
    paid by each of the 50 tests), with quick retries: a 5xx is still retried, after a 10 ms
    backoff; the fakes' ``Retry-After: 7`` is past ``retry_max_wait_s``, so a 429 is answered
    at once with that header, not after two 7 s waits (waiting one out is
    tests/test_reliability.py's). No circuit breaker: one test's errors must not open it for
    the next test (tests/test_client_errors.py tests the breaker)."""
    fakes = (fake_anthropic_server, fake_gemini_server, fake_ollama_server)
    config = quick_retries(vendor_config(dict(zip(VENDORS, (f.url for f in fakes),  # type: ignore[attr-defined]
                                                  strict=True))))
    server = ServerThread(create_app(validate(config), Settings(master_key=MASTER_KEY))).start()
    yield server.url
    server.stop()


def quick_retries(config: dict[str, Any]) -> dict[str, Any]:
    for entry in config["models"]:
        entry.update(retry_backoff_s=0.01, retry_max_wait_s=5, cooldown_failures=0)
    return config


CASES = [(v, s) for v in VENDORS for s in (400, 401, 404, 429, 500)] + [("anthropic", 529),
                                                                        ("gemini", 503)]


@pytest.mark.parametrize(("vendor", "status"), CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_vendor_errors_by_status(client: openai.OpenAI, vendor: str, status: int,
                                 stream: bool) -> None:
    expected = {400: (400, "invalid_request_error", "invalid_value"),
                401: (502, "api_error", "upstream_error"),
                404: (404, "invalid_request_error", "model_not_found"),
                429: (429, "rate_limit_error", "rate_limit_exceeded")}.get(
        status, (502, "api_error", "upstream_error"))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=f"{vendor}/error-{status}", messages=MESSAGES,  # type: ignore[arg-type]
                                       stream=stream)
    error = caught.value
    assert (error.status_code, error.body["type"], error.body["code"]) == expected  # type: ignore[index]
    if vendor != "ollama" and status != 401:  # the vendor's own message comes through
        assert f"fake {vendor} error {status}" in error.body["message"]  # type: ignore[index]
    if status == 429:
        assert error.response.headers["retry-after"] == ("1" if vendor == "ollama" else "7")


@pytest.mark.parametrize("vendor", VENDORS)
def test_garbage_is_502(client: openai.OpenAI, vendor: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=f"{vendor}/garbage", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_error"  # type: ignore[index]


@pytest.mark.parametrize("vendor", VENDORS)
def test_garbage_stream_is_502(gateway: str, vendor: str) -> None:
    response = httpx.post(f"{gateway}/v1/chat/completions", headers={
        "authorization": f"Bearer {MASTER_KEY}"}, json={
        "model": f"{vendor}/garbage", "messages": MESSAGES, "stream": True})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


@pytest.mark.parametrize(("vendor", "message"), [
    ("anthropic", "Overloaded"), ("gemini", "The model is overloaded."),
    ("ollama", "an error was encountered while running the model"),
])
def test_midstream_error_event(gateway: str, vendor: str, message: str) -> None:
    """The vendor's error event inside a stream becomes one OpenAI error event, then the
    stream closes without [DONE]."""
    with httpx.stream("POST", f"{gateway}/v1/chat/completions",
                      headers={"authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": f"{vendor}/midstream-error", "messages": MESSAGES,
                            "stream": True}) as response:
        raw = response.read()
    assert response.status_code == 200
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1].startswith(b'data: {"error":') and message.encode() in events[-1]
    assert b"[DONE]" not in raw and b"echo:" in raw
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.APIError, match=message):
        list(client.chat.completions.create(model=f"{vendor}/midstream-error",  # type: ignore[arg-type]
                                            messages=MESSAGES, stream=True))


@pytest.mark.parametrize("vendor", VENDORS)
def test_stream_cut_before_its_end(client: openai.OpenAI, vendor: str) -> None:
    with pytest.raises(openai.APIError, match="closed the stream before it was done"):
        list(client.chat.completions.create(model=f"{vendor}/cut-stream", messages=MESSAGES,  # type: ignore[arg-type]
                                            stream=True))


def test_unreachable_vendor_is_503(make_gateway: GatewayFactory) -> None:
    from tests.fakes.serve import free_port
    url = f"http://127.0.0.1:{free_port()}"
    gateway = make_gateway(quick_retries(vendor_config({v: url for v in VENDORS})))
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    for vendor in VENDORS:
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=vendor, messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.status_code == 503


@pytest.mark.parametrize("vendor", VENDORS)
async def test_client_disconnect_closes_the_vendor_stream(
        gateway: str, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini,
        fake_ollama: FakeOllama, vendor: str) -> None:
    """The fake holds its stream after the first event; the client reads one chunk and
    leaves; the gateway must close the vendor's stream at once, not wait for the rest."""
    fake = {"anthropic": fake_anthropic, "gemini": fake_gemini, "ollama": fake_ollama}[vendor]
    body = {"model": f"{vendor}/gated-stream", "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient() as client, client.stream(
            "POST", f"{gateway}/v1/chat/completions", json=body,
            headers={"authorization": f"Bearer {MASTER_KEY}"}) as response:
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: {")
    assert await asyncio.to_thread(fake.streams.closed.wait, 5)
    assert not fake.streams.gate.is_set()
    fake.streams.gate.set()
