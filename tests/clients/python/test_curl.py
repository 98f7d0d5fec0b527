"""curl, as the README's recipes write it: the lines a user pastes, run for real."""

import json
import subprocess

from conftest import MODEL


def curl(stack, path: str, body: dict, *extra: str) -> str:
    out = subprocess.run(
        ["curl", "-sS", "-N", "--max-time", "20", f"{stack['base_url']}{path}",
         "-H", "Content-Type: application/json", "-H", "Authorization: Bearer sk-anything",
         *extra, "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return out.stdout


def events(text: str) -> list[dict]:
    return [json.loads(line.split(":", 1)[1]) for line in text.splitlines()
            if line.startswith("data:") and line.split(":", 1)[1].strip() not in ("", "[DONE]")]


def test_responses_plain_and_stream(stack):
    answer = json.loads(curl(stack, "/responses", {"model": MODEL, "input": "こんにちは"}))
    assert answer["output"][0]["content"][0]["text"] == "こんにちは!私は Qwen です。You said: こんにちは."
    streamed = events(curl(stack, "/responses", {"model": MODEL, "input": "hi", "stream": True}))
    assert streamed[0]["type"] == "response.created"
    assert streamed[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta") == \
        "こんにちは!私は Qwen です。You said: hi."


def test_chat_plain_stream_and_tool_call(stack):
    chat = json.loads(curl(stack, "/chat/completions",
                           {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
    assert chat["choices"][0]["message"]["content"] == "こんにちは!私は Qwen です。You said: hi."
    text = curl(stack, "/chat/completions", {"model": MODEL, "stream": True,
                                             "stream_options": {"include_usage": True},
                                             "messages": [{"role": "user", "content": "hi"}]})
    assert text.rstrip().endswith("data: [DONE]")
    chunks = events(text)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "こんにちは!私は Qwen です。You said: hi."
    assert chunks[-1]["usage"]["total_tokens"] > 0
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    called = json.loads(curl(stack, "/chat/completions", {
        "model": MODEL, "tools": [tool], "messages": [{"role": "user", "content": "weather?"}]}))
    call = called["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert called["choices"][0]["finish_reason"] == "tool_calls"


def test_structured_output(stack):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"], "additionalProperties": False}
    chat = json.loads(curl(stack, "/chat/completions", {
        "model": MODEL, "messages": [{"role": "user", "content": "trip"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}}}))
    trip = json.loads(chat["choices"][0]["message"]["content"])
    assert set(trip) == {"city", "days"} and isinstance(trip["days"], int)


def test_a_broken_stream_ends_with_an_error_event(stack):
    text = curl(stack, "/responses", {"model": MODEL, "input": "hi", "stream": True},
                "-H", "x-mock-drop-after: 6", "-H", "x-mock-tokens: 30")
    last = events(text)[-1]
    assert last["type"] == "error"
    assert last["error"]["code"] == "upstream_stream_error"
    chat = curl(stack, "/chat/completions", {"model": MODEL, "stream": True,
                                             "messages": [{"role": "user", "content": "hi"}]},
                "-H", "x-mock-drop-after: 6", "-H", "x-mock-tokens: 30")
    # The error frame, then [DONE] (docs/chat-completions.md): never a quiet end.
    assert chat.rstrip().endswith("data: [DONE]")
    assert events(chat)[-1]["error"]["code"] == "upstream_stream_error"
