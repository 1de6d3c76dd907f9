"""The OpenAPI 3.1 document of an app, built from its routes and the table in operations.py.

Every ``Route`` (and every ``Mount``, as ``GET {mount}/{path}``) of the app must have an entry
in ``OPERATIONS``; bodies, queries and answers are the JSON Schemas of the pydantic models the
entries name (``models_json_schema``: one shared ``components.schemas``). Errors are one
shared response per status, all in the contract's shape (``ErrorResponse``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from gateway import __version__
from gateway.docs.operations import OPERATIONS, Answer, Operation
from gateway.docs.parts import (
    ERRORS,
    HEADERS,
    LIMIT_HEADERS,
    PARAMETERS,
    SECURITY_SCHEMES,
    TAGS,
    error_responses,
)
from wire.answers import ErrorResponse

REF = "#/components/schemas/{model}"
DESCRIPTION = """An OpenAI-compatible gateway: the `/v1` API of OpenAI's SDKs in front of many \
models, plus virtual keys, usage, prompt templates, conversations, tools and jobs.

Authenticate with `Authorization: Bearer KEY` or `x-api-key: KEY` (the master key or a virtual \
key); `/health`, `/health/ready`, `/metrics`, `/openapi.json` and `/docs` need none. Every \
error has the body `{"error": {"message", "type", "param", "code"}}`; every response carries \
`x-request-id`."""


class UndocumentedRoute(LookupError):
    """A route the app serves that operations.py does not describe."""


def endpoints(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, OpenAPI path) of every route the app serves (HEAD left out: it is GET's)."""
    for route in routes:
        if isinstance(route, Route):
            path = re.sub(r"{(\w+)(:\w+)?}", r"{\1}", route.path)
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, path
        elif isinstance(route, Mount):
            yield "GET", route.path.rstrip("/") + "/{path}"


def build(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The document of these routes; ``UndocumentedRoute`` names any route without an entry."""
    found = list(endpoints(routes))
    missing = [f"{method} {path}" for method, path in found if (method, path) not in OPERATIONS]
    if missing:
        raise UndocumentedRoute(f"routes missing from gateway/docs/operations.py: {missing}")
    ops = [(method, path, OPERATIONS[method, path]) for method, path in found]
    schemas = _schemas(op for _, _, op in ops)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in ops:
        paths.setdefault(path, {})[method.lower()] = _operation(path, op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "AI gateway", "version": __version__, "description": DESCRIPTION},
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": SECURITY_SCHEMES,
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": error_responses(schemas["refs"][ErrorResponse]["$ref"]),
        },
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
    }


def _models(op: Operation) -> Iterator[type[BaseModel]]:
    for model in (op.body, op.form):
        if model is not None:
            yield model
    for answer in (*op.answers, *(answer for _, answer in op.also)):
        if answer.model is not None:
            yield answer.model


def _schemas(ops: Iterable[Operation]) -> dict[str, Any]:
    """Every model's schema under ``$defs``, each referenced by ``$ref`` (``refs``)."""
    models: set[type[BaseModel]] = {ErrorResponse, *(m for op in ops for m in _models(op))}
    ordered = sorted(models, key=lambda m: (m.__module__, m.__qualname__))
    refs, defs = models_json_schema([(model, "validation") for model in ordered],
                                    ref_template=REF)
    return {"$defs": defs.get("$defs", {}),
            "refs": {model: refs[model, "validation"] for model in ordered}}


# One server-sent event, as OpenAPI 3.2 describes an event stream's items.
EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}}}


def _content(answers: Iterable[Answer], schemas: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for answer in answers:
        if answer.model is not None:
            schema = schemas["refs"][answer.model]
        elif answer.media == "text/event-stream":
            schema = {**EVENT, "description": answer.description}
        elif answer.media == "application/json":
            schema = {"type": "object"}
        else:
            schema = {"type": "string"}
        content[answer.media] = {"schema": schema}
    return content


def _operation(path: str, op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    headers = {"x-request-id": {"$ref": "#/components/headers/x-request-id"}}
    if op.kind in ("model", "tool"):
        headers.update(LIMIT_HEADERS)
    responses: dict[str, Any] = {str(op.status): {
        "description": "OK" if op.status == 200 else "Created" if op.status == 201
        else "Accepted", "headers": headers, "content": _content(op.answers, schemas)}}
    for status, answer in op.also:
        responses[str(status)] = {"description": answer.description, "headers": headers,
                                  "content": _content((answer,), schemas)}
    for status in op.error_statuses():
        responses.setdefault(str(status), {"$ref": f"#/components/responses/{ERRORS[status]}"})
    operation: dict[str, Any] = {
        "operationId": op.id, "tags": [op.tag], "summary": op.summary,
        "parameters": [*_path_parameters(path), *_query_parameters(op.query),
                       {"$ref": "#/components/parameters/x-request-id"}],
        "responses": responses}
    if op.description:
        operation["description"] = op.description
    if op.kind in ("model", "tool"):
        operation["parameters"].append({"$ref": "#/components/parameters/x-user-id"})
    if op.kind == "public":
        operation["security"] = []
    body = _request_body(op, schemas)
    if body:
        operation["requestBody"] = body
    return operation


def _request_body(op: Operation, schemas: dict[str, Any]) -> dict[str, Any] | None:
    content: dict[str, Any] = {}
    if op.body is not None:
        content["application/json"] = {"schema": schemas["refs"][op.body]}
        if op.example is not None:
            content["application/json"]["example"] = op.example
    if op.form is not None:
        content["multipart/form-data"] = {"schema": schemas["refs"][op.form]}
    return {"required": True, "content": content} if content else None


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", path)]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required,
                     "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters
