"""Who spoke when: speech from the Silero VAD that faster-whisper bundles, cut into windows of
at most 1.5 s, one embedding per window, clustered (average linkage on cosine distance,
scipy); consecutive windows of one speaker make a turn, and each word of the transcript goes
to the turn around its middle. Speakers are named ``A``, ``B``... in order of first appearance.

The embedding: an operator-supplied speaker-embedding ONNX model (``diarization_model``,
WeSpeaker/ECAPA style: input ``[1, frames, 80]`` Kaldi-style log-mel filterbanks of 16 kHz
audio, 25 ms frames every 10 ms, mean-normalized; output one vector), or without one the
spectral statistics of each window (the voice's median pitch, in semitones, and the shape of
its mean log-mel spectrum), which tell clearly different voices apart (a man and a woman, say)
but not similar ones. Without ``num_speakers`` the clustering stops merging at a distance
(``Embedder.threshold``: 6 for the spectral statistics, 0.5 cosine for a model).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from providers.tools.transcript import Turn, Word

log = logging.getLogger("gateway")

SAMPLE_RATE = 16_000
WINDOW_S = 1.5  # longest window with one embedding
_FRAME, _HOP, _FFT, _MELS = 400, 160, 512, 80


class Embedder(Protocol):
    metric: str  # scipy's name of the distance between two embeddings
    threshold: float  # the distance from which two clusters are different speakers

    def __call__(self, samples: np.ndarray) -> np.ndarray: ...


# --- features --------------------------------------------------------------------------------


def _mel_filters() -> np.ndarray:
    def mel(hz: np.ndarray | float) -> Any:
        return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)

    edges = np.linspace(mel(20.0), mel(SAMPLE_RATE / 2), _MELS + 2)
    bins = mel(np.arange(_FFT // 2 + 1) * SAMPLE_RATE / _FFT)
    filters = np.zeros((_MELS, _FFT // 2 + 1), dtype=np.float32)
    for i in range(_MELS):
        left, centre, right = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins - left) / (centre - left)
        falling = (right - bins) / (right - centre)
        filters[i] = np.clip(np.minimum(rising, falling), 0.0, None)
    return filters


_FILTERS = _mel_filters()
_WINDOW = (np.hanning(_FRAME) ** 0.85).astype(np.float32)  # Kaldi's "povey" window


def fbank(samples: np.ndarray) -> np.ndarray:
    """Kaldi-style log-mel filterbanks ``[frames, 80]`` of 16 kHz float audio (int16 scale)."""
    wave = samples.astype(np.float32) * 32768.0
    if wave.size < _FRAME:
        wave = np.pad(wave, (0, _FRAME - wave.size))
    count = 1 + (wave.size - _FRAME) // _HOP
    frames = np.lib.stride_tricks.sliding_window_view(wave, _FRAME)[::_HOP][:count].copy()
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1]
    frames[:, 0] *= 0.03
    power = np.abs(np.fft.rfft(frames * _WINDOW, _FFT)) ** 2
    logs: np.ndarray = np.log(np.maximum(power @ _FILTERS.T, 1.1920929e-07))
    return logs.astype(np.float32)


class SpectralEmbedder:
    """A window's pitch (semitones above 55 Hz; 0 when unvoiced) and the shape of its mean
    log-mel spectrum (loudness removed), scaled so that one speaker's windows lie within about
    3 of each other and a man's and a woman's about 10 apart."""

    metric = "euclidean"
    threshold = 6.0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        features = fbank(samples)
        loud = features.mean(axis=1)
        shape = features[loud > loud.max() - 6].mean(axis=0)
        shape -= shape.mean()
        return np.concatenate([[semitones(samples)], shape * (2 / math.sqrt(_MELS))])


def semitones(samples: np.ndarray) -> float:
    """The median pitch of the voiced frames (autocorrelation, 60-400 Hz), in semitones above
    55 Hz; 0 when no frame is voiced."""
    frame, low, high = 640, SAMPLE_RATE // 400, SAMPLE_RATE // 60
    if samples.size < frame:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(samples, frame)[::_HOP]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames * frames).sum(axis=1)
    frames = frames[energy > 1e-4]
    if not len(frames):
        return 0.0
    spectrum = np.fft.rfft(frames, 2 * frame)
    correlation = np.fft.irfft(np.abs(spectrum) ** 2)[:, :frame]
    correlation /= correlation[:, :1]
    lags = low + np.argmax(correlation[:, low:high], axis=1)
    voiced = correlation[np.arange(len(lags)), lags] > 0.5
    if not voiced.any():
        return 0.0
    return float(12 * np.log2(SAMPLE_RATE / np.median(lags[voiced]) / 55.0))


class OnnxEmbedder:
    """A speaker-embedding ONNX model run by onnxruntime."""

    metric = "cosine"
    threshold = 0.5

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options,
                                                     providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        features = fbank(samples)
        features -= features.mean(axis=0, keepdims=True)
        output = self._session.run(None, {self._input: features[np.newaxis]})[0]
        return np.asarray(output, dtype=np.float32).reshape(-1)


def load_embedder(path: Path | None) -> Embedder:
    if path is None:
        return SpectralEmbedder()
    log.info("diarization: speaker embeddings from %s", path)
    return OnnxEmbedder(path)


# --- segmentation and clustering -------------------------------------------------------------


def speech_windows(audio: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample offsets of the speech, in windows of at most ``WINDOW_S``."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    regions = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300,
                                                      speech_pad_ms=60))
    windows: list[tuple[int, int]] = []
    limit = int(WINDOW_S * SAMPLE_RATE)
    for region in regions:
        start, end = int(region["start"]), int(region["end"])
        pieces = max(1, math.ceil((end - start) / limit))
        bounds = np.linspace(start, end, pieces + 1).astype(int)
        windows.extend(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    return windows


def cluster(embeddings: np.ndarray, num_speakers: int | None, embedder: Embedder) -> list[int]:
    """A label per embedding (0, 1, ... in order of first appearance): ``num_speakers``
    clusters, or as many as stay ``embedder.threshold`` apart."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    count = len(embeddings)
    if count < 2 or num_speakers == 1:
        return [0] * count
    distances = np.nan_to_num(pdist(embeddings.astype(np.float64), metric=embedder.metric),
                              nan=1.0)
    tree = linkage(distances, method="average")
    if num_speakers is not None:
        labels = fcluster(tree, t=min(num_speakers, count), criterion="maxclust")
    else:
        labels = fcluster(tree, t=embedder.threshold, criterion="distance")
    return _by_appearance([int(label) for label in labels])


def _by_appearance(labels: Sequence[int]) -> list[int]:
    order: dict[int, int] = {}
    return [order.setdefault(label, len(order)) for label in labels]


def speaker_name(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


# --- the whole --------------------------------------------------------------------------------


def diarize(audio: np.ndarray, words: Sequence[Word], num_speakers: int | None,
            embedder: Embedder) -> list[Turn]:
    """The speaker turns of ``audio``, each with the words spoken in it."""
    windows = speech_windows(audio)
    if not windows:
        return []
    embeddings = np.stack([embedder(audio[start:end]) for start, end in windows])
    labels = cluster(embeddings, num_speakers, embedder)
    spans: list[tuple[int, float, float]] = []  # (label, start s, end s), merged
    for (start, end), label in zip(windows, labels, strict=True):
        if spans and spans[-1][0] == label:
            spans[-1] = (label, spans[-1][1], end / SAMPLE_RATE)
        else:
            spans.append((label, start / SAMPLE_RATE, end / SAMPLE_RATE))
    texts: list[list[str]] = [[] for _ in spans]
    for word in words:
        texts[_nearest(spans, (word.start + word.end) / 2)].append(word.word)
    turns: list[tuple[int, float, float, str]] = []
    for (label, begins, ends), parts in zip(spans, texts, strict=True):
        if not parts:  # no word was heard there
            continue
        text = "".join(parts).strip()
        if turns and turns[-1][0] == label:
            turns[-1] = (label, turns[-1][1], ends, f"{turns[-1][3]} {text}")
        else:
            turns.append((label, begins, ends, text))
    names = _by_appearance([label for label, *_ in turns])
    return [Turn(speaker_name(name), start, end, text)
            for name, (_, start, end, text) in zip(names, turns, strict=True)]


def _nearest(spans: Sequence[tuple[int, float, float]], at: float) -> int:
    def distance(index: int) -> float:
        _, start, end = spans[index]
        return 0.0 if start <= at <= end else min(abs(at - start), abs(at - end))

    return min(range(len(spans)), key=distance)
