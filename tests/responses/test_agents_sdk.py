"""The OpenAI Agents SDK (``openai-agents``), which speaks only the Responses API by default:
a two-turn agent with one function tool, through the gateway, to the fake Anthropic upstream
(its first turn forced to call the tool; the SDK resets ``tool_choice`` after a tool call)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.responses.weather_agent import run_weather_agent
from tests.vendor_gateway import vendor_config

pytest.importorskip("agents", reason="the dev extra: pip install openai-agents")


@pytest.mark.parametrize("streamed", [False, True])
async def test_two_turn_agent_with_a_function_tool(make_gateway: GatewayFactory,
                                                  fake_anthropic: FakeAnthropic,
                                                  fake_gemini: Any, fake_ollama: Any,
                                                  streamed: bool) -> None:
    url = make_gateway(vendor_config({"anthropic": fake_anthropic.url,
                                      "gemini": fake_gemini.url, "ollama": fake_ollama.url}))
    run = await run_weather_agent(url, "anthropic", streamed=streamed)
    if streamed:
        assert "raw_response_event" in run.kinds and "run_item_stream_event" in run.kinds
    assert run.calls == ["Paris"]
    assert run.final_output == "echo: weather in Paris?"
    assert len(fake_anthropic.requests) == 2
    second = fake_anthropic.requests[-1]
    assert second["system"] == [{"type": "text", "text": "Answer about the weather."}]
    tool_use = second["messages"][1]["content"][-1]
    assert tool_use["type"] == "tool_use" and tool_use["input"] == {"city": "Paris"}
    result_block = second["messages"][2]["content"][0]
    assert result_block["type"] == "tool_result"
    assert json.dumps(result_block).count("sunny in Paris") == 1
