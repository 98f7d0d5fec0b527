// Screenshots of each dashboard page for docs/dashboard/*.png (1280x800), taken against the
// real debug binaries with a little traffic: `node screenshots.mjs` (after `cargo build --bins`).
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const target = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug");
const out = join(root, "docs/dashboard");
const ADMIN = "dashboard-screenshot-admin-token-19c4";
const MODEL = "qwen3-max-2026-01-23";
const children = [];
let base, browser, dir;

function waitFor(child, pattern, timeoutMs = 15000) {
  return new Promise((ok, fail) => {
    let text = "";
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${pattern}:\n${text}`)), timeoutMs);
    const onData = (chunk) => {
      text += chunk.toString();
      const m = text.match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${child.spawnfile} exited with ${code}:\n${text}`));
    });
  });
}

async function start() {
  dir = mkdtempSync(join(tmpdir(), "qg-dash-"));
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
  const env = { ...process.env, DASH_TEST_UPSTREAM_KEY: "sk-dash-upstream", QWEN_GATEWAY_ADMIN_TOKEN: ADMIN, RUST_LOG: "warn,qwen_gateway=info" };
  const gateway = spawn(join(target, "qwen-gateway"), ["serve", "--config", config], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(gateway);
  const addr = await waitFor(gateway, /listening on http:\/\/(\S+?)\/v1/);
  base = `http://${addr}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    timeout: 30000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-default-apps"],
    // launch() gives every run a fresh temporary --user-data-dir of its own.
  });
}

const chat = (key, model = MODEL) =>
  fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
    signal: AbortSignal.timeout(20000),
  });

const timer = setTimeout(() => { console.error("screenshots: timed out"); process.exit(1); }, 120000);
try {
  await start();
  mkdirSync(out, { recursive: true });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${base}/admin/`);
  await page.screenshot({ path: join(out, "signin.png") });
  await page.getByLabel("Admin token").fill(ADMIN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Keys" }).waitFor();
  const keys = {};
  for (const name of ["alice", "bob", "ci-bot"]) {
    keys[name] = await page.evaluate(async (name) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch("/admin/keys", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ name, rpm: 60, daily_tokens: 200000, expires: "30d" }) });
      return (await r.json()).key;
    }, name);
  }
  for (let i = 0; i < 6; i++) await chat(keys.alice);
  for (let i = 0; i < 3; i++) await chat(keys.bob, "qwen-plus");
  await chat(keys["ci-bot"]);
  await new Promise((ok) => setTimeout(ok, 1500));
  await page.reload();
  await page.locator("#keys-table").getByRole("link", { name: "alice" }).waitFor();
  await page.screenshot({ path: join(out, "keys.png") });
  await page.getByRole("button", { name: "New key" }).click();
  await page.getByLabel("Name", { exact: true }).fill("carol");
  await page.getByLabel("Model patterns").fill("qwen3-*");
  await page.getByLabel("Requests / minute").fill("30");
  await page.screenshot({ path: join(out, "new-key.png") });
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.goto(`${base}/admin/#usage`);
  await page.locator(".chart svg rect").first().waitFor();
  await page.screenshot({ path: join(out, "usage.png") });
  await page.goto(`${base}/admin/#keys`);
  await page.locator("#keys-table").getByRole("link", { name: "alice" }).click();
  await page.locator("#key-settings dt").first().waitFor();
  await page.locator("#key-usage .chart").first().waitFor();
  await page.screenshot({ path: join(out, "key-detail.png") });
  await page.goto(`${base}/admin/#status`);
  await page.locator("#status-body .region").first().waitFor();
  await page.screenshot({ path: join(out, "status.png") });
  console.log(`screenshots in ${out}`);
} finally {
  clearTimeout(timer);
  await browser?.close().catch(() => {});
  for (const c of children) c.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
}
