"""Check a real answer against what the OpenAPI document (/openapi.json) says of it: its
status is documented for the operation, its media type too, its JSON body validates against
the documented schema, and the headers it must carry are there."""

from __future__ import annotations

from typing import Any

import httpx
from openapi_schema_validator import OAS31Validator


def documented(doc: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The response object the document gives for this status (``$ref`` followed)."""
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path}: status {status} not documented"
    response: dict[str, Any] = responses[str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        response = doc["components"]["responses"][name]
    return response


def check(doc: dict[str, Any], method: str, path: str, answer: httpx.Response) -> Any:
    """Assert that ``answer`` is what the document promises; returns its JSON (or None)."""
    response = documented(doc, method, path, answer.status_code)
    media = answer.headers.get("content-type", "").split(";")[0].strip()
    content = response["content"]
    assert media in content, f"{method} {path}: {media} not among {sorted(content)}"
    for name, header in response.get("headers", {}).items():
        if "$ref" in header:
            header = doc["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
        if header.get("required"):
            assert name in answer.headers, f"{method} {path}: header {name} missing"
    if media != "application/json":
        return None
    body = answer.json()
    schema = {**content[media]["schema"], "components": doc["components"]}
    OAS31Validator(schema).validate(body)
    return body
