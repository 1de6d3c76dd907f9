"""``llama-cpp``: a GGUF model run in-process by llama-cpp-python (the ``local`` extra).

The chat template comes from the GGUF metadata, the token counts from the model's tokenizer,
JSON output (``response_format``) from llama.cpp grammars. With ``embedding: true`` the
deployment serves ``/v1/embeddings`` instead of chat. ``llama_cpp`` is imported only when a
model loads.
"""

from __future__ import annotations

import base64
import codecs
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import orjson
from pydantic import PositiveInt, model_validator

from providers.base import DeploymentConfig
from providers.http import HTTPClient
from providers.local.base import Finish, LocalConfig, Sampling, require_runtime, text_events
from providers.local.chat import LocalChatProvider
from wire.errors import ContextLengthExceeded, InvalidRequest
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

DEFAULT_N_CTX = 4096
# For a GGUF without a chat template.
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
          "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


class LlamaCppConfig(LocalConfig):
    provider: Literal["llama-cpp"]
    n_batch: PositiveInt = 512  # prompt tokens evaluated per step
    embedding: bool = False  # serve /v1/embeddings (mean pooling) instead of chat

    @model_validator(mode="after")
    def _runtime_installed(self) -> LlamaCppConfig:
        require_runtime("llama_cpp", "llama-cpp")
        if not self.path.is_file():
            raise ValueError(f"path: not a GGUF file: {self.path}")
        return self


class LlamaEngine:
    """One slot: a ``Llama`` (its own context and KV cache) over the GGUF. Each slot maps the
    same file, so the weights are in memory once (the page cache), whatever ``parallel`` is.
    Not thread-safe except ``encode_chat``: generation and embedding run on the slot's own
    thread."""

    def __init__(self, config: LlamaCppConfig) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama_cpp = llama_cpp
        n_ctx = config.n_ctx or DEFAULT_N_CTX
        n_batch = n_ctx if config.embedding else config.n_batch  # an input is one batch
        self.llama: Llama = llama_cpp.Llama(
            model_path=str(config.path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
            n_threads=config.n_threads, n_threads_batch=config.n_threads,
            embedding=config.embedding,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN if config.embedding
            else llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED,
            verbose=False)
        self.n_ctx = self.llama.n_ctx()
        self._vocab = llama_cpp.llama_model_get_vocab(self.llama.model)

        def text(token: int) -> str:
            raw: bytes = llama_cpp.llama_vocab_get_text(self._vocab, token) if token >= 0 else b""
            return raw.decode("utf-8", "replace")

        self._format = Jinja2ChatFormatter(
            template=self.llama.metadata.get("tokenizer.chat_template") or CHATML,
            eos_token=text(self.llama.token_eos()), bos_token=text(self.llama.token_bos()))
        self._json_grammar: LlamaGrammar | None = None

    def close(self) -> None:
        self.llama.close()

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            prompt = self._format(messages=messages).prompt  # type: ignore[arg-type]
        except Exception as exc:  # jinja2 errors and the template's raise_exception
            raise InvalidRequest(f"The model's chat template rejected the messages: {exc}",
                                 param="messages") from None
        return self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def generate(self, prompt: list[int], sampling: Sampling, budget: int,
                 stop: threading.Event) -> Iterator[str | Finish]:
        grammar = self._grammar(sampling)
        self.llama.set_seed(sampling.seed)
        tokens = self._tokens(prompt, sampling, grammar)
        return text_events(tokens, self._decoder(), sampling, budget, stop)

    def _tokens(self, prompt: list[int], sampling: Sampling, grammar: LlamaGrammar | None
                ) -> Iterator[int]:
        is_eog = self._llama_cpp.llama_vocab_is_eog
        for token in self.llama.generate(prompt, temp=sampling.temperature, top_p=sampling.top_p,
                                         presence_penalty=sampling.presence_penalty,
                                         frequency_penalty=sampling.frequency_penalty,
                                         grammar=grammar):
            if is_eog(self._vocab, token):
                return
            yield token

    def _decoder(self) -> Callable[[int], str]:
        """Token → text, holding back a character split across tokens."""
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        detokenize = self.llama.detokenize
        return lambda token: utf8.decode(detokenize([token]))

    def _grammar(self, sampling: Sampling) -> LlamaGrammar | None:
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        if sampling.json_object:
            if self._json_grammar is None:
                self._json_grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            return self._json_grammar
        if sampling.json_schema is None:
            return None
        try:
            return LlamaGrammar.from_json_schema(orjson.dumps(sampling.json_schema).decode(),
                                                 verbose=False)
        except Exception as exc:  # the schema converter raises assorted errors
            raise InvalidRequest(f"This JSON schema cannot be used: {exc}",
                                 param="response_format") from None

    def embed(self, inputs: list[str]) -> tuple[list[list[float]], int]:
        """Unit-length vectors for ``inputs`` and the number of tokens read."""
        for i, text in enumerate(inputs):
            count = len(self.llama.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if count > self.n_ctx:
                raise ContextLengthExceeded(
                    f"This model's maximum context length is {self.n_ctx} tokens, but input "
                    f"{i} has {count} tokens.", param="input")
        vectors, tokens = self.llama.embed(inputs, normalize=True, truncate=False,
                                           return_count=True)
        return vectors, tokens


def embedding_inputs(request: EmbeddingRequest) -> list[str]:
    value = request.input
    if isinstance(value, str):
        return [value]
    if value and all(isinstance(v, str) for v in value):
        return value  # type: ignore[return-value]
    raise InvalidRequest("Local embedding models take text input (a string or a list of "
                         "strings), not token ids.", param="input")


def embedding_body(vectors: list[list[float]], model: str, tokens: int,
                   encoding_format: str | None) -> bytes:
    """OpenAI's embeddings answer; ``base64`` is little-endian float32, as OpenAI sends it."""
    import numpy as np

    def encode(vector: list[float]) -> Any:
        if encoding_format == "base64":
            return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        return vector

    return orjson.dumps({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)}
                 for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })


class LlamaCppProvider(LocalChatProvider):
    Config: ClassVar[type[DeploymentConfig]] = LlamaCppConfig

    def __init__(self, config: LlamaCppConfig, http: HTTPClient) -> None:
        super().__init__(config, partial(LlamaEngine, config))
        self._embedding = config.embedding

    def _check(self, request: ChatRequest) -> None:
        if self._embedding:
            raise InvalidRequest(f"The model '{self._name}' serves embeddings, not chat.",
                                 param="model")

    async def embed(self, request: EmbeddingRequest, model: str) -> ChatResult:
        if not self._embedding:
            raise InvalidRequest(f"The model '{self._name}' does not serve embeddings (its "
                                 "deployment has no 'embedding: true').", param="model")
        inputs = embedding_inputs(request)
        engine = await self._worker.load()
        assert isinstance(engine, LlamaEngine)
        if request.dimensions is not None and request.dimensions != engine.llama.n_embd():
            raise InvalidRequest(f"This model's embeddings have {engine.llama.n_embd()} "
                                 "dimensions.", param="dimensions")
        async with self._queue.turn() as slot:
            slot_engine = self._worker.engine(slot)
            assert isinstance(slot_engine, LlamaEngine)
            vectors, tokens = await self._worker.call(partial(slot_engine.embed, inputs), slot)
        body = embedding_body(vectors, model, tokens, request.encoding_format)
        return ChatResult(body, Usage(tokens))
