"""Anthropic Messages requests from OpenAI chat requests (pure; used by
``providers.anthropic.provider``).

System and developer messages go to the top-level ``system``; consecutive turns of one role
are merged (Anthropic wants them alternating; tool results travel in a user turn).
``response_format`` becomes a forced tool whose input is the JSON answer, as every Claude
model honours a forced tool.
"""

from __future__ import annotations

from providers import openai_input as oi
from providers.anthropic.wire import Block, MessageParam, MessagesRequest, ToolChoice, ToolParam
from wire.errors import InvalidRequest
from wire.openai import ChatRequest, Message

PROVIDER = "anthropic"
# Fields Anthropic has no counterpart for (n > 1 and parallel_tool_calls=false excepted).
_UNSUPPORTED = ("n", "seed", "presence_penalty", "frequency_penalty")
# The API version that removed temperature, top_p and top_k (a request with one is a 400).
SAMPLING_REMOVED = "2026-10-21"


def to_vendor(request: ChatRequest, model: str, *, default_max_tokens: int,
              api_version: str, stream: bool) -> tuple[MessagesRequest, str | None]:
    """The Messages request, and the name of the forced JSON tool when ``response_format``
    asks for JSON (see the module's doc)."""
    sampling = api_version < SAMPLING_REMOVED
    oi.reject_unsupported(request, PROVIDER,
                          _UNSUPPORTED if sampling else (*_UNSUPPORTED, "temperature", "top_p"))
    if request.temperature is not None and request.temperature > 1:
        raise InvalidRequest("Anthropic accepts a temperature from 0 to 1.", param="temperature")
    body: MessagesRequest = {"model": model, "messages": _messages(request),
                             "max_tokens": oi.max_tokens(request) or default_max_tokens}
    system = [Block(type="text", text=text) for text in _system_texts(request) if text]
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    stops = oi.stop_sequences(request)
    if stops:
        body["stop_sequences"] = stops
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    json_tool = _tools(request, body)
    return body, json_tool


def _system_texts(request: ChatRequest) -> list[str]:
    return [oi.text_of(m, f"messages[{i}].content") for i, m in enumerate(request.messages)
            if m.role in ("system", "developer")]


def _messages(request: ChatRequest) -> list[MessageParam]:
    """User, assistant and tool turns; consecutive turns of one role merged into one, as
    Anthropic requires (tool results travel in a user turn)."""
    return [{"role": "assistant" if assistant else "user", "content": blocks}
            for assistant, blocks in oi.alternating_turns(request, PROVIDER, _blocks)]


def _blocks(message: Message, where: str, names: dict[str, str]) -> list[Block]:
    if message.role == "tool":
        oi.tool_result_name(message, names, where)
        return [Block(type="tool_result", tool_use_id=message.tool_call_id or "",
                      content=oi.text_of(message, f"{where}.content"))]
    if message.role == "assistant":
        blocks = [Block(type="text", text=oi.text_of(message, f"{where}.content"))]
        blocks = [b for b in blocks if b["text"]]
        return blocks + [Block(type="tool_use", id=call.id, name=call.name,
                               input=call.arguments) for call in oi.tool_calls(message, where)]
    return [_block(part) for part in oi.content_parts(message, f"{where}.content")]


def _block(part: oi.Text | oi.Image) -> Block:
    if isinstance(part, oi.Text):
        return Block(type="text", text=part.text)
    if part.url is not None:
        return Block(type="image", source={"type": "url", "url": part.url})
    return Block(type="image", source={"type": "base64", "media_type": part.mime or "",
                                       "data": part.data or ""})


def _tools(request: ChatRequest, body: MessagesRequest) -> str | None:
    """Tools and tool_choice into ``body``; returns the forced JSON tool's name if any."""
    mode = oi.json_mode(request)
    if mode is not None:
        if request.tools:
            raise InvalidRequest("response_format json_object or json_schema cannot be combined "
                                 "with tools on the anthropic provider.", param="response_format")
        schema = mode.schema or {"type": "object"}
        if schema.get("type") != "object":
            raise InvalidRequest("On the anthropic provider a json_schema must describe an "
                                 "object.", param="response_format.json_schema.schema")
        tool = ToolParam(name=mode.name, input_schema=schema,
                         description=mode.description or "Answer with this tool: its input is "
                         "the JSON answer.")
        body["tools"] = [tool]
        body["tool_choice"] = {"type": "tool", "name": mode.name}
        return mode.name
    if not request.tools:
        return None
    tools: list[ToolParam] = []
    for function in oi.functions(request):
        tool = ToolParam(name=function.name, input_schema=function.parameters)
        if function.description:
            tool["description"] = function.description
        tools.append(tool)
    body["tools"] = tools
    choice = _tool_choice(oi.tool_choice(request))
    if request.raw.get("parallel_tool_calls") is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        body["tool_choice"] = choice
    return None


_CHOICES: dict[str, ToolChoice] = {"auto": {"type": "auto"}, "none": {"type": "none"},
                                   "required": {"type": "any"}}


def _tool_choice(choice: str | None) -> ToolChoice | None:
    if choice is None:
        return None
    if choice.startswith("function:"):
        return {"type": "tool", "name": choice.removeprefix("function:")}
    return _CHOICES[choice]
