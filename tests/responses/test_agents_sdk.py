"""The OpenAI Agents SDK (``openai-agents``), which speaks only the Responses API by default:
a two-turn agent with one function tool, through the gateway, to the fake Anthropic upstream
(its first turn forced to call the tool; the SDK resets ``tool_choice`` after a tool call)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.vendor_gateway import vendor_config

agents = pytest.importorskip("agents", reason="the dev extra: pip install openai-agents")


@pytest.mark.parametrize("streamed", [False, True])
async def test_two_turn_agent_with_a_function_tool(make_gateway: GatewayFactory,
                                                  fake_anthropic: FakeAnthropic,
                                                  fake_gemini: Any, fake_ollama: Any,
                                                  streamed: bool) -> None:
    url = make_gateway(vendor_config({"anthropic": fake_anthropic.url,
                                      "gemini": fake_gemini.url, "ollama": fake_ollama.url}))
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    agents.set_tracing_disabled(True)
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    agent = agents.Agent(
        name="weather", instructions="Answer about the weather.", tools=[get_weather],
        model=agents.OpenAIResponsesModel(model="anthropic", openai_client=client),
        model_settings=agents.ModelSettings(tool_choice="required"))
    if streamed:
        result = agents.Runner.run_streamed(agent, "weather in Paris?")
        kinds = [event.type async for event in result.stream_events()]
        assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    else:
        result = await agents.Runner.run(agent, "weather in Paris?")
    assert calls == ["Paris"]
    assert result.final_output == "echo: weather in Paris?"
    assert len(fake_anthropic.requests) == 2
    second = fake_anthropic.requests[-1]
    assert second["system"] == [{"type": "text", "text": "Answer about the weather."}]
    tool_use = second["messages"][1]["content"][-1]
    assert tool_use["type"] == "tool_use" and tool_use["input"] == {"city": "Paris"}
    result_block = second["messages"][2]["content"][0]
    assert result_block["type"] == "tool_result"
    assert json.dumps(result_block).count("sunny in Paris") == 1
