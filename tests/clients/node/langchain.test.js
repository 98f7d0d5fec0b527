// LangChain JS (@langchain/openai ChatOpenAI) through the gateway, on Chat Completions (default)
// and on the Responses API (useResponsesApi: true).
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { MODEL, startStack } from "./harness.js";

const GREETING = (said) => `こんにちは!私は Qwen です。You said: ${said}.`;

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

// Every URL the client fetched, to prove which API each mode uses.
const fetched = [];
const recordingFetch = (url, init) => {
  fetched.push(new URL(String(url)).pathname);
  return fetch(url, init);
};

function chat(useResponsesApi, headers) {
  return new ChatOpenAI({
    model: MODEL,
    apiKey: "sk-client-not-upstream",
    configuration: { baseURL: stack.baseURL, fetch: recordingFetch, ...(headers ? { defaultHeaders: headers } : {}) },
    maxRetries: 0,
    timeout: 20000,
    useResponsesApi,
  });
}

const getWeather = tool(async ({ city }) => `sunny in ${city}`, {
  name: "get_weather",
  description: "Weather for a city",
  schema: z.object({ city: z.string() }),
});

for (const useResponsesApi of [false, true]) {
  const wire = useResponsesApi ? "responses" : "chat";
  const path = useResponsesApi ? "/v1/responses" : "/v1/chat/completions";

  describe(`ChatOpenAI ${wire}`, () => {
    beforeEach(() => {
      fetched.length = 0;
    });
    afterEach(() => {
      assert.ok(fetched.length > 0);
      assert.deepEqual([...new Set(fetched)], [path]);
    });

    test("invoke plain", async () => {
      const msg = await chat(useResponsesApi).invoke("こんにちは");
      assert.equal(msg.text, GREETING("こんにちは"));
      assert.ok(msg.usage_metadata.input_tokens > 0);
      assert.ok(msg.usage_metadata.output_tokens > 0);
      assert.equal(
        msg.usage_metadata.total_tokens,
        msg.usage_metadata.input_tokens + msg.usage_metadata.output_tokens,
      );
    });

    test("stream", async () => {
      let text = "";
      let chunks = 0;
      let usage;
      for await (const chunk of await chat(useResponsesApi, { "x-mock-tokens": "5" }).stream("stream")) {
        chunks += 1;
        text += chunk.text;
        if (chunk.usage_metadata) usage = chunk.usage_metadata;
      }
      assert.ok(chunks >= 5, `${chunks} chunks`);
      assert.ok(text.length > 0);
      assert.equal(usage.output_tokens, 5);
      assert.ok(usage.input_tokens > 0);
    });

    test("bindTools round trip", async () => {
      const model = chat(useResponsesApi).bindTools([getWeather]);
      const question = new HumanMessage("weather in Tokyo?");
      const ai = await model.invoke([question]);
      assert.equal(ai.tool_calls.length, 1);
      const call = ai.tool_calls[0];
      assert.equal(call.name, "get_weather");
      assert.deepEqual(call.args, { city: "Tokyo" });
      assert.ok(call.id);
      const result = await getWeather.invoke(call);
      assert.ok(result instanceof ToolMessage);
      const final = await model.invoke([question, ai, result]);
      assert.equal(final.tool_calls.length, 0);
      assert.equal(final.text, "Tool get_weather returned: sunny in Tokyo");
    });

    test("withStructuredOutput (json schema)", async () => {
      const schema = z.object({ city: z.string(), population: z.number(), capital: z.boolean() });
      const structured = chat(useResponsesApi).withStructuredOutput(schema, { name: "city_facts", method: "jsonSchema" });
      const out = await structured.invoke("facts about Tokyo");
      assert.deepEqual(out, { city: "Tokyo", population: 1, capital: true });
    });

    test("withStructuredOutput (default method is jsonSchema here)", async () => {
      const schema = z.object({ city: z.string() });
      const out = await chat(useResponsesApi).withStructuredOutput(schema, { name: "city" }).invoke("a city");
      assert.deepEqual(out, { city: "Tokyo" });
    });

    test("withStructuredOutput (functionCalling)", async () => {
      const schema = z.object({ city: z.string(), days: z.number() });
      const out = await chat(useResponsesApi)
        .withStructuredOutput(schema, { name: "forecast", method: "functionCalling" })
        .invoke("forecast");
      assert.deepEqual(out, { city: "Tokyo", days: 1 });
    });

    test("broken stream rejects", async () => {
      const model = chat(useResponsesApi, { "x-mock-drop-after": "4", "x-mock-tokens": "20" });
      let text = "";
      await assert.rejects(
        async () => {
          for await (const chunk of await model.stream("break")) text += chunk.text;
        },
        (err) => {
          // The openai SDK underneath raises APIError from the gateway's error event/frame.
          assert.equal(err.constructor.name, "APIError");
          assert.equal(err.code, "upstream_stream_error");
          assert.match(err.message, /The upstream connection failed mid-stream/);
          return true;
        },
      );
      assert.ok(!text.includes("You said"), `quiet partial answer: ${text}`);
    });

    test("broken stream via per-call headers rejects", async () => {
      const model = chat(useResponsesApi);
      await assert.rejects(async () => {
        for await (const _ of await model.stream("break", {
          headers: { "x-mock-drop-after": "4", "x-mock-tokens": "20" },
        })) {
          // drain
        }
      }, /The upstream connection failed mid-stream/);
    });
  });
}
