// The /admin/ dashboard in a real browser: Debian's chromium driven by playwright-core,
// against the real debug binaries (mock Model Studio, qwen-gateway with a SQLite store and an
// admin token) on loopback. Bounded timeouts everywhere; no network beyond 127.0.0.1.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { startStack, MODEL } from "./stack.mjs";

const ADMIN = "dashboard-browser-admin-token-7d21";
let stack, base, browser;

before(async () => {
  stack = await startStack(ADMIN);
  ({ base, browser } = stack);
});

after(async () => {
  await stack?.stop();
});

const chat = (key) => stack.chat(key);

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
  await page.getByRole("heading", { name: "Keys", exact: true }).waitFor();

  await page.getByRole("button", { name: "New key" }).click();
  await page.getByLabel("Name", { exact: true }).fill("browser-key");
  await page.getByLabel("Tokens / day").fill("100000");
  await page.getByRole("button", { name: "Create key" }).click();
  // The key is written into the page when the POST answers: wait for it, not for the click.
  await page.locator("#created").waitFor();
  await page.waitForFunction(() => document.getElementById("created-key").textContent.trim() !== "");
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
  // The token field takes the focus by itself (autofocus, applied after the page's first
  // render: wait for it, or a slow machine types the first keys into nothing). Then type and
  // press Enter, no mouse.
  await page.waitForFunction(() => document.activeElement?.id === "token");
  await page.keyboard.type(ADMIN);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Keys", exact: true }).waitFor();
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
  await page.getByRole("heading", { name: "Usage", exact: true }).waitFor();
  assert.ok((await overflow()) <= 1, "no sideways scrolling on Usage");
  await page.goto(`${base}/admin/#status`);
  await page.getByRole("heading", { name: "Status", exact: true }).waitFor();
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
