"""The official `openai` Python SDK against qwen-gateway's /v1/responses pass-through."""

import openai
import pytest

from conftest import MODEL, UPSTREAM_KEY


def test_create_plain(client, mock_requests):
    response = client.responses.create(model=MODEL, input="こんにちは、一文で自己紹介をしてください。")
    assert response.status == "completed"
    assert response.output_text.startswith("こんにちは!私は Qwen です。")
    assert "自己紹介" in response.output_text
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    last = mock_requests()[-1]
    headers = dict((k, v) for k, v in last["headers"])
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "sk-client-not-upstream" not in str(last["headers"])


def test_create_with_alias(client):
    response = client.responses.create(model="gpt-4o", input="hi")
    assert response.model == MODEL


def test_stream_events_and_text(client):
    stream = client.responses.create(model=MODEL, input="人工知能について簡単に紹介してください。", stream=True)
    types = []
    text = ""
    final = None
    for event in stream:
        types.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.completed":
            final = event.response
    assert types[0] == "response.created"
    assert types[1] == "response.in_progress"
    assert types[-1] == "response.completed"
    assert "response.output_text.done" in types
    assert final is not None
    assert final.output_text == text
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens


def test_stream_sequence_numbers_are_consecutive(client):
    with client.responses.stream(model=MODEL, input="hello") as stream:
        numbers = [event.sequence_number for event in stream]
        final = stream.get_final_response()
    assert numbers == list(range(len(numbers)))
    assert final.status == "completed"


def test_previous_response_id_two_turns(client):
    first = client.responses.create(model=MODEL, input="私の名前は田中です。覚えておいてください。")
    second = client.responses.create(model=MODEL, input="私の名前を覚えていますか?", previous_response_id=first.id)
    assert "田中" in second.output_text
    assert second.usage.input_tokens > first.usage.input_tokens
    fetched = client.responses.retrieve(first.id)
    assert fetched.id == first.id


def test_enable_thinking_and_builtin_tools_pass_through(client):
    response = client.responses.create(
        model=MODEL,
        input="Alibaba Cloud のウェブサイトを見つけて",
        tools=[{"type": "web_search"}],
        extra_body={"enable_thinking": True},
    )
    kinds = [item.type for item in response.output]
    assert kinds[0] == "reasoning"
    assert "web_search_call" in kinds
    assert kinds[-1] == "message"
    assert response.usage.output_tokens_details.reasoning_tokens > 0


def test_errors_surface_as_sdk_exceptions(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="hi", previous_response_id="does-not-exist")
    assert err.value.status_code == 400
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=MODEL, input="hi", extra_headers={"x-mock-status": "429"})


def test_a_broken_stream_raises_instead_of_ending_quietly(client):
    """The gateway's own error event carries a nested `error` object: the SDK raises on it
    (a flat one is silently ignored, leaving a truncated answer that looks complete)."""
    stream = client.responses.create(
        model=MODEL, input="hi", stream=True, extra_headers={"x-mock-drop-after": "6", "x-mock-tokens": "30"}
    )
    seen = []
    with pytest.raises(openai.APIError) as err:
        for event in stream:
            seen.append(event.type)
    assert "response.completed" not in seen
    assert "upstream" in str(err.value.message)


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_tool_call_round_trip(client):
    first = client.responses.create(model=MODEL, input="Weather in Tokyo?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert calls[0].arguments and "city" in calls[0].arguments
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "Tool get_weather returned: sunny"


def test_structured_output_parse(client):
    from pydantic import BaseModel

    class Trip(BaseModel):
        city: str
        days: int

    parsed = client.responses.parse(model=MODEL, input="Plan a trip", text_format=Trip).output_parsed
    assert isinstance(parsed, Trip)
    assert isinstance(parsed.days, int)
