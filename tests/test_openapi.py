"""GET /openapi.json and GET /docs (contract section 4): every route the app serves is in the
document, the document is valid OpenAPI 3.1, real answers validate against it, and the docs
page loads with every asset from the gateway itself."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate as validate_spec
from starlette.routing import Route

from gateway.app import create_app
from gateway.config import validate
from gateway.docs import pages
from gateway.docs.document import UndocumentedRoute, build, endpoints
from tests.conftest import MASTER_KEY, gateway_config
from tests.fakes.openai_server import FakeOpenAI
from tests.openapi_check import check, documented

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello there"}]}


def _app_routes() -> list[Any]:
    return list(create_app(validate(gateway_config("http://127.0.0.1:9/v1"))).routes)


@pytest.fixture
def doc(gateway: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway}/openapi.json")  # (no key: the document needs none)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def test_every_route_is_in_the_document(doc: dict[str, Any]) -> None:
    served = set(endpoints(_app_routes()))
    listed = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert served == listed
    assert ("POST", "/v1/chat/completions") in served and ("GET", "/docs") in served
    assert len({op["operationId"] for item in doc["paths"].values()
                for op in item.values()}) == len(listed)


def test_a_route_without_an_entry_is_refused() -> None:
    async def hidden(request: Any) -> None: ...

    with pytest.raises(UndocumentedRoute, match="POST /v1/secret"):
        build([*_app_routes(), Route("/v1/secret", hidden, methods=["POST"])])


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    validate_spec(doc)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["apiKeyAuth"]["in"], schemes["apiKeyAuth"]["name"]) == ("header",
                                                                           "x-api-key")


def test_every_error_status_uses_the_one_error_shape(doc: dict[str, Any]) -> None:
    error = doc["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"message", "type", "param", "code"}
    statuses = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "500" in op["responses"], f"{method} {path}"
            for status in (s for s in op["responses"] if int(s) >= 400):
                if (path, status) == ("/health/ready", "503"):
                    continue  # (readiness answers its checks, not an error)
                response = documented(doc, method, path, int(status))
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
                statuses += 1
    assert statuses > 150


def test_auth_and_headers_are_documented(doc: dict[str, Any]) -> None:
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert "security" not in chat  # (the document's default: bearer or x-api-key)
    assert doc["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    for path in ("/health", "/metrics", "/openapi.json", "/docs"):
        assert doc["paths"][path]["get"]["security"] == []
    names = {p["$ref"].rsplit("/", 1)[1] for p in chat["parameters"] if "$ref" in p}
    assert names == {"x-request-id", "x-user-id"}
    headers = chat["responses"]["200"]["headers"]
    assert {"x-request-id", "x-ratelimit-remaining-requests"} <= set(headers)
    assert "retry-after" in doc["components"]["responses"]["TooManyRequests"]["headers"]


def test_request_schemas_come_from_the_route_models(doc: dict[str, Any]) -> None:
    from wire.openai import ChatRequest

    body = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatRequest"}
    chat = doc["components"]["schemas"]["ChatRequest"]
    assert chat["properties"]["temperature"] == ChatRequest.model_json_schema()[
        "properties"]["temperature"]
    upload = doc["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    form = doc["components"]["schemas"][
        upload["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert (form["properties"]["file"]["type"], form["properties"]["file"]["format"]) == (
        "string", "binary")
    assert "diarized_json" in form["properties"]["response_format"]["enum"]
    usage = doc["paths"]["/v1/usage"]["get"]["parameters"]
    assert {p.get("name") for p in usage} >= {"key_id", "user", "model", "from", "to"}


def test_the_document_is_built_once(gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counted(routes: Any) -> dict[str, Any]:
        calls.append(1)
        return build(routes)

    monkeypatch.setattr(pages, "build", counted)
    first = httpx.get(f"{gateway}/openapi.json").content
    assert httpx.get(f"{gateway}/openapi.json").content == first
    assert len(calls) == 1


def test_real_answers_match_the_document(gateway: str, doc: dict[str, Any],
                                         fake_openai: FakeOpenAI) -> None:
    def call(method: str, path: str, url_path: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", ADMIN)
        answer = httpx.request(method, f"{gateway}{url_path or path}", **kwargs)
        return answer.status_code, check(doc, method, path, answer)

    assert call("POST", "/v1/chat/completions", json=CHAT)[1]["object"] == "chat.completion"
    _, body = call("POST", "/v1/embeddings",
                   json={"model": "gpt-test", "input": ["a", "b"]})
    assert len(body["data"]) == 2
    assert call("GET", "/v1/models")[1]["data"]
    assert call("GET", "/v1/models/{model_id}", "/v1/models/gpt-test")[1]["id"] == "gpt-test"
    key = call("POST", "/v1/keys", json={"name": "docs", "rpm": 5})[1]
    assert key["key"].startswith("sk-")
    limited = httpx.post(f"{gateway}/v1/chat/completions", json=CHAT,
                         headers={"x-api-key": key["key"]})
    check(doc, "POST", "/v1/chat/completions", limited)
    assert limited.headers["x-ratelimit-limit-requests"] == "5"
    assert call("GET", "/v1/keys")[1]["data"][0]["id"] == key["id"]
    assert call("GET", "/v1/usage")[1]["totals"]["requests"] >= 1
    assert call("GET", "/v1/tools/extract/defaults")[1]["prompt"]
    assert call("GET", "/v1/jobs")[1]["object"] == "list"
    assert call("GET", "/v1/prompts")[1]["object"] == "list"
    assert call("GET", "/health", headers={})[1] == {"status": "ok"}
    assert call("GET", "/health/ready", headers={})[1]["status"] == "ok"
    assert call("GET", "/metrics", headers={})[0] == 200
    assert call("DELETE", "/v1/keys/{key_id}", f"/v1/keys/{key['id']}")[1]["deleted"]
    # errors, in the shape the document gives every one of them
    assert call("GET", "/v1/models", headers={})[1]["error"]["code"] == "invalid_api_key"
    assert call("POST", "/v1/chat/completions", json={**CHAT, "temperature": 9})[1][
        "error"]["param"] == "temperature"
    assert call("POST", "/v1/embeddings", json={"model": "nope", "input": "x"})[1][
        "error"]["code"] == "model_not_found"
    assert call("GET", "/v1/jobs/{id}", "/v1/jobs/job_x")[1]["error"]["code"] == "job_not_found"
    assert call("POST", "/v1/chat/completions",
                json={**CHAT, "model": "fake/error-500"})[0] == 502


def test_streams_are_documented_as_events(gateway: str, doc: dict[str, Any]) -> None:
    answer = httpx.post(f"{gateway}/v1/chat/completions", json={**CHAT, "stream": True},
                        headers=ADMIN)
    assert check(doc, "POST", "/v1/chat/completions", answer) is None
    assert answer.text.rstrip().endswith("data: [DONE]")


def test_docs_page_and_all_its_assets_load_from_the_gateway(gateway: str) -> None:
    page = httpx.get(f"{gateway}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:href|src)="([^"]+)"', page.text)
    assert len(assets) == 4 and not any("//" in asset for asset in assets)
    for asset in assets:
        answer = httpx.get(f"{gateway}/{asset}")
        assert answer.status_code == 200, asset
        assert len(answer.content) > 100
    assert b'url: "openapi.json"' in httpx.get(f"{gateway}/docs/init.js").content
    missing = httpx.get(f"{gateway}/docs/..%2Fpages.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
