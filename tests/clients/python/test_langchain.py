"""LangChain's ChatOpenAI through qwen-gateway's Chat Completions translation."""

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from conftest import MODEL


def llm(stack, **kwargs) -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL,
        base_url=stack["base_url"],
        api_key="sk-langchain-client",
        max_retries=0,
        timeout=20,
        **kwargs,
    )


def test_invoke(stack):
    answer = llm(stack).invoke("こんにちは")
    assert answer.content == "こんにちは!私は Qwen です。You said: こんにちは."
    assert answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["finish_reason"] == "stop"


def test_stream(stack):
    pieces = list(llm(stack, stream_usage=True).stream("stream please"))
    text = "".join(p.content for p in pieces)
    assert text == "こんにちは!私は Qwen です。You said: stream please."
    assert len(pieces) > 3
    total = pieces[0]
    for piece in pieces[1:]:
        total = total + piece
    assert total.usage_metadata["total_tokens"] > 0


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def test_bind_tools_round_trip(stack):
    model = llm(stack).bind_tools([get_weather])
    question = HumanMessage("Weather in Tokyo?")
    first = model.invoke([question])
    assert len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "Tokyo"}
    result = get_weather.invoke(call["args"])
    second = model.invoke([question, first, ToolMessage(result, tool_call_id=call["id"])])
    assert second.content == "Tool get_weather returned: sunny in Tokyo"
