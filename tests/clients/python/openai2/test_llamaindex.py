"""LlamaIndex through qwen-gateway: OpenAILike (llama-index-llms-openai-like; Chat Completions,
translated) and OpenAIResponses (llama-index-llms-openai; Responses, passed through).

Tokenizers: nothing here calls tiktoken (which would download its encodings). OpenAILike's
`_tokenizer` is its `tokenizer` field (None by default; used only to infer max_tokens for
non-chat completion models, llama_index/llms/openai/base.py `_update_max_tokens`).
OpenAIResponses defines `_tokenizer` with tiktoken.encoding_for_model but no chat, stream, tool
or structured path calls it. The conftest's loopback guard would fail these tests if anything
did. (LlamaIndex's global `get_tokenizer()`, used by node parsers and memory buffers, does
download tiktoken's encoding: set `Settings.tokenizer` to a callable there.)

OpenAIResponses needs `context_window=` for a Qwen model: its metadata otherwise looks the name
up in OpenAI's table and raises "Unknown model" (llama_index/llms/openai/responses.py `metadata`).
"""

import openai
import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAIResponses
from llama_index.llms.openai_like import OpenAILike
from pydantic import BaseModel

from conftest import MODEL

BROKEN_STREAM = {"x-mock-drop-after": "6", "x-mock-tokens": "30"}


def like(stack, **kwargs) -> OpenAILike:
    return OpenAILike(
        model=MODEL,
        api_base=stack["base_url"],
        api_key="sk-llamaindex-client",
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=128000,
        max_retries=0,
        timeout=20,
        **kwargs,
    )


def responses(stack, **kwargs) -> OpenAIResponses:
    return OpenAIResponses(
        model=MODEL,
        api_base=stack["base_url"],
        api_key="sk-llamaindex-client",
        context_window=128000,
        max_retries=0,
        timeout=20,
        **kwargs,
    )


LLMS = {"openai_like": like, "responses": responses}


@pytest.mark.parametrize("kind", LLMS)
def test_chat_plain(stack, kind):
    answer = LLMS[kind](stack).chat([ChatMessage(role="user", content="こんにちは")])
    assert answer.message.content == "こんにちは!私は Qwen です。You said: こんにちは."
    assert answer.raw.usage.total_tokens > 0


@pytest.mark.parametrize("kind", LLMS)
def test_complete_plain(stack, kind):
    assert LLMS[kind](stack).complete("hi").text == "こんにちは!私は Qwen です。You said: hi."


@pytest.mark.parametrize("kind", LLMS)
def test_stream_chat(stack, kind):
    pieces = list(LLMS[kind](stack).stream_chat([ChatMessage(role="user", content="stream please")]))
    deltas = [p.delta for p in pieces if p.delta]
    assert len(deltas) > 3
    assert "".join(deltas) == "こんにちは!私は Qwen です。You said: stream please."
    assert pieces[-1].message.content == "こんにちは!私は Qwen です。You said: stream please."


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("kind", LLMS)
def test_tool_round_trip(stack, kind):
    llm = LLMS[kind](stack)
    tool = FunctionTool.from_defaults(fn=get_weather)
    first = llm.chat_with_tools([tool], user_msg="Weather in Tokyo?")
    calls = llm.get_tool_calls_from_response(first)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Tokyo"})]
    output = tool(**calls[0].tool_kwargs)
    messages = [
        ChatMessage(role="user", content="Weather in Tokyo?"),
        first.message,
        ChatMessage(
            role="tool",
            content=str(output),
            additional_kwargs={"tool_call_id": calls[0].tool_id, "name": calls[0].tool_name},
        ),
    ]
    second = llm.chat_with_tools([tool], chat_history=messages)
    assert second.message.content == "Tool get_weather returned: sunny in Tokyo"


@pytest.mark.parametrize("kind", LLMS)
def test_predict_and_call(stack, kind):
    answer = LLMS[kind](stack).predict_and_call([FunctionTool.from_defaults(fn=get_weather)], user_msg="Weather?")
    assert answer.response == "sunny in Tokyo"
    assert answer.sources[0].tool_name == "get_weather"


class Trip(BaseModel):
    city: str
    days: int


@pytest.mark.parametrize("kind", LLMS)
def test_structured_predict(stack, kind):
    # OpenAILike: a function tool named after the class; OpenAIResponses: responses.parse with text.format.
    trip = LLMS[kind](stack).structured_predict(Trip, PromptTemplate("Plan a trip to {city}"), city="Tokyo")
    assert trip == Trip(city="Tokyo", days=1)


@pytest.mark.parametrize("kind", LLMS)
def test_as_structured_llm(stack, kind):
    answer = LLMS[kind](stack).as_structured_llm(Trip).complete("Plan a trip")
    assert answer.raw == Trip(city="Tokyo", days=1)


@pytest.mark.parametrize("kind", LLMS)
def test_broken_stream_raises(stack, kind):
    llm = LLMS[kind](stack, default_headers=BROKEN_STREAM)
    deltas = []
    with pytest.raises(openai.APIError) as err:
        for piece in llm.stream_chat([ChatMessage(role="user", content="hi")]):
            deltas.append(piece.delta or "")
    assert "".join(deltas) != ""  # text came first: the failure really was mid-stream
    assert "upstream" in str(err.value)
