"""The OpenAI Agents SDK (`openai-agents`) through qwen-gateway, with both of its OpenAI models:
OpenAIResponsesModel (POST /v1/responses, passed through) and OpenAIChatCompletionsModel
(POST /v1/chat/completions, translated). Tracing is disabled: its exporter would post to the
internet."""

import asyncio

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import BaseModel

from conftest import MODEL

set_tracing_disabled(True)

BROKEN_STREAM = {"x-mock-drop-after": "6", "x-mock-tokens": "30"}
MODELS = {"responses": OpenAIResponsesModel, "chat": OpenAIChatCompletionsModel}


def make_agent(stack, api: str, headers: dict | None = None, **kwargs) -> Agent:
    client = AsyncOpenAI(
        base_url=stack["base_url"],
        api_key="sk-agents-client",
        max_retries=0,
        timeout=20,
        default_headers=headers,
    )
    model = MODELS[api](model=MODEL, openai_client=client)
    return Agent(name="assistant", instructions="Be helpful.", model=model, **kwargs)


async def run_streamed(agent: Agent, prompt: str):
    result = Runner.run_streamed(agent, prompt)
    deltas = []
    async for event in result.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            deltas.append(event.data.delta)
    return result, deltas


@pytest.mark.parametrize("api", MODELS)
def test_run_plain(stack, api):
    result = asyncio.run(Runner.run(make_agent(stack, api), "こんにちは"))
    assert result.final_output == "こんにちは!私は Qwen です。You said: こんにちは."
    assert result.context_wrapper.usage.output_tokens > 0


@pytest.mark.parametrize("api", MODELS)
def test_run_streamed(stack, api):
    settings = ModelSettings(include_usage=True) if api == "chat" else ModelSettings()
    result, deltas = asyncio.run(run_streamed(make_agent(stack, api, model_settings=settings), "stream please"))
    assert len(deltas) > 3
    assert "".join(deltas) == "こんにちは!私は Qwen です。You said: stream please."
    assert result.final_output == "こんにちは!私は Qwen です。You said: stream please."
    assert result.context_wrapper.usage.output_tokens > 0


def test_streamed_chat_usage_needs_include_usage(stack):
    """OpenAIChatCompletionsModel sends `stream_options.include_usage` by default only to the
    official OpenAI host (agents/models/chatcmpl_helpers.py get_stream_options_param, via
    openai_client_utils.is_official_openai_client): through the gateway a streamed chat run
    counts zero tokens unless ModelSettings(include_usage=True) asks for them."""
    result, _ = asyncio.run(run_streamed(make_agent(stack, "chat"), "count me"))
    assert result.final_output.endswith("You said: count me.")
    assert result.context_wrapper.usage.total_tokens == 0
    assert result.context_wrapper.usage.requests == 1

    agent = make_agent(stack, "chat", model_settings=ModelSettings(include_usage=True))
    result, _ = asyncio.run(run_streamed(agent, "count me"))
    usage = result.context_wrapper.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("api", MODELS)
def test_function_tool_loop(stack, api):
    result = asyncio.run(Runner.run(make_agent(stack, api, tools=[get_weather]), "Weather in Tokyo?"))
    assert result.final_output == "Tool get_weather returned: sunny in Tokyo"
    calls = [item.raw_item for item in result.new_items if item.type == "tool_call_item"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert outputs == ["sunny in Tokyo"]
    assert result.context_wrapper.usage.requests == 2


class Trip(BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("api", MODELS)
def test_output_type(stack, api):
    result = asyncio.run(Runner.run(make_agent(stack, api, output_type=Trip), "Plan a trip"))
    assert result.final_output == Trip(city="Tokyo", days=1)


@pytest.mark.parametrize("api", MODELS)
def test_broken_stream_raises(stack, api):
    agent = make_agent(stack, api, headers=BROKEN_STREAM)
    deltas = []

    async def consume():
        result = Runner.run_streamed(agent, "hi")
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
                deltas.append(event.data.delta)

    with pytest.raises(openai.APIError) as err:
        asyncio.run(consume())
    assert "".join(deltas) != ""  # text came first: the failure really was mid-stream
    assert "upstream" in str(err.value)
