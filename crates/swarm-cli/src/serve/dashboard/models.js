// The models panel: each model of the hierarchy by layer — ok, cooling (until when, why),
// disabled, or its day spent (until its provider's reset) — its requests this minute against
// its rpm and today against its rpd, the refusals the gateway absorbed for this run, the
// requests per minute per layer over the run, and tokens and cost per model and per task
// against the budget.

function standing(m) {
  const rpd = (m.learned && m.learned.rpd) ?? m.limits.rpd;
  const dayOver = rpd != null && m.usage.day_requests >= rpd;
  if ((m.state !== "ok" && m.reason === "quota_exhausted") || dayOver) {
    const until = m.state !== "ok" && m.until ? m.until : m.resets_at;
    return { cls: "exhausted", text: `day exhausted until ${new Date(until).toLocaleString()} (${m.day_reset} day)` };
  }
  if (m.state === "cooling") return { cls: "cooling", text: `cooling until ${clock(m.until)} — ${m.reason}` };
  if (m.state === "disabled") return { cls: "disabled", text: `disabled — ${m.reason}` };
  return { cls: "ok", text: "ok" };
}

function meter(used, limit, unit) {
  if (limit == null) return el("span", { title: `no ${unit} limit` }, `${used} req`);
  const share = limit > 0 ? Math.min(1, used / limit) : 1;
  return el("span", {}, el("span", { class: "meter" + (share >= 1 ? " full" : ""), "aria-hidden": "true" },
    el("span", { style: `width:${(share * 100).toFixed(0)}%` })), `${used} / ${limit} ${unit}`);
}

function drawModels() {
  const p = view.models, r = view.report;
  if (!p || !r) return;
  const run = p.run || { absorbed: {}, absorbed_last: {}, per_minute: [] };
  const used = new Map((r.by_model || []).map((m) => [m.model, m]));
  const layers = new Map();
  for (const m of p.models) (layers.get(m.layer) || layers.set(m.layer, []).get(m.layer)).push(m);
  const box = $("models");
  if (!p.models.length) {
    // No hierarchy: the models the tasks named, as the report counts them.
    const rows = (r.by_model || []).filter((m) => m.model).map((m) => el("tr", { class: "model", "data-model": m.model },
      el("td", {}, m.model), el("td", {}, `${m.attempts} attempt(s)`), el("td", {}, `${m.tokens_in}/${m.tokens_out} · $${m.cost_usd.toFixed(4)}`)));
    box.replaceChildren(el("p", { class: "muted small" }, "No model hierarchy (swarm.toml has no [models] layers): the models the tasks named."),
      el("table", { class: "models" }, el("thead", {}, el("tr", {}, ...["model", "served", "tokens in/out · cost"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows)));
  } else {
    const heads = ["model", "state", "this minute", "today", "429s absorbed (this run)", "tokens in/out · cost (this run)"];
    box.replaceChildren(el("table", { class: "models", "aria-label": "Models of the hierarchy, by layer" },
      el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))),
      ...[...layers.keys()].sort((a, b) => a - b).map((layer) => el("tbody", { "aria-label": "Layer " + layer },
        el("tr", { class: "layer-head" }, el("th", { colspan: String(heads.length), scope: "rowgroup" }, "Layer " + layer)),
        ...layers.get(layer).map((m) => modelRow(m, run, used.get(m.model)))))));
  }
  drawBudget(p, r);
  drawChart(run.per_minute);
  drawUsage(r);
}

function modelRow(m, run, u) {
  const s = standing(m);
  const rpm = (m.learned && m.learned.rpm) ?? m.limits.rpm, rpd = (m.learned && m.learned.rpd) ?? m.limits.rpd;
  const absorbed = run.absorbed[m.model] || 0;
  return el("tr", { class: `model m-${s.cls}`, "data-model": m.model, "data-state": s.cls },
    el("td", {}, m.model + (m.paid ? " (paid)" : "")),
    el("td", { class: "mstate" }, s.text),
    el("td", {}, meter(m.usage.minute_requests, rpm, "rpm")),
    el("td", {}, meter(m.usage.day_requests, rpd, "rpd")),
    el("td", { title: run.absorbed_last[m.model] || "" }, absorbed ? `${absorbed} (${(run.absorbed_last[m.model] || "").split(":")[0]})` : "0"),
    el("td", {}, u ? `${u.tokens_in}/${u.tokens_out} · $${u.cost_usd.toFixed(4)}` : "—"));
}

function drawBudget(p, r) {
  const parts = [`spent $${r.totals.cost_usd.toFixed(4)}, ${r.totals.tokens_in + r.totals.tokens_out} tokens`];
  if (p.budget_usd != null) parts.push(`budget $${p.budget_usd.toFixed(2)} (${((100 * r.totals.cost_usd) / Math.max(p.budget_usd, 1e-9)).toFixed(0)}% used)`);
  if (p.budget_tokens != null) parts.push(`token budget ${p.budget_tokens}`);
  $("budget").textContent = parts.join(" · ");
}

// Requests per minute, stacked by layer, over the run.
function drawChart(perMinute) {
  const fig = $("rpm-chart");
  const caption = el("figcaption", {}, "Requests per minute, by layer");
  if (!perMinute.length) { fig.replaceChildren(caption, el("p", { class: "muted small" }, "No gateway requests in this run (or it ran on another host).")); return; }
  const minutes = [...new Set(perMinute.map((m) => m.minute))].sort();
  const layers = [...new Set(perMinute.map((m) => m.layer))].sort((a, b) => a - b);
  const total = (min) => perMinute.filter((m) => m.minute === min).reduce((a, m) => a + m.requests, 0);
  const top = Math.max(...minutes.map(total), 1);
  const W = 360, H = 120, bw = Math.max(4, Math.min(28, (W - 30) / minutes.length - 2));
  const chart = svg("svg", { width: W, height: H + 16, role: "img", "aria-label": `Requests per minute over ${minutes.length} minute(s), at most ${top}` });
  minutes.forEach((min, i) => {
    let y = H;
    for (const layer of layers) {
      const n = (perMinute.find((m) => m.minute === min && m.layer === layer) || {}).requests || 0;
      if (!n) continue;
      const h = (n / top) * (H - 10);
      y -= h;
      chart.append(svg("rect", { class: "l" + Math.min(layer, 7), x: 26 + i * (bw + 2), y, width: bw, height: h },
        svg("title", {}, `${clock(min)}: layer ${layer}, ${n} request(s)`)));
    }
  });
  chart.append(svg("text", { x: 0, y: 10 }, String(top)), svg("text", { x: 0, y: H }, "0"),
    svg("text", { x: 26, y: H + 13 }, clock(minutes[0])));
  const key = el("div", { class: "small legend" }, ...layers.map((l) => el("span", {}, el("span", { class: "key l" + Math.min(l, 7) }), "layer " + l)));
  fig.replaceChildren(caption, chart, key);
}

function drawUsage(r) {
  const rows = r.tasks.map((t) => {
    const a = t.attempts || [];
    const models = [...new Set(a.flatMap((x) => (x.requests && x.requests.length ? x.requests.map((q) => q.model) : x.model ? [x.model] : [])))];
    const sum = (k) => a.reduce((s, x) => s + (x[k] || 0), 0);
    return el("tr", {}, el("td", {}, t.id), el("td", {}, models.join(", ") || "—"),
      el("td", {}, `${sum("tokens_in")}/${sum("tokens_out")}`), el("td", {}, "$" + sum("cost_usd").toFixed(4)));
  });
  $("usage").replaceChildren(el("table", { "aria-label": "Tokens and cost per task" },
    el("thead", {}, el("tr", {}, ...["task", "models", "tokens in/out", "cost"].map((h) => el("th", {}, h)))), el("tbody", {}, ...rows)));
}
