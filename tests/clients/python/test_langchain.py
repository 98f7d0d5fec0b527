"""LangChain's ChatOpenAI through qwen-gateway: the Chat Completions path (the default, translated
by the gateway) and the Responses path (`use_responses_api=True`, passed through)."""

import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from conftest import MODEL

BROKEN_STREAM = {"x-mock-drop-after": "6", "x-mock-tokens": "30"}


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


def tool_round_trip(model: ChatOpenAI) -> str:
    bound = model.bind_tools([get_weather])
    question = HumanMessage("Weather in Tokyo?")
    first = bound.invoke([question])
    assert len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "Tokyo"}
    result = get_weather.invoke(call["args"])
    second = bound.invoke([question, first, ToolMessage(result, tool_call_id=call["id"])])
    return second.text


def test_bind_tools_round_trip(stack):
    assert tool_round_trip(llm(stack)) == "Tool get_weather returned: sunny in Tokyo"


class Trip(BaseModel):
    city: str
    days: int


def test_structured_output(stack):
    # langchain-openai's default method is json_schema: a chat `response_format` the gateway
    # turns into `text.format`.
    trip = llm(stack).with_structured_output(Trip).invoke("Plan a trip")
    assert trip == Trip(city="Tokyo", days=1)


def test_structured_output_function_calling(stack):
    trip = llm(stack).with_structured_output(Trip, method="function_calling").invoke("Plan a trip")
    assert trip == Trip(city="Tokyo", days=1)


def test_broken_stream_raises(stack):
    model = llm(stack, default_headers=BROKEN_STREAM)
    seen = []
    with pytest.raises(openai.APIError):
        for piece in model.stream("hi"):
            seen.append(piece.content)
    assert "".join(seen) != ""  # some text came first: the failure really was mid-stream


# The Responses path: ChatOpenAI(use_responses_api=True) calls POST /v1/responses.


def responses_llm(stack, **kwargs) -> ChatOpenAI:
    return llm(stack, use_responses_api=True, **kwargs)


def test_responses_invoke(stack):
    answer = responses_llm(stack).invoke("こんにちは")
    # Responses-path content is a list of blocks; `.text` joins the text ones.
    assert answer.text == "こんにちは!私は Qwen です。You said: こんにちは."
    assert answer.content[0]["type"] == "text"
    assert answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["status"] == "completed"
    assert answer.response_metadata["model_name"] == MODEL


def test_responses_stream(stack):
    pieces = list(responses_llm(stack).stream("stream please"))
    assert len(pieces) > 3
    total = pieces[0]
    for piece in pieces[1:]:
        total = total + piece
    assert total.text == "こんにちは!私は Qwen です。You said: stream please."
    # The Responses path reports usage from response.completed without stream_usage.
    assert total.usage_metadata["output_tokens"] > 0


def test_responses_tool_round_trip(stack):
    assert tool_round_trip(responses_llm(stack)) == "Tool get_weather returned: sunny in Tokyo"


def test_responses_structured_output(stack):
    trip = responses_llm(stack).with_structured_output(Trip).invoke("Plan a trip")
    assert trip == Trip(city="Tokyo", days=1)


def test_responses_broken_stream_raises(stack):
    model = responses_llm(stack, default_headers=BROKEN_STREAM)
    seen = []
    with pytest.raises(openai.APIError) as err:
        for piece in model.stream("hi"):
            seen.append(piece.text)
    assert "".join(seen) != ""
    assert "upstream" in str(err.value)
