"""pydantic-ai through qwen-gateway, with both OpenAI models: OpenAIChatModel (Chat Completions,
translated) and OpenAIResponsesModel (Responses, passed through), on an OpenAIProvider pointed
at the gateway. No logfire is installed, so nothing is instrumented or exported."""

import asyncio

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.exceptions import ModelAPIError
from pydantic_ai.messages import ToolCallPart, ToolReturnPart
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from conftest import MODEL

BROKEN_STREAM = {"x-mock-drop-after": "6", "x-mock-tokens": "30"}
MODELS = {"chat": OpenAIChatModel, "responses": OpenAIResponsesModel}


def make_agent(stack, api: str, **kwargs) -> Agent:
    provider = OpenAIProvider(base_url=stack["base_url"], api_key="sk-pydantic-ai-client")
    return Agent(MODELS[api](MODEL, provider=provider), **kwargs)


@pytest.mark.parametrize("api", MODELS)
def test_run_plain(stack, api):
    result = make_agent(stack, api, instructions="Be helpful.").run_sync("こんにちは")
    assert result.output == "こんにちは!私は Qwen です。You said: こんにちは."
    assert result.usage.output_tokens > 0
    assert result.usage.requests == 1


@pytest.mark.parametrize("api", MODELS)
def test_run_stream(stack, api):
    agent = make_agent(stack, api)

    async def stream():
        async with agent.run_stream("stream please") as result:
            # debounce_by=None: every delta as it arrives (the default groups them per 0.1 s).
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
        return result, deltas

    result, deltas = asyncio.run(stream())
    assert len(deltas) > 3
    assert "".join(deltas) == "こんにちは!私は Qwen です。You said: stream please."
    # The chat model asks for stream_options.include_usage itself.
    assert result.usage.output_tokens > 0


@pytest.mark.parametrize("api", MODELS)
def test_tool_round_trip(stack, api):
    agent = make_agent(stack, api)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    result = agent.run_sync("Weather in Tokyo?")
    assert result.output == "Tool get_weather returned: sunny in Tokyo"
    parts = [part for message in result.all_messages() for part in message.parts]
    calls = [p for p in parts if isinstance(p, ToolCallPart)]
    assert [(c.tool_name, c.args_as_dict()) for c in calls] == [("get_weather", {"city": "Tokyo"})]
    assert [p.content for p in parts if isinstance(p, ToolReturnPart)] == ["sunny in Tokyo"]
    assert result.usage.requests == 2


class Trip(BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("api", MODELS)
def test_output_type_tool(stack, api):
    # pydantic-ai's default output mode: a `final_result` function tool the model calls.
    result = make_agent(stack, api, output_type=Trip).run_sync("Plan a trip")
    assert result.output == Trip(city="Tokyo", days=1)


@pytest.mark.parametrize("api", MODELS)
def test_output_type_native(stack, api):
    # NativeOutput: a json_schema response_format (chat) / text.format (Responses).
    result = make_agent(stack, api, output_type=NativeOutput(Trip)).run_sync("Plan a trip")
    assert result.output == Trip(city="Tokyo", days=1)


@pytest.mark.parametrize("api", MODELS)
def test_broken_stream_raises(stack, api):
    agent = make_agent(stack, api, model_settings={"extra_headers": BROKEN_STREAM})
    deltas = []

    async def stream():
        async with agent.run_stream("hi") as result:
            async for delta in result.stream_text(delta=True, debounce_by=None):
                deltas.append(delta)

    with pytest.raises(ModelAPIError) as err:
        asyncio.run(stream())
    assert deltas  # text came first: the failure really was mid-stream
    assert "upstream" in str(err.value)
