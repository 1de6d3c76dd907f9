"""Streams to HTTP/1.0 clients (RFC 9112 has no chunked coding for them): sent
close-delimited, without Transfer-Encoding, under both of uvicorn's HTTP protocols, and by
``gateway serve`` itself. The client is a raw socket speaking HTTP/1.0."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.app import Settings, create_app
from gateway.config import validate
from gateway.http.protocol import PROTOCOL
from tests.conftest import MASTER_KEY, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import GatewayProcess, ServerThread


def http10(url: str, body: dict[str, Any], version: str = "1.0") -> tuple[str, bytes]:
    """POST over a raw socket; read until the server closes. Head and body."""
    host, port = url.removeprefix("http://").split(":")
    data = orjson.dumps(body)
    request = (f"POST /v1/chat/completions HTTP/{version}\r\nHost: {host}\r\n"
               f"Authorization: Bearer {MASTER_KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(data)}\r\n"
               + ("Connection: close\r\n" if version == "1.1" else "") + "\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request + data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), rest


STREAM = {"model": "gpt-test", "stream": True,
          "messages": [{"role": "user", "content": "hello there"}]}


def assert_close_delimited(head: str, body: bytes) -> None:
    assert head.startswith("http/1.1 200"), head
    assert "transfer-encoding" not in head and "content-length" not in head
    assert "connection: close" in head
    events = body.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""], body[-200:]
    content = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or ""
                      for e in events[:-2])
    assert content == "echo: hello there"


@pytest.fixture(params=[PROTOCOL, "h11"])
def served(request: pytest.FixtureRequest, fake_openai: FakeOpenAI) -> Iterator[str]:
    app = create_app(validate(gateway_config(fake_openai.url)),  # type: ignore[attr-defined]
                     Settings(master_key=MASTER_KEY))
    server = ServerThread(app, http=request.param).start()
    yield server.url
    server.stop()


def test_stream_to_http10_is_close_delimited(served: str) -> None:
    assert_close_delimited(*http10(served, STREAM))


def test_http11_and_whole_answers_are_unchanged(served: str) -> None:
    head, body = http10(served, STREAM, version="1.1")
    assert "transfer-encoding: chunked" in head
    head, body = http10(served, {**STREAM, "stream": False})
    assert f"content-length: {len(body)}" in head
    assert json.loads(body)["choices"][0]["message"]["content"] == "echo: hello there"


def test_gateway_serve_uses_it(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(json.dumps(gateway_config(fake_openai.url)))  # type: ignore[attr-defined]
    process = GatewayProcess(str(config), {"GATEWAY_MASTER_KEY": MASTER_KEY})
    try:
        process.wait_ready()
        assert_close_delimited(*http10(process.url, STREAM))
    finally:
        process.stop()
