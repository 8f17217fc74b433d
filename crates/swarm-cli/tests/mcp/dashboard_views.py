"""The dashboard's views in a real headless browser against a live run (tests/dashboard.rs sets
it up): the task graph draws an edge for every dependency; the timeline shows the retried task's
two bars and its wait for a model; the models panel shows a cooling model with its reason and a
model whose day is spent with its reset; the log of a task grows while its agent writes, opened
by keyboard. Then it lets the writing agent finish (creates RELEASE) and sees the run end.
Prints what it saw as JSON; keeps screenshots in SHOTS.

    dashboard_views.py chromium|firefox URL RUN RELEASE SHOTS
"""

import json
import os
import sys

import browsers

name, url, run, release, shots = sys.argv[1:6]


def q(sel):
    return "document.querySelector(" + json.dumps(sel) + ")"


def qa(sel):
    return "[...document.querySelectorAll(" + json.dumps(sel) + ")]"


def lines():
    return "(document.getElementById('log').textContent.match(/^tick /gm) || []).length"


out = {}
b = browsers.launch(name)
out["browser"] = b.version
try:
    b.goto(url)
    b.until("!!" + q(f'nav button[data-run="{run}"]'))
    b.js(q(f'nav button[data-run="{run}"]') + ".click()")
    b.until(q("#run-title") + f".textContent.includes({json.dumps(run)})")

    # The graph: every dependency an edge, drawn (a path with length), the critical path marked.
    b.until(qa("#graph path.edge") + ".length >= 4")
    out["edges"] = b.js(qa("#graph path.edge") + ".map(e => e.dataset.from + '>' + e.dataset.to + (e.getTotalLength() > 10 ? '' : ' (empty)'))")
    out["critical_cards"] = b.js(qa(".task.critical") + ".map(e => e.dataset.task)")

    # The timeline: the retried task's two bars, and its first attempt's wait for a model.
    b.until(qa('#timeline g.bar[data-task="flaky"]') + ".length === 2 && !!" + q('#timeline rect.p-model_wait[data-task="flaky"]'), timeout=60)
    out["flaky_bars"] = b.js(qa('#timeline g.bar[data-task="flaky"]') + ".map(g => g.querySelector('title').textContent)")
    out["flaky_wait_width"] = b.js(q('#timeline rect.p-model_wait[data-task="flaky"]') + ".getBBox().width")
    out["now_line_live"] = b.js("!!document.getElementById('now-line')")

    # The models panel: cooling with its reason; the day spent, with its reset.
    b.until("!!" + q('tr.model[data-model="fake/r429"][data-state="cooling"]') + " && !!" + q('tr.model[data-model="fake/spent"][data-state="exhausted"]'), timeout=30)
    out["cooling_row"] = b.js(q('tr.model[data-model="fake/r429"]') + ".innerText")
    out["exhausted_row"] = b.js(q('tr.model[data-model="fake/spent"]') + ".innerText")
    out["serving_row"] = b.js(q('tr.model[data-model="fake/slot"]') + ".innerText")

    # The log, opened by keyboard, grows while the agent writes.
    b.js(q('.task[data-task="writer"]') + ".focus()")
    b.press("Enter")
    b.until(lines() + " >= 3", timeout=30)
    first = b.js(lines())
    b.until(f"{lines()} >= {first + 5}", timeout=30)
    out["log_lines"] = [first, b.js(lines())]
    out["log_state"] = b.js(q("#log-state") + ".textContent")
    b.screenshot(os.path.join(shots, f"dashboard-{name}-live.png"))

    # The writer finishes; the run ends; the now-line goes.
    open(release, "w").close()
    b.until(q("#run-state") + ".textContent === 'succeeded'", timeout=60)
    b.until("!document.getElementById('now-line')", timeout=10)
    b.until(q("#log-state") + ".textContent.includes('ended')", timeout=10)
    out["log_end"] = b.js("document.getElementById('log').textContent.trim().split('\\n').slice(-1)[0]")
    out["run_state"] = b.js(q("#run-state") + ".textContent")
    b.screenshot(os.path.join(shots, f"dashboard-{name}-done.png"))
except Exception as e:
    out["exception"] = f"{type(e).__name__}: {e}"
    try:
        b.screenshot(os.path.join(shots, f"dashboard-{name}-failed.png"))
    except Exception:
        pass
out["page_errors"] = b.errors
b.close()
print(json.dumps(out))
