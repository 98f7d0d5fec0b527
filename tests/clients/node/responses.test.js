// The official openai Node SDK against /v1/responses.
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

test("responses.create plain", async () => {
  const response = await stack.client.responses.create({ model: MODEL, input: "こんにちは" });
  assert.equal(response.status, "completed");
  assert.match(response.output_text, /^こんにちは!私は Qwen です。/);
  assert.ok(response.usage.output_tokens > 0);
});

test("responses.create stream", async () => {
  const stream = await stack.client.responses.create({ model: "gpt-4o", input: "人工知能について", stream: true });
  let text = "";
  const types = [];
  let final;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") final = event.response;
  }
  assert.equal(types[0], "response.created");
  assert.equal(types.at(-1), "response.completed");
  assert.equal(final.output_text ?? final.output[0].content[0].text, text);
  assert.equal(final.model, MODEL);
});

test("a broken responses stream throws instead of ending quietly", async () => {
  const stream = await stack.client.responses.create(
    { model: MODEL, input: "hi", stream: true },
    { headers: { "x-mock-drop-after": "6", "x-mock-tokens": "30" } },
  );
  const types = [];
  await assert.rejects(async () => {
    for await (const event of stream) types.push(event.type);
  }, /upstream/);
  assert.ok(!types.includes("response.completed"));
});

const weather = {
  type: "function",
  name: "get_weather",
  description: "Current weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

test("responses tool call round trip", async () => {
  const first = await stack.client.responses.create({ model: MODEL, input: "Weather in Tokyo?", tools: [weather] });
  const calls = first.output.filter((item) => item.type === "function_call");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, "get_weather");
  assert.ok("city" in JSON.parse(calls[0].arguments));
  const second = await stack.client.responses.create({
    model: MODEL,
    previous_response_id: first.id,
    input: [{ type: "function_call_output", call_id: calls[0].call_id, output: "sunny" }],
    tools: [weather],
  });
  assert.equal(second.output_text, "Tool get_weather returned: sunny");
});

test("responses structured output (text.format json_schema)", async () => {
  const response = await stack.client.responses.create({
    model: MODEL,
    input: "Plan a trip",
    text: {
      format: {
        type: "json_schema",
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
  const trip = JSON.parse(response.output_text);
  assert.deepEqual(Object.keys(trip).sort(), ["city", "days"]);
  assert.equal(typeof trip.days, "number");
});
