"""OpenAI's Responses API request body (``POST /v1/responses``), validated for shape.

Only what the gateway reads is typed; the rest of the body (``include``, ``reasoning``, ...)
is allowed: ignored when the request is translated (as an upstream that does not know it
would), passed on to an upstream that speaks the Responses API natively.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from wire.openai import APIRequest


class ResponsesRequest(APIRequest):
    input: str | list[dict[str, Any]] = Field(default=[])
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    text: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool = True
    stream: bool = False
    previous_response_id: str | None = None
    truncation: Literal["auto", "disabled"] | None = None  # None: the gateway's default
