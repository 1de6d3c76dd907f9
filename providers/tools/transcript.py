"""A transcript and the ways OpenAI writes one: ``json``, ``text``, ``srt``, ``vtt``,
``verbose_json``, ``diarized_json``, and the ``transcript.text.*`` stream events.

Pure functions over small typed values; the whisper provider fills them from faster-whisper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from wire.audio import AudioAnswer, Task
from wire.errors import InvalidRequest
from wire.sse import encode_data

# Whisper's languages (ISO 639-1 code -> the name OpenAI's verbose_json reports).
_NAMES = (
    "en:english zh:chinese de:german es:spanish ru:russian ko:korean fr:french ja:japanese "
    "pt:portuguese tr:turkish pl:polish ca:catalan nl:dutch ar:arabic sv:swedish it:italian "
    "id:indonesian hi:hindi fi:finnish vi:vietnamese he:hebrew uk:ukrainian el:greek "
    "ms:malay cs:czech ro:romanian da:danish hu:hungarian ta:tamil no:norwegian th:thai "
    "ur:urdu hr:croatian bg:bulgarian lt:lithuanian la:latin mi:maori ml:malayalam cy:welsh "
    "sk:slovak te:telugu fa:persian lv:latvian bn:bengali sr:serbian az:azerbaijani "
    "sl:slovenian kn:kannada et:estonian mk:macedonian br:breton eu:basque is:icelandic "
    "hy:armenian ne:nepali mn:mongolian bs:bosnian kk:kazakh sq:albanian sw:swahili "
    "gl:galician mr:marathi pa:punjabi si:sinhala km:khmer sn:shona yo:yoruba so:somali "
    "af:afrikaans oc:occitan ka:georgian be:belarusian tg:tajik sd:sindhi gu:gujarati "
    "am:amharic yi:yiddish lo:lao uz:uzbek fo:faroese ht:haitian_creole ps:pashto "
    "tk:turkmen nn:nynorsk mt:maltese sa:sanskrit lb:luxembourgish my:myanmar bo:tibetan "
    "tl:tagalog mg:malagasy as:assamese tt:tatar haw:hawaiian ln:lingala ha:hausa "
    "ba:bashkir jw:javanese su:sundanese yue:cantonese")
LANGUAGES: dict[str, str] = {code: name.replace("_", " ") for code, name in
                             (pair.split(":") for pair in _NAMES.split())}
_CODES = {name: code for code, name in LANGUAGES.items()}


def language_code(language: str | None) -> str | None:
    """A client's ``language`` (``ko``, ``KO``, ``korean``) as Whisper's code; 400 if unknown."""
    if language is None:
        return None
    value = language.strip().lower()
    if value in LANGUAGES:
        return value
    if value in _CODES:
        return _CODES[value]
    raise InvalidRequest(f"Invalid value for 'language': '{language}' is not a language this "
                         "model knows (use an ISO-639-1 code such as 'en' or 'ko').",
                         param="language")


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str  # as Whisper writes it, with its leading space
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Turn:
    """A stretch of one speaker (diarization)."""

    speaker: str
    start: float
    end: float
    text: str


@dataclass(slots=True)
class Transcript:
    task: Task
    language: str  # Whisper's code
    duration: float
    segments: list[Segment] = field(default_factory=list)
    turns: list[Turn] | None = None  # diarized_json only

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


def render(transcript: Transcript, response_format: str,
           granularities: Sequence[str] = ()) -> AudioAnswer:
    """The answer in ``response_format``, as OpenAI writes it."""
    seconds = transcript.duration
    if response_format == "text":
        return AudioAnswer((transcript.text + "\n").encode(), "text/plain; charset=utf-8", seconds)
    if response_format in ("srt", "vtt"):
        writer = srt if response_format == "srt" else vtt
        return AudioAnswer(writer(transcript.segments).encode(), "text/plain; charset=utf-8",
                           seconds)
    body: dict[str, object]
    if response_format == "verbose_json":
        body = verbose(transcript, granularities)
    elif response_format == "diarized_json":
        body = diarized(transcript)
    else:
        body = {"text": transcript.text, "usage": usage(transcript.duration)}
    return AudioAnswer(orjson.dumps(body), "application/json", seconds)


def usage(duration: float) -> dict[str, object]:
    return {"type": "duration", "seconds": math.ceil(duration)}


def verbose(transcript: Transcript, granularities: Sequence[str] = ()) -> dict[str, object]:
    body: dict[str, object] = {
        "task": transcript.task,
        "language": LANGUAGES.get(transcript.language, transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [_segment_json(s) for s in transcript.segments]
    if "word" in granularities:
        body["words"] = [{"word": w.word.strip(), "start": _t(w.start), "end": _t(w.end)}
                         for s in transcript.segments for w in s.words]
    body["usage"] = usage(transcript.duration)
    return body


def _segment_json(segment: Segment) -> dict[str, object]:
    return {"id": segment.id, "seek": segment.seek, "start": _t(segment.start),
            "end": _t(segment.end), "text": segment.text, "tokens": list(segment.tokens),
            "temperature": segment.temperature, "avg_logprob": segment.avg_logprob,
            "compression_ratio": segment.compression_ratio,
            "no_speech_prob": segment.no_speech_prob}


def diarized(transcript: Transcript) -> dict[str, object]:
    turns = transcript.turns or []
    return {
        "task": "transcribe",
        "duration": round(transcript.duration, 3),
        "text": " ".join(t.text for t in turns if t.text),
        "segments": [turn_json(turn, i) for i, turn in enumerate(turns)],
        "usage": usage(transcript.duration),
    }


def turn_json(turn: Turn, index: int) -> dict[str, object]:
    return {"type": "transcript.text.segment", "id": f"seg_{index:03d}",
            "start": _t(turn.start), "end": _t(turn.end), "text": turn.text,
            "speaker": turn.speaker}


def _t(seconds: float) -> float:
    return round(seconds, 3)


def timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: Sequence[Segment]) -> str:
    return "".join(f"{i}\n{timestamp(s.start, ',')} --> {timestamp(s.end, ',')}\n"
                   f"{s.text.strip()}\n\n" for i, s in enumerate(segments, 1))


def vtt(segments: Sequence[Segment]) -> str:
    return "WEBVTT\n\n" + "".join(f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n"
                                  f"{s.text.strip()}\n\n" for s in segments)


# --- stream events ---------------------------------------------------------------------------


def delta_event(text: str, segment_id: str | None = None) -> bytes:
    event: dict[str, object] = {"type": "transcript.text.delta", "delta": text}
    if segment_id is not None:
        event["segment_id"] = segment_id
    return encode_data(orjson.dumps(event))


def segment_event(turn: Turn, index: int) -> bytes:
    return encode_data(orjson.dumps(turn_json(turn, index)))


def done_event(text: str) -> bytes:
    return encode_data(orjson.dumps({"type": "transcript.text.done", "text": text}))
