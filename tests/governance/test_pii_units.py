"""The PII detectors and the stream restorer, on their own."""

from __future__ import annotations

import re

import orjson
import pytest

from gateway.guardrails.config import ENTITIES, GuardrailConfig
from gateway.guardrails.detect import Detector
from gateway.guardrails.pii import Guardrails, Vault
from gateway.guardrails.restore import StreamRestorer, restore_body
from wire.errors import ContentPolicyViolation
from wire.openai import StreamChunk

FOUND = [
    ("EMAIL", "write to jane.roe+x@mail.example.co.kr today", "jane.roe+x@mail.example.co.kr"),
    ("PHONE", "call +1 415 555 0132 now", "+1 415 555 0132"),
    ("PHONE", "휴대폰 010-1234-5678 입니다", "010-1234-5678"),
    ("PHONE", "office (02) 555-1234.", "(02) 555-1234"),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "card 5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("IBAN", "IBAN DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "to GB82WEST12345698765432 please", "GB82WEST12345698765432"),
    ("IP_ADDRESS", "host 192.168.0.12 is down", "192.168.0.12"),
    ("IP_ADDRESS", "v6 2001:db8::8a2e:370:7334 up", "2001:db8::8a2e:370:7334"),
    ("API_KEY", "key sk-proj-abcdefghijklmnopqrstuv1234 ok", "sk-proj-abcdefghijklmnopqrstuv1234"),
    ("API_KEY", "aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("API_KEY", "ghp_" + "a" * 36, "ghp_" + "a" * 36),
    ("API_KEY", 'config: password="hunter2!x"', "hunter2!x"),
    ("KR_RRN", "주민번호 900101-1234567", "900101-1234567"),
    ("US_SSN", "SSN 123-45-6789.", "123-45-6789"),
]
NOT_FOUND = [
    "card 4111 1111 1111 1112 fails Luhn",
    "IBAN DE89 3704 0044 0532 0130 01 fails its check digits",
    "version 10.1.2 and 999.1.1.1 and the time 10:30",
    "SSN 000-12-3456 and 666-12-3456 are never issued",
    "RRN 901301-1234567 has no 13th month",
    "order 12345 shipped 2024-01-02",
]


@pytest.mark.parametrize(("entity", "text", "value"), FOUND)
def test_found(entity: str, text: str, value: str) -> None:
    found = Detector(ENTITIES, {}).find(text)
    assert [(f.entity, text[f.start:f.end]) for f in found] == [(entity, value)]


@pytest.mark.parametrize("text", NOT_FOUND)
def test_not_found(text: str) -> None:
    assert Detector(ENTITIES, {}).find(text) == []


def test_custom_patterns_and_chosen_entities() -> None:
    detector = Detector(["EMAIL"], {"EMPLOYEE_ID": "E-[0-9]{6}"})
    text = "E-123456 a@b.io 4111 1111 1111 1111"
    assert [f.entity for f in detector.find(text)] == ["EMPLOYEE_ID", "EMAIL"]


def guard(**pii: object) -> Guardrails:
    return Guardrails([GuardrailConfig.model_validate({"pii": pii})])


def test_mask_numbers_per_entity_and_keeps_values_stable() -> None:
    vault = Vault()
    messages = [{"role": "system", "content": "ops: a@x.io"},
                {"role": "user", "content": [{"type": "text", "text": "b@y.io, a@x.io, "
                                              "+1 415 555 0132"}]}]
    masked = guard(restore=True).apply(messages, vault)
    assert masked[0]["content"] == "ops: <EMAIL_1>"
    assert masked[1]["content"][0]["text"] == "<EMAIL_2>, <EMAIL_1>, <PHONE_1>"
    assert messages[0]["content"] == "ops: a@x.io"  # the input is not changed
    assert vault.restore == {"<EMAIL_1>": "a@x.io", "<EMAIL_2>": "b@y.io",
                             "<PHONE_1>": "+1 415 555 0132"}
    assert guard().apply(messages, Vault()) and Vault().restore == {}


def test_block_names_types_never_values() -> None:
    with pytest.raises(ContentPolicyViolation) as caught:
        guard(action="block").apply([{"role": "user", "content": "a@x.io 123-45-6789"}],
                                    Vault())
    assert "EMAIL" in caught.value.message and "US_SSN" in caught.value.message
    assert "a@x.io" not in caught.value.message and caught.value.param == "messages"


def test_restore_body() -> None:
    body = orjson.dumps({"choices": [{"message": {"content": "to <EMAIL_1> and <X_9>"}}]})
    out = orjson.loads(restore_body(body, {"<EMAIL_1>": 'a"b@x.io'}))
    assert out["choices"][0]["message"]["content"] == 'to a"b@x.io and <X_9>'


def _chunk(content: str | None, finish: str | None = None) -> StreamChunk:
    delta = {} if content is None else {"content": content}
    return StreamChunk(orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}))


def _contents(chunks: list[StreamChunk]) -> list[str]:
    return [orjson.loads(c.data)["choices"][0]["delta"].get("content", "") for c in chunks]


VALUES = {"<EMAIL_1>": "a@x.io", "<EMAIL_12>": "b@y.io"}
ANSWER = "mail <EMAIL_1> or <EMAIL_12>, not <b> nor <EMAIL_"


@pytest.mark.parametrize("cut", range(1, len(ANSWER)))
def test_a_placeholder_split_across_chunks_is_restored_whole(cut: int) -> None:
    restorer = StreamRestorer(VALUES)
    pieces = [ANSWER[:cut], ANSWER[cut:]]
    out = [restorer.chunk(_chunk(p)) for p in pieces] + [restorer.chunk(_chunk(None, "stop"))]
    contents = _contents(out)
    assert "".join(contents) == "mail a@x.io or b@y.io, not <b> nor <EMAIL_"
    for sent in contents[:-1]:  # never the start of a placeholder before the end
        assert not re.search(r"<[A-Z0-9_]*\Z", sent), sent


def test_held_text_goes_out_when_the_stream_ends_unfinished() -> None:
    restorer = StreamRestorer(VALUES)
    assert _contents([restorer.chunk(_chunk("hi <EMAIL_1"))]) == ["hi "]
    rest = restorer.rest()
    assert rest is not None and _contents([rest]) == ["<EMAIL_1"]
