"""The fake Gemini upstream, checked with the official ``google-genai`` SDK directly (no
gateway in between), so that the gateway's tests run against Gemini's real wire format."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini_server import SIGNATURE, FakeGemini

WEATHER = types.FunctionDeclaration(name="get_weather", parameters_json_schema={
    "type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture
def client(fake_gemini: FakeGemini) -> genai.Client:
    return genai.Client(api_key="gm-key", http_options=types.HttpOptions(
        base_url=fake_gemini.url, api_version="v1beta",
        retry_options=types.HttpRetryOptions(attempts=1)))


def test_generate_content(client: genai.Client, fake_gemini: FakeGemini) -> None:
    answer = client.models.generate_content(
        model="echo", contents="hi there",
        config=types.GenerateContentConfig(system_instruction="be brief", candidate_count=2))
    assert answer.text == "echo: hi there"
    assert len(answer.candidates or []) == 2
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert answer.usage_metadata is not None
    assert (answer.usage_metadata.prompt_token_count,
            answer.usage_metadata.candidates_token_count) == (4, 6)
    assert fake_gemini.paths[-1] == "/v1beta/models/echo:generateContent"
    assert fake_gemini.headers[-1]["x-goog-api-key"] == "gm-key"
    assert fake_gemini.requests[-1]["systemInstruction"]["parts"] == [{"text": "be brief"}]


def test_stream(client: genai.Client, fake_gemini: FakeGemini) -> None:
    chunks = list(client.models.generate_content_stream(model="think", contents="hi there"))
    assert "".join(c.text or "" for c in chunks if c.candidates and not
                   c.candidates[0].content.parts[0].thought) == "echo: hi there"  # type: ignore[index, union-attr]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.thoughts_token_count == 5
    assert usage.cached_content_token_count == 2
    assert fake_gemini.paths[-1] == "/v1beta/models/think:streamGenerateContent?alt=sse"


def test_max_tokens_stop_and_safety(client: genai.Client) -> None:
    cut = client.models.generate_content(model="echo", contents="one two three",
                                         config=types.GenerateContentConfig(max_output_tokens=2))
    assert cut.text == "echo: one"
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS  # type: ignore[index]
    stopped = client.models.generate_content(
        model="echo", contents="one two three",
        config=types.GenerateContentConfig(stop_sequences=["three"]))
    assert stopped.text == "echo: one two"
    unsafe = client.models.generate_content(model="safety", contents="x")
    assert unsafe.candidates[0].finish_reason == types.FinishReason.SAFETY  # type: ignore[index]
    blocked = client.models.generate_content(model="blocked", contents="x")
    assert not blocked.candidates and blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_function_call_and_response(client: genai.Client, fake_gemini: FakeGemini) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    answer = client.models.generate_content(model="tool-call", contents="weather?",
                                            config=config)
    call = answer.function_calls[0]  # type: ignore[index]
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    part = answer.candidates[0].content.parts[0]  # type: ignore[index, union-attr]
    assert part.thought_signature is not None
    contents = [types.Content(role="user", parts=[types.Part(text="weather?")]),
                answer.candidates[0].content,  # type: ignore[index]
                types.Content(role="user", parts=[types.Part.from_function_response(
                    name="get_weather", response={"output": "sunny"})])]
    followup = client.models.generate_content(model="echo", contents=contents, config=config)
    assert followup.text == "echo: weather?"
    sent = fake_gemini.requests[-1]["contents"][1]["parts"][0]
    assert sent["thoughtSignature"] == SIGNATURE
    streamed = list(client.models.generate_content_stream(model="tool-call", contents="w",
                                                          config=config))
    assert streamed[0].function_calls[0].args == {"city": "Paris"}  # type: ignore[index]


def test_json_mode(client: genai.Client) -> None:
    answer = client.models.generate_content(
        model="echo", contents="x", config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema={"type": "object", "properties": {"city": {"type": "string"}}}))
    assert answer.parsed == {"city": "Paris"} or answer.text == '{"city": "Paris"}'


def test_embeddings(client: genai.Client, fake_gemini: FakeGemini) -> None:
    result = client.models.embed_content(model="embed", contents=["a b", "cde"],
                                         config=types.EmbedContentConfig(
                                             output_dimensionality=3))
    assert [e.values for e in result.embeddings or []] == [[3.0, 0.5, -1.0], [3.0, 0.5, -1.0]]
    assert fake_gemini.paths[-1] == "/v1beta/models/embed:batchEmbedContents"


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_errors_raise_the_sdk_exceptions(client: genai.Client, status: int) -> None:
    error_class = errors.ClientError if status < 500 else errors.ServerError
    with pytest.raises(error_class) as caught:
        client.models.generate_content(model=f"error-{status}", contents="x")
    assert caught.value.code == status
    assert caught.value.message == f"fake gemini error {status}"
    if status == 429:
        assert caught.value.details["error"]["details"][0]["retryDelay"] == "7s"


def test_midstream_error_raises(client: genai.Client) -> None:
    with pytest.raises(errors.APIError) as caught:
        list(client.models.generate_content_stream(model="midstream-error", contents="a b"))
    assert caught.value.code == 503


def test_two_calls_and_one_candidate(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    answer = client.models.generate_content(model="two-calls", contents="w", config=config)
    assert [c.args for c in answer.function_calls or []] == [{"city": "Paris"}, {"city": "Rome"}]
    fewer = client.models.generate_content(
        model="one-candidate", contents="hi", config=types.GenerateContentConfig(
            candidate_count=2))
    assert len(fewer.candidates or []) == 1 and fewer.text == "echo: hi"
