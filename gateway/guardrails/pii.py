"""The ``pii`` guardrail: personal data in a chat request's messages is masked with stable
placeholders (``<EMAIL_1>``: numbered per entity in order of first appearance, the same value
the same placeholder) or the request is refused (``block``: 400 content_policy_violation
naming the entity types, never the values). With ``restore: true`` the placeholders in the
answer are replaced by the original values again (``gateway.guardrails.restore``).

A request's guardrails: its deployment's list (or the global one), then its key's. The
values live only in the request's ``Vault``, in memory, for as long as the request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.guardrails.config import GuardrailConfig, PIIConfig, parse_guardrails
from gateway.guardrails.detect import Detector
from providers.base import DeploymentConfig
from wire.errors import ContentPolicyViolation

log = logging.getLogger("gateway")

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")


@dataclass(slots=True)
class Vault:
    """One request's placeholders and, for restoring guardrails, the values behind them."""

    placeholders: dict[tuple[str, str], str] = field(default_factory=dict)  # (entity, value)
    counts: dict[str, int] = field(default_factory=dict)
    restore: dict[str, str] = field(default_factory=dict)  # placeholder -> value

    def seed(self, history: list[dict[str, Any]]) -> None:
        """Number on from the placeholders a stored history already holds, so that a new
        value never gets the placeholder an earlier turn gave another."""
        for match in _PLACEHOLDER.finditer(orjson.dumps(history).decode()):
            entity, number = match.group(1), int(match.group(2))
            self.counts[entity] = max(self.counts.get(entity, 0), number)

    def placeholder(self, entity: str, value: str, restore: bool) -> str:
        known = self.placeholders.get((entity, value))
        if known is None:
            number = self.counts[entity] = self.counts.get(entity, 0) + 1
            known = self.placeholders[(entity, value)] = f"<{entity}_{number}>"
        if restore:
            self.restore[known] = value
        return known


class _Guard:
    def __init__(self, config: PIIConfig) -> None:
        self.config = config
        self.detector = Detector(config.entities, config.patterns)

    def mask(self, text: str, vault: Vault) -> str:
        findings = self.detector.find(text)
        if not findings:
            return text
        parts, at = [], 0
        for finding in findings:
            parts.append(text[at:finding.start])
            parts.append(vault.placeholder(finding.entity, text[finding.start:finding.end],
                                           self.config.restore))
            at = finding.end
        parts.append(text[at:])
        return "".join(parts)

    def entities(self, text: str) -> set[str]:
        return {finding.entity for finding in self.detector.find(text)}


class Guardrails:
    """A compiled ``guardrails:`` list."""

    def __init__(self, configs: Iterable[GuardrailConfig]) -> None:
        self._guards = [_Guard(config.pii) for config in configs]

    def __bool__(self) -> bool:
        return bool(self._guards)

    def apply(self, messages: list[dict[str, Any]], vault: Vault) -> list[dict[str, Any]]:
        """``messages`` with every guard applied in turn (a new list; the input is not
        changed); ``block`` raises."""
        for guard in self._guards:
            if guard.config.action == "block":
                found = _found(messages, guard)
                if found:
                    raise ContentPolicyViolation(
                        "The request contains personal data the gateway's guardrails do not "
                        f"let through: {', '.join(sorted(found))}.", param="messages")
            else:
                messages = _walk(messages, lambda text, g=guard: g.mask(text, vault))
        return messages


    def apply_texts(self, texts: list[str], vault: Vault) -> list[str]:
        """Plain texts (embedding inputs) with every guard applied in turn."""
        messages = self.apply([{"role": "user", "content": text} for text in texts], vault)
        return [str(message["content"]) for message in messages]


def _found(messages: list[dict[str, Any]], guard: _Guard) -> set[str]:
    found: set[str] = set()

    def note(text: str) -> str:
        found.update(guard.entities(text))
        return text

    _walk(messages, note)
    return found


def _walk(messages: list[dict[str, Any]], change: Any) -> list[dict[str, Any]]:
    """The messages with ``change(text)`` applied to each text: string contents, text parts,
    tool call arguments."""
    out = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        copy = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            copy["content"] = change(content)
        elif isinstance(content, list):
            copy["content"] = [
                {**part, "text": change(part["text"])}
                if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                for part in content]
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            copy["tool_calls"] = [_call(call, change) for call in calls]
        out.append(copy)
    return out


def _call(call: Any, change: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": change(function["arguments"])}}


class GuardrailBook:
    """Compiled guardrails, made once per distinct list (global, per deployment, per key)."""

    def __init__(self, global_list: Sequence[GuardrailConfig]) -> None:
        self._global = Guardrails(global_list)
        self._compiled: dict[bytes, Guardrails] = {}
        self._by_id: dict[int, tuple[object, Guardrails]] = {}  # (the list kept: ids stay)

    def for_route(self, deployments: Iterable[DeploymentConfig],
                  key_list: Sequence[GuardrailConfig] | None) -> list[Guardrails]:
        """A call's guardrails: the first of the name's deployments that has a list, else
        the global list; then the key's."""
        return self.for_call(next((d.guardrails for d in deployments
                                   if d.guardrails is not None), None), key_list)

    def for_call(self, deployment_list: Sequence[dict[str, Any]] | None,
                 key_list: Sequence[GuardrailConfig] | None) -> list[Guardrails]:
        chosen = [self._global if deployment_list is None else self._compile(deployment_list)]
        if key_list:
            chosen.append(self._compile(key_list))
        return [g for g in chosen if g]

    def _compile(self, entries: Sequence[Any]) -> Guardrails:
        known = self._by_id.get(id(entries))
        if known is not None and known[0] is entries:
            return known[1]
        configs = parse_guardrails(entries)
        fingerprint = orjson.dumps([c.model_dump() for c in configs])
        compiled = self._compiled.get(fingerprint)
        if compiled is None:
            if len(self._compiled) > 10_000:
                self._compiled.clear()
                self._by_id.clear()
            compiled = self._compiled[fingerprint] = Guardrails(configs)
        if len(self._by_id) > 10_000:
            self._by_id.clear()
        self._by_id[id(entries)] = (entries, compiled)
        return compiled
