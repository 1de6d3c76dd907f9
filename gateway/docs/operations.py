"""What the OpenAPI document says about each route: one ``Operation`` per (method, path) the
app serves, naming the pydantic models its body, query and answers are checked against.

gateway/docs/document.py walks the app's routes and looks each one up here: a route with no
entry is an error (tests/test_openapi.py), so a new endpoint cannot go undocumented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from gateway.access.keys import KeyCreate
from gateway.docs import inputs
from gateway.prompts.templates import PromptCreate, PromptUpdate
from wire import admin, answers
from wire.images import ImageGenerationRequest
from wire.openai import ChatRequest, EmbeddingRequest
from wire.responses import ResponsesRequest
from wire.tools import DetectResult, OCRResult

Kind = Literal["public", "read", "admin", "model", "tool"]


@dataclass(frozen=True, slots=True)
class Answer:
    """One media type a status answers with; ``model`` None: not JSON (text, events, files)."""

    model: type[BaseModel] | None = None
    media: str = "application/json"
    description: str = ""


SSE = Answer(None, "text/event-stream", "Server-sent events (``stream`` true): ``data: {json}``"
             " each, an error after the start as one ``data: {\"error\": {...}}`` event.")
TEXT = Answer(None, "text/plain")


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    tag: str
    summary: str
    answers: tuple[Answer, ...]
    status: int = 200
    kind: Kind = "read"
    body: type[BaseModel] | None = None  # application/json
    form: type[BaseModel] | None = None  # multipart/form-data
    query: type[BaseModel] | None = None
    also: tuple[tuple[int, Answer], ...] = ()  # other statuses that are not errors
    errors: tuple[int, ...] = ()  # beyond those of its kind
    example: dict[str, Any] | None = None
    description: str = ""

    def error_statuses(self) -> list[int]:
        codes = set(self.errors) | {500}
        if self.kind != "public":
            codes |= {401, 503}  # (503: the store that holds virtual keys is down)
        if self.kind in ("model", "tool"):
            codes |= {400, 403, 404, 429, 502, 503, 504}
        if self.kind == "admin":
            codes |= {403}
        if self.body is not None or self.form is not None:
            codes |= {400, 413, 415}
        if self.query is not None:
            codes |= {400}
        return sorted(codes)


def _json(model: type[BaseModel], description: str = "") -> tuple[Answer, ...]:
    return (Answer(model, description=description),)


CHAT_EXAMPLE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}
MODEL_ANSWERS = (Answer(answers.Transcription), TEXT, SSE)
ACCEPTED = _json(admin.JobAccepted, "The job: poll /v1/jobs/{id} or follow its events.")

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/chat/completions"): Operation(
        "createChatCompletion", "OpenAI", "Chat completion (stream or not)",
        (Answer(answers.ChatCompletion), SSE), kind="model", body=ChatRequest,
        example=CHAT_EXAMPLE, description="The gateway's own fields are accepted too: "
        "``prompt`` and ``variables`` (a stored template), ``conversation_id``."),
    ("POST", "/v1/embeddings"): Operation(
        "createEmbedding", "OpenAI", "Embeddings", _json(answers.EmbeddingList), kind="model",
        body=EmbeddingRequest,
        example={"model": "text-embedding-3-small", "input": "The food was delicious."}),
    ("GET", "/v1/models"): Operation(
        "listModels", "OpenAI", "The models this key may use", _json(answers.ModelList)),
    ("GET", "/v1/models/{model_id}"): Operation(
        "retrieveModel", "OpenAI", "One model", _json(answers.ModelCard), errors=(404,)),
    ("POST", "/v1/images/generations"): Operation(
        "createImage", "OpenAI", "Generate images", (Answer(answers.ImagesResponse), SSE),
        kind="model", body=ImageGenerationRequest,
        example={"model": "dall-e-3", "prompt": "A red apple on a table", "n": 1}),
    ("POST", "/v1/images/edits"): Operation(
        "editImage", "OpenAI", "Edit an image", (Answer(answers.ImagesResponse), SSE),
        kind="model", form=inputs.ImageEditForm),
    ("POST", "/v1/audio/transcriptions"): Operation(
        "createTranscription", "OpenAI", "Speech to text", MODEL_ANSWERS, kind="model",
        form=inputs.TranscriptionForm),
    ("POST", "/v1/audio/translations"): Operation(
        "createTranslation", "OpenAI", "Speech to English text", MODEL_ANSWERS, kind="model",
        form=inputs.TranslationForm),
    ("POST", "/v1/responses"): Operation(
        "createResponse", "OpenAI", "Responses API (stream or not)",
        (Answer(answers.ResponseObject), SSE), kind="model", body=ResponsesRequest,
        example={"model": "gpt-4o-mini", "input": "Say hello."}),
    ("GET", "/v1/responses/{id}"): Operation(
        "getResponse", "OpenAI", "A stored response", _json(answers.ResponseObject),
        errors=(404,)),
    ("DELETE", "/v1/responses/{id}"): Operation(
        "deleteResponse", "OpenAI", "Delete a stored response", _json(answers.ResponseDeleted),
        errors=(404,)),
    ("GET", "/v1/responses/{id}/input_items"): Operation(
        "listInputItems", "OpenAI", "A stored response's input items",
        _json(answers.InputItemList), query=inputs.InputItemsQuery, errors=(404,)),
    ("GET", "/v1/usage"): Operation(
        "getUsage", "Governance", "Tokens, requests and spend per key, user, model and day",
        _json(admin.UsageReport), query=inputs.UsageQuery, errors=(403,)),
    ("POST", "/v1/keys"): Operation(
        "createKey", "Governance", "Create a virtual key (master key)", _json(admin.KeyCreated),
        status=201, kind="admin", body=KeyCreate,
        example={"name": "team-a", "models": ["gpt-4o-mini"], "rpm": 60}),
    ("GET", "/v1/keys"): Operation(
        "listKeys", "Governance", "Virtual keys (master key)", _json(admin.KeyList),
        kind="admin"),
    ("DELETE", "/v1/keys/{key_id}"): Operation(
        "revokeKey", "Governance", "Revoke a virtual key (master key)", _json(admin.KeyDeleted),
        kind="admin", errors=(404,)),
    ("GET", "/v1/prompts"): Operation(
        "listPrompts", "Prompts", "Prompt templates", _json(admin.PromptList)),
    ("POST", "/v1/prompts"): Operation(
        "createPrompt", "Prompts", "Create a prompt template (master key)",
        _json(admin.Prompt), status=201, kind="admin", body=PromptCreate, errors=(409,),
        example={"name": "greet", "template": "Say hello to {{name}}."}),
    ("GET", "/v1/prompts/{name}"): Operation(
        "getPrompt", "Prompts", "A prompt template (its current or a given version)",
        _json(admin.Prompt), query=inputs.PromptQuery, errors=(404,)),
    ("PUT", "/v1/prompts/{name}"): Operation(
        "updatePrompt", "Prompts", "A new version of a prompt template (master key)",
        _json(admin.Prompt), kind="admin", body=PromptUpdate, errors=(404,),
        example={"template": "Say hi to {{name}}."}),
    ("DELETE", "/v1/prompts/{name}"): Operation(
        "deletePrompt", "Prompts", "Delete a prompt template (master key)",
        _json(admin.PromptDeleted), kind="admin", errors=(400, 404)),
    ("GET", "/v1/conversations"): Operation(
        "listConversations", "Prompts", "Stored conversations",
        _json(admin.ConversationList), query=inputs.ConversationsQuery),
    ("GET", "/v1/conversations/{id}"): Operation(
        "getConversation", "Prompts", "A stored conversation", _json(admin.Conversation),
        errors=(404,)),
    ("DELETE", "/v1/conversations/{id}"): Operation(
        "deleteConversation", "Prompts", "Delete a stored conversation",
        _json(admin.ConversationDeleted), errors=(404,)),
    ("POST", "/v1/tools/ocr"): Operation(
        "ocr", "Tools", "Read the text of a PDF or an image", _json(OCRResult), kind="tool",
        form=inputs.OCRForm, query=inputs.OCRQuery),
    ("POST", "/v1/tools/detect"): Operation(
        "detect", "Tools", "Detect objects in an image",
        (Answer(DetectResult), Answer(None, "image/png", "format=png")), kind="tool",
        form=inputs.DetectUpload, query=inputs.DetectQuery),
    ("POST", "/v1/tools/transcribe"): Operation(
        "transcribeJob", "Tools", "Speech to text as a job", ACCEPTED, status=202, kind="tool",
        form=inputs.TranscriptionForm),
    ("POST", "/v1/tools/extract"): Operation(
        "extractJob", "Tools", "Structured data from a document, as a job", ACCEPTED,
        status=202, kind="tool", form=inputs.ExtractForm),
    ("GET", "/v1/tools/extract/defaults"): Operation(
        "extractDefaults", "Tools", "The default extraction prompt and an example schema",
        _json(admin.ExtractDefaults)),
    ("POST", "/v1/tools/summarize"): Operation(
        "summarizeJob", "Tools", "Meeting minutes from a transcript or a recording, as a job",
        ACCEPTED, status=202, kind="tool", body=inputs.SummarizeBody,
        form=inputs.SummarizeForm,
        example={"text": "Alice: let's ship on Friday. Bob: agreed, I'll write the notes."}),
    ("GET", "/v1/jobs"): Operation(
        "listJobs", "Jobs", "The caller's jobs", _json(admin.JobList), query=inputs.JobsQuery),
    ("GET", "/v1/jobs/{id}"): Operation(
        "getJob", "Jobs", "A job's state and result", _json(admin.Job), errors=(404,)),
    ("DELETE", "/v1/jobs/{id}"): Operation(
        "cancelJob", "Jobs", "Cancel a job", _json(admin.Job), errors=(404,)),
    ("GET", "/v1/jobs/{id}/events"): Operation(
        "jobEvents", "Jobs", "A job's state at each change, as server-sent events (data: "
        "{job}) until it ends", (Answer(None, "text/event-stream", "data: {job} at each "
                                  "change"),), errors=(404,)),
    ("GET", "/health"): Operation(
        "health", "Operations", "Liveness", _json(admin.Health), kind="public"),
    ("GET", "/health/ready"): Operation(
        "ready", "Operations", "Readiness: whether the store (Redis) answers",
        _json(admin.Ready), kind="public",
        also=((503, Answer(admin.Ready, description="The store does not answer.")),)),
    ("GET", "/metrics"): Operation(
        "metrics", "Operations", "Prometheus metrics", (TEXT,), kind="public"),
    ("GET", "/openapi.json"): Operation(
        "openapi", "Operations", "This document", (Answer(None, "application/json"),),
        kind="public"),
    ("GET", "/docs"): Operation(
        "docs", "Operations", "The API documentation page (Swagger UI, no external assets)",
        (Answer(None, "text/html"),), kind="public"),
    # the web console (gateway/routes/console.py): static files; it signs in with a key
    ("GET", "/ui"): Operation(
        "console", "Operations", "The web console", (Answer(None, "text/html"),),
        kind="public"),
    ("GET", "/ui/"): Operation(
        "consoleSlash", "Operations", "The web console", (Answer(None, "text/html"),),
        kind="public"),
    ("GET", "/ui/{name}"): Operation(
        "consoleAsset", "Operations", "The console's scripts and styles",
        (Answer(None, "text/javascript"), Answer(None, "text/css"), Answer(None, "text/html")),
        kind="public", errors=(404,)),
    ("GET", "/docs/{file}"): Operation(
        "docsAsset", "Operations", "The documentation page's scripts, styles and icons",
        (Answer(None, "text/css"), Answer(None, "text/javascript"),
         Answer(None, "image/png")), kind="public", errors=(404,)),
}
