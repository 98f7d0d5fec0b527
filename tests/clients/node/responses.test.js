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
