// qwen-gateway dashboard. Plain JS, no dependencies: it calls the gateway's /admin JSON API
// with the session cookie and the CSRF token from the page's <meta>, and draws its charts
// as SVG. Everything from the server is put in the page as text (never as HTML).
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const CSRF = meta("csrf-token");
const REGIONS = meta("regions").split(",").filter(Boolean);
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the admin API; a lost session (401) shows the sign-in form again. */
async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = CSRF;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    location.reload();
    throw new ApiError(401, "signed out");
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

function flash(message) {
  const f = $("flash");
  f.textContent = message;
  f.hidden = !message;
}

const fmt = (n) => Number(n ?? 0).toLocaleString("en-US");
const day = (iso) => (iso ? iso.slice(0, 10) : "");
const when = (iso) => (iso ? iso.replace("T", " ").replace("Z", " UTC") : "never");
const list = (v) => (v && v.length ? v.join(", ") : "any");
const limit = (v) => (v === null || v === undefined ? "–" : fmt(v));

// ---- routing ---------------------------------------------------------------------------

const pages = ["keys", "key", "usage", "status"];
let statusTimer = null;

function route() {
  const [page, arg] = (location.hash.slice(1) || "keys").split("/");
  const name = pages.includes(page) ? page : "keys";
  for (const p of pages) $(`page-${p}`).hidden = p !== name;
  for (const a of document.querySelectorAll("nav a")) {
    const current = a.dataset.page === name || (name === "key" && a.dataset.page === "keys");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clearInterval(statusTimer);
  flash("");
  if (name === "keys") loadKeys(true);
  if (name === "key") showKey(decodeURIComponent(arg ?? ""));
  if (name === "usage") showUsage();
  if (name === "status") {
    showStatus();
    statusTimer = setInterval(showStatus, 5000);
  }
}

// ---- keys ------------------------------------------------------------------------------

const keys = { items: [], after: null, hasMore: false };

async function loadKeys(reset) {
  if (reset) Object.assign(keys, { items: [], after: null, hasMore: false });
  const q = new URLSearchParams({ limit: "50" });
  if (keys.after) q.set("after", keys.after);
  try {
    const page = await api("GET", `/admin/keys?${q}`);
    keys.items.push(...page.data);
    keys.after = page.last_id;
    keys.hasMore = page.has_more;
  } catch (err) {
    flash(`Cannot list keys: ${err.message}`);
  }
  renderKeys();
}

function renderKeys() {
  const search = $("key-search").value.trim().toLowerCase();
  const status = $("key-status").value;
  const shown = keys.items.filter(
    (k) => (!search || k.name.toLowerCase().includes(search)) && (!status || k.status === status),
  );
  const rows = shown.map((k) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: `#key/${encodeURIComponent(k.id)}`, text: k.name })),
      el("td", {}, el("code", { text: k.prefix })),
      el("td", {}, el("span", { class: `badge ${k.status}`, text: k.status })),
      el("td", { text: list(k.models) }),
      el("td", { text: list(k.regions) }),
      el("td", { text: `${limit(k.rpm)} / ${limit(k.tpm)} / ${limit(k.daily_tokens)}` }),
      el("td", { text: day(k.created_at) }),
      el("td", { text: k.expires_at ? day(k.expires_at) : "never" }),
      el(
        "td",
        {},
        k.status === "active"
          ? el("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name}`, onclick: () => askRevoke(k), text: "Revoke" })
          : null,
      ),
    ),
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "9", class: "muted", text: "No keys match." })));
  $("keys-table").tBodies[0].replaceChildren(...rows);
  $("keys-count").textContent =
    `${shown.length} shown of ${keys.items.length} loaded` + (keys.hasMore ? " (more on the server)" : "");
  $("keys-more").hidden = !keys.hasMore;
}

function openCreate() {
  const form = $("create-form");
  form.reset();
  form.hidden = false;
  $("created").hidden = true;
  $("create-error").hidden = true;
  const box = $("create-regions");
  box.replaceChildren(
    el("legend", { text: "Regions (none ticked: any)" }),
    ...REGIONS.map((r) => el("label", {}, el("input", { type: "checkbox", name: "regions", value: r }), r)),
  );
  $("create-dialog").showModal();
}

async function submitCreate(event) {
  event.preventDefault();
  const form = $("create-form");
  const data = new FormData(form);
  const body = { name: data.get("name").trim() };
  const models = data.get("models").split(",").map((m) => m.trim()).filter(Boolean);
  if (models.length) body.models = models;
  const regions = data.getAll("regions");
  if (regions.length) body.regions = regions;
  for (const f of ["rpm", "tpm", "daily_tokens"]) {
    if (data.get(f)) body[f] = Number(data.get(f));
  }
  if (data.get("expires").trim()) body.expires = data.get("expires").trim();
  $("create-submit").disabled = true;
  try {
    const created = await api("POST", "/admin/keys", body);
    form.hidden = true;
    $("created-key").textContent = created.key;
    $("created").hidden = false;
    $("created-copy").focus();
  } catch (err) {
    const e = $("create-error");
    e.textContent = err.message;
    e.hidden = false;
  } finally {
    $("create-submit").disabled = false;
  }
}

async function copyKey() {
  const text = $("created-key").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("created-copy").textContent = "Copied";
  } catch {
    // No clipboard permission (plain HTTP): select the key for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents($("created-key"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("created-copy").textContent = "Selected: press Ctrl+C";
  }
}

function closeCreated() {
  $("created-key").textContent = "";
  $("created-copy").textContent = "Copy key";
  $("create-dialog").close();
  if (location.hash.startsWith("#keys") || !location.hash) loadKeys(true);
}

let revoking = null;

function askRevoke(key) {
  revoking = key;
  $("revoke-name").textContent = key.name;
  $("revoke-dialog").showModal();
  $("revoke-cancel").focus();
}

async function confirmRevoke() {
  const key = revoking;
  $("revoke-dialog").close();
  if (!key) return;
  try {
    await api("DELETE", `/admin/keys/${encodeURIComponent(key.id)}`);
    flash(`Key ${key.name} revoked.`);
  } catch (err) {
    flash(`Cannot revoke ${key.name}: ${err.message}`);
  }
  if (location.hash.startsWith("#key/")) showKey(key.id);
  else loadKeys(true);
}

async function showKey(id) {
  $("key-title").textContent = "Key";
  $("key-settings").replaceChildren();
  $("key-usage").replaceChildren();
  let k;
  try {
    k = await api("GET", `/admin/keys/${encodeURIComponent(id)}`);
  } catch (err) {
    flash(`Cannot show the key: ${err.message}`);
    return;
  }
  $("key-title").textContent = `Key ${k.name}`;
  const fields = [
    ["Id", k.id], ["Prefix", k.prefix], ["Status", k.status], ["Models", list(k.models)],
    ["Regions", list(k.regions)], ["Requests / minute", limit(k.rpm)], ["Tokens / minute", limit(k.tpm)],
    ["Tokens / day", limit(k.daily_tokens)], ["Created", when(k.created_at)], ["Expires", when(k.expires_at)],
    ["Revoked", k.revoked_at ? when(k.revoked_at) : "no"],
  ];
  $("key-settings").replaceChildren(...fields.flatMap(([t, d]) => [el("dt", { text: t }), el("dd", { text: d })]));
  $("key-revoke").hidden = k.status !== "active";
  $("key-revoke").onclick = () => askRevoke(k);
  const to = today();
  const from = addDays(to, -29);
  const lines = (await usageLines(from, to)).filter((l) => l.key_id === k.id);
  const csv = `/admin/usage.csv?${new URLSearchParams({ from, to, key: k.id })}`;
  $("key-usage").replaceChildren(
    el("p", { class: "muted" }, `Last 30 days (${from} to ${to}). `, el("a", { href: csv, text: "Download CSV" })),
    usageView(lines, from, to, "model"),
  );
}

// ---- usage -----------------------------------------------------------------------------

const today = () => new Date().toISOString().slice(0, 10);
function addDays(iso, n) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
function daysBetween(from, to) {
  const out = [];
  for (let d = from; d <= to && out.length < 400; d = addDays(d, 1)) out.push(d);
  return out;
}

/** Every ledger line from `from` to `to`, page after page (the store sorts by day first). */
async function usageLines(from, to) {
  const out = [];
  let after = null;
  for (let pages = 0; pages < 100; pages++) {
    const q = new URLSearchParams({ since: from, limit: "1000" });
    if (after) q.set("after", after);
    const page = await api("GET", `/admin/usage?${q}`);
    out.push(...page.data.filter((l) => l.day <= to));
    const last = page.data.at(-1);
    if (!page.has_more || !last || last.day > to) break;
    after = page.last_id;
  }
  return out;
}

const keyLabel = (l) => l.key_name ?? (l.key_id ? l.key_id : "(no key)");

function showUsage() {
  if (!$("usage-to").value) $("usage-to").value = today();
  if (!$("usage-from").value) $("usage-from").value = addDays(today(), -6);
  loadUsage();
}

async function loadUsage() {
  const from = $("usage-from").value;
  const to = $("usage-to").value;
  $("usage-csv").href = `/admin/usage.csv?${new URLSearchParams({ from, to })}`;
  try {
    const lines = await usageLines(from, to);
    $("usage-body").replaceChildren(usageView(lines, from, to, $("usage-stack").value));
  } catch (err) {
    flash(`Cannot read usage: ${err.message}`);
  }
}

/** Totals, three charts and the table of some ledger lines. */
function usageView(lines, from, to, stackBy) {
  const sum = (f) => lines.reduce((a, l) => a + f(l), 0);
  const tokens = (l) => l.input_tokens + l.output_tokens;
  const totals = el(
    "div",
    { class: "totals" },
    ...[
      ["Requests", sum((l) => l.requests)],
      ["Errors", sum((l) => l.errors)],
      ["Input tokens", sum((l) => l.input_tokens)],
      ["Output tokens", sum((l) => l.output_tokens)],
    ].map(([t, n]) => el("div", {}, el("span", { class: "muted", text: t }), el("strong", { text: fmt(n) }))),
  );
  const days = daysBetween(from, to);
  const by = stackBy === "model" ? (l) => l.model || "(none)" : keyLabel;
  const charts = el(
    "div",
    { class: "charts" },
    chart(`Requests per day, by ${stackBy}`, days, lines, by, (l) => l.requests),
    chart(`Tokens per day (input + output), by ${stackBy}`, days, lines, by, tokens),
    chart(`Errors per day, by ${stackBy}`, days, lines, by, (l) => l.errors),
  );
  const note = el(
    "p",
    { class: "muted" },
    "The ledger counts errors per day, key, model and region, not their HTTP status; the Status page shows the upstream's answers by status since the gateway started.",
  );
  return el("div", {}, totals, charts, note, usageTable(lines));
}

function usageTable(lines) {
  const cols = [
    ["Day", (l) => l.day], ["Key", keyLabel], ["Model", (l) => l.model], ["Region", (l) => l.region],
    ["Requests", (l) => l.requests, true], ["Errors", (l) => l.errors, true],
    ["Input", (l) => l.input_tokens, true], ["Output", (l) => l.output_tokens, true],
    ["Cached", (l) => l.cached_tokens, true], ["Reasoning", (l) => l.reasoning_tokens, true],
  ];
  const head = el("tr", {}, ...cols.map(([t, , n]) => el("th", { class: n ? "num" : null, scope: "col", text: t })));
  const body = lines.map((l) =>
    el("tr", {}, ...cols.map(([, f, n]) => el("td", { class: n ? "num" : null, text: n ? fmt(f(l)) : f(l) }))),
  );
  if (!body.length) body.push(el("tr", {}, el("td", { colspan: String(cols.length), class: "muted", text: "No usage in this range." })));
  const foot = el(
    "tr",
    {},
    ...cols.map(([, f, n], i) =>
      el("td", { class: n ? "num" : null, text: n ? fmt(lines.reduce((a, l) => a + f(l), 0)) : i === 0 ? "Total" : "" }),
    ),
  );
  return el("div", { class: "table-wrap" }, el("table", { id: "usage-table" }, el("thead", {}, head), el("tbody", {}, body), el("tfoot", {}, foot)));
}

/** A stacked bar chart as SVG: one bar per day, one colour per group (the 7 largest, then "other"). */
function chart(title, days, lines, groupOf, valueOf) {
  const totals = new Map();
  for (const l of lines) totals.set(groupOf(l), (totals.get(groupOf(l)) ?? 0) + valueOf(l));
  let groups = [...totals.entries()].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([g]) => g);
  const other = groups.length > 8 ? "other" : null;
  if (other) groups = [...groups.slice(0, 7), other];
  const cell = new Map(); // day → group → value
  for (const l of lines) {
    let g = groupOf(l);
    if (!groups.includes(g)) g = other;
    if (!g) continue;
    const row = cell.get(l.day) ?? new Map();
    row.set(g, (row.get(g) ?? 0) + valueOf(l));
    cell.set(l.day, row);
  }
  const dayTotal = (d) => [...(cell.get(d)?.values() ?? [])].reduce((a, b) => a + b, 0);
  const max = niceMax(Math.max(0, ...days.map(dayTotal)));
  const W = 600, H = 220, left = 48, bottom = 24, top = 8, right = 8;
  const plotW = W - left - right, plotH = H - top - bottom;
  const slot = plotW / Math.max(1, days.length);
  const bar = Math.max(1, Math.min(40, slot * 0.7));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    root.append(svg("line", { x1: left, x2: W - right, y1: y, y2: y }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, compact((max * i) / 4)));
  }
  const labelEvery = Math.ceil(days.length / 8);
  days.forEach((d, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    let y = top + plotH;
    groups.forEach((g, gi) => {
      const v = cell.get(d)?.get(g) ?? 0;
      if (!v) return;
      const h = (v / max) * plotH;
      y -= h;
      const rect = svg("rect", { x, y, width: bar, height: Math.max(h, 0.5), class: `c${gi % 8}` });
      rect.append(svg("title", {}, `${d} · ${g}: ${fmt(v)}`));
      root.append(rect);
    });
    if (i % labelEvery === 0) {
      root.append(svg("text", { x: x + bar / 2, y: H - 6, "text-anchor": "middle" }, d.slice(5)));
    }
  });
  const legend = el("ul", { class: "legend" }, ...groups.map((g, gi) => el("li", { class: `c${gi % 8}`, text: g })));
  if (!groups.length) legend.append(el("li", { class: "muted", text: "nothing in this range" }));
  return el("figure", { class: "chart" }, el("h3", { text: title }), root, legend);
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}

const compact = (n) => (n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${+n.toFixed(1)}`);

// ---- status ----------------------------------------------------------------------------

let previous = null; // the last /admin/status reading, for rates since then

async function showStatus() {
  let s;
  try {
    s = await api("GET", "/admin/status");
  } catch (err) {
    flash(`Cannot read the status: ${err.message}`);
    return;
  }
  const prevValue = (name, labels) => {
    const found = previous?.[name]?.find((x) => JSON.stringify(x.labels) === JSON.stringify(labels));
    return found ? found.value : null;
  };
  const since = previous ? s.now - previous.now : null;
  const regions = el(
    "div",
    { class: "regions" },
    ...s.regions.map((r) =>
      el(
        "div",
        { class: "card region" },
        el("h2", {}, `${r.name} `, el("span", { class: `badge ${r.available ? "available" : "open"}`, text: r.available ? "available" : "unavailable" })),
        el(
          "dl",
          { class: "settings" },
          el("dt", { text: "Breaker" }), el("dd", {}, el("span", { class: `badge ${r.breaker.state}`, text: r.breaker.state })),
          el("dt", { text: "Failures in a row" }), el("dd", { text: fmt(r.breaker.consecutive_failures) }),
          el("dt", { text: "Failures / successes" }), el("dd", { text: `${fmt(r.breaker.total_failures)} / ${fmt(r.breaker.total_successes)}` }),
          el("dt", { text: "Last failure" }), el("dd", { text: r.breaker.last_failure ?? "none" }),
          r.breaker.retry_in_secs != null ? [el("dt", { text: "Trial in" }), el("dd", { text: `${Math.ceil(r.breaker.retry_in_secs)}s` })] : null,
        ),
        el("h3", { text: "Keys in rotation" }),
        el(
          "ul",
          {},
          ...r.keys.map((k) =>
            el("li", {}, el("code", { text: k.env_var }), " ", el("span", { class: `badge ${k.state}`, text: k.state }),
              k.available_in_secs != null ? ` (back in ${Math.ceil(k.available_in_secs)}s)` : ""),
          ),
        ),
      ),
    ),
  );
  const failRows = s.failovers.map((f) => {
    const before = prevValue("failovers", f.labels);
    return el("tr", {}, el("td", { text: f.labels.from ?? "" }), el("td", { text: f.labels.reason ?? "" }),
      el("td", { class: "num", text: fmt(f.value) }), el("td", { class: "num", text: before === null ? "–" : fmt(f.value - before) }));
  });
  if (!failRows.length) failRows.push(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No failovers since the gateway started." })));
  const perRegion = new Map();
  for (const u of s.upstream_requests) {
    const r = perRegion.get(u.labels.region) ?? { total: 0, errors: 0, recent: 0, recentErrors: 0 };
    const isError = !/^2\d\d$/.test(u.labels.status ?? "");
    const before = prevValue("upstream_requests", u.labels);
    r.total += u.value;
    if (isError) r.errors += u.value;
    if (before !== null) {
      r.recent += u.value - before;
      if (isError) r.recentErrors += u.value - before;
    }
    perRegion.set(u.labels.region, r);
  }
  const pct = (a, b) => (b ? `${((100 * a) / b).toFixed(1)}%` : "–");
  const upRows = [...perRegion.entries()].map(([region, r]) =>
    el("tr", {}, el("td", { text: region }), el("td", { class: "num", text: fmt(r.total) }), el("td", { class: "num", text: pct(r.errors, r.total) }),
      el("td", { class: "num", text: since === null ? "–" : pct(r.recentErrors, r.recent) })),
  );
  if (!upRows.length) upRows.push(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No upstream requests since the gateway started." })));
  const statusRows = s.upstream_requests.map((u) =>
    el("tr", {}, el("td", { text: u.labels.region ?? "" }), el("td", { text: u.labels.status ?? "" }), el("td", { class: "num", text: fmt(u.value) })),
  );
  const table = (id, heads, rows) =>
    el("div", { class: "table-wrap" }, el("table", { id }, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, rows)));
  $("status-body").replaceChildren(
    el("p", {}, s.ready ? "Ready: at least one region takes traffic." : "Not ready: no region can take traffic."),
    regions,
    el("h2", { text: "Failovers by reason" }),
    table("failovers-table", ["From region", "Reason", "Since start", since === null ? "Recent" : `Last ${since}s`], failRows),
    el("h2", { text: "Upstream error rates" }),
    table("upstream-table", ["Region", "Requests since start", "Error rate", since === null ? "Recent" : `Last ${since}s`], upRows),
    el("h2", { text: "Upstream answers by status" }),
    table("status-table", ["Region", "Status", "Requests"], statusRows),
  );
  $("status-updated").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every 5 s`;
  previous = { now: s.now, failovers: s.failovers, upstream_requests: s.upstream_requests };
}

// ---- wiring ----------------------------------------------------------------------------

async function signOut() {
  try {
    await api("POST", "/admin/logout");
  } finally {
    location.href = "/admin/";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signout").addEventListener("click", signOut);
  $("new-key").addEventListener("click", openCreate);
  $("create-form").addEventListener("submit", submitCreate);
  $("create-cancel").addEventListener("click", () => $("create-dialog").close());
  $("created-copy").addEventListener("click", copyKey);
  $("created-done").addEventListener("click", closeCreated);
  $("create-dialog").addEventListener("close", () => ($("created-key").textContent = ""));
  $("revoke-cancel").addEventListener("click", () => $("revoke-dialog").close());
  $("revoke-confirm").addEventListener("click", confirmRevoke);
  $("keys-more").addEventListener("click", () => loadKeys(false));
  $("key-search").addEventListener("input", renderKeys);
  $("key-status").addEventListener("change", renderKeys);
  $("usage-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadUsage();
  });
  $("usage-stack").addEventListener("change", loadUsage);
  window.addEventListener("hashchange", route);
  route();
});
