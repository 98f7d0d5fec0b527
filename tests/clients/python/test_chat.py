"""The official `openai` Python SDK's Chat Completions API through qwen-gateway's translation."""

import json

import openai
import pytest
from pydantic import BaseModel

from conftest import MODEL

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_create_plain(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "あなたは役立つアシスタントです。"},
            {"role": "user", "content": "こんにちは!"},
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "こんにちは!私は Qwen です。You said: こんにちは!."
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "人工知能について"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "こんにちは!私は Qwen です。You said: 人工知能について."
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    assert all(c.model == MODEL for c in chunks)


def test_tool_calling_round_trip(client):
    messages = [{"role": "user", "content": "What's the weather in Tokyo?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Tokyo"}
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21°C"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Tool get_weather returned: sunny, 21°C"


def test_streamed_tool_calls_accumulate(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    args = {}
    names = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            names.setdefault(tc.index, tc.function.name)
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
        finish = choice.finish_reason or finish
    assert names == {0: "get_weather"}
    assert json.loads(args[0]) == {"city": "Tokyo"}
    assert finish == "tool_calls"


class Trip(BaseModel):
    city: str
    days: int


def test_structured_output_parse(client):
    completion = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Plan a trip"}],
        response_format=Trip,
    )
    parsed = completion.choices[0].message.parsed
    assert parsed == Trip(city="Tokyo", days=1)


def test_stream_helper_and_reasoning(client):
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "think"}],
        extra_body={"enable_thinking": True},
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content.endswith("You said: think.")


def test_unsupported_parameter_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert err.value.body["param"] == "logprobs"


def test_mid_stream_failure_raises(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"x-mock-fail": "moderation"},
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_rate_limit_inside_a_200_is_a_rate_limit_error_when_streaming(client):
    # Model Studio reports this rate limit inside an HTTP 200 stream, before any output; the
    # SDK must see a 429 (RateLimitError, which it knows to retry), not a 200 that breaks.
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"x-mock-fail": "rate_limit"},
        )
    assert err.value.status_code == 429
    assert err.value.body["type"] == "rate_limit_error"
