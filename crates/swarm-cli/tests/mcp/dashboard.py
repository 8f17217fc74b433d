"""Drives swarm's dashboard in a real headless Chromium (Playwright on Debian's chromium): the
finished run shows its failed task's reason, the live run's task shows `running`, the cancel
button cancels it and the page follows. Prints what it saw as JSON; saves a screenshot.

    dashboard.py URL FAILED_RUN LIVE_RUN SCREENSHOT
"""

import json
import sys

from playwright.sync_api import sync_playwright

url, failed_run, live_run, shot = sys.argv[1:5]
out = {}
with sync_playwright() as pw:
    browser = pw.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    try:
        # The finished run: its graph, the failed task's state and reason, the blocked dependent.
        page.click(f'nav button[data-run="{failed_run}"]', timeout=10000)
        page.wait_for_selector('.task[data-task="broken"].s-failed', timeout=10000)
        out["broken_text"] = page.inner_text('.task[data-task="broken"]')
        out["after_text"] = page.inner_text('.task[data-task="after"]')
        out["ok_text"] = page.inner_text('.task[data-task="ok"]')
        out["run_state_failed"] = page.inner_text("#run-state")
        # A task's attempts and log tail, by keyboard: focus the task and press Enter.
        page.focus('.task[data-task="broken"]')
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#log').textContent.includes('no')", timeout=10000)
        out["log"] = page.inner_text("#log")
        out["attempt_rows"] = page.locator("#attempts tr").count()
        out["cancel_disabled_when_over"] = page.is_disabled("#cancel")
        page.screenshot(path=shot, full_page=True)

        # The live run: running, then cancelled from the page.
        page.click(f'nav button[data-run="{live_run}"]')
        page.wait_for_selector('.task[data-task="slow"].s-running', timeout=15000)
        out["live_before"] = page.inner_text("#run-state")
        page.click("#cancel")
        page.wait_for_function("document.querySelector('#run-state').textContent === 'cancelled'", timeout=30000)
        out["live_after"] = page.inner_text("#run-state")
        out["slow_text"] = page.inner_text('.task[data-task="slow"]')
    except Exception as e:
        out["exception"] = f"{type(e).__name__}: {e}"
        page.screenshot(path=shot, full_page=True)
    out["page_errors"] = errors
    browser.close()
print(json.dumps(out))
