"""The dashboard in a real headless Firefox (Debian's firefox-esr), driven over WebDriver BiDi,
Firefox's own remote protocol (no geckodriver): the finished run shows its failed task's reason,
the live run's task `running`, and the cancel button cancels it. Prints what it saw as JSON.

    dashboard_firefox.py URL FAILED_RUN LIVE_RUN
"""

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import websockets

url, failed_run, live_run = sys.argv[1:4]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def main():
    out = {}
    port = free_port()
    profile = tempfile.mkdtemp(prefix="swarm-ff-")
    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    proc = subprocess.Popen(
        [firefox, "--headless", "--no-remote", "--profile", profile, f"--remote-debugging-port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"HOME": profile, "PATH": "/usr/bin:/bin", "MOZ_HEADLESS": "1"},
    )
    try:
        ws = None
        for _ in range(150):
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/session", max_size=None)
                break
            except OSError:
                await asyncio.sleep(0.2)
        assert ws, "firefox's remote agent did not come up"
        ids = iter(range(1, 1_000_000))

        async def cmd(method, params):
            i = next(ids)
            await ws.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == i:
                    if msg.get("type") == "error":
                        raise RuntimeError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                    return msg["result"]

        caps = await cmd("session.new", {"capabilities": {}})
        out["browser"] = f"{caps['capabilities'].get('browserName')} {caps['capabilities'].get('browserVersion')}"
        tree = await cmd("browsingContext.getTree", {})
        ctx = tree["contexts"][0]["context"]
        await cmd("browsingContext.navigate", {"context": ctx, "url": url, "wait": "complete"})

        async def js(expr):
            r = await cmd("script.evaluate", {"expression": expr, "target": {"context": ctx}, "awaitPromise": True})
            if r.get("type") == "exception":
                raise RuntimeError(r["exceptionDetails"]["text"])
            return r["result"].get("value")

        async def until(expr, timeout=15):
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout:
                v = await js(expr)
                if v:
                    return v
                await asyncio.sleep(0.2)
            raise TimeoutError(expr)

        def q(sel):
            return "document.querySelector(" + json.dumps(sel) + ")"

        failed_btn = q('nav button[data-run="' + failed_run + '"]')
        live_btn = q('nav button[data-run="' + live_run + '"]')
        broken = q('.task[data-task="broken"]')
        await until("!!" + failed_btn)
        await js(failed_btn + ".click()")
        await until("!!" + q('.task[data-task="broken"].s-failed'))
        out["broken_text"] = await js(broken + ".innerText")
        out["after_text"] = await js(q('.task[data-task="after"]') + ".innerText")
        out["run_state_failed"] = await js(q("#run-state") + ".textContent")
        await js(live_btn + ".click()")
        await until("!!" + q('.task[data-task="slow"].s-running'))
        out["live_before"] = await js(q("#run-state") + ".textContent")
        await js(q("#cancel") + ".click()")
        await until(q("#run-state") + ".textContent === 'cancelled'", timeout=30)
        out["live_after"] = await js(q("#run-state") + ".textContent")
        await ws.close()
    except Exception as e:
        out["exception"] = f"{type(e).__name__}: {e}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(out))


asyncio.run(main())
