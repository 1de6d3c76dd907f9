"""The shapes of the gateway's own answers (beyond OpenAI's API): health, virtual keys, usage,
jobs, prompt templates, conversations and the tools' defaults.

Like wire/answers.py these are the public schema the OpenAPI document is generated from, and
that the tests check real answers against; ``JobAccepted`` is also what the job routes send.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Health(_Open):
    status: Literal["ok"]


class StoreCheck(_Open):
    status: Literal["ok", "error"]
    backend: str
    error: str | None = None


class ReadyChecks(_Open):
    store: StoreCheck


class Ready(_Open):
    """``/health/ready``: 200 with status ok when the store answers, else 503 unavailable."""

    status: Literal["ok", "unavailable"]
    checks: ReadyChecks


# -- virtual keys -------------------------------------------------------------------------------


class KeyFields(_Open):
    """A virtual key's record as the API shows it, less its guardrails (plain JSON here; the
    gateway's ``VirtualKey`` is built on these fields with the guardrails typed)."""

    id: str
    name: str | None
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    created: int
    expires_at: int | None
    rpd: int | None = None
    max_parallel: int | None = None
    max_budget_usd: float | None = None
    budget_period: str = "total"


class KeyInfo(KeyFields):
    guardrails: list[dict[str, Any]] | None = None


class KeyCreated(KeyInfo):
    key: str = Field(description="The secret, shown this once.")


class KeyList(_Open):
    object: Literal["list"]
    data: list[KeyInfo]


class KeyDeleted(_Open):
    id: str
    deleted: bool


# -- usage --------------------------------------------------------------------------------------


class UsageRow(_Open):
    date: str
    key_id: str | None
    user: str | None
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class UsageTotals(_Open):
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class UsageReport(_Open):
    object: Literal["list"]
    data: list[UsageRow]
    totals: UsageTotals
    from_: str = Field(alias="from")
    to: str


# -- jobs ---------------------------------------------------------------------------------------


class JobAccepted(_Open):
    """202 from a tool that answers with a job: poll ``/v1/jobs/{id}`` or follow its events."""

    id: str
    object: Literal["job"] = "job"
    status: JobStatus


class Job(_Open):
    id: str
    object: Literal["job"]
    tool: str
    status: JobStatus
    progress: float
    stage: str
    created_at: int
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class JobList(_Open):
    object: Literal["list"]
    data: list[Job]
    has_more: bool


# -- prompts and conversations ------------------------------------------------------------------


class Prompt(_Open):
    name: str
    description: str | None = None
    system: str | None = None
    template: str
    version: int


class PromptList(_Open):
    object: Literal["list"]
    data: list[Prompt]


class PromptDeleted(_Open):
    name: str
    deleted: bool


class Conversation(_Open):
    id: str
    object: Literal["conversation"]
    created: int
    messages: list[dict[str, Any]]


class ConversationList(_Open):
    object: Literal["list"]
    data: list[dict[str, Any]]
    has_more: bool


class ConversationDeleted(_Open):
    id: str
    object: Literal["conversation.deleted"]
    deleted: bool


class ExtractDefaults(_Open):
    prompt: str
    schema_: dict[str, Any] = Field(alias="schema")
