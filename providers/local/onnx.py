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
from wire.errors import InternalError, InvalidRequest
from wire.openai import ChatRequest

TOP_K = 40  # as llama.cpp samples
EVENTS = 16  # engine events read per step (one request: a token and its end)
# og.EngineEventFlags
TOKEN, TURN_FINISHED, FAILED = 1, 2, 8


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
    """One slot of a loaded model folder. The slots share one ``og.Model`` (weights and ONNX
    Runtime session); each slot has its own ``og.Engine``, made on the slot's thread, which owns
    it (onnxruntime-genai refuses engine calls from any other thread), running one request at a
    time. ``Engine.run`` computes without holding the GIL, so the slots compute at once; the
    engine gives no way to seed one request, so a request that sets ``seed`` and samples runs on
    an ``og.Generator`` (which keeps the GIL while it computes) to give its seed's answer.
    ``n_ctx`` is the model's context length, or less when the deployment sets ``n_ctx``."""

    def __init__(self, config: OnnxConfig, first: OnnxEngine | None = None) -> None:
        import onnxruntime_genai as og

        self._og = og
        self.model: Any
        self.tokenizer: Any
        if first is not None:  # another slot of the same model
            self.model, self.tokenizer = first.model, first.tokenizer
        else:
            og_config = og.Config(str(config.path))
            overlay: dict[str, Any] = {"engine": {"static_batching": {"max_batch_size": 1}}}
            if config.n_threads:
                overlay["model"] = {"decoder": {"session_options": {
                    "intra_op_num_threads": config.n_threads}}}
            og_config.overlay(json.dumps(overlay))
            self.model = og.Model(og_config)
            self.tokenizer = og.Tokenizer(self.model)
        self._engine = og.Engine(self.model)  # owned by this (the slot's) thread
        self._events = self._engine.create_event_buffer(EVENTS)
        genai = json.loads((config.path / "genai_config.json").read_text(encoding="utf-8"))
        context = int(genai["model"]["context_length"])
        self.n_ctx = min(context, config.n_ctx or context)
        self._eos = frozenset(int(t) for t in self.tokenizer.eos_token_ids)

    def close(self) -> None:
        del self._events, self._engine, self.tokenizer, self.model

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
        """On the slot's thread: the engine's tokens, or a generator's for a seeded sample."""
        seeded = sampling.seeded and sampling.temperature > 0
        tokens = (self._generator_tokens if seeded else self._engine_tokens)(
            prompt, sampling, budget)
        decode = self.tokenizer.create_stream().decode
        return text_events(tokens, decode, sampling, budget, stop)

    # --- og.Engine -------------------------------------------------------------------------

    def _engine_tokens(self, prompt: list[int], sampling: Sampling, budget: int
                       ) -> Iterator[int]:
        og = self._og
        options = og.RequestOptions()
        options.set_max_session_tokens(len(prompt) + budget)  # its KV cache, freed at close
        request = self._engine.create_request(options=options)
        turn_options = og.TurnOptions(request)
        turn_options.set_max_generated_tokens(budget)
        if sampling.temperature == 0:
            turn_options.set_do_sample(False)
        else:
            turn_options.set_do_sample(True)
            turn_options.set_temperature(sampling.temperature)
            turn_options.set_top_p(sampling.top_p)
            turn_options.set_top_k(TOP_K)
        schema = _schema(sampling)
        if schema is not None:
            turn_options.set_guidance("json_schema", schema)
        try:
            turn = request.begin_turn(prompt, turn_options)
        except RuntimeError as exc:  # the grammar is built here
            request.close()
            if schema is None:
                raise
            raise _unguidable(exc) from None
        return self._turn(request, turn)

    def _turn(self, request: Any, turn: int) -> Iterator[int]:
        """The turn's tokens as the engine makes them; closed early (a stop sequence,
        ``max_tokens``, a client that left), it cancels the turn."""
        engine, events, finished = self._engine, self._events, False
        try:
            while not finished:
                engine.run(events)
                for i in range(len(events)):
                    event = events[i]
                    flags = int(event.flags)
                    if flags & FAILED:
                        raise InternalError(f"onnxruntime-genai failed to generate "
                                            f"({event.error_code.name}).")
                    if flags & TOKEN:
                        yield int(event.token)
                    finished = finished or bool(flags & TURN_FINISHED)
        finally:
            if not finished:
                request.cancel_turn(turn)
                while engine.has_pending_requests():  # the cancellation's own event
                    engine.run(events)
            request.close()

    # --- og.Generator ----------------------------------------------------------------------

    def _generator_tokens(self, prompt: list[int], sampling: Sampling, budget: int
                          ) -> Iterator[int]:
        og = self._og
        params = og.GeneratorParams(self.model)
        options: dict[str, Any] = {"max_length": len(prompt) + budget, "random_seed": sampling.seed}
        if sampling.temperature == 0:
            options["do_sample"] = False
        else:
            options |= {"do_sample": True, "temperature": sampling.temperature,
                        "top_p": sampling.top_p, "top_k": TOP_K}
        params.set_search_options(**options)
        schema = _schema(sampling)
        if schema is not None:
            try:
                params.set_guidance("json_schema", schema)
            except RuntimeError as exc:
                raise _unguidable(exc) from None
        generator = og.Generator(self.model, params)
        generator.append_tokens(prompt)
        return self._generated(generator)

    def _generated(self, generator: Any) -> Iterator[int]:
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if token in self._eos:
                return
            yield token


def _schema(sampling: Sampling) -> str | None:
    """The JSON schema that ``response_format`` asks the output to follow, if any."""
    if not (sampling.json_object or sampling.json_schema is not None):
        return None
    return json.dumps({"type": "object"} if sampling.json_object else sampling.json_schema)


def _unguidable(exc: Exception) -> InvalidRequest:
    return InvalidRequest(f"This model cannot follow this response_format: {exc}",
                          param="response_format")


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
