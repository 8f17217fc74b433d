// The timeline: one row per task, each attempt a bar split into its phases (queued, running,
// checks, merging; waits for a model drawn over running), retries as bars of their own, the
// failure reason on hover (and to screen readers), a now-line while the run is live.

const TL = { label: 150, row: 26, bar: 16, top: 24, right: 16 };

function ticks(span) {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200].map((s) => s * 1000);
  return steps.find((s) => span / s <= 8) || 3600 * 1000 * Math.ceil(span / (8 * 3600 * 1000));
}

function drawTimeline() {
  const t = view.timeline;
  if (!t) return;
  const box = $("timeline");
  const width = Math.max(640, box.clientWidth - 2);
  const start = ms(t.start), end = Math.max(ms(t.end), start + 1000);
  const plot = width - TL.label - TL.right;
  const x = (time) => TL.label + ((ms(time) - start) / (end - start)) * plot;
  const height = TL.top + t.rows.length * TL.row + 8;
  const critical = new Set(t.critical);
  const root = svg("svg", { width, height, role: "img", "aria-label": `Timeline of run ${t.run_id}: one row per task, one bar per attempt` });
  const axis = svg("g", { class: "axis" });
  const step = ticks(end - start);
  for (let at = 0; at <= end - start; at += step) {
    const px = TL.label + (at / (end - start)) * plot;
    axis.append(svg("line", { class: "grid", x1: px, x2: px, y1: TL.top - 6, y2: height }),
      svg("text", { x: px + 2, y: 14, "text-anchor": px > width - 50 ? "end" : "start" }, "+" + human(at)));
  }
  root.append(axis);
  t.rows.forEach((row, i) => {
    const y = TL.top + i * TL.row;
    root.append(svg("line", { class: "rowline", x1: 0, x2: width, y1: y + TL.row, y2: y + TL.row }));
    root.append(svg("text", { class: "label" + (critical.has(row.task) ? " critical" : ""), x: 6, y: y + TL.row / 2 + 4, "data-task": row.task,
      onclick: () => openTask(row.task) }, row.task.length > 20 ? row.task.slice(0, 19) + "…" : row.task, svg("title", {}, row.task + " · " + row.state)));
    row.bars.forEach((b) => root.append(bar(row, b, y + (TL.row - TL.bar) / 2, x)));
  });
  if (t.now) {
    const px = x(t.now);
    const left = px > width - 40;
    root.append(svg("line", { id: "now-line", x1: px, x2: px, y1: TL.top - 6, y2: height }),
      svg("text", { x: left ? px - 4 : px + 3, y: TL.top - 8, "text-anchor": left ? "end" : "start" }, "now"));
  }
  const scroll = [box.scrollLeft, box.scrollTop];
  box.replaceChildren(root);
  [box.scrollLeft, box.scrollTop] = scroll;
}

// One attempt: its phases side by side (a wait for a model over its running), outlined by its
// outcome, with what happened as its title.
function bar(row, b, y, x) {
  const from = x(b.from), to = Math.max(x(b.to), from + 2);
  const lines = [`${row.task} · ${b.kind === "resolver" ? "resolver" : "attempt " + b.attempt} · ${b.outcome}` +
    (b.reason ? ": " + b.reason : "") + (b.detail ? " — " + b.detail : "")];
  if (b.model) lines.push("model " + b.model);
  const g = svg("g", { class: `bar o-${b.outcome}`, "data-task": row.task, "data-attempt": b.attempt, tabindex: "0", role: "button",
    onclick: () => openTask(row.task), onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openTask(row.task); } } });
  const order = ["queued", "running", "checks", "merging", "model_wait"];
  for (const p of [...b.phases].sort((a, c) => order.indexOf(a.phase) - order.indexOf(c.phase))) {
    const px = x(p.from), pw = Math.max(x(p.to) - px, 1.5);
    const wait = p.phase === "model_wait";
    g.append(svg("rect", { class: `phase p-${p.phase}`, "data-task": row.task, "data-attempt": b.attempt, "data-phase": p.phase,
      x: px, y: wait ? y + 3 : y, width: pw, height: wait ? TL.bar - 6 : TL.bar, rx: 2 }));
    lines.push(`${phaseName(p.phase)} ${human(ms(p.to) - ms(p.from))} (${clock(p.from)}–${clock(p.to)})`);
  }
  g.append(svg("rect", { class: "outline", x: from, y, width: to - from, height: TL.bar, rx: 3 }));
  g.setAttribute("aria-label", lines.join("; "));
  g.prepend(svg("title", {}, lines.join("\n")));
  return g;
}

function phaseName(p) {
  return { queued: "queued", model_wait: "waiting for a model", running: "running", checks: "checks", merging: "merging" }[p] || p;
}

window.addEventListener("resize", () => { if (view.timeline) drawTimeline(); });
