// Vercel AI SDK (`ai` + `@ai-sdk/openai`) through the gateway: openai.responses(model) on
// /v1/responses and openai.chat(model) on /v1/chat/completions.
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Output, generateObject, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { z } from "zod";
import { MODEL, startStack } from "./harness.js";

// The SDK logs warnings (e.g. generateObject's deprecation) to the console otherwise.
globalThis.AI_SDK_LOG_WARNINGS = false;

const GREETING = (said) => `こんにちは!私は Qwen です。You said: ${said}.`;

let stack;
let openai;
const fetched = [];
before(async () => {
  stack = await startStack();
  openai = createOpenAI({
    baseURL: stack.baseURL,
    apiKey: "sk-client-not-upstream",
    fetch: (url, init) => {
      fetched.push(new URL(String(url)).pathname);
      return fetch(url, init);
    },
  });
});
after(async () => {
  await stack?.stop();
});

const weatherZod = tool({
  description: "Weather for a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city}`,
});
const weatherJson = tool({
  description: "Weather for a city",
  inputSchema: jsonSchema({
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  }),
  execute: async ({ city }) => `rainy in ${city}`,
});

for (const kind of ["responses", "chat"]) {
  const path = kind === "responses" ? "/v1/responses" : "/v1/chat/completions";
  const model = () => openai[kind](MODEL);

  describe(`openai.${kind}(model)`, () => {
    beforeEach(() => {
      fetched.length = 0;
    });
    afterEach(() => {
      assert.ok(fetched.length > 0);
      assert.deepEqual([...new Set(fetched)], [path]);
    });

    test("generateText", async () => {
      const result = await generateText({ model: model(), prompt: "こんにちは", maxRetries: 0 });
      assert.equal(result.text, GREETING("こんにちは"));
      assert.equal(result.finishReason, "stop");
      assert.ok(result.usage.inputTokens > 0);
      assert.ok(result.usage.outputTokens > 0);
      assert.equal(result.usage.totalTokens, result.usage.inputTokens + result.usage.outputTokens);
    });

    test("streamText: full text and usage", async () => {
      const result = streamText({ model: model(), prompt: "stream", maxRetries: 0 });
      let text = "";
      let deltas = 0;
      for await (const delta of result.textStream) {
        text += delta;
        deltas += 1;
      }
      assert.equal(text, GREETING("stream"));
      assert.ok(deltas > 1, `${deltas} deltas`);
      assert.equal(await result.text, text);
      assert.equal(await result.finishReason, "stop");
      const usage = await result.usage;
      assert.ok(usage.inputTokens > 0);
      assert.ok(usage.outputTokens > 0);
    });

    test("streamText: x-mock-tokens usage is exact", async () => {
      const result = streamText({ model: model(), prompt: "n", maxRetries: 0, headers: { "x-mock-tokens": "6" } });
      await result.consumeStream();
      assert.equal((await result.usage).outputTokens, 6);
      assert.ok((await result.text).length > 0);
    });

    for (const [schemaKind, weather, answer] of [
      ["zod", weatherZod, "sunny in Tokyo"],
      ["jsonSchema", weatherJson, "rainy in Tokyo"],
    ]) {
      test(`tool round trip (${schemaKind} inputSchema, stopWhen stepCountIs)`, async () => {
        const result = await generateText({
          model: model(),
          prompt: "weather in Tokyo?",
          tools: { get_weather: weather },
          stopWhen: stepCountIs(3),
          maxRetries: 0,
        });
        assert.equal(result.steps.length, 2);
        const [call] = result.steps[0].toolCalls;
        assert.equal(call.toolName, "get_weather");
        assert.deepEqual(call.input, { city: "Tokyo" });
        assert.equal(result.steps[0].finishReason, "tool-calls");
        assert.deepEqual(
          result.steps[0].toolResults.map((r) => r.output),
          [answer],
        );
        assert.equal(result.text, `Tool get_weather returned: ${answer}`);
        assert.equal(result.finishReason, "stop");
      });
    }

    test("streamText tool round trip", async () => {
      const result = streamText({
        model: model(),
        prompt: "weather?",
        tools: { get_weather: weatherZod },
        stopWhen: stepCountIs(3),
        maxRetries: 0,
      });
      const types = [];
      for await (const part of result.fullStream) types.push(part.type);
      assert.ok(types.includes("tool-call") && types.includes("tool-result"), types.join(","));
      assert.equal(await result.text, "Tool get_weather returned: sunny in Tokyo");
      assert.equal((await result.steps).length, 2);
    });

    const facts = z.object({ city: z.string(), population: z.number(), capital: z.boolean() });

    test("structured output: generateText output Output.object", async () => {
      const result = await generateText({
        model: model(),
        prompt: "facts about Tokyo",
        output: Output.object({ schema: facts }),
        maxRetries: 0,
      });
      assert.deepEqual(result.output, { city: "Tokyo", population: 1, capital: true });
    });

    test("structured output: generateObject (deprecated in ai 7, still shipped)", async () => {
      const result = await generateObject({ model: model(), prompt: "facts", schema: facts, maxRetries: 0 });
      assert.deepEqual(result.object, { city: "Tokyo", population: 1, capital: true });
      assert.ok(result.usage.outputTokens > 0);
    });

    test("broken stream after some text: error part, finishReason error", async () => {
      const errors = [];
      const result = streamText({
        model: model(),
        prompt: "break",
        maxRetries: 0,
        headers: { "x-mock-drop-after": "8", "x-mock-tokens": "20" },
        onError: ({ error }) => errors.push(error),
      });
      const parts = [];
      for await (const part of result.fullStream) parts.push(part);
      const errorParts = parts.filter((p) => p.type === "error");
      assert.equal(errorParts.length, 1, parts.map((p) => p.type).join(","));
      const err = errorParts[0].error;
      // streamText reports provider errors as stream parts (and onError), it does not throw.
      assert.equal(err.name, "AI_StreamProviderError");
      assert.equal(err.code, "upstream_stream_error");
      assert.match(err.message, /The upstream connection failed mid-stream/);
      assert.deepEqual(errors, [err]);
      assert.equal(await result.finishReason, "error");
      const text = await result.text;
      assert.ok(text.length > 0 && !text.includes("You said"), text);
    });

    test("broken stream before any text: error part", async () => {
      const errors = [];
      const result = streamText({
        model: model(),
        prompt: "break",
        maxRetries: 0,
        headers: { "x-mock-drop-after": "4" },
        onError: ({ error }) => errors.push(error),
      });
      const types = [];
      for await (const part of result.fullStream) types.push(part.type);
      assert.ok(types.includes("error"), types.join(","));
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, /The upstream connection failed mid-stream/);
      assert.ok(!types.includes("text-delta"), types.join(","));
    });

    test("broken non-streaming answer: generateText rejects", async () => {
      await assert.rejects(
        generateText({ model: model(), prompt: "half", maxRetries: 0, headers: { "x-mock-drop-after": "1" } }),
        (err) => {
          // The gateway turns the half body into a 502 error answer.
          assert.equal(err.name, "AI_APICallError");
          assert.equal(err.statusCode, 502);
          assert.match(err.message, /broke off the response/);
          return true;
        },
      );
    });
  });
}
