"""POST /v1/tools/extract (a document, a prompt, a JSON Schema → a job) and
GET /v1/tools/extract/defaults (the default prompt and an example schema)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.auth import Caller
from gateway.access.quotas import no_tokens
from gateway.http.forms import read_form
from gateway.http.routing import Route
from gateway.jobs import extract
from gateway.routes.common import json_response
from gateway.routing.router import Router
from gateway.state import app_state
from providers.base import ChatProvider, OCRProvider
from wire.errors import InvalidRequest
from wire.openai import Usage


def first_model(router: Router, caller: Caller, chat: bool) -> str | None:
    """The first configured model the caller may use: a chat model (every deployment speaks
    chat: an OpenAI or Gemini one too, though they can also make images), or (``chat``
    False) one that reads documents (OCR)."""
    capability = ChatProvider if chat else OCRProvider
    for name, _ in router.names():
        fits = all(isinstance(d.provider, capability) for d in router.resolve(name).deployments)
        if fits and caller.may_use(name):
            return name
    return None


def _text(fields: dict[str, str], files: dict[str, bytes], name: str) -> str | None:
    if name in fields and fields[name].strip():
        return fields[name]
    data = files.get(f"{name}_file")
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"'{name}_file' is not UTF-8 text.", param=f"{name}_file") from None


async def submit(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    form = await read_form(request)
    document = form.required_file("the document")
    fields, files = form.fields, {f.field: f.data for f in form.uploads}
    schema_text = _text(fields, files, "schema")
    schema = extract.parse_schema(schema_text) if schema_text is not None else None
    prompt = _text(fields, files, "prompt") or extract.default_prompt()
    model = fields.get("model") or first_model(gateway.router, caller, chat=True)
    if model is None:
        raise InvalidRequest("No chat model is configured; name one with 'model'.",
                             param="model")
    route = gateway.router.resolve(model)
    request.state.model = route.model
    caller.check_model(route.model)
    filename = document.filename or "document"
    content_type = document.content_type or "application/octet-stream"
    ocr_model = None
    if not extract.is_text(filename, content_type):
        ocr_model = fields.get("ocr_model") or first_model(gateway.router, caller, chat=False)
        if ocr_model is None:
            raise InvalidRequest("Reading this file needs an OCR model (provider ocr), and "
                                 "none is configured; send text, or name one with "
                                 "'ocr_model'.", param="ocr_model")
        caller.check_model(gateway.router.resolve(ocr_model).model)
    ticket = await gateway.quotas.admit(caller, no_tokens)
    await gateway.quotas.settle(ticket, Usage(0, 0))
    ref = await gateway.inputs.put(document.data)
    job = await gateway.jobs.submit("extract", caller.key_id, {
        "input": ref, "filename": filename, "content_type": content_type, "prompt": prompt,
        "schema": schema, "model": model, "ocr_model": ocr_model, "owner": caller.key_id,
        "key": caller.key.public() if caller.key else None,
        "user": fields.get("user") or request.headers.get("x-user-id")})
    return json_response(orjson.dumps({"id": job.id, "object": "job", "status": job.status}),
                         202, ticket.headers)


async def defaults(request: Request) -> Response:
    gateway = app_state(request)
    await gateway.auth.authenticate(request.headers)
    return json_response(orjson.dumps({"prompt": extract.default_prompt(),
                                       "schema": extract.example_schema()}))




routes = [
    Route("/v1/tools/extract", submit, methods=["POST"]),
    Route("/v1/tools/extract/defaults", defaults, methods=["GET"]),
]
