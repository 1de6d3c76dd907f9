"""The ``guardrails:`` lists of models.yaml (global, per deployment) and of virtual keys."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

Entity = Literal["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "API_KEY", "KR_RRN",
                 "US_SSN"]
ENTITIES: tuple[Entity, ...] = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "API_KEY",
                                "KR_RRN", "US_SSN")
_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,39}")


class PIIConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    action: Literal["mask", "block"] = "mask"
    restore: StrictBool = False  # mask only: the original values go back into the answer
    entities: tuple[Entity, ...] = ENTITIES
    patterns: dict[str, str] = Field(default_factory=dict)  # custom entity name -> regex

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"custom entity name '{name}': use A-Z, 0-9 and _ "
                                 "(starting with a letter)")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns.{name}: not a valid regex: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"patterns.{name}: the regex matches the empty string")
        return patterns

    @model_validator(mode="after")
    def _restore_needs_mask(self) -> PIIConfig:
        if self.restore and self.action != "mask":
            raise ValueError("restore: true goes with action: mask only")
        return self


class GuardrailConfig(BaseModel):
    """One entry of a ``guardrails:`` list; ``pii`` is the one kind there is."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pii: PIIConfig


def parse_guardrails(entries: Any) -> tuple[GuardrailConfig, ...]:
    """Validate a list of guardrail entries (pydantic's ValidationError when wrong)."""
    from pydantic import TypeAdapter

    return TypeAdapter(tuple[GuardrailConfig, ...]).validate_python(entries)
