"""Between a stream and a whole answer, for the response cache.

The cache keeps one form of an answer: the ``chat.completion`` JSON, usage included. A stream
that missed the cache is put together into that form as its chunks pass
(``StreamAssembler``); a stream that hits the cache is played back from it as a proper stream
(``replay``): for each choice a role chunk, its content, its tool calls, its finish reason;
then a usage chunk when the client asked for one, then ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import orjson

from wire.sse import DONE, encode_data

# the fields of a completion that its chunks repeat
_HEAD_FIELDS = ("id", "created", "model", "system_fingerprint", "service_tier")


@dataclass(slots=True)
class _ToolCall:
    id: str | None = None
    type: str = "function"
    name: str = ""
    arguments: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type,
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True)
class _Choice:
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    function_call: dict[str, str] | None = None
    logprobs: dict[str, list[Any]] | None = None
    finish_reason: str | None = None

    def add(self, delta: dict[str, Any], logprobs: Any) -> None:
        self.role = delta.get("role") or self.role
        if delta.get("content") is not None:
            self.content = (self.content or "") + delta["content"]
        if delta.get("refusal") is not None:
            self.refusal = (self.refusal or "") + delta["refusal"]
        for call in delta.get("tool_calls") or ():
            self._add_tool_call(call)
        if delta.get("function_call"):
            old = self.function_call or {"name": "", "arguments": ""}
            new = delta["function_call"]
            self.function_call = {"name": old["name"] + (new.get("name") or ""),
                                  "arguments": old["arguments"] + (new.get("arguments") or "")}
        if isinstance(logprobs, dict):
            merged = self.logprobs = self.logprobs or {}
            for kind, items in logprobs.items():
                if isinstance(items, list):
                    merged.setdefault(kind, []).extend(items)

    def _add_tool_call(self, delta: dict[str, Any]) -> None:
        call = self.tool_calls.setdefault(int(delta["index"]), _ToolCall())
        call.id = delta.get("id") or call.id
        call.type = delta.get("type") or call.type
        function = delta.get("function") or {}
        call.name += function.get("name") or ""
        call.arguments += function.get("arguments") or ""

    def as_dict(self, index: int) -> dict[str, Any]:
        content = self.content
        if not content and (self.tool_calls or self.function_call):
            content = None  # a call's answer has no text (its role chunk may say "")
        message: dict[str, Any] = {"role": self.role, "content": content,
                                   "refusal": self.refusal}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].as_dict() for i in sorted(self.tool_calls)]
        if self.function_call is not None:
            message["function_call"] = self.function_call
        return {"index": index, "message": message, "logprobs": self.logprobs,
                "finish_reason": self.finish_reason}


class StreamAssembler:
    """Feed it every chunk's JSON; ``completion()`` is the whole answer, or None when the
    stream did not end cleanly (a choice without a finish reason, a chunk it cannot read)."""

    __slots__ = ("_broken", "_choices", "_head", "_usage")

    def __init__(self) -> None:
        self._head: dict[str, Any] | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: Any = None
        self._broken = False

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        try:
            self._feed(orjson.loads(data))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            self._broken = True

    def _feed(self, chunk: dict[str, Any]) -> None:
        if self._head is None:
            self._head = {name: chunk[name] for name in _HEAD_FIELDS if name in chunk}
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            state = self._choices.setdefault(int(choice["index"]), _Choice())
            state.add(choice.get("delta") or {}, choice.get("logprobs"))
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]

    def completion(self) -> dict[str, Any] | None:
        choices = self._choices
        if self._broken or self._head is None or not choices or any(
                c.finish_reason is None for c in choices.values()):
            return None
        completion: dict[str, Any] = {**self._head, "object": "chat.completion", "choices": [
            choices[i].as_dict(i) for i in sorted(choices)]}
        if self._usage is not None:
            completion["usage"] = self._usage
        return completion


def replay_chunks(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The chunks of a stream that carries ``completion``, as OpenAI would have sent them."""
    head = {name: completion[name] for name in _HEAD_FIELDS if name in completion}
    head["object"] = "chat.completion.chunk"
    if include_usage:
        head["usage"] = None
    chunks: list[dict[str, Any]] = []

    def add(index: int, delta: dict[str, Any], finish_reason: str | None = None,
            logprobs: Any = None) -> None:
        chunks.append({**head, "choices": [{"index": index, "delta": delta,
                                            "logprobs": logprobs,
                                            "finish_reason": finish_reason}]})

    for choice in completion["choices"]:
        index, message = choice["index"], choice.get("message") or {}
        text = message.get("content")
        add(index, {"role": message.get("role") or "assistant",
                    "content": None if text is None else "", "refusal": None})
        if text or choice.get("logprobs"):
            add(index, {"content": text or ""}, logprobs=choice.get("logprobs"))
        if message.get("refusal"):
            add(index, {"refusal": message["refusal"]})
        for i, call in enumerate(message.get("tool_calls") or ()):
            add(index, {"tool_calls": [{"index": i, **call}]})
        if message.get("function_call"):
            add(index, {"function_call": message["function_call"]})
        add(index, {}, finish_reason=choice.get("finish_reason") or "stop")
    if include_usage and completion.get("usage"):  # (none when the upstream sent none)
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    return chunks


async def replay(answer: bytes, include_usage: bool) -> AsyncGenerator[bytes, None]:
    """A stored answer as the encoded events of a stream, ``[DONE]`` last."""
    for chunk in replay_chunks(orjson.loads(answer), include_usage):
        yield encode_data(orjson.dumps(chunk))
    yield DONE
