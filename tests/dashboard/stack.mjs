// The dashboard suite's and the screenshot script's stack: the real debug binaries (mock
// Model Studio, qwen-gateway with a SQLite store and an admin token) on loopback, and Debian's
// chromium driven by playwright-core. `stop()` ends all of it.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { waitFor } from "../clients/node/wait.js";

export const root = resolve(import.meta.dirname, "../..");
const target = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug");
export const MODEL = "qwen3-max-2026-01-23";

export async function startStack(admin) {
  const children = [];
  const dir = mkdtempSync(join(tmpdir(), "qg-dash-"));
  const stack = {
    base: undefined,
    browser: undefined,
    async stop() {
      await stack.browser?.close().catch(() => {});
      for (const c of children) c.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    // A chat request with a team key, straight to the gateway.
    chat(key, model = MODEL) {
      return fetch(`${stack.base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
        signal: AbortSignal.timeout(20000),
      });
    },
  };
  try {
    const mock = spawn(join(target, "mock-model-studio"), ["--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(mock);
    const mockUrl = await waitFor(mock, /listening on (http:\/\/\S+)/);
    const config = join(dir, "gateway.toml");
    writeFileSync(
      config,
      `[server]\nlisten = "127.0.0.1:0"\n[upstream]\nregions = ["local"]\n` +
        `[regions.local]\nbase_url = "${mockUrl}"\napi_key_env = ["DASH_TEST_UPSTREAM_KEY"]\n` +
        `[auth]\nmode = "keys"\n[store]\nurl = "sqlite://${join(dir, "gw.db")}"\n`,
    );
    const env = { ...process.env, DASH_TEST_UPSTREAM_KEY: "sk-dash-upstream", QWEN_GATEWAY_ADMIN_TOKEN: admin, RUST_LOG: "warn,qwen_gateway=info" };
    const gateway = spawn(join(target, "qwen-gateway"), ["serve", "--config", config], { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(gateway);
    stack.base = `http://${await waitFor(gateway, /listening on http:\/\/(\S+?)\/v1/)}`;
    stack.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      timeout: 30000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps"],
      // launch() gives every run a fresh temporary --user-data-dir of its own.
    });
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
