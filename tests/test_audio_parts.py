"""The speech parts one by one: OpenAI's transcript formats, the form and its re-encoding, the
default weights' join, audio decoding of the common formats, diarization's clustering and its
ONNX embedder, and the one-line config errors of a whisper deployment."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import orjson
import pytest

from gateway.config import ConfigError, validate
from providers.tools import transcript as t
from wire.audio import multipart, parse_transcription
from wire.errors import InvalidRequest
from wire.uploads import UploadedFile

SEGMENTS = [t.Segment(0, 0.0, 2.5, " Hello there.", words=(t.Word(" Hello", 0.0, 0.6),
                                                            t.Word(" there.", 0.7, 2.5))),
            t.Segment(1, 3661.25, 3663.0, " Second line.")]


def test_formats_are_openais() -> None:
    transcript = t.Transcript("transcribe", "ko", 3663.2, SEGMENTS)
    assert t.render(transcript, "text").body == b"Hello there. Second line.\n"
    assert orjson.loads(t.render(transcript, "json").body) == {
        "text": "Hello there. Second line.", "usage": {"type": "duration", "seconds": 3664}}
    assert t.render(transcript, "srt").body.decode() == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
        "2\n01:01:01,250 --> 01:01:03,000\nSecond line.\n\n")
    assert t.render(transcript, "vtt").body.decode() == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n"
        "01:01:01.250 --> 01:01:03.000\nSecond line.\n\n")
    verbose = orjson.loads(t.render(transcript, "verbose_json").body)
    assert verbose["language"] == "korean" and "words" not in verbose
    assert verbose["segments"][1]["start"] == 3661.25
    words_only = orjson.loads(t.render(transcript, "verbose_json", ["word"]).body)
    assert "segments" not in words_only
    assert words_only["words"] == [{"word": "Hello", "start": 0.0, "end": 0.6},
                                   {"word": "there.", "start": 0.7, "end": 2.5}]


def test_diarized_json_and_stream_events() -> None:
    transcript = t.Transcript("transcribe", "en", 4.0, SEGMENTS,
                              [t.Turn("A", 0.0, 2.5, "Hello there."),
                               t.Turn("B", 3.0, 4.0, "Second line.")])
    body = orjson.loads(t.render(transcript, "diarized_json").body)
    assert body["text"] == "Hello there. Second line."
    assert [(s["speaker"], s["id"], s["type"]) for s in body["segments"]] == [
        ("A", "seg_000", "transcript.text.segment"), ("B", "seg_001", "transcript.text.segment")]
    assert t.delta_event("Hi") == b'data: {"type":"transcript.text.delta","delta":"Hi"}\n\n'
    assert t.done_event("Hi") == b'data: {"type":"transcript.text.done","text":"Hi"}\n\n'


def test_languages() -> None:
    assert t.language_code("KO") == "ko" and t.language_code("Korean") == "ko"
    assert t.language_code(None) is None
    with pytest.raises(InvalidRequest):
        t.language_code("xx")


def test_form_and_its_upstream_encoding() -> None:
    upload = UploadedFile("file", 'a "b".wav', "audio/wav", b"\x00\x01audio")
    fields = [("model", "w"), ("timestamp_granularities[]", "word"),
              ("timestamp_granularities[]", "segment"), ("stream", "true"), ("num_speakers", "2"),
              ("chunking_strategy", "auto")]
    request = parse_transcription("transcribe", fields, upload, b"raw", "multipart/x")
    assert request.granularities == ("word", "segment") and request.stream
    assert request.num_speakers == 2 and request.extra == {"chunking_strategy": "auto"}
    assert multipart(request, "w") == (b"raw", "multipart/x")  # unchanged: the client's bytes
    body, content_type = multipart(request, "upstream-w")
    boundary = content_type.split("boundary=")[1]
    parts = body.split(f"--{boundary}".encode())
    assert parts[-1] == b"--\r\n" and len(parts) == 2 + len(fields) + 1
    assert b'name="model"\r\n\r\nupstream-w\r\n' in parts[1]
    assert b'filename="a %22b%22.wav"\r\nContent-Type: audio/wav\r\n\r\n\x00\x01audio\r\n' in body
    for bad in ([("model", "w"), ("num_speakers", "0")], [("model", "w"), ("stream", "maybe")]):
        with pytest.raises(InvalidRequest):
            parse_transcription("transcribe", bad, upload)


def test_default_weights_join_once_with_their_sha256(tmp_path: Path) -> None:
    from providers.tools import whisper_weights as w

    folder = w.default_model_dir(tmp_path)
    model = folder / "model.bin"
    assert w.sha256_of(model) == w.MODEL_SHA256
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json",
                                                  "vocabulary.txt"}
    joined_at = model.stat().st_mtime_ns
    assert w.default_model_dir(tmp_path) == folder and model.stat().st_mtime_ns == joined_at
    with model.open("r+b") as damaged:
        damaged.write(b"\xff" * 16)
    w.default_model_dir(tmp_path)  # a damaged copy is joined again
    assert w.sha256_of(model) == w.MODEL_SHA256


def _encoded(samples: np.ndarray, container: str, codec: str, rate: int) -> bytes:
    import av

    data = np.interp(np.arange(0, len(samples), 16_000 / rate), np.arange(len(samples)),
                     samples).astype(np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.layout = "mono"  # type: ignore[attr-defined]
        frame = av.AudioFrame.from_ndarray(data[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:  # type: ignore[attr-defined]
            output.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(("container", "codec", "rate"), [
    ("wav", "pcm_s16le", 16_000), ("flac", "flac", 16_000), ("mp3", "libmp3lame", 16_000),
    ("ipod", "aac", 16_000), ("ogg", "libopus", 48_000), ("webm", "libopus", 48_000)])
def test_common_audio_formats_decode(container: str, codec: str, rate: int) -> None:
    pytest.importorskip("faster_whisper")
    from providers.tools.whisper import decode_audio

    tone = np.sin(np.arange(32_000) * 2 * np.pi * 220 / 16_000).astype(np.float32) * 0.5
    audio = decode_audio(_encoded(tone, container, codec, rate))
    assert abs(len(audio) / 16_000 - 2.0) < 0.15
    assert 0.2 < float(np.abs(audio).max()) < 0.8


def test_clustering_and_speaker_names() -> None:
    pytest.importorskip("scipy")
    from providers.tools import diarize as d

    embedder = d.SpectralEmbedder()
    low = [np.array([12.0, 0.1, 0.0]), np.array([11.0, 0.0, 0.2]), np.array([13.0, 0.1, 0.1])]
    high = [np.array([24.0, 0.5, 0.0]), np.array([23.0, 0.4, 0.2])]
    vectors = np.stack([high[0], low[0], high[1], low[1], low[2]])
    assert d.cluster(vectors, None, embedder) == [0, 1, 0, 1, 1]
    assert d.cluster(np.stack(low), None, embedder) == [0, 0, 0]
    assert d.cluster(vectors, 1, embedder) == [0] * 5
    assert d.cluster(np.stack(low), 3, embedder) == [0, 1, 2]
    assert [d.speaker_name(i) for i in (0, 1, 25, 26)] == ["A", "B", "Z", "AA"]


def test_diarize_with_a_given_number_of_speakers() -> None:
    pytest.importorskip("faster_whisper")
    from providers.tools import diarize as d
    from tests.audio import speech

    if not speech.have_espeak():
        pytest.fail("the speech tests need espeak-ng: apt-get install espeak-ng")
    pause = np.zeros(speech.RATE // 2, dtype=np.float32)
    parts = [speech.say("one two three", speech.FEMALE), pause,
             speech.say("four five six", speech.MALE), pause,
             speech.say("seven eight", speech.FEMALE)]
    audio = np.concatenate(parts)
    bounds = np.cumsum([0, *(len(p) for p in parts)]) / speech.RATE
    words = [t.Word(" first", bounds[0] + 0.2, bounds[0] + 0.5),
             t.Word(" second", bounds[2] + 0.2, bounds[2] + 0.5),
             t.Word(" third", bounds[4] + 0.2, bounds[4] + 0.5)]
    turns = d.diarize(audio, words, 2, d.SpectralEmbedder())
    assert [(turn.speaker, turn.text) for turn in turns] == [
        ("A", "first"), ("B", "second"), ("A", "third")]
    assert d.diarize(np.zeros(16_000, dtype=np.float32), words, None, d.SpectralEmbedder()) == []


def test_onnx_speaker_embedder(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from providers.tools import diarize as d

    # A stand-in speaker model of the documented shape: [1, frames, 80] -> [1, 80], the
    # per-channel energy of the (mean-normalized) filterbanks.
    graph = helper.make_graph(
        [helper.make_node("Mul", ["feats", "feats"], ["squared"]),
         helper.make_node("ReduceMean", ["squared", "axes"], ["embs"], keepdims=0)],
        "speaker", [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, None, 80])],
        [helper.make_tensor_value_info("embs", TensorProto.FLOAT, [1, 80])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    path = tmp_path / "speaker.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    embedder = d.load_embedder(path)
    samples = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    features = d.fbank(samples)
    features -= features.mean(axis=0)
    assert embedder.metric == "cosine"
    np.testing.assert_allclose(embedder(samples), (features ** 2).mean(axis=0), rtol=1e-4)


def _config_error(entry: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as error:
        validate({"models": [{"name": "stt", "provider": "whisper", **entry}]})
    message = str(error.value)
    assert "\n" not in message
    return message


def test_config_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "unknown language 'xx'" in _config_error({"language": "xx"})
    assert "no model.bin" in _config_error({"path": str(tmp_path)})
    assert "takes no 'path'" in _config_error({"api_base": "http://x/v1", "path": str(tmp_path)})
    assert "no such file" in _config_error({"diarization_model": str(tmp_path / "no.onnx")})
    import providers.tools.whisper as whisper

    real = whisper.importlib.util.find_spec
    monkeypatch.setattr(whisper.importlib.util, "find_spec",
                        lambda name, *a: None if name == "faster_whisper" else real(name, *a))
    message = _config_error({})
    assert re.search(r"models\[0\].*needs the 'faster_whisper' package: "
                     r"pip install -e '\.\[tools\]'", message), message
    # a remote whisper service needs no local runtime
    remote = validate({"models": [{"name": "stt", "provider": "whisper",
                                   "api_base": "http://gpu-box:8000/v1"}]})
    assert remote.models[0].provider == "whisper"
