"use strict";
// The page's core: the runs, the selected run's report (refreshed on its events), the run
// header and the task panel. The views (graph.js, timeline.js, models.js, logs.js) draw from
// `view`, the state every one of them reads.

// The server's token comes once in the address (`#token=…`, which browsers never send) and is
// kept in a cookie for this port, so every request (fetch and EventSource alike) carries it.
(function keepToken() {
  const m = location.hash.match(/token=([0-9A-Za-z._~-]+)/);
  if (!m) return;
  document.cookie = "swarm_token_" + (location.port || "80") + "=" + m[1] + "; path=/; SameSite=Strict; max-age=31536000";
  history.replaceState(null, "", location.pathname + location.search);
})();

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const view = { run: null, task: null, report: null, timeline: null, models: null, source: null, shown: {} };
let pending = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  return fill(e, attrs, kids);
}

function svg(tag, attrs, ...kids) {
  return fill(document.createElementNS(SVG, tag), attrs, kids);
}

function fill(e, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.setAttribute("class", v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ headers: { "Content-Type": "application/json" } }, opts));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const runPath = () => "/api/runs/" + encodeURIComponent(view.run);
const ms = (t) => new Date(t).getTime();
const clock = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
function human(msecs) {
  const s = Math.max(0, msecs) / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.round((s % 3600) / 60)).padStart(2, "0") + "m";
}

async function loadRuns() {
  try {
    const { runs } = await api("/api/runs");
    $("runs").replaceChildren(...runs.map((r) => el("li", {}, el("button", {
      type: "button", "aria-current": String(r.run_id === view.run), "data-run": r.run_id,
      onclick: () => select(r.run_id),
    }, el("div", {}, r.plan + " "), el("div", { class: "muted" }, r.run_id + " · ", el("span", { class: "state s-" + r.state }, r.state))))));
    $("conn").textContent = "live";
    if (!view.run && runs.length) select(runs[0].run_id);
  } catch (e) { $("conn").textContent = "disconnected: " + e.message; }
}

function select(runId) {
  Object.assign(view, { run: runId, task: null, report: null, timeline: null, models: null, shown: {} });
  document.querySelectorAll("#runs button").forEach((b) => b.setAttribute("aria-current", String(b.dataset.run === runId)));
  if (view.source) view.source.close();
  closeLog();
  graphFitNext();
  view.source = new EventSource(runPath() + "/events");
  view.source.onmessage = () => refreshSoon();
  view.source.addEventListener("end", () => { view.source.close(); refresh(); loadRuns(); });
  refresh();
}

function refreshSoon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 150); }

// Draws `what` only when its data changed: the page (and the keyboard focus) stays as it is.
function changed(what, data) {
  const key = JSON.stringify(data);
  if (view.shown[what] === key) return false;
  view.shown[what] = key;
  return true;
}

async function refresh() {
  if (!view.run) return;
  const run = view.run;
  try {
    const [report, timeline, models] = await Promise.all([
      api(runPath()), api(runPath() + "/timeline"), api("/api/models?run=" + encodeURIComponent(run)),
    ]);
    if (run !== view.run) return;
    Object.assign(view, { report, timeline, models });
    if (changed("report", report)) renderRun();
    const { now, end, ...still } = timeline;
    if (changed("timeline", timeline.now ? timeline : still)) drawTimeline();
    const { now: _n, ...panel } = models;
    if (changed("models", [panel, report.by_model])) drawModels();
  } catch (e) { $("conn").textContent = "error: " + e.message; }
}

function renderRun() {
  const r = view.report;
  $("empty").hidden = true; $("run").hidden = false;
  $("run-title").textContent = r.plan + " · " + r.run_id;
  $("run-state").textContent = r.state; $("run-state").className = "state s-" + r.state;
  const c = r.counts || {};
  $("run-counts").textContent = `${c.succeeded || 0} succeeded · ${c.failed || 0} failed · ${c.blocked || 0} blocked · ${c.running || 0} running`;
  $("cancel").disabled = r.state !== "running";
  drawGraph();
  renderTask();
}

function openTask(id) {
  view.task = id;
  document.querySelectorAll(".task").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.task === id)));
  renderTask();
}

function renderTask() {
  const t = view.report && view.report.tasks.find((x) => x.id === view.task);
  $("task").hidden = !t;
  if (!t) return;
  $("task-title").textContent = t.id + " — " + (t.title || "");
  $("task-detail").textContent = t.reason ? t.reason + (t.detail ? ": " + t.detail : "") : "";
  $("attempts").replaceChildren(...(t.attempts || []).map((a) => el("tr", {},
    el("td", {}, a.n + (a.kind === "resolver" ? " (resolver)" : "")), el("td", {}, a.agent || t.agent || ""), el("td", {}, a.model || ""),
    el("td", {}, a.layer ?? ""), el("td", {}, `${a.tokens_in || 0}/${a.tokens_out || 0}`),
    el("td", {}, "$" + (a.cost_usd || 0).toFixed(4)), el("td", {}, (a.reason || "") + (a.detail ? ": " + a.detail : "")))));
  openLog(t);
}

$("cancel").addEventListener("click", async () => {
  if (!view.run) return;
  $("cancel").disabled = true;
  try { await api(runPath() + "/cancel", { method: "POST" }); } catch (e) { alert(e.message); }
  refresh(); loadRuns();
});

// A live run's clock moves: the timeline's now-line and the models' cooldowns with it.
setInterval(() => { if (view.report && view.report.state === "running") refresh(); }, 2000);
setInterval(loadRuns, 3000);
window.addEventListener("load", loadRuns);
