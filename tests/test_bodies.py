"""Compressed request bodies (contract section 2): gzip and deflate bodies are decoded as they
are read, ``server.max_body_mb`` counts the decoded bytes, another coding is a 415."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.http.bodies import SLICE, BodyDecoder, coding_of
from tests.conftest import GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.test_errors import AUTH, assert_error
from wire import errors

BODY = orjson.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]})


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def post(url: str, content: bytes | Iterator[bytes], coding: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", content=content, timeout=10,
                      headers={**AUTH, "content-type": "application/json",
                               "content-encoding": coding})


@pytest.mark.parametrize(("coding", "encode"), [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("GZIP", gzip.compress),
    ("deflate", zlib.compress), ("deflate", raw_deflate), ("identity", lambda b: b),
])
def test_compressed_body_is_decoded(gateway: str, fake_openai: FakeOpenAI, coding: str,
                                    encode: Any) -> None:
    response = post(gateway, encode(BODY), coding)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: hello"
    assert fake_openai.requests[-1]["messages"] == [{"role": "user", "content": "hello"}]


def test_gzip_with_two_members_and_sent_chunked(gateway: str) -> None:
    """A gzip body of two members (``cat a.gz b.gz``), sent in small chunks without a
    Content-Length: decoded across chunk boundaries."""
    data = gzip.compress(BODY[:20]) + gzip.compress(BODY[20:])
    response = post(gateway, iter([data[i:i + 7] for i in range(0, len(data), 7)]), "gzip")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip, br", "compress"])
def test_other_codings_are_415(gateway: str, coding: str) -> None:
    error = assert_error(post(gateway, BODY, coding), 415, "invalid_request_error",
                         "unsupported_media_type")
    assert "gzip or deflate" in error["message"]


@pytest.mark.parametrize(("content", "coding", "why"), [
    (b"not gzip at all", "gzip", "not valid gzip"),
    (gzip.compress(BODY)[:-10], "gzip", "ends too early"),
    (gzip.compress(BODY) + b"trailing", "gzip", "not valid gzip"),
    (b"\x00\x01\x02garbage", "deflate", "not valid deflate"),
    (zlib.compress(BODY) + b"x", "deflate", "after the end"),
])
def test_broken_compressed_data_is_400(gateway: str, content: bytes, coding: str,
                                       why: str) -> None:
    error = assert_error(post(gateway, content, coding), 400, "invalid_request_error",
                         "invalid_value")
    assert why in error["message"]


def test_limit_counts_decoded_bytes(make_gateway: GatewayFactory,
                                    fake_openai: FakeOpenAI) -> None:
    """A 2 KB gzip body that decodes to 8 MB is refused at the 1 MB limit (as it is decoded,
    not after); the same text under the limit passes; the gateway keeps serving."""
    url = make_gateway(gateway_config(fake_openai.url, server={"max_body_mb": 1}))  # type: ignore[attr-defined]
    bomb = gzip.compress(b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
                         + b" " * 8_000_000 + b'"}]}')
    assert len(bomb) < 20_000
    assert_error(post(url, bomb, "gzip"), 413, "invalid_request_error", "request_too_large")
    fits = gzip.compress(b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi'
                         + b" " * 900_000 + b'"}]}')
    assert post(url, fits, "gzip").status_code == 200
    assert post(url, gzip.compress(BODY), "gzip").status_code == 200


def test_decoder_never_holds_more_than_the_limit() -> None:
    limit = 3 * SLICE + 5
    decoder = BodyDecoder("gzip", limit)
    pieces = list(decoder.pieces(gzip.compress(b"a" * limit)))
    assert sum(map(len, pieces)) == limit and max(map(len, pieces)) <= SLICE
    decoder.finish()
    over = BodyDecoder("deflate", limit)
    seen = 0
    with pytest.raises(errors.RequestTooLarge):
        for piece in over.pieces(zlib.compress(b"a" * (100 * limit))):
            seen += len(piece)
    assert seen <= limit


def test_empty_compressed_body_is_empty() -> None:
    decoder = BodyDecoder("gzip", 10)
    assert list(decoder.pieces(b"")) == []
    decoder.finish()
    assert coding_of(" Identity ") is None and coding_of("x-gzip") == "gzip"
