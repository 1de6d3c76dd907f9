"""Extraction's pure parts: the default prompt and example schema (files in config/), the
document cut into chunks that fit the model's context, the messages asked, the answer read
as JSON and checked against the schema, the chunks' answers merged."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from wire.errors import InvalidRequest

CONFIG = Path(__file__).resolve().parents[2] / "config"
TEXT_TYPES = (".txt", ".md", ".csv", ".json", ".html", ".xml")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def default_prompt() -> str:
    return (CONFIG / "extract_prompt.txt").read_text(encoding="utf-8").strip()


def example_schema() -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads((CONFIG / "extract_schema.json").read_bytes())
    return schema


def parse_schema(text: str, param: str = "schema") -> dict[str, Any]:
    """A JSON Schema from a form field: a 400 naming the field when it is not one."""
    try:
        schema = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Invalid value for '{param}': not JSON ({exc}).",
                             param=param) from None
    if not isinstance(schema, dict):
        raise InvalidRequest(f"Invalid value for '{param}': a JSON Schema is an object.",
                             param=param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"Invalid value for '{param}': not a valid JSON Schema: "
                             f"{exc.message}.", param=param) from None
    return schema


def is_text(filename: str, content_type: str) -> bool:
    return content_type.startswith("text/") or filename.lower().endswith(TEXT_TYPES)


def chunks(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """``text`` in pieces of at most ``budget`` tokens (``count``), cut between lines (a line
    too long on its own is cut between words)."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for line in _lines(text, budget, count):
        cost = count(line) + 1
        if current and used + cost > budget:
            pieces.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        pieces.append("\n".join(current))
    return pieces or [""]


def _lines(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if count(line) < budget:
            out.append(line)
            continue
        words, part = line.split(), ""
        for word in words:
            if part and count(part + " " + word) >= budget:
                out.append(part)
                part = word
            else:
                part = f"{part} {word}".strip()
        if part:
            out.append(part)
    return out


def messages(prompt: str, document: str, part: int, parts: int,
             schema: dict[str, Any] | None) -> list[dict[str, str]]:
    where = f" (part {part} of {parts})" if parts > 1 else ""
    system = "You read documents and answer only from what they say."
    if schema is not None:
        system += (" Answer with one JSON object that validates against this JSON Schema, "
                   "and nothing else:\n" + orjson.dumps(schema).decode())
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"{prompt}\n\nDocument{where}:\n{document}"}]


def retry_message(answer: str, errors: list[str]) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": answer},
            {"role": "user", "content": "That answer did not validate against the schema:\n- "
             + "\n- ".join(errors) + "\nAnswer again with one corrected JSON object."}]


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema",
            "json_schema": {"name": "extraction", "schema": schema, "strict": False}}


def check(answer: str, schema: dict[str, Any]) -> tuple[Any, list[str]]:
    """The answer as JSON and the schema's complaints about it (none: valid)."""
    text = answer.strip()
    if fenced := _FENCE.match(text):
        text = fenced.group(1)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, ["the answer is not JSON"]
    errors = [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
              for e in Draft202012Validator(schema).iter_errors(data)]
    return data, errors[:20]


def partial(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema one chunk of a longer document answers to: nothing required (the rest of
    the document may hold it); the merged answer is checked against the whole schema."""
    return {k: v for k, v in schema.items() if k != "required"}


def merge(parts: list[Any]) -> Any:
    """The answers of several chunks as one: objects merged key by key (the first value that
    is not empty wins; lists are joined without duplicates)."""
    if not all(isinstance(p, dict) for p in parts):
        return parts[0]
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            old = merged.get(key)
            if isinstance(old, list) and isinstance(value, list):
                merged[key] = old + [v for v in value if v not in old]
            elif isinstance(old, dict) and isinstance(value, dict):
                merged[key] = merge([old, value])
            elif old in (None, "", [], {}):
                merged[key] = value
    return merged
