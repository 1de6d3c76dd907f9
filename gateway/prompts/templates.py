"""Prompt templates: ``{{var}}`` placeholders in a ``system`` and a ``template`` text,
versioned, in the shared store; built-in ones from ``config/prompts/*.yaml``.

Store layout: ``gw:prompts`` (hash: name -> the current version's record),
``gw:prompts:v:{name}`` (hash: version -> record) and ``gw:prompts:seq:{name}`` (the last
version number given out, an atomic counter, so two replicas never hand out one number twice).
A built-in template is version 1 of its name; a stored one of the same name (made by PUT)
overrides it, its versions counting on from the built-in's, and DELETE brings it back.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field

from gateway.store import Store
from wire.errors import AlreadyExists, InvalidRequest, NotFound

log = logging.getLogger("gateway")

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "config" / "prompts"
CURRENT = "gw:prompts"


class PromptCreate(BaseModel):
    """The body of ``POST /v1/prompts``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)
    system: str | None = Field(default=None, max_length=200_000)
    template: str = Field(max_length=200_000)


class PromptUpdate(BaseModel):
    """The body of ``PUT /v1/prompts/{name}``: what it leaves out stays as it was."""

    model_config = ConfigDict(extra="forbid", strict=True)
    description: str | None = Field(default=None, max_length=2000)
    system: str | None = Field(default=None, max_length=200_000)
    template: str | None = Field(default=None, max_length=200_000)


def variables_of(prompt: dict[str, Any]) -> set[str]:
    return {match.group(1) for text in (prompt.get("system"), prompt["template"]) if text
            for match in PLACEHOLDER.finditer(text)}


def render(prompt: dict[str, Any], variables: Any) -> tuple[str | None, str]:
    """The prompt's (system, template) with every ``{{var}}`` filled in; 400 naming a
    variable it needs and was not given, or one given that it does not use."""
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise InvalidRequest("'variables' must be an object of names to values.",
                             param="variables")
    needed = variables_of(prompt)
    missing = sorted(needed - variables.keys())
    if missing:
        raise InvalidRequest(f"The prompt '{prompt['name']}' needs the variable(s) "
                             f"{', '.join(missing)}, which the request does not give.",
                             param="variables")
    unused = sorted(variables.keys() - needed)
    if unused:
        raise InvalidRequest(f"The prompt '{prompt['name']}' does not use the variable(s) "
                             f"{', '.join(unused)}.", param="variables")
    values: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, bool | int | float | str):
            values[name] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            raise InvalidRequest(f"The variable '{name}' must be a string or a number.",
                                 param=f"variables.{name}")

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    system = prompt.get("system")
    return (fill(system) if system else None), fill(prompt["template"])


def load_builtins(folder: Path = BUILTIN_DIR) -> dict[str, dict[str, Any]]:
    """The built-in templates: one YAML file each (name, description, system, template)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        spec = PromptCreate.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        found[spec.name] = {**spec.model_dump(), "version": 1, "created": 0, "builtin": True}
    return found


class PromptStore:
    def __init__(self, store: Store, builtins: dict[str, dict[str, Any]] | None = None
                 ) -> None:
        self._store = store
        self._builtins = load_builtins() if builtins is None else builtins

    async def all(self) -> list[dict[str, Any]]:
        stored = {name: orjson.loads(raw)
                  for name, raw in (await self._store.hgetall(CURRENT)).items()}
        merged = {**self._builtins, **stored}
        return [merged[name] for name in sorted(merged)]

    async def get(self, name: str, version: int | None = None) -> dict[str, Any]:
        """The current version, or ``version``; 404 ``not_found`` when there is none."""
        builtin = self._builtins.get(name)
        if version is not None:
            raw = await self._store.hget(f"gw:prompts:v:{name}", str(version))
            if raw is not None:
                return dict(orjson.loads(raw))
            if builtin is not None and builtin["version"] == version:
                return builtin
            if builtin is not None or await self._store.hget(CURRENT, name) is not None:
                raise NotFound(f"The prompt '{name}' has no version {version}.",
                               param="version")
        else:
            raw = await self._store.hget(CURRENT, name)
            if raw is not None:
                return dict(orjson.loads(raw))
            if builtin is not None:
                return builtin
        raise NotFound(f"No prompt named '{name}'.", param="prompt")

    async def create(self, spec: PromptCreate) -> dict[str, Any]:
        if spec.name in self._builtins or await self._store.hget(CURRENT, spec.name):
            raise AlreadyExists(f"A prompt named '{spec.name}' exists; PUT a new version.",
                                param="name")
        version = await self._store.incr(f"gw:prompts:seq:{spec.name}")
        if version != 1:  # another replica made it meanwhile
            raise AlreadyExists(f"A prompt named '{spec.name}' exists; PUT a new version.",
                                param="name")
        return await self._save({**spec.model_dump(), "version": 1})

    async def update(self, name: str, spec: PromptUpdate) -> dict[str, Any]:
        current = await self.get(name)
        base = self._builtins[name]["version"] if name in self._builtins else 0
        version = base + await self._store.incr(f"gw:prompts:seq:{name}")
        changes = spec.model_dump(exclude_unset=True)
        if changes.get("template", "") is None:
            raise InvalidRequest("'template' may not be null.", param="template")
        record = {"name": name, "description": current.get("description"),
                  "system": current.get("system"), "template": current["template"],
                  **changes, "version": version}
        return await self._save(record)

    async def _save(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "created": int(time.time()), "builtin": False}
        raw = orjson.dumps(record)
        await self._store.hset(f"gw:prompts:v:{record['name']}", str(record["version"]), raw)
        await self._store.hset(CURRENT, record["name"], raw)
        return record

    async def delete(self, name: str) -> None:
        if not await self._store.hdel(CURRENT, name):
            if name in self._builtins:
                raise InvalidRequest(f"The prompt '{name}' is built in and cannot be deleted.",
                                     param="name")
            raise NotFound(f"No prompt named '{name}'.", param="name")
        await self._store.delete(f"gw:prompts:v:{name}")
        await self._store.delete(f"gw:prompts:seq:{name}")


PROMPT_FIELDS = frozenset({"prompt", "variables", "prompt_version"})


async def render_prompt(prompts: PromptStore, raw: dict[str, Any]
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A chat body's ``prompt`` (``prompt_version``, ``variables``) rendered: the messages
    that go before the request's own (the system) and after them (the template, as a user
    message); none without a prompt."""
    name = raw.get("prompt")
    if name is None:
        if raw.get("variables") is not None or raw.get("prompt_version") is not None:
            raise InvalidRequest("'variables' and 'prompt_version' go with 'prompt'.",
                                 param="prompt")
        return [], []
    if not isinstance(name, str):
        raise InvalidRequest("'prompt' must be the name of a prompt.", param="prompt")
    version = raw.get("prompt_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)
                                or version < 1):
        raise InvalidRequest("'prompt_version' must be a positive integer.",
                             param="prompt_version")
    system, template = render(await prompts.get(name, version), raw.get("variables"))
    head = [{"role": "system", "content": system}] if system is not None else []
    return head, [{"role": "user", "content": template}]
