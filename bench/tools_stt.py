"""What the gateway costs speech to text: the same file transcribed by bare faster-whisper in
this process and through ``gateway serve`` (a ``whisper`` deployment of the same weights, beam
size, threads and language), in one run, the two alternating so that a change in the machine's
load hits both alike.

Speed is the real-time factor's inverse: seconds of audio per second of processing. Prints the
medians and gateway/bare against the target of >= 0.95x, the transcripts' agreement, and the
machine's load (``uptime``) before and after. Run it on a quiet machine:

    flock -x /tmp/cpu.lock python bench/tools_stt.py [--file AUDIO] [--runs 3] [--threads 2]
                                                     [--beam 5] [--json PATH]

Without ``--file`` the audio is ~30 s of English read by espeak-ng (``apt-get install
espeak-ng``). The weights are the default ones (the tools extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import BenchError, free_port, wait_http  # noqa: E402

TARGET = 0.95
TEXT = ("The quarterly meeting began with a review of the budget. Sales grew in every region, "
        "and the team agreed to hire two more engineers before the summer. Next, the group "
        "discussed the new office, which opens in March. Finally, everyone thanked the "
        "organizers, and the meeting ended on time.")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def make_audio(path: Path) -> None:
    from tests.audio import speech

    samples = speech.say(TEXT)
    path.write_bytes(speech.wav_bytes(samples))


def audio_seconds(data: bytes) -> float:
    from providers.tools.whisper import decode_audio

    return len(decode_audio(data)) / 16_000


def start_gateway(workdir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "models.yaml"
    config.write_text(json.dumps({"models": [{
        "name": "whisper-1", "provider": "whisper", "beam_size": args.beam,
        "cpu_threads": args.threads, "language": "en", "preload": True}]}))
    port = free_port()
    log = workdir / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config",
                                 str(config), "--port", str(port)], stdout=out, stderr=out,
                                cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, log, "gateway")
    return proc, url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from faster_whisper import WhisperModel

    from providers.tools.whisper import decode_audio
    from providers.tools.whisper_weights import default_model_dir

    load_before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = args.file or workdir / "speech.wav"
        if args.file is None:
            make_audio(path)
        data = path.read_bytes()
        seconds = audio_seconds(data)
        model = WhisperModel(str(default_model_dir()), device="cpu", compute_type="int8",
                             cpu_threads=args.threads)
        proc, url = start_gateway(workdir, args)
        bare: list[float] = []
        through: list[float] = []
        texts: dict[str, str] = {}
        try:
            with httpx.Client(timeout=600) as http:
                for _ in range(args.runs):
                    started = time.perf_counter()
                    audio = decode_audio(data)  # (the gateway decodes the upload too)
                    segments, _ = model.transcribe(audio, language="en", beam_size=args.beam)
                    texts["bare"] = "".join(s.text for s in segments).strip()
                    bare.append(seconds / (time.perf_counter() - started))
                    started = time.perf_counter()
                    answer = http.post(f"{url}/v1/audio/transcriptions",
                                       files={"file": (path.name, data)},
                                       data={"model": "whisper-1"})
                    if answer.status_code != 200:
                        raise BenchError(f"gateway answered {answer.status_code}: {answer.text}")
                    through.append(seconds / (time.perf_counter() - started))
                    texts["gateway"] = answer.json()["text"]
        finally:
            proc.terminate()
            proc.wait(30)
    result: dict[str, Any] = {
        "audio_s": round(seconds, 2), "runs": args.runs, "threads": args.threads,
        "beam": args.beam, "bare_x_realtime": round(statistics.median(bare), 2),
        "gateway_x_realtime": round(statistics.median(through), 2),
        "same_text": texts["bare"] == texts["gateway"],
        "load_before": load_before, "load_after": uptime()}
    result["ratio"] = round(result["gateway_x_realtime"] / result["bare_x_realtime"], 3)
    print(f"audio {seconds:.1f} s, {args.runs} runs each, beam {args.beam}, "
          f"{args.threads} threads")
    print(f"bare faster-whisper: {result['bare_x_realtime']:.2f}x real time "
          f"(all: {', '.join(f'{s:.2f}' for s in bare)})")
    print(f"through the gateway: {result['gateway_x_realtime']:.2f}x real time "
          f"(all: {', '.join(f'{s:.2f}' for s in through)})")
    print(f"gateway/bare: {result['ratio']:.3f}x (target >= {TARGET}x); "
          f"same text: {result['same_text']}")
    print(f"load before: {load_before}\nload after:  {result['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["ratio"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
