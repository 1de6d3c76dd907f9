"""HTTP details every answer gets right: a 413 is counted under its route whichever way the
body came, a 405 says what is allowed, and a client's ``x-request-id`` is kept only when sane."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.test_metrics import samples, value

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = "/v1/chat/completions"


def test_413_is_counted_under_the_route_by_length_and_chunked(
        make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url, server={"max_body_mb": 0.001}))  # type: ignore[attr-defined]
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "' + b"x" * 2000 \
        + b'"}]}'

    def chunked() -> Iterator[bytes]:
        yield body[:100]
        yield body[100:]

    by_length = httpx.post(f"{url}{CHAT}", content=body, headers=AUTH)
    by_counting = httpx.post(f"{url}{CHAT}", content=chunked(), headers=AUTH)
    embeddings = httpx.post(f"{url}/v1/embeddings", content=body, headers=AUTH)
    nowhere = httpx.post(f"{url}/v1/nothing-here", content=body, headers=AUTH)
    assert "content-length" in by_length.request.headers
    assert "content-length" not in by_counting.request.headers
    assert {r.status_code for r in (by_length, by_counting, embeddings, nowhere)} == {413}
    data = samples(url)
    assert value(data, "gateway_requests_total", model="", endpoint=CHAT, status="413") == 2
    assert value(data, "gateway_requests_total", model="", endpoint="/v1/embeddings",
                 status="413") == 1
    assert value(data, "gateway_requests_total", model="", endpoint="unmatched",
                 status="413") == 1


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", CHAT, "POST"),
    ("PUT", "/v1/embeddings", "POST"),
    ("POST", "/v1/models", "GET, HEAD"),
    ("PUT", "/v1/keys", "GET, HEAD, POST"),  # one route per method on one path
    ("GET", "/v1/keys/key_1", "DELETE"),
])
def test_405_says_what_is_allowed(gateway: str, method: str, path: str, allow: str) -> None:
    response = httpx.request(method, f"{gateway}{path}", headers=AUTH)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == allow


@pytest.mark.parametrize("mine", ["abc-123", "A.b_c:d-9", "x" * 128])
def test_a_sane_request_id_is_kept(gateway: str, mine: str) -> None:
    assert httpx.get(f"{gateway}/health",
                     headers={"x-request-id": mine}).headers["x-request-id"] == mine


@pytest.mark.parametrize("bad", ["x" * 8000, "x" * 129, "has space", "semi;colon", "ünïcode",
                                 "new\tline", ""])
def test_an_insane_request_id_is_replaced(gateway: str, bad: str) -> None:
    response = httpx.get(f"{gateway}/health", headers={"x-request-id": bad.encode("utf-8")})
    assert response.status_code == 200
    fresh = response.headers["x-request-id"]
    assert fresh != bad and len(fresh) == 32 and fresh.isalnum()
