"""``whisper``: speech to text with faster-whisper (CTranslate2, int8 on the CPU), or, with
``api_base``, a remote service speaking OpenAI's audio API (another gateway, speaches...).

The model loads on first use (``preload: true``: at start) from ``path`` or the default
weights (whisper_weights.py). A request's audio is decoded (PyAV) on a thread before it
queues, so a file that is not audio is a 400 at once; transcriptions then take turns in a fair
queue (``max_queue``, ``queue_timeout_s``) on the model's own thread, segment by segment, and
stop after the segment in hand when the client goes away. ``response_format=diarized_json``
adds who spoke when (diarize.py). faster-whisper is imported only when a model loads.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import logging
import threading
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from providers.base import DeploymentConfig
from providers.http import HTTPClient
from providers.local.runtime import ModelWorker, TurnQueue
from providers.openai.audio import AudioUpstream
from providers.tools import whisper_weights
from providers.tools.transcript import (
    Segment,
    Transcript,
    Turn,
    Word,
    delta_event,
    done_event,
    language_code,
    render,
    segment_event,
)
from wire.audio import AudioAnswer, AudioStream, Task, TranscriptionRequest
from wire.errors import InvalidRequest

if TYPE_CHECKING:
    import numpy as np

    from providers.tools.diarize import Embedder

log = logging.getLogger("gateway")

SAMPLE_RATE = 16_000
# OpenAI's temperature 0: start at 0 and go up when a window's decoding fails its checks.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class WhisperConfig(DeploymentConfig):
    provider: Literal["whisper"]
    path: Path | None = None  # a CTranslate2 Whisper folder; None: the default weights
    api_base: str | None = None  # a remote service speaking this API instead of a local model
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    language: str | None = None  # ISO-639-1; a request's own language wins; None: detected
    vad_filter: bool = False  # skip silence with the bundled Silero VAD before decoding
    beam_size: PositiveInt = 5
    compute_type: str = "int8"  # CTranslate2's compute type on the CPU
    cpu_threads: int = Field(default=0, ge=0)  # 0: CTranslate2's default
    preload: bool = False
    max_queue: int = Field(default=16, ge=0)  # requests that may wait for the model; more: 429
    queue_timeout_s: float = Field(default=600.0, gt=0)  # longest wait for the model; then 429
    diarization_model: Path | None = None  # a speaker-embedding ONNX model (diarize.py)
    cache_dir: Path | None = None  # where the default weights are joined

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        try:
            return language_code(value)
        except InvalidRequest:
            raise ValueError(f"unknown language '{value}'") from None

    @model_validator(mode="after")
    def _usable(self) -> WhisperConfig:
        if self.api_base is not None:
            if self.path is not None or self.diarization_model is not None:
                raise ValueError("api_base: a remote whisper service takes no 'path' or "
                                 "'diarization_model'")
            return self
        if importlib.util.find_spec("faster_whisper") is None:
            raise ValueError("the whisper provider needs the 'faster_whisper' package: "
                             f"{whisper_weights.INSTALL_HINT}")
        if self.path is not None and not (self.path / "model.bin").is_file():
            raise ValueError(f"path: not a CTranslate2 Whisper model folder (no model.bin): "
                             f"{self.path}")
        if self.path is None:
            whisper_weights.check_installed()
        if self.diarization_model is not None and not self.diarization_model.is_file():
            raise ValueError(f"diarization_model: no such file: {self.diarization_model}")
        return self

    @property
    def remote(self) -> bool:
        return self.api_base is not None


@dataclass(frozen=True, slots=True)
class Options:
    """What faster-whisper is asked to do for one request."""

    task: Task
    language: str | None
    prompt: str | None
    temperature: tuple[float, ...]
    word_timestamps: bool
    diarize: bool
    num_speakers: int | None


@dataclass(frozen=True, slots=True)
class Detected:
    """The first event of a transcription: the language and the audio's length."""

    language: str
    duration: float


class WhisperEngine:
    """A loaded faster-whisper model (and the diarization embedder). Runs on its own thread."""

    def __init__(self, config: WhisperConfig) -> None:
        from faster_whisper import WhisperModel

        from providers.tools.diarize import load_embedder

        folder = config.path or whisper_weights.default_model_dir(config.cache_dir)
        self._model: Any = WhisperModel(str(folder), device="cpu",
                                        compute_type=config.compute_type,
                                        cpu_threads=config.cpu_threads, local_files_only=True)
        self._beam_size = config.beam_size
        self._vad_filter = config.vad_filter
        self.embedder: Embedder = load_embedder(config.diarization_model)

    def transcribe(self, audio: np.ndarray, options: Options, stop: threading.Event
                   ) -> Iterator[Detected | Segment | list[Turn]]:
        segments, info = self._model.transcribe(
            audio, language=options.language, task=options.task, beam_size=self._beam_size,
            initial_prompt=options.prompt, temperature=list(options.temperature),
            word_timestamps=options.word_timestamps, vad_filter=self._vad_filter)
        yield Detected(info.language, float(info.duration))
        words: list[Word] = []
        for index, raw in enumerate(segments):
            segment = _segment(index, raw)
            words.extend(segment.words)
            yield segment
            if stop.is_set():
                log.info("whisper: the client went away; stopped after %d segments", index + 1)
                return
        if options.diarize:
            from providers.tools.diarize import diarize

            yield diarize(audio, words, options.num_speakers, self.embedder)

    def close(self) -> None:
        self._model = None


def _segment(index: int, raw: Any) -> Segment:
    return Segment(
        id=index, seek=int(raw.seek), start=float(raw.start), end=float(raw.end), text=raw.text,
        tokens=tuple(int(t) for t in raw.tokens), temperature=float(raw.temperature or 0.0),
        avg_logprob=float(raw.avg_logprob), compression_ratio=float(raw.compression_ratio),
        no_speech_prob=float(raw.no_speech_prob),
        words=tuple(Word(w.word, float(w.start), float(w.end), float(w.probability))
                    for w in raw.words or ()))


def decode_audio(data: bytes) -> np.ndarray:
    """The file's audio as 16 kHz mono float32 (PyAV: wav, mp3, m4a, ogg, webm, flac...); a
    400 for a file that is not audio. Blocking: runs on a thread."""
    from faster_whisper.audio import decode_audio as decode

    if not data:
        raise InvalidRequest("The audio file is empty.", param="file")
    try:
        audio: np.ndarray = decode(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV's errors for what it cannot read are many
        raise InvalidRequest("The file could not be decoded as audio (supported: wav, mp3, m4a, "
                             f"ogg, webm, flac and more): {type(exc).__name__}.",
                             param="file") from None
    if audio.size == 0:
        raise InvalidRequest("The audio file holds no sound.", param="file")
    return audio


class WhisperProvider:
    """transcribe (Transcriber), start/aclose (ManagedProvider); no chat."""

    Config: ClassVar[type[DeploymentConfig]] = WhisperConfig

    def __init__(self, config: WhisperConfig, http: HTTPClient) -> None:
        self._config = config
        self._remote: AudioUpstream | None = None
        if config.api_base is not None:
            headers = {**({"authorization": f"Bearer {config.api_key}"} if config.api_key
                          else {}), **config.headers}
            self._remote = AudioUpstream(http, config.api_base, headers,
                                         config.timeouts(stream=False),
                                         config.timeouts(stream=True))
        self._worker: ModelWorker[WhisperEngine] = ModelWorker(
            config.name, partial(WhisperEngine, config))
        self._queue = TurnQueue(config.name, config.max_queue, config.queue_timeout_s)

    async def start(self) -> None:
        if self._config.preload and self._remote is None:
            await self._worker.load()

    async def aclose(self) -> None:
        await self._worker.aclose()

    async def transcribe(self, request: TranscriptionRequest, model: str
                         ) -> AudioAnswer | AudioStream:
        if self._remote is not None:
            return await self._remote.transcribe(request, model)
        options = self._options(request)
        audio = await asyncio.to_thread(decode_audio, request.file.data)
        if request.stream:
            events = self._events(audio, options)
            try:
                first = await anext(events)
            except BaseException:
                await events.aclose()
                raise
            return AudioStream(_prepend(first, events))
        transcript = Transcript(request.task, options.language or "", 0.0)
        async with aclosing(self._run(audio, options)) as items:
            async for item in items:
                if isinstance(item, Detected):
                    transcript.language, transcript.duration = item.language, item.duration
                elif isinstance(item, Segment):
                    transcript.segments.append(item)
                    if request.progress is not None and transcript.duration:
                        request.progress(min(1.0, item.end / transcript.duration))
                else:
                    transcript.turns = item
        return render(transcript, request.response_format, request.granularities)

    def _options(self, request: TranscriptionRequest) -> Options:
        diarize = request.response_format == "diarized_json"
        temperature = (FALLBACK_TEMPERATURES if not request.temperature
                       else (request.temperature,))
        return Options(
            task=request.task,
            language=language_code(request.language) or self._config.language,
            prompt=request.prompt, temperature=temperature,
            word_timestamps=diarize or "word" in request.granularities,
            diarize=diarize, num_speakers=request.num_speakers)

    async def _run(self, audio: np.ndarray, options: Options
                   ) -> AsyncGenerator[Detected | Segment | list[Turn], None]:
        """The transcription's events as they are decoded, in this request's turn."""
        engine = await self._worker.load()
        async with self._queue.turn(), aclosing(
                self._worker.run(partial(engine.transcribe, audio, options))) as events:
            async for event in events:
                yield event

    async def _events(self, audio: np.ndarray, options: Options
                      ) -> AsyncGenerator[bytes, None]:
        """The stream: a ``transcript.text.delta`` per decoded segment (diarized: then a
        ``transcript.text.segment`` per speaker turn), then ``transcript.text.done``."""
        texts: list[str] = []
        async with aclosing(self._run(audio, options)) as items:
            async for item in items:
                if isinstance(item, Segment):
                    delta = item.text if texts else item.text.lstrip()
                    texts.append(delta)
                    yield delta_event(delta)
                elif isinstance(item, list):
                    for index, turn in enumerate(item):
                        yield segment_event(turn, index)
        yield done_event("".join(texts).strip())


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]
                   ) -> AsyncGenerator[bytes, None]:
    async with aclosing(rest):
        yield first
        async for item in rest:
            yield item
