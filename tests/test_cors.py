"""CORS (contract section 2, ``server.cors_allow_origins``): preflights for ``/v1/*`` answered for
the configured origins with what the SDKs send; answers expose the gateway's headers."""

from __future__ import annotations

import gzip

import httpx
import openai
import pytest

from gateway.config import ConfigError, validate
from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.test_errors import AUTH

APP = "https://app.example.com"
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
# What a browser may send without asking (CORS-safelisted), or sets itself.
_NOT_ASKED = {"host", "accept", "accept-encoding", "connection", "content-length", "user-agent"}


def sdk_headers(url: str) -> list[str]:
    """The request headers the official openai SDK sends, taken from a real call: what a
    browser would name in its preflight's Access-Control-Request-Headers."""
    seen: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [seen.append]})
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, http_client=http,
                           max_retries=0, organization="org-1", project="proj-1")
    client.chat.completions.create(**BODY)  # type: ignore[call-overload]
    names = [name for name in seen[0].headers if name.lower() not in _NOT_ASKED]
    assert "authorization" in names and any(n.startswith("x-stainless-") for n in names)
    return names


def preflight(url: str, origin: str, headers: list[str], path: str = "/v1/chat/completions",
              method: str = "POST") -> httpx.Response:
    return httpx.options(f"{url}{path}", headers={
        "origin": origin, "access-control-request-method": method,
        "access-control-request-headers": ", ".join(headers)})


@pytest.fixture
def cors_gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> str:
    return make_gateway(gateway_config(fake_openai.url,  # type: ignore[attr-defined]
                                       server={"cors_allow_origins": [APP], "max_body_mb": 0.01}))


def test_preflight_allows_what_the_sdk_sends(cors_gateway: str) -> None:
    names = sdk_headers(cors_gateway)
    response = preflight(cors_gateway, APP, names)
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == APP
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {n.lower() for n in names} <= allowed
    assert "origin" in response.headers["vary"].lower() and response.headers["x-request-id"]
    assert int(response.headers["access-control-max-age"]) > 0
    private = httpx.options(f"{cors_gateway}/v1/models", headers={
        "origin": APP, "access-control-request-method": "GET",
        "access-control-request-private-network": "true"})
    assert private.headers["access-control-allow-private-network"] == "true"


def test_answers_expose_the_gateway_headers(cors_gateway: str) -> None:
    response = httpx.post(f"{cors_gateway}/v1/chat/completions", json=BODY,
                          headers={**AUTH, "origin": APP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after", "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests"} <= exposed
    # errors too, the middleware's own 413 included, so that a page can read them
    for answer in (httpx.post(f"{cors_gateway}/v1/chat/completions", json=BODY,
                              headers={"origin": APP}),
                   httpx.post(f"{cors_gateway}/v1/chat/completions", headers={**AUTH,
                              "origin": APP}, content=b"x" * 20_000),
                   httpx.post(f"{cors_gateway}/v1/chat/completions", headers={
                       **AUTH, "origin": APP, "content-encoding": "gzip"},
                       content=gzip.compress(b" " * 20_000))):
        assert answer.status_code in (401, 413), answer.text
        assert answer.headers["access-control-allow-origin"] == APP


def test_other_origins_methods_and_headers_are_refused(cors_gateway: str) -> None:
    for response, param in (
            (preflight(cors_gateway, "https://evil.example", ["authorization"]), "origin"),
            (preflight(cors_gateway, APP, ["authorization"], method="PATCH"),
             "access-control-request-method"),
            (preflight(cors_gateway, APP, ["authorization", "x-evil"]),
             "access-control-request-headers")):
        assert response.status_code == 400
        assert response.json()["error"]["param"] == param
        assert "access-control-allow-origin" not in response.headers
    plain = httpx.post(f"{cors_gateway}/v1/chat/completions", json=BODY,
                       headers={**AUTH, "origin": "https://evil.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    # preflights are answered for /v1/* only
    assert preflight(cors_gateway, APP, [], path="/health").status_code == 405


def test_any_origin(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url,  # type: ignore[attr-defined]
                                      server={"cors_allow_origins": ["*"]}))
    response = preflight(url, "http://localhost:3000", ["authorization", "content-type"])
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    answer = httpx.get(f"{url}/v1/models", headers={**AUTH, "origin": "http://x.test"})
    assert answer.headers["access-control-allow-origin"] == "*"


def test_off_by_default(gateway: str) -> None:
    assert preflight(gateway, APP, ["authorization"]).status_code == 405
    answer = httpx.get(f"{gateway}/v1/models", headers={**AUTH, "origin": APP})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("origin", ["https://app.example.com/", "app.example.com",
                                    "https://app.example.com/path", "ftp://x.test"])
def test_config_refuses_what_is_not_an_origin(origin: str) -> None:
    with pytest.raises(ConfigError, match="cors_allow_origins"):
        validate({"server": {"cors_allow_origins": [origin]}, "models": []})
