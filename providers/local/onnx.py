"""``onnx``: an onnxruntime-genai model folder run in-process (the ``local`` extra).

The folder is what onnxruntime-genai's model builder writes (``genai_config.json``, the ONNX
graph, ``tokenizer.json`` and the chat template); ``gateway convert-onnx`` makes one from a
GGUF. The chat template and tokenizer are the model's own; JSON output (``response_format``)
uses onnxruntime-genai's guidance. ``onnxruntime_genai`` is imported only when a model loads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from providers.base import DeploymentConfig
from providers.http import HTTPClient
from providers.local.base import Finish, LocalConfig, Sampling, require_runtime, text_events
from providers.local.chat import Engine, LocalChatProvider
from wire.errors import InvalidRequest
from wire.openai import ChatRequest

TOP_K = 40  # as llama.cpp samples


class OnnxConfig(LocalConfig):
    provider: Literal["onnx"]

    @model_validator(mode="after")
    def _runtime_installed(self) -> OnnxConfig:
        require_runtime("onnxruntime_genai", "onnx")
        if not (self.path / "genai_config.json").is_file():
            raise ValueError(f"path: not an onnxruntime-genai model folder (no "
                             f"genai_config.json): {self.path}")
        return self


class OnnxEngine:
    """One slot of a loaded model folder: the slots share one ``og.Model`` (weights and
    session) and each runs its own generator (its own KV cache) on its own thread. ``n_ctx`` is
    the model's context length, or less when the deployment sets ``n_ctx``."""

    def __init__(self, config: OnnxConfig, first: OnnxEngine | None = None) -> None:
        import onnxruntime_genai as og

        self._og = og
        self.model: Any
        self.tokenizer: Any
        if first is not None:  # another slot of the same model
            self.model, self.tokenizer = first.model, first.tokenizer
        else:
            og_config = og.Config(str(config.path))
            if config.n_threads:
                og_config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                    "intra_op_num_threads": config.n_threads}}}}))
            self.model = og.Model(og_config)
            self.tokenizer = og.Tokenizer(self.model)
        genai = json.loads((config.path / "genai_config.json").read_text(encoding="utf-8"))
        context = int(genai["model"]["context_length"])
        self.n_ctx = min(context, config.n_ctx or context)
        self._eos = frozenset(int(t) for t in self.tokenizer.eos_token_ids)

    def close(self) -> None:
        del self.tokenizer, self.model

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            prompt = self.tokenizer.apply_chat_template(json.dumps(messages),
                                                        add_generation_prompt=True)
        except RuntimeError as exc:  # onnxruntime-genai reports template errors so
            raise InvalidRequest(f"The model's chat template rejected the messages: {exc}",
                                 param="messages") from None
        return [int(t) for t in self.tokenizer.encode(prompt)]

    def generate(self, prompt: list[int], sampling: Sampling, budget: int,
                 stop: threading.Event) -> Iterator[str | Finish]:
        og = self._og
        params = og.GeneratorParams(self.model)
        options: dict[str, Any] = {"max_length": len(prompt) + budget, "random_seed": sampling.seed}
        if sampling.temperature == 0:
            options["do_sample"] = False
        else:
            options |= {"do_sample": True, "temperature": sampling.temperature,
                        "top_p": sampling.top_p, "top_k": TOP_K}
        params.set_search_options(**options)
        self._guide(params, sampling)
        generator = og.Generator(self.model, params)
        generator.append_tokens(prompt)
        decode = self.tokenizer.create_stream().decode
        return text_events(self._tokens(generator), decode, sampling, budget, stop)

    def _tokens(self, generator: Any) -> Iterator[int]:
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if token in self._eos:
                return
            yield token

    @staticmethod
    def _guide(params: Any, sampling: Sampling) -> None:
        if not (sampling.json_object or sampling.json_schema is not None):
            return
        schema = {"type": "object"} if sampling.json_object else sampling.json_schema
        try:
            params.set_guidance("json_schema", json.dumps(schema))
        except RuntimeError as exc:
            raise InvalidRequest(f"This model cannot follow this response_format: {exc}",
                                 param="response_format") from None


def _another_slot(config: OnnxConfig, first: Engine) -> Engine:
    """A further slot: its own generators over the first slot's model and tokenizer."""
    assert isinstance(first, OnnxEngine)
    return OnnxEngine(config, first)


class OnnxProvider(LocalChatProvider):
    Config: ClassVar[type[DeploymentConfig]] = OnnxConfig

    def __init__(self, config: OnnxConfig, http: HTTPClient) -> None:
        super().__init__(config, partial(OnnxEngine, config), partial(_another_slot, config))

    def _check(self, request: ChatRequest) -> None:
        for field in ("presence_penalty", "frequency_penalty"):
            if getattr(request, field):
                raise InvalidRequest(f"ONNX models do not support '{field}'.", param=field)
