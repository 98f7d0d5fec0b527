// The /admin/ dashboard in a real browser: Debian's chromium driven by playwright-core,
// against the real debug binaries (mock Model Studio, qwen-gateway with a SQLite store and an
// admin token) on loopback. Bounded timeouts everywhere; no network beyond 127.0.0.1.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const target = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug");
const ADMIN = "dashboard-browser-admin-token-7d21";
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

before(async () => {
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
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const c of children) c.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const chat = (key) =>
  fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    signal: AbortSignal.timeout(20000),
  });

test("security headers on the page", { timeout: 20000 }, async () => {
  const res = await fetch(`${base}/admin/`, { signal: AbortSignal.timeout(10000) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-security-policy"), /default-src 'none'; script-src 'self'/);
  assert.equal(res.headers.get("x-frame-options"), "DENY");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
});

test("sign in, create a key, use it, see its usage and CSV, revoke it, sign out", { timeout: 90000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const cspErrors = [];
  page.on("console", (m) => m.type() === "error" && cspErrors.push(m.text()));
  await page.goto(`${base}/admin/`);
  await page.getByLabel("Admin token").fill("wrong-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
  await page.getByText("That is not the admin token.").waitFor();
  await page.getByLabel("Admin token").fill(ADMIN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Keys" }).waitFor();

  await page.getByRole("button", { name: "New key" }).click();
  await page.getByLabel("Name", { exact: true }).fill("browser-key");
  await page.getByLabel("Tokens / day").fill("100000");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.locator("#created-key").textContent()).trim();
  assert.match(key, /^qgw-/);
  await page.getByRole("button", { name: "Done" }).click();
  await page.locator("#keys-table").getByRole("link", { name: "browser-key" }).waitFor();

  const res = await chat(key);
  assert.equal(res.status, 200, await res.text());

  // The ledger is written after the answer: look until the row is there.
  await page.goto(`${base}/admin/#usage`);
  let found = false;
  for (let i = 0; i < 40 && !found; i++) {
    await page.getByRole("button", { name: "Show" }).click();
    await page.waitForTimeout(250);
    found = (await page.locator("#usage-table tbody").textContent()).includes("browser-key");
  }
  assert.ok(found, "usage row for browser-key");
  assert.ok((await page.locator(".chart svg rect").count()) > 0, "chart bars");
  const csv = await page.evaluate(async () => (await fetch(document.getElementById("usage-csv").href)).text());
  const row = csv.split("\n").find((l) => l.includes(",browser-key,"));
  assert.ok(row, csv);
  assert.ok(row.includes(`,${MODEL},local,1,0,`), row);

  // CSRF-less POST with the cookie: refused.
  const status = await page.evaluate(async () =>
    (await fetch("/admin/keys", { method: "POST", headers: { "content-type": "application/json" }, body: '{"name":"x"}' })).status);
  assert.equal(status, 403);

  await page.goto(`${base}/admin/#keys`);
  await page.getByRole("button", { name: "Revoke browser-key" }).click();
  await page.locator("#revoke-confirm").click();
  await page.getByText("Key browser-key revoked.").waitFor();
  for (let i = 0; i < 20; i++) {
    const r = await chat(key);
    if (r.status === 401) break;
    await new Promise((ok) => setTimeout(ok, 100));
    if (i === 19) assert.equal(r.status, 401);
  }

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Admin token").waitFor();
  assert.deepEqual(cspErrors.filter((e) => /Content Security Policy/.test(e)), []);
  await context.close();
});

test("a narrow screen and the keyboard alone", { timeout: 60000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${base}/admin/`);
  // The token field has the focus: type and press Enter, no mouse.
  await page.keyboard.type(ADMIN);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Keys" }).waitFor();
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok((await overflow()) <= 1, "no sideways scrolling on Keys");
  // Tab (bounded) to the Usage link, follow it with Enter.
  let reached = false;
  for (let i = 0; i < 30 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.textContent?.trim() === "Usage");
  }
  assert.ok(reached, "the Usage link is reachable with Tab");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Usage" }).waitFor();
  assert.ok((await overflow()) <= 1, "no sideways scrolling on Usage");
  await page.goto(`${base}/admin/#status`);
  await page.getByRole("heading", { name: "Status" }).waitFor();
  assert.ok((await overflow()) <= 1, "no sideways scrolling on Status");
  await context.close();
});

test("wrong tokens are throttled", { timeout: 30000 }, async () => {
  const post = (token) =>
    fetch(`${base}/admin/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token }),
      redirect: "manual",
      signal: AbortSignal.timeout(10000),
    });
  let last;
  for (let i = 0; i < 10; i++) last = await post("nope");
  assert.equal(last.status === 401 || last.status === 429, true);
  assert.equal((await post(ADMIN)).status, 429);
});
