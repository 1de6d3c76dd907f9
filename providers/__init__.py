"""Backends, found by the ``provider`` name of a models.yaml entry.

Adding a backend is one module (or one folder per vendor) and one entry here. Modules import
their heavy runtimes (llama-cpp, onnxruntime-genai, ...) lazily, so this table is cheap to load.
"""

from __future__ import annotations

from providers.anthropic import AnthropicProvider
from providers.base import DeploymentConfig, Provider
from providers.gemini import GeminiProvider
from providers.local.llama_cpp import LlamaCppProvider
from providers.local.onnx import OnnxProvider
from providers.ollama import OllamaProvider
from providers.openai import OpenAICompatibleProvider, OpenAIProvider
from providers.tools.ocr import OCRTool
from providers.tools.whisper import WhisperProvider
from providers.tools.yolo import YoloTool

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "openai-compatible": OpenAICompatibleProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "ollama": OllamaProvider,
    "llama-cpp": LlamaCppProvider,
    "onnx": OnnxProvider,
    "whisper": WhisperProvider,
    "ocr": OCRTool,
    "yolo": YoloTool,
}


def config_classes() -> tuple[type[DeploymentConfig], ...]:
    return tuple(cls.Config for cls in PROVIDERS.values())


__all__ = ["PROVIDERS", "DeploymentConfig", "Provider", "config_classes"]
