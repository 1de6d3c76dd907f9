"""Every error of the contract's section 5 that the core can produce, in OpenAI's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.serve import free_port

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "hi"}]


def post(url: str, body: Any = None, *, content: bytes | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, content=content,
                      headers={**AUTH, **(headers or {})}, timeout=10)


def assert_error(response: httpx.Response, status: int, type_: str, code: str | None,
                 param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == (type_, code, param)
    assert error["message"] and "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b"", "not valid"),
])
def test_invalid_json(gateway: str, content: bytes, message: str) -> None:
    error = assert_error(post(gateway, content=content), 400, "invalid_request_error",
                         "invalid_json")
    assert message in error["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": MESSAGES}, "model"),
    ({"model": "gpt-test"}, "messages"),
    ({"model": "gpt-test", "messages": []}, "messages"),
    ({"model": "gpt-test", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "gpt-test", "messages": MESSAGES, "temperature": 3}, "temperature"),
    ({"model": "gpt-test", "messages": MESSAGES, "n": 0}, "n"),
    ({"model": "gpt-test", "messages": MESSAGES, "stream": "yes"}, "stream"),
    ({"model": "gpt-test", "messages": MESSAGES, "response_format": {"type": "xml"}},
     "response_format.type"),
])
def test_invalid_value_names_the_param(gateway: str, body: dict[str, Any], param: str) -> None:
    assert_error(post(gateway, body), 400, "invalid_request_error", "invalid_value", param)


def test_auth(gateway: str) -> None:
    body = {"model": "gpt-test", "messages": MESSAGES}
    assert_error(post(gateway, body, headers={"authorization": ""}), 401,
                 "authentication_error", "invalid_api_key")
    assert_error(post(gateway, body, headers={"authorization": "Bearer sk-wrong"}), 401,
                 "authentication_error", "invalid_api_key")
    ok = post(gateway, body, headers={"authorization": "", "x-api-key": MASTER_KEY})
    assert ok.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-wrong").models.list()


def test_health_and_metrics_need_no_key(gateway: str) -> None:
    assert httpx.get(f"{gateway}/health").json() == {"status": "ok"}
    assert httpx.get(f"{gateway}/metrics").status_code == 200


def test_auth_off_without_keys(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url), master_key=None)  # type: ignore[attr-defined]
    response = httpx.post(f"{url}/v1/chat/completions",
                          json={"model": "gpt-test", "messages": MESSAGES})
    assert response.status_code == 200


def test_not_found(gateway: str) -> None:
    assert_error(post(gateway, {"model": "nope", "messages": MESSAGES}), 404,
                 "invalid_request_error", "model_not_found", "model")
    assert_error(httpx.get(f"{gateway}/v1/nothing-here", headers=AUTH), 404,
                 "invalid_request_error", "not_found")
    assert_error(httpx.get(f"{gateway}/v1/models/nope", headers=AUTH), 404,
                 "invalid_request_error", "model_not_found", "model")
    assert httpx.get(f"{gateway}/v1/chat/completions", headers=AUTH).status_code == 405


def test_request_too_large(make_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    url = make_gateway(gateway_config(fake_openai.url, server={"max_body_mb": 0.001}))  # type: ignore[attr-defined]
    big = {"model": "gpt-test", "messages": [{"role": "user", "content": "x" * 2000}]}
    assert_error(post(url, big), 413, "invalid_request_error", "request_too_large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
        yield b"x" * 2000
        yield b'"}]}'

    response = httpx.post(f"{url}/v1/chat/completions", content=chunked(), headers=AUTH)
    assert_error(response, 413, "invalid_request_error", "request_too_large")
    assert post(url, {"model": "gpt-test", "messages": MESSAGES}).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "status", "type_", "code"), [
    ("fake/error-429", 429, "rate_limit_error", "rate_limit_exceeded"),
    ("fake/error-500", 502, "api_error", "upstream_error"),
    ("fake/error-503", 502, "api_error", "upstream_error"),
    ("fake/error-401", 502, "api_error", "upstream_error"),
    ("fake/error-404", 404, "invalid_request_error", "model_not_found"),
    ("fake/garbage", 502, "api_error", "upstream_error"),
])
def test_upstream_errors(gateway: str, model: str, status: int, type_: str, code: str,
                         stream: bool) -> None:
    response = post(gateway, {"model": model, "messages": MESSAGES, "stream": stream})
    assert_error(response, status, type_, code, response.json()["error"]["param"])
    if status == 429:
        assert response.headers["retry-after"] == "7"


def test_upstream_400_keeps_message_and_param(gateway: str) -> None:
    error = assert_error(post(gateway, {"model": "fake/error-400", "messages": MESSAGES}), 400,
                         "invalid_request_error", "invalid_value", "messages")
    assert error["message"] == "fake upstream error 400"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_refused_is_503(make_gateway: GatewayFactory, stream: bool) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    config = gateway_config(closed)
    config["models"][0]["retries"] = 0  # retries: tests/test_reliability.py
    url = make_gateway(config)
    response = post(url, {"model": "gpt-test", "messages": MESSAGES, "stream": stream})
    assert_error(response, 503, "api_error", "upstream_unavailable")


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_timeout_is_504(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
                                 stream: bool) -> None:
    config = gateway_config(fake_openai.url)  # type: ignore[attr-defined]
    config["models"][1]["timeout_s"] = 0.3
    url = make_gateway(config)
    response = post(url, {"model": "fake/hang", "messages": MESSAGES, "stream": stream})
    assert_error(response, 504, "api_error", "upstream_timeout")


def test_error_after_stream_started_is_one_event(gateway: str) -> None:
    for model, code in (("fake/midstream-error", "upstream_error"),
                        ("fake/cut-stream", "upstream_error"),
                        ("fake/bad-chunk", "upstream_error")):
        body = {"model": model, "messages": MESSAGES, "stream": True}
        with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body,
                          headers=AUTH) as response:
            assert response.status_code == 200
            events = response.read().split(b"\n\n")
        assert events[-1] == b"" and b"[DONE]" not in events[-2]
        assert events[-2].startswith(b'data: {"error":')
        assert httpx.Response(200, content=events[-2][6:]).json()["error"]["code"] == code
    sdk = openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.APIError):
        list(sdk.chat.completions.create(model="fake/midstream-error", messages=MESSAGES,  # type: ignore[arg-type]
                                         stream=True))


def test_unexpected_failure_is_a_clean_500(gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import providers.openai.provider

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(providers.openai.provider, "from_upstream", broken)
    error = assert_error(post(gateway, {"model": "gpt-test", "messages": MESSAGES}), 500,
                         "api_error", "internal_error")
    assert "secret internals" not in error["message"]
    assert httpx.get(f"{gateway}/health").status_code == 200  # still serving
