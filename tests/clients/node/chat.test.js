// The official openai Node SDK's Chat Completions API through the gateway's translation.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { MODEL, startStack } from "./harness.js";

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

test("chat.completions.create plain", async () => {
  const completion = await stack.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "こんにちは" }],
  });
  assert.equal(completion.object, "chat.completion");
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.equal(completion.choices[0].message.content, "こんにちは!私は Qwen です。You said: こんにちは.");
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
});

test("chat.completions.create stream with usage", async () => {
  const stream = await stack.client.chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: "stream" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  const finishes = [];
  let usage;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta.content ?? "";
      if (chunk.choices[0].finish_reason) finishes.push(chunk.choices[0].finish_reason);
    } else {
      usage = chunk.usage;
    }
  }
  assert.equal(text, "こんにちは!私は Qwen です。You said: stream.");
  assert.deepEqual(finishes, ["stop"]);
  assert.ok(usage.completion_tokens > 0);
});

test("chat tool calls", async () => {
  const completion = await stack.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "weather?" }],
    tools: [
      {
        type: "function",
        function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
      },
    ],
  });
  const call = completion.choices[0].message.tool_calls[0];
  assert.equal(completion.choices[0].finish_reason, "tool_calls");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Tokyo" });
});

test("chat structured output (response_format json_schema)", async () => {
  const completion = await stack.client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "Plan a trip" }],
    response_format: {
      type: "json_schema",
      json_schema: {
        name: "trip",
        strict: true,
        schema: {
          type: "object",
          properties: { city: { type: "string" }, days: { type: "integer" } },
          required: ["city", "days"],
          additionalProperties: false,
        },
      },
    },
  });
  const trip = JSON.parse(completion.choices[0].message.content);
  assert.equal(typeof trip.city, "string");
  assert.equal(typeof trip.days, "number");
});

test("a broken chat stream throws instead of ending quietly", async () => {
  const stream = await stack.client.chat.completions.create(
    { model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true },
    { headers: { "x-mock-drop-after": "6", "x-mock-tokens": "30" } },
  );
  let text = "";
  await assert.rejects(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  }, /upstream/);
  assert.ok(text.length > 0, "some text arrived before the break");
});
