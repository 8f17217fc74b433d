// The task graph: one column per dependency depth, left to right; a card per task (a button:
// Tab to it, Enter opens it), an SVG edge per dependency, the critical path in its own colour.
// The canvas pans (drag, arrow keys) and zooms (wheel, +/−, 0 fits) as one.

const NODE = { w: 180, h: 62, gx: 70, gy: 14, pad: 16 };
const pan = { x: 0, y: 0, k: 1, fitNext: true };
const MIN_ZOOM = 0.02; // a 500-task graph still fits

function graphFitNext() { pan.fitNext = true; }

// Each task's place: its column is its depth; in a column, tasks follow the mean row of their
// dependencies (fewer crossings), then plan order.
function layout(rows) {
  const cols = [];
  rows.forEach((r, i) => (cols[r.depth] = cols[r.depth] || []).push({ r, i }));
  const place = new Map();
  cols.forEach((col, depth) => {
    if (!col) return;
    const bary = ({ r, i }) => {
      const ys = r.depends.map((d) => place.get(d)).filter(Boolean).map((p) => p.row);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : i / rows.length;
    };
    col.map((c) => ({ c, b: bary(c) })).sort((a, b) => a.b - b.b || a.c.i - b.c.i)
      .forEach(({ c }, row) => place.set(c.r.task, { row, x: NODE.pad + depth * (NODE.w + NODE.gx), y: NODE.pad + row * (NODE.h + NODE.gy) }));
  });
  return place;
}

function drawGraph() {
  const t = view.timeline, r = view.report;
  if (!t || !r) return;
  const byId = new Map(r.tasks.map((x) => [x.id, x]));
  const place = layout(t.rows);
  const critical = new Set(t.critical);
  const onPath = (a, b) => { const i = t.critical.indexOf(a); return i >= 0 && t.critical[i + 1] === b; };
  let width = 0, height = 0;
  for (const p of place.values()) { width = Math.max(width, p.x + NODE.w + NODE.pad); height = Math.max(height, p.y + NODE.h + NODE.pad); }
  const edges = svg("svg", { width, height, "aria-hidden": "true" }, svg("defs", {},
    marker("arrow"), marker("arrow-crit")));
  for (const row of t.rows) for (const dep of row.depends) {
    const a = place.get(dep), b = place.get(row.task);
    if (!a || !b) continue;
    const crit = onPath(dep, row.task);
    const [x1, y1, x2, y2] = [a.x + NODE.w, a.y + NODE.h / 2, b.x - 4, b.y + NODE.h / 2];
    const mid = (x1 + x2) / 2;
    edges.append(svg("path", { class: "edge" + (crit ? " critical" : ""), "data-from": dep, "data-to": row.task,
      d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "marker-end": `url(#${crit ? "arrow-crit" : "arrow"})` }));
  }
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.task : null;
  const cards = t.rows.map((row) => card(byId.get(row.task) || {}, row, place.get(row.task), critical.has(row.task)));
  const canvas = $("graph-canvas");
  canvas.style.width = width + "px"; canvas.style.height = height + "px";
  $("graph").style.height = Math.max(140, Math.min(480, height + 4)) + "px";
  canvas.replaceChildren(edges, ...cards);
  if (focused) { const b = document.querySelector(`.task[data-task="${CSS.escape(focused)}"]`); if (b) b.focus({ preventScroll: true }); }
  if (pan.fitNext) { pan.fitNext = false; fit(); } else apply();
}

function marker(id) {
  return svg("marker", { id, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "8", markerHeight: "8", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
    svg("path", { d: "M0,0 L10,5 L0,10 z" }));
}

function card(t, row, p, critical) {
  const attempts = t.attempts || [];
  const last = attempts.at(-1) || {};
  const label = `${row.task}, ${row.state}${row.reason ? ", " + row.reason : ""}${critical ? ", on the critical path" : ""}`;
  const b = el("button", { type: "button", class: "task s-" + row.state + (critical ? " critical" : ""), "data-task": row.task,
    "aria-pressed": String(row.task === view.task), title: (row.title || "") + (row.detail ? "\n" + row.detail : ""),
    "aria-label": label, style: `left:${p.x}px;top:${p.y}px`, onclick: () => openTask(row.task),
    // Enter and Space open it in every browser (some leave a synthesized key's click out).
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openTask(row.task); } } },
    el("div", { class: "id" }, row.task), el("div", {}, el("span", { class: "state s-" + row.state }, row.state)),
    el("div", { class: "meta" }, (t.agent || "") + (last.model ? " · " + last.model : "") + (attempts.length > 1 ? ` · ${attempts.length} attempts` : "")));
  if (row.reason) b.append(el("div", { class: "reason" }, row.reason));
  return b;
}

function apply() {
  $("graph-canvas").style.transform = `translate(${pan.x}px,${pan.y}px) scale(${pan.k})`;
}

function fit() {
  const vp = $("graph"), c = $("graph-canvas");
  const w = parseFloat(c.style.width) || 1, h = parseFloat(c.style.height) || 1;
  pan.k = Math.min(1, vp.clientWidth / w, vp.clientHeight / h);
  pan.k = Math.max(pan.k, MIN_ZOOM);
  pan.x = 0; pan.y = 0;
  apply();
}

function zoom(factor, cx, cy) {
  const vp = $("graph");
  if (cx === undefined) { cx = vp.clientWidth / 2; cy = vp.clientHeight / 2; }
  const k = Math.min(3, Math.max(MIN_ZOOM, pan.k * factor));
  pan.x = cx - (cx - pan.x) * (k / pan.k); pan.y = cy - (cy - pan.y) * (k / pan.k); pan.k = k;
  apply();
}

(function panZoom() {
  const vp = $("graph");
  let drag = null;
  vp.addEventListener("wheel", (e) => {
    e.preventDefault();
    const box = vp.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - box.left, e.clientY - box.top);
  }, { passive: false });
  vp.addEventListener("pointerdown", (e) => {
    if (e.target.closest(".task")) return;
    drag = { x: e.clientX - pan.x, y: e.clientY - pan.y };
    vp.classList.add("dragging"); vp.setPointerCapture(e.pointerId);
  });
  vp.addEventListener("pointermove", (e) => { if (drag) { pan.x = e.clientX - drag.x; pan.y = e.clientY - drag.y; apply(); } });
  const stop = () => { drag = null; vp.classList.remove("dragging"); };
  vp.addEventListener("pointerup", stop); vp.addEventListener("pointercancel", stop);
  vp.addEventListener("keydown", (e) => {
    const step = 60, moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (e.key in moves && !e.target.closest(".task")) { pan.x += moves[e.key][0]; pan.y += moves[e.key][1]; apply(); }
    else if (e.key === "+" || e.key === "=") zoom(1.2);
    else if (e.key === "-") zoom(1 / 1.2);
    else if (e.key === "0") fit();
    else return;
    e.preventDefault();
  });
  // A card reached by Tab comes into view.
  vp.addEventListener("focusin", (e) => {
    const b = e.target.closest(".task");
    if (!b) return;
    vp.scrollTop = 0; vp.scrollLeft = 0;
    const x = parseFloat(b.style.left) * pan.k + pan.x, y = parseFloat(b.style.top) * pan.k + pan.y;
    if (x < 0 || y < 0 || x + NODE.w * pan.k > vp.clientWidth || y + NODE.h * pan.k > vp.clientHeight) {
      pan.x -= x - (vp.clientWidth - NODE.w * pan.k) / 2; pan.y -= y - (vp.clientHeight - NODE.h * pan.k) / 2; apply();
    }
  });
  $("zoom-in").addEventListener("click", () => zoom(1.2));
  $("zoom-out").addEventListener("click", () => zoom(1 / 1.2));
  $("zoom-fit").addEventListener("click", fit);
})();
