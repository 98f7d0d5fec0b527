"""instructor through qwen-gateway: structured extraction into pydantic models with
`instructor.from_openai(OpenAI(base_url=...))`, over Chat Completions (TOOLS, JSON_SCHEMA, JSON)
and Responses (RESPONSES_TOOLS)."""

import instructor
import openai
import pytest
from instructor.core.exceptions import InstructorRetryException
from openai import OpenAI
from pydantic import BaseModel

from conftest import MODEL

BROKEN_STREAM = {"x-mock-drop-after": "6", "x-mock-tokens": "30"}
MESSAGES = [{"role": "user", "content": "Plan a trip"}]


class Trip(BaseModel):
    city: str
    days: int


def patched(stack, mode: instructor.Mode, headers: dict | None = None) -> instructor.Instructor:
    client = OpenAI(
        base_url=stack["base_url"],
        api_key="sk-instructor-client",
        max_retries=0,
        timeout=20,
        default_headers=headers,
    )
    return instructor.from_openai(client, mode=mode)


@pytest.mark.parametrize(
    "mode",
    [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA, instructor.Mode.RESPONSES_TOOLS],
)
def test_extract(stack, mode):
    trip, raw = patched(stack, mode).create_with_completion(model=MODEL, response_model=Trip, messages=MESSAGES)
    # instructor hands back its own subclass (carrying the raw response), so compare fields.
    assert isinstance(trip, Trip)
    assert trip.model_dump() == {"city": "Tokyo", "days": 1}
    assert raw.usage.total_tokens > 0


class Answer(BaseModel):
    answer: str


def test_extract_json_mode(stack):
    # Mode.JSON is `response_format: json_object` plus the schema in a system message. The mock's
    # json_object answer is always {"answer": <plain answer>}, so the model here has that shape.
    answer = patched(stack, instructor.Mode.JSON).create(model=MODEL, response_model=Answer, messages=MESSAGES)
    assert answer.answer.startswith("こんにちは!私は Qwen です。")


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA, instructor.Mode.RESPONSES_TOOLS])
def test_stream_partial(stack, mode):
    partials = list(patched(stack, mode).create_partial(model=MODEL, response_model=Trip, messages=MESSAGES))
    assert len(partials) > 1
    assert partials[-1].model_dump() == {"city": "Tokyo", "days": 1}
    assert any(p.days is None for p in partials)  # it really arrived piece by piece


def test_invalid_answer_raises_after_retries(stack, mock_requests):
    # A json_object answer that does not fit the model fails validation; instructor re-asks
    # max_retries more times, then raises.
    before = len(mock_requests())
    with pytest.raises(InstructorRetryException) as err:
        patched(stack, instructor.Mode.JSON).create(model=MODEL, response_model=Trip, messages=MESSAGES, max_retries=2)
    assert err.value.n_attempts == 3
    assert len(mock_requests()) - before == 3
    assert "city" in str(err.value)


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.RESPONSES_TOOLS])
def test_broken_stream_raises(stack, mode):
    client = patched(stack, mode, headers=BROKEN_STREAM)
    # instructor wraps the SDK's APIError (raised on the gateway's error frame) in its own exception.
    with pytest.raises(InstructorRetryException) as err:
        for _ in client.create_partial(model=MODEL, response_model=Trip, messages=MESSAGES, max_retries=0):
            pass
    assert isinstance(err.value.__cause__, openai.APIError)
    assert "upstream" in str(err.value.__cause__)
