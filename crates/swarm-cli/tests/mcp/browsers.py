"""Two real headless browsers behind one small interface, for the dashboard's tests: Chromium
(Playwright on Debian's chromium) and Firefox (Debian's firefox-esr over WebDriver BiDi, its
own remote protocol; no geckodriver). Each runs JavaScript in the page, waits for a condition
with a deadline, presses real keys, takes screenshots and collects the page's errors."""

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time

VIEWPORT = {"width": 1440, "height": 1000}


class Chromium:
    name = "chromium"

    def __init__(self):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        self.page = self._browser.new_page(viewport=VIEWPORT)
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.version = "chromium " + self._browser.version

    def goto(self, url):
        self.page.goto(url)

    def js(self, expr):
        return self.page.evaluate(expr)

    def until(self, expr, timeout=20):
        self.page.wait_for_function(expr, timeout=timeout * 1000, polling=200)
        return self.js(expr)

    def press(self, key):
        self.page.keyboard.press(key)

    def screenshot(self, path):
        self.page.screenshot(path=path, full_page=True)

    def close(self):
        self._browser.close()
        self._pw.stop()


KEYS = {"Enter": "\ue007", "Tab": "\ue004"}


class Firefox:
    name = "firefox"

    def __init__(self):
        from websockets.sync.client import connect

        self.errors = []
        self._ids = iter(range(1, 1_000_000))
        port = _free_port()
        self._profile = tempfile.mkdtemp(prefix="swarm-ff-")
        firefox = shutil.which("firefox-esr") or shutil.which("firefox")
        self._proc = subprocess.Popen(
            [firefox, "--headless", "--no-remote", "--profile", self._profile, f"--remote-debugging-port={port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={"HOME": self._profile, "PATH": "/usr/bin:/bin", "MOZ_HEADLESS": "1"},
        )
        try:
            self._start(connect, port)
        except BaseException:
            self._stop()  # no browser left behind by a start that failed
            raise

    def _start(self, connect, port):
        deadline = time.monotonic() + 30
        while True:
            try:
                self._ws = connect(f"ws://127.0.0.1:{port}/session", max_size=None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        caps = self._cmd("session.new", {"capabilities": {}})["capabilities"]
        self.version = f"{caps.get('browserName')} {caps.get('browserVersion')}"
        self._cmd("session.subscribe", {"events": ["log.entryAdded"]})
        self._ctx = self._cmd("browsingContext.getTree", {})["contexts"][0]["context"]
        self._cmd("browsingContext.setViewport", {"context": self._ctx, "viewport": VIEWPORT})

    def _cmd(self, method, params):
        i = next(self._ids)
        self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv(timeout=60))
            if msg.get("method") == "log.entryAdded" and msg["params"].get("level") == "error":
                self.errors.append(msg["params"].get("text"))
            if msg.get("id") == i:
                if msg.get("type") == "error":
                    raise RuntimeError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg["result"]

    def goto(self, url):
        self._cmd("browsingContext.navigate", {"context": self._ctx, "url": url, "wait": "complete"})

    def js(self, expr):
        r = self._cmd("script.evaluate", {"expression": f"JSON.stringify(({expr}) ?? null)",
                                          "target": {"context": self._ctx}, "awaitPromise": True})
        if r.get("type") == "exception":
            raise RuntimeError(r["exceptionDetails"]["text"])
        return json.loads(r["result"]["value"])

    def until(self, expr, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            v = self.js(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(expr)
            time.sleep(0.2)

    def press(self, key):
        k = KEYS.get(key, key)
        self._cmd("input.performActions", {"context": self._ctx, "actions": [
            {"type": "key", "id": "keyboard", "actions": [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]}]})

    def screenshot(self, path):
        r = self._cmd("browsingContext.captureScreenshot", {"context": self._ctx, "origin": "document"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        try:
            self._ws.close()
        finally:
            self._stop()

    def _stop(self):
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def launch(name):
    return {"chromium": Chromium, "firefox": Firefox}[name]()
