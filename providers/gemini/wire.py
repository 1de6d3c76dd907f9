"""Typed models of the Gemini API's wire format (``generateContent``,
``streamGenerateContent?alt=sse``, ``embedContent``, ``batchEmbedContents``), in its REST
JSON spelling (camelCase).

Requests are TypedDicts (checked by mypy, sent as they are); answers are pydantic models
(validated: a malformed answer is garbage).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field

# -- request ------------------------------------------------------------------------------


class Blob(TypedDict):
    mimeType: str
    data: str


class FileData(TypedDict):
    fileUri: str
    mimeType: NotRequired[str]


class FunctionCallParam(TypedDict):
    name: str
    args: dict[str, Any]


class FunctionResponseParam(TypedDict):
    name: str
    response: dict[str, Any]


class Part(TypedDict, total=False):
    text: str
    inlineData: Blob
    fileData: FileData
    functionCall: FunctionCallParam
    functionResponse: FunctionResponseParam
    thoughtSignature: str


class Content(TypedDict):
    role: NotRequired[Literal["user", "model"]]
    parts: list[Part]


class ImageConfig(TypedDict, total=False):
    aspectRatio: str  # "1:1", "16:9", ...
    imageSize: Literal["1K", "2K", "4K"]


class GenerationConfig(TypedDict, total=False):
    candidateCount: int
    maxOutputTokens: int
    temperature: float
    topP: float
    stopSequences: list[str]
    seed: int
    presencePenalty: float
    frequencyPenalty: float
    responseMimeType: str
    responseJsonSchema: dict[str, Any]
    responseModalities: list[Literal["TEXT", "IMAGE"]]
    imageConfig: ImageConfig


class FunctionDeclaration(TypedDict):
    name: str
    description: NotRequired[str]
    parametersJsonSchema: dict[str, Any]


class Tool(TypedDict):
    functionDeclarations: list[FunctionDeclaration]


class FunctionCallingConfig(TypedDict):
    mode: Literal["AUTO", "ANY", "NONE"]
    allowedFunctionNames: NotRequired[list[str]]


class ToolConfig(TypedDict):
    functionCallingConfig: FunctionCallingConfig


class GenerateContentRequest(TypedDict):
    contents: list[Content]
    systemInstruction: NotRequired[Content]
    generationConfig: NotRequired[GenerationConfig]
    tools: NotRequired[list[Tool]]
    toolConfig: NotRequired[ToolConfig]


class EmbedContentRequest(TypedDict):
    content: Content
    model: NotRequired[str]
    outputDimensionality: NotRequired[int]


class BatchEmbedContentsRequest(TypedDict):
    requests: list[EmbedContentRequest]


# -- answers ------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionCall(_Wire):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class InlineData(_Wire):
    mimeType: str = ""
    data: str = ""  # base64


class WirePart(_Wire):
    text: str | None = None
    inlineData: InlineData | None = None
    thought: bool = False
    functionCall: FunctionCall | None = None
    thoughtSignature: str | None = None


class WireContent(_Wire):
    parts: list[WirePart] = Field(default_factory=list)


class Candidate(_Wire):
    content: WireContent | None = None
    finishReason: str | None = None
    index: int = 0


class ModalityTokenCount(_Wire):
    modality: str = ""  # TEXT, IMAGE, AUDIO, VIDEO, DOCUMENT
    tokenCount: int = 0


class UsageMetadata(_Wire):
    promptTokenCount: int = 0
    candidatesTokenCount: int = 0
    thoughtsTokenCount: int = 0
    toolUsePromptTokenCount: int = 0
    cachedContentTokenCount: int | None = None
    promptTokensDetails: list[ModalityTokenCount] = Field(default_factory=list)


class PromptFeedback(_Wire):
    blockReason: str | None = None


class GenerateContentResponse(_Wire):
    candidates: list[Candidate] = Field(default_factory=list)
    promptFeedback: PromptFeedback | None = None
    usageMetadata: UsageMetadata | None = None
    modelVersion: str | None = None
    responseId: str | None = None


class ContentEmbedding(_Wire):
    values: list[float]


class EmbedContentResponse(_Wire):
    embedding: ContentEmbedding


class BatchEmbedContentsResponse(_Wire):
    embeddings: list[ContentEmbedding]
    usageMetadata: UsageMetadata | None = None


class ErrorDetail(_Wire):
    code: int | None = None
    message: str = ""
    status: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorBody(_Wire):
    """``{"error": {"code", "message", "status", "details"}}`` (google.rpc.Status)."""

    error: ErrorDetail
