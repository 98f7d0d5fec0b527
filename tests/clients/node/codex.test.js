// Codex CLI (npm @openai/codex, a native binary) run as `codex exec` against the gateway, with a
// config.toml in a temporary CODEX_HOME. A recording proxy in front of the gateway shows every
// endpoint Codex calls; the mock's /_mock/requests shows the bodies that reached "Model Studio".
//
// The recipe (README "Use with"): a [model_providers.qwen] with wire_api = "responses", plus
//   [agents] enabled = false      # else Codex 0.171 sends a {"type":"namespace"} tool (multi_agent_v1),
//                                 # which Model Studio refuses with 400
//   web_search = "disabled"       # optional: drops {"type":"web_search","external_web_access":false}
//   [features] plugins = false    # else Codex looks up chatgpt.com / api.github.com (plugin sync)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { MODEL, startStack } from "./harness.js";

const require = createRequire(import.meta.url);
let codexJs;
try {
  codexJs = join(dirname(require.resolve("@openai/codex/package.json")), "bin", "codex.js");
} catch {
  codexJs = undefined;
}
// package.json pins @openai/codex, so `npm ci` always installs it: a missing binary is a
// failure, never a skip that would let CI pass without Codex.
if (!codexJs || !existsSync(codexJs)) {
  throw new Error("@openai/codex is not installed: run npm ci in tests/clients/node");
}

const GREETING = (said) => `こんにちは!私は Qwen です。You said: ${said}.`;

let stack;
let proxy;
let proxyUrl;
const seen = []; // "METHOD /path" of every request Codex made
const dirs = [];

// Records what Codex calls and passes it on to the gateway unchanged.
function startProxy(target) {
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    up.on("error", (e) => res.destroy(e));
    req.pipe(up);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

before(async () => {
  stack = await startStack();
  proxy = await startProxy(stack.baseURL);
  proxyUrl = `http://127.0.0.1:${proxy.address().port}/v1`;
});
after(async () => {
  proxy?.closeAllConnections();
  proxy?.close();
  await stack?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tomlString(s) {
  return JSON.stringify(s);
}

// A CODEX_HOME with the recipe config (`recommended`), or the bare provider (`default`).
function codexHome({ recommended = true, headers = {} } = {}) {
  const home = mkdtempSync(join(tmpdir(), "qg-codex-"));
  dirs.push(home);
  const headerLine = Object.entries(headers)
    .map(([k, v]) => `${tomlString(k)} = ${tomlString(v)}`)
    .join(", ");
  let config =
    `model = "${MODEL}"\n` +
    `model_provider = "qwen"\n` +
    `check_for_update_on_startup = false\n` +
    (recommended ? `web_search = "disabled"\n` : "") +
    `\n[model_providers.qwen]\n` +
    `name = "qwen-gateway"\n` +
    `base_url = "${proxyUrl}"\n` +
    `env_key = "QWEN_GATEWAY_KEY"\n` +
    `wire_api = "responses"\n` +
    `request_max_retries = 0\n` +
    `stream_max_retries = 0\n` +
    `stream_idle_timeout_ms = 20000\n` +
    `http_headers = { ${headerLine} }\n` +
    `\n[analytics]\nenabled = false\n` +
    `\n[features]\nplugins = false\n`;
  if (recommended) config += `\n[agents]\nenabled = false\n`;
  writeFileSync(join(home, "config.toml"), config);
  return home;
}

// Runs `codex exec`; kills the whole process group after `timeoutMs`.
function codexExec(home, args, { timeoutMs = 60000 } = {}) {
  const work = join(home, "work");
  mkdirSync(work, { recursive: true });
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    CODEX_HOME: home,
    QWEN_GATEWAY_KEY: "sk-client-not-upstream",
    NO_COLOR: "1",
  };
  return new Promise((ok, fail) => {
    const child = spawn(
      process.execPath,
      [codexJs, "exec", "--skip-git-repo-check", "--ephemeral", "-C", work, ...args],
      { env, cwd: work, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      fail(new Error(`codex exec timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr, work });
    });
  });
}

function events(stdout) {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

async function mockRequests() {
  const all = await (await fetch(`${stack.mockUrl}/_mock/requests`)).json();
  await fetch(`${stack.mockUrl}/_mock/requests`, { method: "DELETE" });
  return all.map((r) => ({ ...r, body: typeof r.body === "string" ? JSON.parse(r.body) : r.body }));
}

function toolSummary(body) {
  return (body.tools ?? []).map((t) => (t.name ? `${t.type}:${t.name}` : t.type));
}

async function reset() {
  seen.length = 0;
  await mockRequests();
}

test("default config: Codex sends a namespace tool and Model Studio's 400 is printed", async () => {
  await reset();
  const home = codexHome({ recommended: false, headers: { "x-mock-call-name": "none" } });
  const run = await codexExec(home, ["hello"]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /ERROR: .*"code":"InvalidParameter".*Tool type \\"namespace\\" is not supported/);
  const [req] = await mockRequests();
  assert.equal(req.status, 400);
  const tools = toolSummary(req.body);
  assert.ok(tools.includes("namespace:multi_agent_v1"), tools.join(", "));
  assert.ok(tools.includes("web_search"), tools.join(", "));
  const ns = req.body.tools.find((t) => t.type === "namespace");
  assert.deepEqual(ns.tools.map((t) => t.name).sort(), [
    "close_agent",
    "resume_agent",
    "send_input",
    "spawn_agent",
    "wait_agent",
  ]);
  assert.deepEqual([...new Set(seen)], ["POST /v1/responses"]);
  console.log(`default tools: ${tools.join(", ")}`);
});

test("recipe config: plain answer printed, tokens used", async () => {
  await reset();
  // A call name no tool has: the mock answers with text although tools are offered.
  const home = codexHome({ headers: { "x-mock-call-name": "none" } });
  const run = await codexExec(home, ["say hi"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), GREETING("say hi"));
  assert.match(run.stderr, /tokens used\s*\n\s*[\d,]+/);
  const reqs = await mockRequests();
  assert.equal(reqs.length, 1);
  const body = reqs[0].body;
  assert.equal(body.model, MODEL);
  assert.equal(body.stream, true);
  const types = new Set(body.tools.map((t) => t.type));
  assert.deepEqual([...types], ["function"], toolSummary(body).join(", "));
  assert.deepEqual([...new Set(seen)], ["POST /v1/responses"]);
  console.log(`recipe tools: ${toolSummary(body).join(", ")}`);
});

test("recipe config --json: agent message and usage", async () => {
  await reset();
  const home = codexHome({ headers: { "x-mock-call-name": "none", "x-mock-tokens": "7" } });
  const run = await codexExec(home, ["--json", "count"]);
  assert.equal(run.code, 0, run.stderr);
  const evs = events(run.stdout);
  const messages = evs.filter((e) => e.type === "item.completed" && e.item.type === "agent_message");
  assert.equal(messages.length, 1);
  assert.ok(messages[0].item.text.length > 0);
  const done = evs.find((e) => e.type === "turn.completed");
  assert.ok(done.usage.input_tokens > 0, JSON.stringify(done.usage));
  assert.equal(done.usage.output_tokens, 7);
});

test("recipe config: shell tool loop (exec_command) and its output in the final answer", async () => {
  await reset();
  const home = codexHome({
    headers: {
      "x-mock-call-name": "exec_command",
      "x-mock-call-arguments": JSON.stringify({ cmd: "echo hi-from-tool", login: false }),
    },
  });
  const run = await codexExec(home, ["--json", "-s", "workspace-write", "run the tool"]);
  assert.equal(run.code, 0, run.stderr);
  const evs = events(run.stdout);
  const cmd = evs.find((e) => e.type === "item.completed" && e.item.type === "command_execution");
  assert.ok(cmd, run.stdout);
  assert.equal(cmd.item.exit_code, 0);
  assert.equal(cmd.item.aggregated_output, "hi-from-tool\n");
  const message = evs.find((e) => e.type === "item.completed" && e.item.type === "agent_message");
  assert.match(message.item.text, /^Tool exec_command returned: [\s\S]*hi-from-tool/);
  const reqs = await mockRequests();
  assert.equal(reqs.length, 2);
  const last = reqs[1].body.input.at(-1);
  assert.equal(last.type, "function_call_output");
  assert.match(last.output, /hi-from-tool/);
  const call = reqs[1].body.input.find((i) => i.type === "function_call");
  assert.equal(call.name, "exec_command");
  assert.equal(call.call_id, last.call_id);
  assert.deepEqual([...new Set(seen)], ["POST /v1/responses"]);
});

test("recipe config: broken upstream stream fails the turn (exit 1)", async () => {
  await reset();
  const home = codexHome({ headers: { "x-mock-call-name": "none", "x-mock-drop-after": "3" } });
  const run = await codexExec(home, ["--json", "hello"]);
  assert.equal(run.code, 1, run.stderr);
  const failed = events(run.stdout).find((e) => e.type === "turn.failed");
  assert.ok(failed, run.stdout);
  assert.match(failed.error.message, /stream disconnected before completion/);
  const messages = events(run.stdout).filter((e) => e.type === "item.completed" && e.item.type === "agent_message");
  assert.equal(messages.length, 0);
});
