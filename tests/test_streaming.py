"""Streams are relayed chunk by chunk, and a client that leaves closes the upstream call."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY
from tests.fakes.openai_server import SLOW_DELAY_S, FakeOpenAI

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "one two three four"}]


def test_first_chunk_arrives_before_the_upstream_sends_the_rest(gateway: str,
                                                                fake_openai: FakeOpenAI) -> None:
    """The fake holds everything after its first chunk until the client has that chunk: a
    gateway that buffered would never deliver it (the fake gives up after 10 s)."""
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.create(model="fake/gated-stream", messages=MESSAGES,  # type: ignore[arg-type]
                                            stream=True)
    started = time.monotonic()
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    assert not fake_openai.gate.is_set() and time.monotonic() - started < 5
    fake_openai.gate.set()
    rest = "".join(c.choices[0].delta.content or "" for c in stream)
    assert rest == "echo: one two three four"


def test_chunks_arrive_as_the_upstream_sends_them(gateway: str, fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    received = []
    for chunk in client.chat.completions.create(model="fake/slow-stream", messages=MESSAGES,  # type: ignore[arg-type]
                                                stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(time.monotonic())
    sent = fake_openai.sent_at
    assert len(received) == len(sent) == 5
    assert received[0] < sent[-1], "the first word must arrive before the last is sent"
    for got, put in zip(received, sent, strict=True):
        assert got - put < SLOW_DELAY_S, "each chunk is relayed before the next is sent"


async def test_client_disconnect_closes_the_upstream_stream(gateway: str,
                                                            fake_openai: FakeOpenAI) -> None:
    body = {"model": "fake/hang", "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient() as client:
        # "hang" never answers a stream: use gated-stream, which sends one chunk then waits.
        body["model"] = "fake/gated-stream"
        async with client.stream("POST", f"{gateway}/v1/chat/completions", json=body,
                                 headers=AUTH) as response:
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("data: {")
        # leaving the block closed the connection while the fake still waits on its gate
    assert await asyncio.to_thread(fake_openai.stream_closed.wait, 5)
    assert not fake_openai.gate.is_set()


async def test_client_disconnect_closes_the_upstream_request(gateway: str,
                                                             fake_openai: FakeOpenAI) -> None:
    body = {"model": "fake/hang", "messages": MESSAGES}
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{gateway}/v1/chat/completions", json=body, headers=AUTH,
                              timeout=httpx.Timeout(5, read=0.3))
    started = time.monotonic()
    assert await asyncio.to_thread(fake_openai.disconnected.wait, 5)
    assert time.monotonic() - started < 1


async def test_gateway_serves_on_after_disconnects(gateway: str, fake_openai: FakeOpenAI) -> None:
    await test_client_disconnect_closes_the_upstream_request(gateway, fake_openai)
    async with httpx.AsyncClient() as client:
        ok = await client.post(f"{gateway}/v1/chat/completions", headers=AUTH,
                               json={"model": "gpt-test", "messages": MESSAGES})
        metrics = (await client.get(f"{gateway}/metrics")).text
    assert ok.status_code == 200
    assert "gateway_in_flight_requests 1.0" in metrics  # only the scrape itself
    assert 'status="499"' in metrics


async def test_many_concurrent_streams_keep_their_own_answers(gateway: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model="gpt-test", stream=True,
            messages=[{"role": "user", "content": f"number {i} here"}])
        return "".join([c.choices[0].delta.content or "" async for c in stream])

    answers = await asyncio.gather(*(one(i) for i in range(40)))
    assert answers == [f"echo: number {i} here" for i in range(40)]
    await client.close()
