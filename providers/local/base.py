"""What the local backends (``llama-cpp``, ``onnx``) share, as pure functions and small types.

A request becomes chat messages for the model's own chat template and ``Sampling`` settings;
unsupported fields are a 400 naming the field. A backend turns generated token ids into text
with ``text_events`` (stop sequences, ``max_tokens``, the stop flag of a vanished client), and
``Answer`` writes OpenAI's ``chat.completion`` and ``chat.completion.chunk`` JSON.
"""

from __future__ import annotations

import importlib.util
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field, PositiveInt, field_validator

from providers.base import DeploymentConfig
from wire.errors import ContextLengthExceeded, InvalidRequest
from wire.openai import ChatRequest, Usage

# Sampling defaults when a request gives none: llama-cpp-python's own OpenAI server's.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
# The project is installed from a checkout; it is not on PyPI (an unrelated "ai-gateway" is).
INSTALL_LOCAL = "pip install -e '.[local]'"
FROM_CHECKOUT = "(in the gateway's checkout)"
INSTALL_HINT = f"{INSTALL_LOCAL} {FROM_CHECKOUT}"


class LocalConfig(DeploymentConfig):
    """Keys every local model deployment has."""

    path: Path
    n_ctx: PositiveInt | None = None  # context window (tokens); None: the backend's default
    n_threads: PositiveInt | None = None  # CPU threads per slot; None: the backend's choice
    parallel: PositiveInt = 1  # generations at once (slots); more requests wait in the queue
    preload: bool = False  # load at start rather than on the first request
    max_queue: int = Field(default=16, ge=0)  # requests that may wait for the model; more: 429
    queue_timeout_s: float = Field(default=120.0, gt=0)  # longest wait for the model; then 429

    @field_validator("path", mode="before")
    @classmethod
    def _embedded(cls, value: Any) -> Any:
        """``embedded:smollm2``: the GGUF file an installed package ships (local/embedded.py)."""
        if isinstance(value, str) and value.startswith("embedded:"):
            from providers.local import embedded  # (embedded.py imports this module)

            return embedded.resolve(value)
        return value

    @field_validator("path")
    @classmethod
    def _path_exists(cls, path: Path) -> Path:
        if not path.exists():
            raise ValueError(f"no such file or folder: {path}")
        return path


def require_runtime(module: str, provider: str) -> None:
    """A config error (one line) when a backend's runtime is not installed. Nothing is imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ValueError(f"the {provider} provider needs the '{module}' package: {INSTALL_HINT}")


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sampling:
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...]
    json_schema: dict[str, Any] | None = None  # response_format json_schema
    json_object: bool = False  # response_format json_object
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seeded: bool = False  # the request gave the seed (else ``seed`` is a random one)


def sampling_from(request: ChatRequest) -> Sampling:
    """The generation settings of a chat request; a 400 naming any field a local model cannot
    honour."""
    raw = request.raw
    if request.n is not None and request.n > 1:
        raise InvalidRequest("Local models generate one choice: 'n' must be 1.", param="n")
    if request.tools and request.tool_choice != "none":
        raise InvalidRequest("Local models do not support tools.", param="tools")
    for field in ("logprobs", "logit_bias"):
        if raw.get(field):
            raise InvalidRequest(f"Local models do not support '{field}'.", param=field)
    stop = request.stop if isinstance(request.stop, list) else [request.stop or ""]
    schema, json_object = None, False
    if request.response_format is not None and request.response_format.type != "text":
        json_object = request.response_format.type == "json_object"
        if not json_object:
            spec = request.response_format.json_schema or {}
            schema = spec.get("schema")
            if not isinstance(schema, dict):
                raise InvalidRequest("response_format.json_schema.schema must be a JSON schema "
                                     "object.", param="response_format")
    return Sampling(
        max_tokens=request.max_completion_tokens or request.max_tokens,
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
        top_p=DEFAULT_TOP_P if request.top_p is None else request.top_p,
        seed=secrets.randbits(31) if request.seed is None else request.seed & 0x7FFFFFFF,
        stop=tuple(s for s in stop if s),
        json_schema=schema,
        json_object=json_object,
        presence_penalty=request.presence_penalty or 0.0,
        frequency_penalty=request.frequency_penalty or 0.0,
        seeded=request.seed is not None,
    )


def chat_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The messages as a chat template takes them: role and text content."""
    messages = []
    for i, message in enumerate(request.messages):
        if message.role in ("tool", "function") or message.tool_calls:
            raise InvalidRequest("Local models do not support tool messages.",
                                 param=f"messages[{i}]")
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": _text(message.content, i)})
    return messages


def _text(content: str | list[dict[str, Any]] | None, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest("Local models take text content only.",
                                 param=f"messages[{index}].content")
        parts.append(part["text"])
    return "".join(parts)


def completion_budget(prompt_tokens: int, n_ctx: int, max_tokens: int | None) -> int:
    """How many tokens may be generated; a 400 when the prompt leaves no room in the context."""
    room = n_ctx - prompt_tokens
    if room < 1:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            param="messages")
    return room if max_tokens is None else min(room, max_tokens)


# --- generation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finish:
    """The last event of a generation."""

    reason: str  # "stop" | "length"
    completion_tokens: int
    cancelled: bool = False  # stopped by the stop flag (nobody reads the answer any more)


class StopMatcher:
    """Finds stop sequences in streamed text, holding back only what may start one."""

    __slots__ = ("_held", "_stops")

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that is safe to send, and whether a stop sequence ended the answer."""
        if not self._stops:
            return text, False
        text = self._held + text
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return text[:cut], True
        hold = max((k for s in self._stops for k in range(min(len(s) - 1, len(text)), 0, -1)
                    if text.endswith(s[:k])), default=0)
        self._held = text[len(text) - hold:]
        return text[:len(text) - hold], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def text_events(tokens: Iterator[int], decode: Callable[[int], str], sampling: Sampling,
                budget: int, stop: threading.Event) -> Iterator[str | Finish]:
    """Text pieces as ``tokens`` (which ends at the end-of-text token) are generated, then a
    ``Finish``. Runs on a worker thread; ``stop`` (a vanished client) ends it after the token
    in hand."""
    matcher, count, reason, cancelled = StopMatcher(sampling.stop), 0, "length", False
    try:
        for token in tokens:
            count += 1
            text, hit = matcher.feed(decode(token))
            if text:
                yield text
            if hit:
                reason = "stop"
                break
            if count >= budget:
                break
            if stop.is_set():
                cancelled = True
                break
        else:
            reason = "stop"
    finally:
        close = getattr(tokens, "close", None)
        if close is not None:
            close()
    if tail := matcher.flush():
        yield tail
    yield Finish(reason, count, cancelled)


# --- OpenAI JSON -----------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


class Answer:
    """The ids of one answer, and its OpenAI JSON."""

    __slots__ = ("created", "id", "model")

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model

    def _base(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    def chunk(self, delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        return orjson.dumps({**self._base("chat.completion.chunk"), "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]})

    def usage_chunk(self, usage: Usage) -> bytes:
        return orjson.dumps({**self._base("chat.completion.chunk"), "choices": [],
                             "usage": usage_json(usage)})

    def completion(self, text: str, finish_reason: str, usage: Usage) -> bytes:
        message = {"role": "assistant", "content": text, "refusal": None}
        return orjson.dumps({**self._base("chat.completion"), "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage_json(usage)})


def retry_after_s(seconds: float) -> int:
    return max(1, math.ceil(seconds))
