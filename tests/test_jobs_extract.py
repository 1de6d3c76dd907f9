"""POST /v1/tools/extract end to end: a PDF's text layer read by the real ``ocr`` provider, a
fake OpenAI chat upstream as the model (``json-*`` models answer with the document's
``ANSWER:`` lines), a schema validated with one retry, question answering without a schema,
long documents chunk by chunk; with the in-process engine and with saq on redis."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.openai_server import FakeOpenAI
from tests.test_jobs import wait
from tests.tool_files import text_pdf

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
SCHEMA = {"type": "object", "properties": {"invoice": {"type": "string"},
                                           "total": {"type": "number"}},
          "required": ["invoice", "total"]}
INVOICE = ["Invoice INV-7 from Acme Ltd", 'ANSWER: {"invoice": "INV-7", "total": 42.5}']


@pytest.fixture
def gateway(make_gateway: GatewayFactory, fake_openai: FakeOpenAI,
            redis_url_or_none: str | None) -> str:
    upstream = {"provider": "openai-compatible", "api_base": fake_openai.url,  # type: ignore[attr-defined]
                "api_key": "sk-upstream", "retries": 0}
    return make_gateway({"jobs": {"chunk_tokens": 200}, "models": [
        {"name": "reader", "model": "json-answer", **upstream},
        {"name": "retrying", "model": "json-retry", **upstream},
        {"name": "stubborn", "model": "json-bad", **upstream},
        {"name": "echo", "model": "echo", **upstream},
        {"name": "ocr", "provider": "ocr"}]}, redis_url=redis_url_or_none)


def submit(url: str, files: dict[str, Any], **data: str) -> dict[str, Any]:
    posted = httpx.post(f"{url}/v1/tools/extract", headers=ADMIN, files=files, data=data,
                        timeout=30)
    assert posted.status_code == 202, posted.text
    return wait(url, posted.json()["id"])


def test_a_pdf_with_a_schema_gives_valid_data(gateway: str, fake_openai: FakeOpenAI) -> None:
    job = submit(gateway, {"file": ("invoice.pdf", text_pdf([INVOICE]), "application/pdf")},
                 model="reader", schema=orjson.dumps(SCHEMA).decode(),
                 prompt="Extract the invoice number and total.")
    assert job["status"] == "succeeded", job
    assert job["result"]["data"] == {"invoice": "INV-7", "total": 42.5}
    assert job["result"]["model"] == "reader"
    asked = fake_openai.requests[-1]
    assert asked["response_format"]["type"] == "json_schema"
    assert asked["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "Acme Ltd" in asked["messages"][-1]["content"]  # the PDF's text layer


def test_without_a_model_the_first_chat_model_answers(gateway: str,
                                                     fake_openai: FakeOpenAI) -> None:
    """An OpenAI-speaking deployment is a chat model, though it can also make images (it
    was passed over for that, so a config of OpenAI models had no default)."""
    job = submit(gateway, {"file": ("invoice.txt", "\n".join(INVOICE).encode(), "text/plain")},
                 schema=orjson.dumps(SCHEMA).decode())
    assert job["status"] == "succeeded", job
    assert job["result"]["model"] == "reader"
    assert job["result"]["data"] == {"invoice": "INV-7", "total": 42.5}


def test_an_invalid_answer_is_asked_again_once(gateway: str, fake_openai: FakeOpenAI) -> None:
    files = {"file": ("invoice.txt", "\n".join(INVOICE).encode(), "text/plain"),
             "schema_file": ("schema.json", orjson.dumps(SCHEMA), "application/json")}
    job = submit(gateway, files, model="retrying")
    assert job["status"] == "succeeded", job
    assert job["result"]["data"]["total"] == 42.5
    assert fake_openai.calls["json-retry"] == 2
    assert "did not validate" in fake_openai.requests[-1]["messages"][-1]["content"]
    failed = submit(gateway, files, model="stubborn")
    assert failed["status"] == "failed" and "result" not in failed
    assert "did not validate" in failed["error"]["message"]
    assert "'invoice' is a required property" in failed["error"]["message"]
    assert fake_openai.calls["json-bad"] == 2


def test_a_prompt_without_schema_is_question_answering(gateway: str,
                                                       fake_openai: FakeOpenAI) -> None:
    job = submit(gateway, {"file": ("notes.txt", b"The meeting is on Tuesday.", "text/plain")},
                 model="echo", prompt="When is the meeting?")
    assert job["status"] == "succeeded"
    assert "data" not in job["result"]
    assert "When is the meeting?" in job["result"]["text"]
    assert "Tuesday" in job["result"]["text"]
    default = submit(gateway, {"file": ("notes.txt", b"Hello.", "text/plain")}, model="echo")
    assert "extract its key facts" in fake_openai.requests[-1]["messages"][-1]["content"]
    assert default["status"] == "succeeded"


def test_a_long_document_is_read_chunk_by_chunk(gateway: str, fake_openai: FakeOpenAI) -> None:
    lines = [f"Line {i} of the long report says nothing of note." for i in range(120)]
    lines[5] = 'ANSWER: {"invoice": "INV-9"}'
    lines[100] = 'ANSWER: {"total": 7}'
    posted = httpx.post(f"{gateway}/v1/tools/extract", headers=ADMIN, timeout=30,
                        files={"file": ("long.txt", "\n".join(lines).encode(), "text/plain")},
                        data={"model": "reader", "schema": orjson.dumps(SCHEMA).decode()})
    job_id = posted.json()["id"]
    events = []
    with httpx.stream("GET", f"{gateway}/v1/jobs/{job_id}/events", headers=ADMIN,
                      timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(orjson.loads(line[6:]))
    job = events[-1]
    assert job["status"] == "succeeded", job
    assert job["result"]["data"] == {"invoice": "INV-9", "total": 7}  # merged from two parts
    chunks = fake_openai.calls["json-answer"]
    assert chunks >= 4  # 120 lines of about 12 tokens in parts of 200
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1


def test_bad_requests_are_400(gateway: str) -> None:
    def post(files: dict[str, Any], **data: str) -> httpx.Response:
        return httpx.post(f"{gateway}/v1/tools/extract", headers=ADMIN, files=files, data=data)

    text = {"file": ("a.txt", b"hello", "text/plain")}
    assert post({"prompt_file": ("p.txt", b"Q?")}, model="echo").json()["error"]["param"] == "file"
    assert post(text, model="echo", schema="{nope").json()["error"]["param"] == "schema"
    not_schema = post(text, model="echo", schema='{"type": 12}')
    assert not_schema.status_code == 400 and "not a valid JSON Schema" in not_schema.text
    assert post(text, model="nobody").status_code == 404


def test_defaults_are_the_config_files(gateway: str) -> None:
    answer = httpx.get(f"{gateway}/v1/tools/extract/defaults", headers=ADMIN).json()
    assert "extract its key facts" in answer["prompt"]
    assert answer["schema"]["type"] == "object" and "summary" in answer["schema"]["properties"]


def test_a_jobs_tokens_are_charged_to_its_keys_tpm(make_gateway: GatewayFactory,
                                                   fake_openai: FakeOpenAI,
                                                   redis_url_or_none: str | None) -> None:
    """A key with tpm 400 posts a job whose model call uses about 230 tokens: afterwards the
    key's own chat call asking for 300 more is refused (without the job's charge, 400 would
    have room for it)."""
    url = make_gateway({"models": [{"name": "echo", "model": "echo", "retries": 0,
                                    "provider": "openai-compatible", "api_key": "sk-upstream",
                                    "api_base": fake_openai.url}]},  # type: ignore[attr-defined]
                       redis_url=redis_url_or_none)
    secret = httpx.post(f"{url}/v1/keys", headers=ADMIN, json={"tpm": 400}).json()["key"]
    key = {"Authorization": f"Bearer {secret}"}
    chat = {"model": "echo", "max_tokens": 300, "messages": [{"role": "user", "content": "hi"}]}
    posted = httpx.post(f"{url}/v1/tools/extract", headers=key, timeout=30, data={
        "model": "echo", "prompt": "Repeat the document."},
        files={"file": ("apples.txt", ("apple " * 100).encode(), "text/plain")})
    assert posted.status_code == 202, posted.text
    job = wait(url, posted.json()["id"], key)
    assert job["status"] == "succeeded", job
    used = fake_openai.requests[-1]
    assert "apple apple" in used["messages"][-1]["content"]
    refused = httpx.post(f"{url}/v1/chat/completions", headers=key, json=chat, timeout=30)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "Rate limit reached for this API key" in refused.json()["error"]["message"]
    # the master key (no key limits) is not limited by it
    assert httpx.post(f"{url}/v1/chat/completions", headers=ADMIN, json=chat,
                      timeout=30).status_code == 200


def test_chunks_fit_the_models_context_window(make_gateway: GatewayFactory,
                                              fake_openai: FakeOpenAI) -> None:
    """Without a small ``jobs.chunk_tokens``, a model with a 400-token window still gets the
    document in parts of at most half of it."""
    url = make_gateway({"models": [
        {"name": "small", "provider": "openai-compatible", "model": "json-answer",
         "api_base": fake_openai.url, "retries": 0, "context_window": 400}]})  # type: ignore[attr-defined]
    lines = [f"Line {i} of the long report says nothing of note." for i in range(120)]
    lines[0] = 'ANSWER: {"invoice": "INV-3", "total": 1}'
    before = fake_openai.calls.get("json-answer", 0)
    job = submit(url, {"file": ("long.txt", "\n".join(lines).encode(), "text/plain")},
                 model="small", schema=orjson.dumps(SCHEMA).decode())
    assert job["status"] == "succeeded", job
    assert fake_openai.calls["json-answer"] - before >= 4  # ~1,450 tokens in parts of 200
    for request in fake_openai.requests[-4:]:
        assert len(request["messages"][-1]["content"]) < 2000


def test_the_models_own_tokenizer_counts_a_chunk() -> None:
    """A provider with its own tokenizer counts the text (its template's overhead taken off)."""
    from gateway.jobs.tools import _own_counter
    from wire.openai import ChatRequest

    class Words:  # a TokenCounter: 3 tokens of template, one per word
        def count_prompt_tokens(self, request: ChatRequest) -> int | None:
            return 3 + sum(len(str(m.content or "").split()) for m in request.messages)

    count = _own_counter(Words(), "m")
    assert count is not None and count("one two three") == 3 and count("") == 0
    assert _own_counter(object(), "m") is None
