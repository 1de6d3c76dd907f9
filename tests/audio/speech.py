"""Real speech for the tests, made with espeak-ng (Debian's ``espeak-ng``): a male and a female
voice, alone or taking turns, as 16 kHz mono WAV bytes."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

RATE = 16_000
MALE, FEMALE = "en-us", "en-us+f3"


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def say(text: str, voice: str = MALE, speed: int = 150) -> np.ndarray:
    """``text`` spoken by ``voice`` as 16 kHz float samples."""
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(out)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
    samples = samples.astype(np.float32) / 32768.0
    if rate != RATE:  # espeak-ng speaks at 22,050 Hz
        positions = np.arange(0, len(samples), rate / RATE)
        samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
    return samples


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


def turns(lines: list[tuple[str, str]], pause_s: float = 0.7) -> bytes:
    """A conversation: (voice, text) in order, a pause between turns, as WAV bytes."""
    silence = np.zeros(int(pause_s * RATE), dtype=np.float32)
    pieces: list[np.ndarray] = [silence]
    for voice, text in lines:
        pieces += [say(text, voice), silence]
    return wav_bytes(np.concatenate(pieces))
