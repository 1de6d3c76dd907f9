"""/v1/responses against local models: the tiny GGUF (llama-cpp) and ONNX models in process,
and the real embedded SmolLM2 behind ``gateway serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.models.make_tiny_gguf import make_tiny_gguf
from tests.test_local import local_models
from tests.test_local_real import ANSWER, QUESTION, Served, serving

pytest.importorskip("llama_cpp", reason="the local extra: pip install -e '.[local]'")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-onnx"])
def test_tiny_models(make_gateway: GatewayFactory, tiny_gguf: Path, model: str) -> None:
    url = make_gateway({"models": local_models(tiny_gguf)})
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    answer = client.responses.create(model=model, input="hello there", max_output_tokens=8,
                                     temperature=0)
    assert answer.usage is not None and 1 <= answer.usage.output_tokens <= 8
    with client.responses.stream(model=model, input="hello there", max_output_tokens=8,
                                 temperature=0) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    final = events[-1].response  # type: ignore[union-attr]
    assert kinds[-1] == f"response.{answer.status}"  # (completed, or incomplete when cut)
    assert final.output_text == answer.output_text
    follow = client.responses.create(model=model, input="more", previous_response_id=answer.id,
                                     max_output_tokens=4)
    assert follow.usage is not None
    assert follow.usage.input_tokens > answer.usage.input_tokens  # (the history went first)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    cwd = tmp_path_factory.mktemp("empty")
    served: Served
    with serving(cwd, cwd / "serve.log") as served:
        yield openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)


@pytest.mark.real_model
def test_smollm2_create_and_stream(smollm2: openai.OpenAI) -> None:
    question = QUESTION[0]["content"]
    answer = smollm2.responses.create(model="smollm2", input=question, temperature=0)
    assert answer.output_text == ANSWER and answer.status == "completed"
    with smollm2.responses.stream(model="smollm2", input=question, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == ANSWER == final.output_text


class Capital(BaseModel):
    capital: str = Field(max_length=20)


@pytest.mark.real_model
def test_smollm2_parse(smollm2: openai.OpenAI) -> None:
    answer = smollm2.responses.parse(model="smollm2", input="What is the capital of France?",
                                     text_format=Capital, temperature=0, max_output_tokens=40)
    assert answer.output_parsed == Capital(capital="Paris")
