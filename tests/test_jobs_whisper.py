"""POST /v1/tools/transcribe with the real local whisper (Whisper base, speech made with
espeak-ng), on saq and a real redis-server: the job's progress is the share of the audio
decoded, and moves in steps as segments are decoded."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from gateway.app import Settings, create_app
from gateway.config import validate
from tests.audio import speech
from tests.conftest import MASTER_KEY
from tests.fakes.serve import RedisServer, ServerThread

pytest.importorskip("faster_whisper", reason="the tools extra: pip install -e '.[tools]'")
if not speech.have_espeak():
    pytest.fail("the speech tests need espeak-ng: apt-get install espeak-ng")

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
# Whisper decodes 30 s windows: more than one window, so that progress has steps to show
LINES = ["Good morning, let us start the meeting.", "The first item is the budget.",
         "We spent less than planned this spring.", "The second item is the new office.",
         "It opens in the autumn, near the station.", "The third item is the summer party.",
         "It will be held in the garden in July.", "The last item is the website.",
         "The new pages go online next week.", "Thank you all, the meeting is closed."]


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer) -> Iterator[str]:
    redis_server.flush()
    config = validate({"models": [{"name": "whisper-1", "provider": "whisper",
                                   "beam_size": 1, "language": "en"}]})
    server = ServerThread(create_app(config, Settings(master_key=MASTER_KEY,
                                                      redis_url=redis_server.url))).start()
    yield server.url
    server.stop()


def test_a_long_recording_as_a_job_reports_the_share_decoded(gateway: str) -> None:
    recording = speech.turns([(speech.MALE, line) for line in LINES], pause_s=2.5)
    posted = httpx.post(f"{gateway}/v1/tools/transcribe", headers=ADMIN, timeout=60,
                        files={"file": ("meeting.wav", recording, "audio/wav")},
                        data={"model": "whisper-1"})
    assert posted.status_code == 202, posted.text
    events = []
    with httpx.stream("GET", f"{gateway}/v1/jobs/{posted.json()['id']}/events",
                      headers=ADMIN, timeout=600) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line[6:]))
    final = events[-1]
    assert final["status"] == "succeeded", final
    result = final["result"]
    assert result["language"] == "english" and result["duration"] > 35
    assert {"office", "party", "garden"} <= set(re.findall(r"[a-z]+", result["text"].lower()))
    assert len(result["segments"]) >= 2
    steps = [e["progress"] for e in events if e["status"] == "running"]
    assert steps == sorted(steps)
    assert any(0.05 < p < 1 for p in steps), steps  # moved with the decoded audio
