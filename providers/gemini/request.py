"""Gemini ``generateContent`` requests from OpenAI chat requests (pure; used by
``providers.gemini.provider``).

System and developer messages go to ``systemInstruction``; user and model turns alternate
(consecutive turns of one role merged; tool results are user ``functionResponse`` parts,
named after the earlier call with their id); images become ``inlineData`` (data: URLs) or
``fileData`` (http URLs).
"""

from __future__ import annotations

import mimetypes
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from providers import openai_input as oi
from providers.gemini.wire import (
    Content,
    GenerateContentRequest,
    GenerationConfig,
    Part,
    ToolConfig,
)
from wire.openai import ChatRequest, Message

PROVIDER = "gemini"
# A call's thought signature rides in its OpenAI id after this separator.
THOUGHT = "__thought__"


def to_vendor(request: ChatRequest) -> GenerateContentRequest:
    # parallel_tool_calls false: Gemini has no such switch; the answer keeps its first call.
    oi.reject_unsupported(request, PROVIDER)
    body: GenerateContentRequest = {"contents": _contents(request)}
    texts = [oi.text_of(m, f"messages[{i}].content") for i, m in enumerate(request.messages)
             if m.role in ("system", "developer")]
    system = [Part(text=text) for text in texts if text]
    if system:
        body["systemInstruction"] = {"parts": system}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    functions = oi.functions(request)
    if functions:
        body["tools"] = [{"functionDeclarations": [
            {"name": f.name, "parametersJsonSchema": f.parameters,
             **({"description": f.description} if f.description else {})}  # type: ignore[typeddict-item]
            for f in functions]}]
        choice = _tool_config(oi.tool_choice(request))
        if choice is not None:
            body["toolConfig"] = choice
    return body


def _generation_config(request: ChatRequest) -> GenerationConfig:
    config: GenerationConfig = {}
    if (request.n or 1) > 1:
        config["candidateCount"] = request.n or 1
    limit = oi.max_tokens(request)
    if limit is not None:
        config["maxOutputTokens"] = limit
    for key, value in (("temperature", request.temperature), ("topP", request.top_p),
                       ("seed", request.seed), ("presencePenalty", request.presence_penalty),
                       ("frequencyPenalty", request.frequency_penalty)):
        if value is not None:
            config[key] = value  # type: ignore[literal-required]
    stops = oi.stop_sequences(request)
    if stops:
        config["stopSequences"] = stops
    mode = oi.json_mode(request)
    if mode is not None:
        config["responseMimeType"] = "application/json"
        if mode.schema is not None:
            config["responseJsonSchema"] = mode.schema
    return config


def _tool_config(choice: str | None) -> ToolConfig | None:
    if choice is None:
        return None
    if choice.startswith("function:"):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [
            choice.removeprefix("function:")]}}
    mode: Literal["AUTO", "ANY", "NONE"] = {"auto": "AUTO", "none": "NONE",
                                            "required": "ANY"}[choice]  # type: ignore[assignment]
    return {"functionCallingConfig": {"mode": mode}}


def _contents(request: ChatRequest) -> list[Content]:
    """User and model turns; consecutive turns of one role merged (tool results are user
    parts), as Gemini wants them alternating."""
    return [{"role": "model" if assistant else "user", "parts": parts}
            for assistant, parts in oi.alternating_turns(request, PROVIDER, _parts)]


def _parts(message: Message, where: str, names: dict[str, str]) -> list[Part]:
    if message.role == "tool":
        return [Part(functionResponse={
            "name": oi.tool_result_name(message, names, where),
            "response": _tool_response(oi.text_of(message, f"{where}.content"))})]
    if message.role == "assistant":
        text = oi.text_of(message, f"{where}.content")
        parts = [Part(text=text)] if text else []
        return parts + [_function_call(call) for call in oi.tool_calls(message, where)]
    return [_part(p) for p in oi.content_parts(message, f"{where}.content")]


def _tool_response(text: str) -> dict[str, Any]:
    """A tool's result as the object Gemini wants: a JSON object as it is, anything else
    under ``output``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    return value if isinstance(value, dict) else {"output": value}


def _function_call(call: oi.Call) -> Part:
    part = Part(functionCall={"name": call.name, "args": call.arguments})
    _, found, signature = call.id.partition(THOUGHT)
    if found and signature:
        part["thoughtSignature"] = signature
    return part


def _part(part: oi.Text | oi.Image) -> Part:
    if isinstance(part, oi.Text):
        return Part(text=part.text)
    if part.url is None:
        return Part(inlineData={"mimeType": part.mime or "", "data": part.data or ""})
    mime, _ = mimetypes.guess_type(urlsplit(part.url).path)
    return Part(fileData={"fileUri": part.url, **({"mimeType": mime} if mime else {})})  # type: ignore[typeddict-item]
