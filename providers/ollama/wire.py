"""Typed models of Ollama's native API wire format (``/api/chat``, ``/api/embed``).

Requests are TypedDicts (checked by mypy, sent as they are); answers are pydantic models
(validated: a malformed answer is garbage). Streams are JSON lines of ``ChatResponse``, the
last with ``done: true`` and the token counts.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict

# -- request ------------------------------------------------------------------------------


class FunctionParam(TypedDict):
    name: str
    arguments: dict[str, Any]


class ToolCallParam(TypedDict):
    function: FunctionParam


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    images: NotRequired[list[str]]  # base64, no data: prefix
    tool_calls: NotRequired[list[ToolCallParam]]
    tool_name: NotRequired[str]


class ChatRequestBody(TypedDict):
    model: str
    messages: list[ChatMessage]
    stream: bool
    tools: NotRequired[list[dict[str, Any]]]  # OpenAI's function tool shape
    format: NotRequired[str | dict[str, Any]]  # "json" or a JSON schema
    options: NotRequired[dict[str, Any]]
    keep_alive: NotRequired[str]


class EmbedRequestBody(TypedDict):
    model: str
    input: str | list[str]
    dimensions: NotRequired[int]


# -- answers ------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Function(_Wire):
    name: str
    arguments: dict[str, Any]


class ToolCall(_Wire):
    function: Function
    id: str | None = None


class Message(_Wire):
    role: str = "assistant"
    content: str = ""
    tool_calls: list[ToolCall] | None = None


class ChatResponse(_Wire):
    model: str
    message: Message
    done: bool
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None


class EmbedResponse(_Wire):
    embeddings: list[list[float]]
    prompt_eval_count: int | None = None


class ErrorBody(_Wire):
    error: str
