"""models.yaml: typed, validated once at start-up.

``load(path)`` reads the YAML, fills ``${VAR}`` and ``${VAR:-default}`` from the environment,
and validates the result. Any problem is one ``ConfigError`` whose message is one line naming
the file, the key path and the problem.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.guardrails.config import GuardrailConfig, parse_guardrails
from providers import PROVIDERS, config_classes
from providers.base import DeploymentConfig, EmbeddingProvider
from providers.local import embedded

log = logging.getLogger("gateway")


class ConfigError(Exception):
    """A config problem, already worded for a human in one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_ORIGIN = re.compile(r"https?://[^/\s:]+(:\d{1,5})?")


class ServerConfig(_Section):
    max_body_mb: float = Field(default=32, gt=0)
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    # Browser origins allowed to call /v1/* (CORS): "*" or "https://app.example.com[:port]".
    cors_allow_origins: tuple[str, ...] = ()

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin: give '*' or "
                                 "scheme://host[:port], without a path")
        return origins


class CacheConfig(_Section):
    ttl_s: float = Field(default=600, gt=0)
    mode: Literal["deterministic", "all", "semantic"] = "deterministic"
    # semantic mode: the configured model whose /v1/embeddings embeds each request's messages,
    # the cosine similarity from which a stored answer counts as a hit, and how many answers
    # are kept per model and parameter set (the oldest go first)
    embedding_model: str | None = None
    similarity: float = Field(default=0.95, gt=0, le=1)
    max_entries: int = Field(default=256, ge=1, le=10_000)


class ResponsesConfig(_Section):
    ttl_s: float = Field(default=30 * 24 * 3600, gt=0)  # how long stored responses are kept
    # ``truncation`` when a request does not say: "auto" (the oldest previous_response_id
    # turns dropped, as conversations are: issue 16) or "disabled" (OpenAI's default: input
    # over the context window is a 400)
    truncation: Literal["auto", "disabled"] = "auto"


class LimitsConfig(_Section):
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    fail_open: bool = False


class JobsConfig(_Section):
    """Background jobs (/v1/tools/transcribe, /v1/jobs): workers per replica, the queue's
    length, how long results are kept; heartbeat, sweep and crash retries (saq, with Redis)."""

    concurrency: int = Field(default=2, ge=1, le=256)
    max_queued: int = Field(default=100, ge=1)
    result_ttl_s: int = Field(default=86400, ge=1)
    heartbeat_s: int = Field(default=30, ge=1)
    sweep_s: int = Field(default=10, ge=1)
    crash_retries: int = Field(default=2, ge=0, le=10)
    timeout_s: dict[str, int] = Field(default_factory=dict)  # per tool: {transcribe: 7200}
    # extraction: the most document tokens asked at once (longer documents: chunk by chunk)
    chunk_tokens: int = Field(default=6000, ge=100)
    # /v1/tools/summarize without "models": these (default: the first chat model)
    summarize_models: list[str] = Field(default_factory=list)
    # an uploaded input larger than this goes to object storage (storage:), not the store
    inline_max_mb: float = Field(default=4, ge=0)
    # false: this replica serves the API and runs no jobs (`gateway worker` processes do)
    work: bool = True


class StorageConfig(_Section):
    """Where large job inputs go: a local directory (one machine, or a shared disk) or any
    S3-compatible store (MinIO, AWS S3, GCS's S3 API)."""

    backend: Literal["local", "s3"] = "local"
    path: str = "./gateway-data"  # local
    bucket: str | None = None  # s3
    endpoint: str | None = None  # s3: e.g. http://minio:9000 (default: AWS)
    region: str = "us-east-1"
    access_key_id: str | None = None  # s3: default: the usual AWS_* environment
    secret_access_key: str | None = None
    prefix: str = "gateway/jobs"

    @model_validator(mode="after")
    def _bucket(self) -> StorageConfig:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("storage.bucket: missing (backend s3 needs a bucket)")
        return self


if TYPE_CHECKING:
    Deployment = DeploymentConfig
else:  # one tagged union of every provider's config class, built from the providers table
    Deployment = Annotated[Union[config_classes()], Field(discriminator="provider")]  # noqa: UP007


class GatewayConfig(_Section):
    server: ServerConfig = ServerConfig()
    cache: CacheConfig | None = None
    limits: LimitsConfig = LimitsConfig()
    guardrails: tuple[GuardrailConfig, ...] = ()
    jobs: JobsConfig = JobsConfig()
    storage: StorageConfig = StorageConfig()
    responses: ResponsesConfig = ResponsesConfig()
    models: list[Deployment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> GatewayConfig:
        names = {d.name for d in self.deployments}
        for i, deployment in enumerate(self.deployments):
            for j, fallback in enumerate(deployment.fallbacks):
                if fallback not in names:
                    raise _KeyedError(f"models[{i}].fallbacks[{j}]",
                                      f"no model named '{fallback}' is configured")
        if self.cache is not None and self.cache.mode == "semantic":
            _check_embedding_model(self.cache.embedding_model, self.deployments)
        for i, deployment in enumerate(self.deployments):
            _check_guardrails(deployment.guardrails, f"models[{i}].guardrails")
        _check_responses_agree(self.deployments)
        return self

    @property
    def deployments(self) -> list[DeploymentConfig]:
        return self.models

    def warnings(self) -> list[str]:
        """What does not stop the gateway but will fail requests, one line each, naming the
        entry: an ``api_key`` that resolved to an empty string (an unset ``${VAR:-}``)."""
        return [f"models[{i}] ({d.name}): api_key is empty (an unset ${{VAR:-}}?); its "
                "upstream will refuse requests sent without a key"
                for i, d in enumerate(self.deployments) if getattr(d, "api_key", None) == ""]


class _KeyedError(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def _check_embedding_model(name: str | None, deployments: list[DeploymentConfig]) -> None:
    """``cache.mode: semantic`` needs a configured model that answers /v1/embeddings."""
    path = "cache.embedding_model"
    if name is None:
        raise _KeyedError(path, "missing (mode: semantic embeds requests with this model)")
    matching = [d for d in deployments if d.name == name] or [
        d for d in deployments if d.is_wildcard and len(name) >= len(d.name)
        and name.startswith(d.name.partition("*")[0]) and name.endswith(d.name.partition("*")[2])]
    if not matching:
        raise _KeyedError(path, f"no model named '{name}' is configured")
    if not issubclass(PROVIDERS[matching[0].provider], EmbeddingProvider):
        raise _KeyedError(path, f"the model '{name}' (provider {matching[0].provider}) does "
                                "not support embeddings")


def _check_responses_agree(deployments: list[DeploymentConfig]) -> None:
    """The deployments of one name answer /v1/responses one way: all ``responses: native``
    or none (a provider without the setting translates). Load-balanced deployments that
    differ would answer one request two ways (built-in tools taken or refused, the cache's
    entries apart); a fallback, another name, may differ."""
    first: dict[str, int] = {}
    for i, deployment in enumerate(deployments):
        j = first.setdefault(deployment.name, i)
        if _responses_way(deployment) != _responses_way(deployments[j]):
            raise _KeyedError(
                f"models[{i}]", f"the deployments named '{deployment.name}' must agree on "
                f"'responses' (all 'native' or all 'translate'): {_way_of(j, deployments[j])}, "
                f"{_way_of(i, deployment)}")


def _responses_way(deployment: DeploymentConfig) -> str:
    return str(getattr(deployment, "responses", "translate"))


def _way_of(i: int, deployment: DeploymentConfig) -> str:
    way = _responses_way(deployment)
    unset = "" if "responses" in type(deployment).model_fields else ", it has no 'responses'"
    return f"models[{i}] ({deployment.provider}{unset}) is '{way}'"


def _check_guardrails(entries: Any, path: str) -> None:
    """A deployment's ``guardrails:`` (kept as plain data by the provider layer) must be
    valid guardrail entries."""
    if entries is None:
        return
    try:
        parse_guardrails(entries)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = _loc_to_path(tuple(error["loc"]), entries)
        message = str(error["msg"]).removeprefix("Value error, ")
        problem = "unknown key" if error["type"] == "extra_forbidden" else message
        raise _KeyedError(path + (where if where.startswith("[") else "." + where), problem
                          ) from None


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise _KeyedError(path, f"environment variable {name} is not set and has no default")

    return _VAR.sub(substitute, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _loc_to_path(loc: tuple[int | str, ...], data: Any) -> str:
    """pydantic's error location as a key path, without the union's tag (``models[2].api_base``)."""
    path, node = "", data
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(node, dict) and part not in node and node.get("provider") == part:
            continue  # the discriminated union's tag, not a key of the file
        else:
            path = _join(path, part)
            node = node.get(part) if isinstance(node, dict) else None
    return path


def _describe(error: Any, data: Any) -> str:
    path = _loc_to_path(tuple(error["loc"]), data)
    if error["type"] == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "")
        known = ", ".join(PROVIDERS)
        return f"{_join(path, 'provider')}: unknown provider '{tag}' (known: {known})"
    if error["type"] == "union_tag_not_found":
        return f"{_join(path, 'provider')}: missing (every model needs a provider)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    if error["type"] == "missing":
        return f"{path}: missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def validate(data: Any, source: str = "models.yaml") -> GatewayConfig:
    """Validate an already-parsed config tree."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (models:, ...)")
    try:
        return GatewayConfig.model_validate(interpolate(data, os.environ))
    except _KeyedError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_describe(errors[0], data)}{more}") from None


def load(path: str | Path) -> GatewayConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{source}{where}: bad YAML: {problem}") from None
    return validate(data, source)


def find(path: str | None) -> Path | None:
    """The config file: ``path`` (``--config`` or ``$GATEWAY_CONFIG``) when given, else
    ``./models.yaml`` when it exists; None when there is none (the embedded model)."""
    if path:
        return Path(path)
    default = Path("models.yaml")
    return default if default.exists() else None


def load_or_embedded(path: Path | None) -> GatewayConfig:
    """``load(path)``, or with no config file at all the embedded local model."""
    if path is not None:
        return load(path)
    try:
        tree = embedded.config_tree()
    except embedded.EmbeddedModelMissing as exc:
        raise ConfigError(f"no models.yaml here (and no --config or GATEWAY_CONFIG), and {exc}"
                          ) from None
    log.info("no models.yaml: serving the embedded model '%s' from %s", embedded.NAME,
             tree["models"][0]["path"])
    return validate(tree, "embedded model")
