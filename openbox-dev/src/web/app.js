// openbox-dev web page: events, approvals and rules, updated live over server-sent events.
// Plain DOM code, no framework and no build step. Every value from a worker is inserted as
// text (never as HTML).
"use strict";

const MAX_EVENTS = 2000;
const MAX_ROWS = 500;
const events = new Map(); // seq -> logged request
const approvals = new Map(); // id -> approval
const expanded = new Set(); // seqs whose JSON is open
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// A dev Core started with an admin key is opened as http://host:port/#key=<key>.
const ADMIN_KEY = new URLSearchParams(location.hash.slice(1)).get("key");

async function api(method, path, body) {
  // The header marks the call as the page's own: a cross-site page cannot send it.
  const init = { method, headers: { "x-openbox-dev": "web" } };
  if (ADMIN_KEY) init.headers["x-openbox-admin-key"] = ADMIN_KEY;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${method} ${path}: HTTP ${res.status}`);
  return data;
}

// ---------- events ----------

function eventLabel(e) {
  const type = e.body && e.body.event_type;
  if (type) return e.body.hook_trigger ? `${type} (hook)` : type;
  if (e.path.endsWith("/governance/approval")) return "approval poll";
  if (e.path.endsWith("/auth/validate")) return "auth validate";
  return `${e.method} ${e.path}`;
}

function verdictOf(e) {
  if (e.fault) return { text: `fault: ${e.fault}`, cls: "v-error" };
  if (e.status && e.status !== 200) return { text: `HTTP ${e.status}`, cls: "v-error" };
  const v = e.response && e.response.verdict;
  // An observed (shadow-mode) evaluation: the SDK records the verdict but does not enforce it.
  const observed = ((e.headers && e.headers["x-openbox-enforcement"]) || "").toLowerCase() === "observe";
  if (typeof v === "string" && observed) return { text: `observed: ${v}`, cls: "v-observed" };
  // Delivered after an outage from the SDK's spool: recorded, not enforced (the operation ran).
  const late = ((e.headers && e.headers["x-openbox-delivery"]) || "").toLowerCase() === "late";
  if (typeof v === "string" && e.repeat_of) return { text: `repeat of #${e.repeat_of}: ${v}`, cls: "v-observed" };
  if (typeof v === "string" && late) return { text: `late: ${v}`, cls: "v-observed" };
  if (typeof v === "string") return { text: v, cls: `v-${v.toLowerCase()}` };
  if (e.response && e.response.valid !== undefined) return { text: e.response.valid ? "valid" : "invalid", cls: "" };
  return { text: "", cls: "" };
}

function addEvent(e, fresh) {
  if (events.has(e.seq)) return false;
  events.set(e.seq, e);
  if (events.size > MAX_EVENTS) {
    const oldest = Math.min(...events.keys());
    events.delete(oldest);
    expanded.delete(oldest);
  }
  e._fresh = fresh;
  addOption($("filter-type"), eventLabel(e).replace(" (hook)", ""));
  const v = verdictOf(e).text;
  if (v && !v.startsWith("HTTP") && !v.startsWith("fault")) addOption($("filter-verdict"), v);
  return true;
}

function addOption(select, value) {
  if (!value || [...select.options].some((o) => o.value === value)) return;
  select.append(el("option", { value }, value));
}

function matches(e) {
  const wf = $("filter-workflow").value.trim();
  const type = $("filter-type").value;
  const verdict = $("filter-verdict").value;
  if (!$("filter-hooks").checked && e.body && e.body.hook_trigger) return false;
  if (wf && !String((e.body && e.body.workflow_id) || "").includes(wf)) return false;
  if (type && eventLabel(e).replace(" (hook)", "") !== type) return false;
  if (verdict && verdictOf(e).text !== verdict) return false;
  return true;
}

// JSON with redacted values marked, so a reader sees what guardrails and masking removed.
function jsonView(value) {
  const text = JSON.stringify(value, null, 2) ?? "null";
  const pre = el("pre", { class: "mono" });
  const marker = /"[^"\n]*(?:\[REDACTED\]|\*\*\*\*)[^"\n]*"/g;
  let last = 0;
  for (const m of text.matchAll(marker)) {
    pre.append(text.slice(last, m.index), el("span", { class: "redacted" }, m[0]));
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

function time(rfc3339) {
  const d = new Date(rfc3339);
  if (isNaN(d)) return rfc3339;
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function renderEvents() {
  const body = $("events");
  const rows = [];
  const sorted = [...events.values()].sort((a, b) => b.seq - a.seq);
  let shown = 0;
  for (const e of sorted) {
    if (!matches(e)) continue;
    if (++shown > MAX_ROWS) break;
    const v = verdictOf(e);
    const b = e.body || {};
    const row = el("tr", { class: "event" + (e._fresh ? " fresh" : ""), "data-seq": e.seq,
        onclick: () => { expanded.has(e.seq) ? expanded.delete(e.seq) : expanded.add(e.seq); renderEvents(); } },
      el("td", { class: "mono" }, e.seq),
      el("td", { class: "mono" }, time(e.time)),
      el("td", { class: "type" }, eventLabel(e)),
      el("td", { class: "wf" }, b.workflow_id || ""),
      el("td", {}, b.activity_type || ""),
      el("td", { class: `verdict ${v.cls}` }, v.text),
      el("td", {}, e.rule || ""));
    e._fresh = false;
    rows.push(row);
    if (expanded.has(e.seq)) {
      rows.push(el("tr", { class: "detail" }, el("td", { colspan: 7 },
        el("div", { class: "json" },
          el("div", {}, el("h3", {}, `Request ${e.method} ${e.path}`), jsonView({ headers: e.headers, body: e.body })),
          el("div", {}, el("h3", {}, `Answer (HTTP ${e.status})`), jsonView(e.response))))));
    }
  }
  body.replaceChildren(...rows);
  $("event-count").textContent = events.size;
  $("events-empty").hidden = events.size > 0;
}

// ---------- approvals ----------

function remaining(a) {
  if (!a.expires_at) return "no expiry";
  const ms = new Date(a.expires_at) - Date.now();
  if (ms <= 0) return "expired";
  const s = Math.ceil(ms / 1000);
  const m = Math.floor(s / 60);
  return `expires in ${m ? m + "m " : ""}${s % 60}s`;
}

function isOpen(a) {
  return a.state === "pending" && !a.expired && remaining(a) !== "expired";
}

async function decide(a, approve, buttons) {
  buttons.forEach((b) => (b.disabled = true));
  try {
    const decided = await api("POST", `/api/dev/approvals/${encodeURIComponent(a.id)}/${approve ? "approve" : "reject"}`, { by: "web" });
    approvals.set(decided.id, decided);
  } catch (err) {
    a._error = err.message;
  }
  renderApprovals();
}

function renderApprovals() {
  const list = [...approvals.values()].sort((x, y) =>
    (isOpen(y) - isOpen(x)) || (Number(y.id.slice(4)) - Number(x.id.slice(4))));
  const items = list.map((a) => {
    const open = isOpen(a);
    const approve = el("button", { type: "button", class: "approve" }, "Approve");
    const reject = el("button", { type: "button", class: "reject" }, "Reject");
    approve.addEventListener("click", () => decide(a, true, [approve, reject]));
    reject.addEventListener("click", () => decide(a, false, [approve, reject]));
    const status = a.state === "pending"
      ? el("span", { class: "expiry" }, remaining(a))
      : el("span", { class: "decision" }, `${a.state} by ${a.by}${a.reason ? ": " + a.reason : ""}`);
    return el("li", { class: "approval" + (open || a.state !== "pending" ? "" : " expired"), "data-id": a.id, "data-state": a.state },
      el("div", { class: "title" }, `${a.activity_type || "activity"} `, el("span", { class: "mono" }, a.id)),
      el("div", { class: "meta" },
        `workflow ${a.workflow_id}${a.workflow_type ? " (" + a.workflow_type + ")" : ""} · activity ${a.activity_id} · rule ${a.rule}`,
        a.reason ? el("div", {}, a.reason) : null),
      el("div", { class: "actions" }, open ? approve : null, open ? reject : null, status,
        a._error ? el("span", { class: "message error" }, a._error) : null));
  });
  $("approvals").replaceChildren(...items);
  $("pending-count").textContent = list.filter(isOpen).length;
  $("approvals-empty").hidden = list.length > 0;
}

// ---------- rules ----------

function renderRules(r) {
  $("rules-path").textContent = r.path ? `from ${r.path}` : "built in (no rules file: reload is unavailable)";
  $("reload-rules").disabled = !r.path;
  $("rules").replaceChildren(...r.rules.map((rule) =>
    el("li", {}, el("span", { class: `verdict v-${rule.verdict}` }, rule.verdict), " ", rule.name)));
  if (!r.rules.length) $("rules").replaceChildren(el("li", { class: "empty" }, "no rules: everything is allowed"));
  $("rules-source").textContent = r.source;
}

async function reloadRules() {
  const msg = $("rules-message");
  try {
    const r = await api("POST", "/api/dev/rules/reload");
    renderRules(r);
    msg.className = "message";
    msg.textContent = `reloaded ${r.rules.length} rule(s) at ${new Date().toLocaleTimeString([], { hour12: false })}`;
  } catch (err) {
    msg.className = "message error";
    msg.textContent = err.message;
  }
}

// ---------- live updates ----------

async function loadAll() {
  const [recent, list, rules] = await Promise.all([
    api("GET", `/api/dev/events?tail=${MAX_EVENTS}`),
    api("GET", "/api/dev/approvals"),
    api("GET", "/api/dev/rules"),
  ]);
  recent.forEach((e) => addEvent(e, false));
  approvals.clear();
  list.forEach((a) => approvals.set(a.id, a));
  renderEvents();
  renderApprovals();
  renderRules(rules);
}

function setStatus(state, text) {
  const s = $("status");
  s.dataset.state = state;
  s.textContent = text;
}

function connect() {
  const source = new EventSource(ADMIN_KEY ? `/api/dev/stream?key=${encodeURIComponent(ADMIN_KEY)}` : "/api/dev/stream");
  let pending = null; // coalesces bursts into one render per frame
  const schedule = () => {
    if (pending) return;
    pending = requestAnimationFrame(() => { pending = null; renderEvents(); });
  };
  source.addEventListener("open", () => {
    setStatus("live", "live");
    loadAll().catch((err) => setStatus("down", err.message));
  });
  source.addEventListener("error", () => setStatus("down", "disconnected, retrying…"));
  source.addEventListener("request", (m) => { if (addEvent(JSON.parse(m.data), true)) schedule(); });
  source.addEventListener("approval", (m) => {
    const a = JSON.parse(m.data);
    approvals.set(a.id, a);
    renderApprovals();
  });
  source.addEventListener("lagged", () => loadAll().catch(() => {}));
}

for (const id of ["filter-workflow", "filter-type", "filter-verdict", "filter-hooks"]) {
  $(id).addEventListener("input", renderEvents);
}
$("reload-rules").addEventListener("click", reloadRules);
// Counts expiries down in place; re-renders only when a request stops being answerable, so a
// click never lands on a button that is being replaced.
setInterval(() => {
  for (const li of document.querySelectorAll('li.approval[data-state="pending"]')) {
    const a = approvals.get(li.dataset.id);
    const expiry = li.querySelector(".expiry");
    if (!a || !expiry) continue;
    expiry.textContent = remaining(a);
    if (!isOpen(a) && li.querySelector("button.approve")) renderApprovals();
  }
}, 1000);
connect();
