// Starts the real binaries on loopback ports: mock Model Studio, then qwen-gateway in front.
// Binaries come from `cargo build --bins` (scripts/test.sh); override with QWEN_GATEWAY_BIN /
// MOCK_MODEL_STUDIO_BIN.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import { waitFor } from "./wait.js";

const root = resolve(import.meta.dirname, "../../..");
const target = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug");
const gatewayBin = process.env.QWEN_GATEWAY_BIN ?? join(target, "qwen-gateway");
const mockBin = process.env.MOCK_MODEL_STUDIO_BIN ?? join(target, "mock-model-studio");
export const MODEL = "qwen3-max-2026-01-23";
export const UPSTREAM_KEY = "sk-node-upstream-77aa";

export async function startStack() {
  const children = [];
  const mock = spawn(mockBin, ["--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(mock);
  const mockUrl = await waitFor(mock, /listening on (http:\/\/\S+)/);
  const dir = mkdtempSync(join(tmpdir(), "qg-node-"));
  const config = join(dir, "gateway.toml");
  writeFileSync(
    config,
    `[server]\nlisten = "127.0.0.1:0"\n[upstream]\nregions = ["local"]\n` +
      `forward_headers = ["accept", "content-type", "user-agent", "idempotency-key", "openai-beta", "x-mock-*"]\n` +
      `[regions.local]\nbase_url = "${mockUrl}"\napi_key_env = ["NODE_TEST_UPSTREAM_KEY"]\n[store]\nurl = "memory"\n`,
  );
  const env = { ...process.env, NODE_TEST_UPSTREAM_KEY: UPSTREAM_KEY, RUST_LOG: "warn,qwen_gateway=info" };
  const gateway = spawn(gatewayBin, ["serve", "--config", config], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(gateway);
  const addr = await waitFor(gateway, /listening on http:\/\/(\S+?)\/v1/);
  const client = new OpenAI({ baseURL: `http://${addr}/v1`, apiKey: "sk-client-not-upstream", maxRetries: 0, timeout: 20000 });
  return {
    client,
    baseURL: `http://${addr}/v1`,
    mockUrl,
    async stop() {
      for (const c of children) c.kill("SIGTERM");
    },
  };
}
