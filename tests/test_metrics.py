"""/metrics carries every metric the core fills, with the contract's names and labels."""

from __future__ import annotations

import contextlib

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MASTER_KEY

MESSAGES = [{"role": "user", "content": "count these words"}]


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(data: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return data.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_traffic(gateway: str) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=MASTER_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    with contextlib.suppress(openai.APIStatusError):
        client.chat.completions.create(model="fake/error-500", messages=MESSAGES)  # type: ignore[arg-type]
    client.embeddings.create(model="gpt-test", input="a b")
    data = samples(gateway)
    chat = "/v1/chat/completions"
    assert value(data, "gateway_requests_total", model="gpt-test", endpoint=chat,
                 status="200") == 2
    assert value(data, "gateway_requests_total", model="fake/error-500", endpoint=chat,
                 status="502") == 1
    assert value(data, "gateway_requests_total", model="gpt-test", endpoint="/v1/embeddings",
                 status="200") == 1
    assert value(data, "gateway_request_duration_seconds_count", model="gpt-test",
                 endpoint=chat) == 2
    assert value(data, "gateway_time_to_first_token_seconds_count", model="gpt-test") == 1
    # prompt: 3 words twice plus 2 embedded; completion: 4 words twice (stream usage counted
    # although the client did not ask for it)
    assert value(data, "gateway_tokens_total", model="gpt-test", type="prompt") == 8
    assert value(data, "gateway_tokens_total", model="gpt-test", type="completion") == 8
    assert value(data, "gateway_upstream_errors_total", model="fake/error-500",
                 provider="openai-compatible", reason="upstream_error") == 1
    assert value(data, "gateway_in_flight_requests") == 1  # the scrape itself


def test_unmatched_and_unknown_models_do_not_grow_labels(gateway: str) -> None:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    httpx.get(f"{gateway}/v1/whatever", headers=headers)
    httpx.post(f"{gateway}/v1/chat/completions", headers=headers,
               json={"model": "random-name-123", "messages": MESSAGES})
    data = samples(gateway)
    assert value(data, "gateway_requests_total", model="", endpoint="unmatched",
                 status="404") == 1
    assert value(data, "gateway_requests_total", model="", endpoint="/v1/chat/completions",
                 status="404") == 1
    assert not any("random-name-123" in str(key) for key in data)
