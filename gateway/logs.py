"""Log output: plain text (the default) or one JSON object per line (``--log-format json``),
the one line per answered request that the JSON format adds (but for the successful answers
on ``--log-skip-paths``: health checks, Prometheus scrapes), and one line per ended job.

The request line is built only when the JSON format is on: the middleware holds a
``RequestLog`` then, and ``None`` otherwise, so the text format costs the request path
nothing. It reads what the request path already keeps in the request's state (its id, the
model, the cache result, the time to first token) and in the model call (key id, end user,
the deployment that answered, tokens, cost). It never holds the key itself, a prompt, an
answer or a masked value.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

request_log = logging.getLogger("gateway.request")
job_log = logging.getLogger("gateway.job")

# The paths whose successful answers the request line (and uvicorn's access log) leave out:
# health checks and Prometheus scrapes, every few seconds, drown the lines that matter.
DEFAULT_SKIP_PATHS = ("/health", "/health/ready", "/metrics")


def skip_paths(text: str | None) -> frozenset[str]:
    """``--log-skip-paths`` (comma-separated; "" for none) as a set; None: the default."""
    if text is None:
        return frozenset(DEFAULT_SKIP_PATHS)
    return frozenset(path.strip() for path in text.split(",") if path.strip())


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the record's ``fields`` (``extra={"fields": {...}}``) and ``exception``
    (the traceback, as text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def setup(level: str, log_format: str) -> None:
    """The root logger's handler on stderr, in ``log_format`` (a no-op when the root logger
    already has one, as ``logging.basicConfig``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])


class SkipPaths(logging.Filter):
    """uvicorn's access log without the successful answers on ``paths`` (its records' args
    are client, method, path with query, HTTP version, status)."""

    def __init__(self, paths: frozenset[str]) -> None:
        super().__init__()
        self.paths = paths

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not self.paths or not isinstance(args, tuple) or len(args) != 5:
            return True
        path, status = str(args[2]).partition("?")[0], args[4]
        return not (path in self.paths and isinstance(status, int) and status < 400)


def uvicorn_config(log_format: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """uvicorn's own ``log_config``: its default for text; for JSON, its loggers (startup,
    errors and, with ``--access-log``, the access log) write JSON lines too. Either way the
    access log leaves out the successful answers on the ``skip`` paths."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any]
    if log_format != "json":
        config = copy.deepcopy(LOGGING_CONFIG)
    else:
        handler = {"formatter": "json", "class": "logging.StreamHandler",
                   "stream": "ext://sys.stderr"}
        config = {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonFormatter}},
            "handlers": {"json": handler},
            "loggers": {
                "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
                "uvicorn.error": {"level": "INFO"},
                "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
            },
        }
    config["filters"] = {"skip_paths": {"()": SkipPaths, "paths": skip}}
    config["loggers"]["uvicorn.access"]["filters"] = ["skip_paths"]
    return config


class _Usage(Protocol):
    prompt_tokens: int
    completion_tokens: int


class _Deployment(Protocol):
    name: str
    provider: str
    model: str | None


class _Meter(Protocol):
    @property
    def config(self) -> _Deployment | None: ...


class _Caller(Protocol):
    @property
    def key_id(self) -> str | None: ...


class ModelCallView(Protocol):
    """What the request line reads of a model call (gateway/routes/common.py ModelCall)."""

    @property
    def caller(self) -> _Caller: ...
    @property
    def user(self) -> str | None: ...
    @property
    def meter(self) -> _Meter: ...
    @property
    def usage(self) -> _Usage | None: ...
    @property
    def cost_usd(self) -> float: ...


class RequestLog:
    """Writes the line of each answered request to the ``gateway.request`` logger (info),
    but for the successful answers on the ``skip`` paths (``--log-skip-paths``)."""

    def __init__(self, logger: logging.Logger = request_log,
                 skip: frozenset[str] = frozenset(DEFAULT_SKIP_PATHS)) -> None:
        self.logger = logger
        self.skip = skip

    def emit(self, method: str, endpoint: str, status: int, seconds: float,
             state: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO) or (
                status < 400 and endpoint in self.skip):
            return
        fields = request_fields(method, endpoint, status, seconds, state)
        self.logger.info("%s %s %d", method, endpoint, status, extra={"fields": fields})


def request_fields(method: str, endpoint: str, status: int, seconds: float,
                   state: dict[str, Any]) -> dict[str, Any]:
    """The request line's fields (absent ones are null)."""
    ttft = state.get("ttft")
    fields: dict[str, Any] = {
        "request_id": state.get("request_id"), "method": method, "endpoint": endpoint,
        "status": status, "latency_ms": round(seconds * 1000, 3),
        "ttft_ms": round(ttft * 1000, 3) if ttft is not None else None,
        "model": state.get("model"), "cache": state.get("cache"), "error": state.get("error"),
        "key_id": None, "user": None, "deployment": None, "provider": None,
        "prompt_tokens": None, "completion_tokens": None, "cost_usd": None,
    }
    call: ModelCallView | None = state.get("call")
    if call is not None:
        fields["key_id"], fields["user"] = call.caller.key_id, call.user
        deployment = call.meter.config
        if deployment is not None:
            fields["deployment"] = deployment.model or deployment.name
            fields["provider"] = deployment.provider
        usage = call.usage
        if usage is not None:
            fields["prompt_tokens"] = usage.prompt_tokens
            fields["completion_tokens"] = usage.completion_tokens
            fields["cost_usd"] = round(call.cost_usd, 10)
    return fields


class _Job(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> dict[str, Any] | None: ...


class _Tokens(Protocol):
    prompt: int
    completion: int


class JobLog:
    """Writes one line per ended job to the ``gateway.job`` logger (info): its id, kind,
    status, seconds run, key id, tokens and error code; never its input, arguments or
    result."""

    def __init__(self, logger: logging.Logger = job_log) -> None:
        self.logger = logger

    def emit(self, job: _Job, seconds: float, tokens: _Tokens) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields = {"job_id": job.id, "kind": job.tool, "status": job.status,
                  "duration_ms": round(seconds * 1000, 3), "key_id": job.owner,
                  "prompt_tokens": tokens.prompt, "completion_tokens": tokens.completion,
                  "error": (job.error or {}).get("code")}
        self.logger.info("job %s %s %s", job.id, job.tool, job.status,
                         extra={"fields": fields})
