"""Typed models of Anthropic's Messages API wire format (``POST /v1/messages``).

Requests are TypedDicts (built by the translation, checked by mypy, sent as they are);
answers and stream events are pydantic models (validated: a malformed answer is garbage).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict

# -- request ------------------------------------------------------------------------------


class ImageSource(TypedDict, total=False):
    type: Literal["base64", "url"]
    media_type: str
    data: str
    url: str


class Block(TypedDict, total=False):
    """A content block: text, image, tool_use or tool_result."""

    type: Literal["text", "image", "tool_use", "tool_result"]
    text: str
    source: ImageSource
    id: str
    name: str
    input: dict[str, Any]
    tool_use_id: str
    content: str


class MessageParam(TypedDict):
    role: Literal["user", "assistant"]
    content: list[Block]


class ToolParam(TypedDict):
    name: str
    description: NotRequired[str]
    input_schema: dict[str, Any]


class ToolChoice(TypedDict, total=False):
    type: Literal["auto", "any", "tool", "none"]
    name: str
    disable_parallel_tool_use: bool


class MessagesRequest(TypedDict):
    model: str
    messages: list[MessageParam]
    max_tokens: int
    system: NotRequired[list[Block]]
    temperature: NotRequired[float]
    top_p: NotRequired[float]
    stop_sequences: NotRequired[list[str]]
    tools: NotRequired[list[ToolParam]]
    tool_choice: NotRequired[ToolChoice]
    metadata: NotRequired[dict[str, str]]
    stream: NotRequired[bool]


# -- answer and stream events ---------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentBlock(_Wire):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class WireUsage(_Wire):
    """``message_start`` and whole answers carry all fields; ``message_delta`` carries the
    cumulative ``output_tokens`` and may repeat the others."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessageResponse(_Wire):
    id: str
    model: str
    content: list[ContentBlock]
    stop_reason: str | None = None
    usage: WireUsage


class MessageStart(_Wire):
    message: MessageResponse


class ContentBlockStart(_Wire):
    index: int
    content_block: ContentBlock


class BlockDelta(_Wire):
    type: str
    text: str | None = None
    partial_json: str | None = None


class ContentBlockDelta(_Wire):
    index: int
    delta: BlockDelta


class StopReason(_Wire):
    stop_reason: str | None = None


class MessageDelta(_Wire):
    delta: StopReason
    usage: WireUsage | None = None


class ErrorDetail(_Wire):
    type: str = "api_error"
    message: str = ""


class ErrorBody(_Wire):
    """``{"type": "error", "error": {"type", "message"}}``: error answers and ``error`` events."""

    error: ErrorDetail


# HTTP status of each documented error type, for an ``error`` event inside a stream.
ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}
