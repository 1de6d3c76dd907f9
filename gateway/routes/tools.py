"""POST /v1/tools/ocr and POST /v1/tools/detect: a multipart upload (``file``, ``model``?,
the tool's fields) to an ``ocr`` / ``yolo`` deployment (local or remote) through the router,
so keys, allowlists, rpm, retries, fallbacks, usage and metrics apply as to chat.

Without ``model`` the first configured model that has the tool (and that the key may use)
answers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.auth import Caller
from gateway.access.quotas import no_tokens
from gateway.http.forms import read_form
from gateway.http.routing import Route
from gateway.routes.common import ModelCall, parse_model, until_disconnected
from gateway.routing.router import Router
from gateway.state import app_state
from providers.base import Detector, OCRProvider
from wire.errors import InvalidRequest
from wire.openai import APIRequest
from wire.tools import DetectRequest, OCRRequest, ToolFile


class DetectForm(BaseModel):
    """The detection fields of the form (strings, converted and checked here)."""

    model_config = ConfigDict(extra="ignore")
    confidence: float | None = Field(default=None, ge=0, le=1)
    iou: float | None = Field(default=None, ge=0, le=1)
    classes: str | None = None  # comma-separated labels to keep
    max_detections: int | None = Field(default=None, ge=1, le=10_000)


async def _read_form(request: Request) -> tuple[dict[str, str], ToolFile]:
    """The text fields and the uploaded ``file``; a 400 for a body that is not a multipart
    form with a file in it (gateway/http/forms.py reads it)."""
    form = await read_form(request)
    upload = form.required_file("the document or image")
    return form.fields, ToolFile(upload.data, upload.filename or "file",
                            upload.content_type or "application/octet-stream")


def _default_model(router: Router, capability: type, what: str, caller: Caller) -> str:
    """The first configured model with the tool that the caller may use."""
    for name, _ in router.names():
        route = router.resolve(name)
        if caller.may_use(name) and all(isinstance(d.provider, capability)
                                        for d in route.deployments):
            return name
    raise InvalidRequest(f"No configured model supports {what}; name one with 'model'.",
                         param="model")




async def _tool_call(request: Request, capability: type, what: str
                     ) -> tuple[ModelCall[APIRequest], dict[str, str], ToolFile]:
    """Who calls (before the body is read), the form, the model that answers, and the
    caller's rpm (a tool call costs no tokens)."""
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    fields, file = await _read_form(request)
    name = fields.get("model") or _default_model(gateway.router, capability, what, caller)
    route = gateway.router.resolve(name)
    request.state.model = route.model
    caller.check_model(route.model)
    user = fields.get("user") or request.headers.get("x-user-id")
    call = ModelCall(gateway, caller, APIRequest(model=name), route, user)
    call.ticket = await gateway.quotas.admit(caller, no_tokens)
    return call, fields, file


def _query(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise InvalidRequest(f"Invalid value for '{name}': '{value}' (allowed: "
                             f"{', '.join(allowed)}).", param=name)
    return value


async def ocr(request: Request) -> Response:
    lines = _query(request, "detail", ("lines", "pages")) == "lines"
    call, _, file = await _tool_call(request, OCRProvider, "OCR")
    body = OCRRequest(file, lines=lines)
    result = await until_disconnected(request, call.gateway.router.invoke(
        call.route, OCRProvider,  # type: ignore[type-abstract]  # (a runtime-checkable Protocol)
        lambda provider, model: provider.ocr(body, model), what="OCR"))
    return call.respond(result.to_json(), None)


async def detect(request: Request) -> Response:
    draw = _query(request, "format", ("json", "png")) == "png"
    call, fields, file = await _tool_call(request, Detector, "object detection")
    form = parse_model(DetectForm, fields)
    classes = None
    if form.classes is not None:
        classes = tuple(c.strip() for c in form.classes.split(",") if c.strip()) or None
    body = DetectRequest(file, confidence=form.confidence, iou=form.iou, classes=classes,
                         max_detections=form.max_detections, draw=draw)
    answer = await until_disconnected(request, call.gateway.router.invoke(
        call.route, Detector,  # type: ignore[type-abstract]  # (a runtime-checkable Protocol)
        lambda provider, model: provider.detect(body, model),
        what="object detection"))
    if draw:
        assert answer.png is not None
        return Response(answer.png, media_type="image/png", headers=call.ticket.headers,
                        background=BackgroundTask(call.finish, None))
    assert answer.result is not None
    return call.respond(answer.result.to_json(), None)


routes = [
    Route("/v1/tools/ocr", ocr, methods=["POST"]),
    Route("/v1/tools/detect", detect, methods=["POST"]),
]
