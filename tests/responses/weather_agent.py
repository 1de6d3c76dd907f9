"""The weather agent that the Responses tests run through the OpenAI Agents SDK
(``openai-agents``, the dev extra): one function tool, its first turn forced to call it
(``tool_choice="required"``; the SDK resets it after a tool call), then the answer."""

from __future__ import annotations

from dataclasses import dataclass

import openai
import pytest

from tests.conftest import MASTER_KEY

INSTRUCTIONS = "Answer about the weather."
QUESTION = "weather in Paris?"


@dataclass
class AgentRun:
    final_output: object
    calls: list[str]  # the cities the tool was called with
    kinds: list[str]  # the types of the streamed events ([] when not streamed)


async def run_weather_agent(url: str, model: str, *, streamed: bool) -> AgentRun:
    """Run the agent against the gateway at ``url`` with the deployment ``model``."""
    agents = pytest.importorskip("agents", reason="the dev extra: pip install openai-agents")
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
    agents.set_tracing_disabled(True)
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    agent = agents.Agent(
        name="weather", instructions=INSTRUCTIONS, tools=[get_weather],
        model=agents.OpenAIResponsesModel(model=model, openai_client=client),
        model_settings=agents.ModelSettings(tool_choice="required"))
    kinds: list[str] = []
    if streamed:
        result = agents.Runner.run_streamed(agent, QUESTION)
        kinds = [event.type async for event in result.stream_events()]
    else:
        result = await agents.Runner.run(agent, QUESTION)
    return AgentRun(result.final_output, calls, kinds)
