"""The task graph of a finished 500-task run in a real headless browser (tests/dashboard_scale.rs
sets it up): every task a card, every dependency an edge; Fit brings the whole graph into view;
zooming in and out by keyboard changes the scale; the page stays
short (long lists scroll in their panels); a card opened by keyboard shows its task.
Prints what it saw as JSON; keeps a screenshot in SHOTS.

    dashboard_scale.py chromium|firefox URL RUN SHOTS
"""

import json
import os
import sys
import time

import browsers

name, url, run, shots = sys.argv[1:5]


def q(sel):
    return "document.querySelector(" + json.dumps(sel) + ")"


def qa(sel):
    return "[...document.querySelectorAll(" + json.dumps(sel) + ")]"


# The canvas's box inside the graph's viewport, after the transform.
FITS = (
    "(() => { const v = document.getElementById('graph').getBoundingClientRect();"
    " const c = document.getElementById('graph-canvas').getBoundingClientRect();"
    " return c.left >= v.left - 1 && c.top >= v.top - 1 && c.right <= v.right + 1 && c.bottom <= v.bottom + 1; })()"
)
SCALE = "parseFloat(document.getElementById('graph-canvas').style.transform.match(/scale\\(([^)]+)\\)/)[1])"

out = {}
b = browsers.launch(name)
out["browser"] = b.version
try:
    b.goto(url)
    b.until("!!" + q(f'nav button[data-run="{run}"]'), timeout=30)
    started = time.monotonic()
    b.js(q(f'nav button[data-run="{run}"]') + ".click()")
    b.until(qa("#graph .task") + ".length === 500", timeout=60)
    out["draw_s"] = round(time.monotonic() - started, 2)
    out["cards"] = b.js(qa("#graph .task") + ".length")
    out["edges"] = b.js(qa("#graph path.edge") + ".length")
    out["edges_drawn"] = b.js(qa("#graph path.edge") + ".filter(e => e.getTotalLength() > 10).length")
    out["critical"] = b.js(qa(".task.critical") + ".length")
    # Long lists scroll in their own panels: the page stays a page.
    out["page_height"] = b.js("document.documentElement.scrollHeight")
    b.js(q("#zoom-fit") + ".click()")
    out["fits"] = b.js(FITS)
    fitted = b.js(SCALE)
    out["fit_scale"] = fitted
    b.js(q("#graph") + ".focus()")
    b.press("+")
    b.press("+")
    out["zoomed_in"] = b.js(SCALE) > fitted
    b.press("0")
    out["refit"] = b.js(SCALE) == fitted
    b.js(q('.task[data-task="t250"]') + ".focus()")
    b.press("Enter")
    b.until(q("#task-title") + " && " + q("#task-title") + ".textContent.includes('t250')", timeout=20)
    out["opened"] = b.js(q("#task-title") + ".textContent")
    b.screenshot(os.path.join(shots, f"dashboard-{name}-500.png"))
except Exception as e:
    out["exception"] = f"{type(e).__name__}: {e}"
    try:
        b.screenshot(os.path.join(shots, f"dashboard-{name}-500-failed.png"))
    except Exception:
        pass
out["page_errors"] = b.errors
b.close()
print(json.dumps(out))
