// Screenshots of each dashboard page for docs/dashboard/*.png (1280x800), taken against the
// real debug binaries with a little traffic: `node screenshots.mjs` (after `cargo build --bins`).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startStack, root } from "./stack.mjs";

const out = join(root, "docs/dashboard");
const ADMIN = "dashboard-screenshot-admin-token-19c4";
let stack, base, browser;
const chat = (key, model) => stack.chat(key, model);

const timer = setTimeout(() => { console.error("screenshots: timed out"); process.exit(1); }, 120000);
try {
  stack = await startStack(ADMIN);
  ({ base, browser } = stack);
  mkdirSync(out, { recursive: true });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${base}/admin/`);
  await page.screenshot({ path: join(out, "signin.png") });
  await page.getByLabel("Admin token").fill(ADMIN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Keys", exact: true }).waitFor();
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
  await stack?.stop();
}
