"""Reading an OpenAI chat request for providers that translate it to another wire format.

Pure functions over ``ChatRequest``: the content parts of a message, image URLs, tool
definitions and choices, response formats and the fields a vendor cannot honour. Anything a
vendor cannot do is a 400 ``invalid_value`` naming the field, never silently dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from wire.errors import InvalidRequest
from wire.openai import ChatRequest, Message

T = TypeVar("T")

# OpenAI request fields no translated provider honours, and the value that means "not used".
_NEVER_SUPPORTED: dict[str, Any] = {
    "logprobs": False, "top_logprobs": None, "logit_bias": None, "audio": None,
    "prediction": None, "functions": None, "function_call": None, "web_search_options": None,
    "reasoning_effort": None,
}

# Values of vendor-specific ``fields`` that ask for nothing (n=1 is every vendor's default).
_HARMLESS: dict[str, Any] = {"n": 1, "parallel_tool_calls": True}
_WHAT = {"n": "More than one choice (n > 1)",
         "parallel_tool_calls": "Turning parallel tool calls off"}


def unsupported(param: str, provider: str, what: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"{what or f'The parameter {param!r}'} is not supported by the "
                          f"{provider} provider.", param=param)


def reject_unsupported(request: ChatRequest, provider: str, fields: Iterable[str] = ()) -> None:
    """A 400 for the first field set that ``provider`` cannot honour: OpenAI-only features,
    plus ``fields`` (names of ``ChatRequest`` attributes this vendor lacks)."""
    raw = request.raw
    for name, unused in _NEVER_SUPPORTED.items():
        if raw.get(name) not in (None, unused):
            raise unsupported(name, provider)
    modalities = raw.get("modalities")
    if modalities not in (None, ["text"]):
        raise unsupported("modalities", provider, "Output other than text")
    if raw.get("parallel_tool_calls") not in (None, True, False):
        raise InvalidRequest("parallel_tool_calls must be true or false.",
                             param="parallel_tool_calls")
    for name in fields:
        if raw.get(name) not in (None, _HARMLESS.get(name)):
            raise unsupported(name, provider, _WHAT.get(name))
    if request.tool_choice is not None and not request.tools:
        raise InvalidRequest("'tool_choice' is only allowed when 'tools' are given.",
                             param="tool_choice")


def max_tokens(request: ChatRequest) -> int | None:
    return request.max_completion_tokens or request.max_tokens


def stop_sequences(request: ChatRequest) -> list[str] | None:
    if request.stop is None:
        return None
    return [request.stop] if isinstance(request.stop, str) else list(request.stop)


@dataclass(slots=True, frozen=True)
class Text:
    text: str


@dataclass(slots=True, frozen=True)
class Image:
    """An image part: ``mime`` and base64 ``data`` for a ``data:`` URL, else ``url``."""

    url: str | None = None
    mime: str | None = None
    data: str | None = None


def content_parts(message: Message, where: str) -> list[Text | Image]:
    """A message's content as text and image parts; ``where`` is its param path."""
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)] if content else []
    parts: list[Text | Image] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise InvalidRequest(f"A {kind} part needs a string '{kind}'.",
                                     param=f"{where}[{j}].{kind}")
            if text:
                parts.append(Text(text))
        elif kind == "image_url":
            parts.append(image(part.get("image_url"), f"{where}[{j}].image_url"))
        else:
            raise InvalidRequest(f"Content parts of type {kind!r} are not supported by this "
                                 "provider.", param=f"{where}[{j}].type")
    return parts


def image(value: Any, where: str) -> Image:
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str):
        raise InvalidRequest("An image_url part needs a 'url'.", param=f"{where}.url")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not mime:
            raise InvalidRequest("An image data: URL must be 'data:<mime type>;base64,<data>'.",
                                 param=f"{where}.url")
        return Image(mime=mime, data=data)
    if url.startswith(("http://", "https://")):
        return Image(url=url)
    raise InvalidRequest("An image URL must be an http(s) or a data: URL.", param=f"{where}.url")


def text_of(message: Message, where: str) -> str:
    """A message's text, for roles whose content the vendor takes as text only."""
    texts: list[str] = []
    for part in content_parts(message, where):
        if isinstance(part, Image):
            raise InvalidRequest(f"Images are only supported in user messages, not in "
                                 f"{message.role} messages.", param=where)
        texts.append(part.text)
    return "".join(texts)


@dataclass(slots=True, frozen=True)
class Call:
    """An assistant's tool call from the conversation, arguments parsed."""

    id: str
    name: str
    arguments: dict[str, Any]


def tool_calls(message: Message, where: str) -> list[Call]:
    calls: list[Call] = []
    for j, call in enumerate(message.tool_calls or []):
        function = call.get("function")
        path = f"{where}.tool_calls[{j}]"
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest("A tool call needs a function name.", param=f"{path}.function")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except (orjson.JSONDecodeError, TypeError):
            arguments = None
        if not isinstance(arguments, dict):
            raise InvalidRequest("Tool call arguments must be a JSON object.",
                                 param=f"{path}.function.arguments")
        calls.append(Call(str(call.get("id") or ""), function["name"], arguments))
    return calls


def tool_names(messages: list[Message]) -> dict[str, str]:
    """Tool call id → function name, from every assistant message's tool calls."""
    return {call["id"]: call["function"]["name"]
            for message in messages if message.tool_calls
            for call in message.tool_calls
            if isinstance(call.get("id"), str) and isinstance(call.get("function"), dict)
            and isinstance(call["function"].get("name"), str)}


def tool_result_name(message: Message, names: dict[str, str], where: str) -> str:
    name = names.get(message.tool_call_id or "")
    if name is None:
        raise InvalidRequest("A tool message's 'tool_call_id' must name a tool call of an "
                             "earlier assistant message.", param=f"{where}.tool_call_id")
    return name


def alternating_turns(request: ChatRequest, provider: str,
                      parts: Callable[[Message, str, dict[str, str]], list[T]]
                      ) -> list[tuple[bool, list[T]]]:
    """The turns of a request for a vendor that wants the user's and the assistant's turns
    alternating: system and developer messages left out (the vendor takes them elsewhere),
    the legacy 'function' role refused, each other message's parts made by
    ``parts(message, where, tool_names)``, consecutive turns of one side merged (tool results
    are on the user's side). Each turn is (from the assistant, its parts)."""
    turns: list[tuple[bool, list[T]]] = []
    names = tool_names(request.messages)
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role in ("system", "developer"):
            continue
        if message.role == "function":
            raise unsupported(f"{where}.role", provider, "The legacy 'function' role")
        assistant, made = message.role == "assistant", parts(message, where, names)
        if turns and turns[-1][0] == assistant:
            turns[-1][1].extend(made)
        else:
            turns.append((assistant, made))
    return turns


@dataclass(slots=True, frozen=True)
class Function:
    name: str
    description: str | None
    parameters: dict[str, Any]


def functions(request: ChatRequest) -> list[Function]:
    result: list[Function] = []
    for i, tool in enumerate(request.tools or []):
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise InvalidRequest("Only tools of type 'function' are supported.",
                                 param=f"tools[{i}].type")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("A function tool needs a name.", param=f"tools[{i}].function.name")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        result.append(Function(name, function.get("description"), parameters))
    return result


def tool_choice(request: ChatRequest) -> str | None:
    """``auto``, ``none``, ``required``, ``function:<name>``, or None when not given."""
    choice = request.tool_choice
    if choice is None or choice in ("auto", "none", "required"):
        return choice  # type: ignore[return-value]
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str) and name:
            return f"function:{name}"
    raise InvalidRequest("tool_choice must be 'auto', 'none', 'required' or "
                         "{'type': 'function', 'function': {'name': ...}}.", param="tool_choice")


@dataclass(slots=True, frozen=True)
class JSONMode:
    """``response_format`` json_object (``schema`` None) or json_schema."""

    name: str
    schema: dict[str, Any] | None
    description: str | None = None


def json_mode(request: ChatRequest) -> JSONMode | None:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return JSONMode("json_object", None)
    spec = response_format.json_schema or {}
    schema = spec.get("schema") or {"type": "object"}
    name = spec.get("name")
    if not isinstance(schema, dict) or not isinstance(name, str) or not name:
        raise InvalidRequest("json_schema needs a 'name' and a 'schema' object.",
                             param="response_format.json_schema")
    description = spec.get("description")
    return JSONMode(name, schema, description if isinstance(description, str) else None)


class CallIds:
    """Tool call ids for a vendor that gives none (Gemini, Ollama), and whether an answer keeps
    only its first call (``parallel_tool_calls: false``, which those vendors cannot be told).

    An id is a digest of the request's messages, the choice, the call's position, name and
    arguments: unique per answer (the same call in a later turn has a longer history, so a
    replayed conversation never holds one id twice), yet the same for a stream, a whole answer
    and a cache replay of one request. The messages are digested once, at the first call.
    """

    __slots__ = ("_messages", "_salt", "first_only")

    def __init__(self, request: ChatRequest | None = None) -> None:
        self._messages: Any = request.raw.get("messages") if request is not None else None
        self._salt: bytes | None = None
        self.first_only = request is not None and request.raw.get("parallel_tool_calls") is False

    def make(self, name: str, arguments: str, position: int, choice: int = 0) -> str:
        if self._salt is None:
            self._salt = hashlib.sha256(
                orjson.dumps(self._messages, option=orjson.OPT_SORT_KEYS)).digest()
        digest = hashlib.sha256(self._salt + f"{choice}\0{position}\0{name}\0{arguments}"
                                .encode()).hexdigest()
        return f"call_{digest[:24]}"
