"""An independent MCP client for swarm's MCP face: the official MCP Python SDK drives `swarm mcp`
(stdio) or `swarm serve`'s `/mcp` (streamable HTTP) through the contract's tool set and prints
what it saw as one JSON document, which tests/mcp.rs asserts on.

    client.py --swarm BIN --project DIR (--stdio | --url URL --token TOKEN) [--mode auto|legacy]
"""

import argparse
import asyncio
import json
import os
import sys
import time

from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

EXPECTED = {
    "plan_check", "run_start", "run_status", "run_cancel", "runs_list",
    "task_logs", "state_get", "state_set", "state_list", "models", "workers_list",
}


async def call(client, name, args=None, **kw):
    r = await client.call_tool(name, args or {}, **kw)
    text = " ".join(getattr(c, "text", "") for c in r.content)
    return {"is_error": bool(r.is_error), "data": r.structured_content, "text": text}


async def scenario(client, out):
    out["protocol_version"] = client.protocol_version
    out["server_name"] = client.server_info.name if client.server_info else None
    tools = (await client.list_tools()).tools
    out["tools"] = sorted(t.name for t in tools)
    out["tools_described"] = all(t.description and len(t.description) > 20 for t in tools)
    out["tools_with_output_schema"] = sorted(t.name for t in tools if t.output_schema)
    assert set(out["tools"]) == EXPECTED, out["tools"]

    out["bad_plan"] = await call(client, "plan_check", {"plan": "## a: no agent, no command\n"})
    out["good_plan"] = await call(client, "plan_check", {"plan_path": "good.md"})
    out["no_plan"] = await call(client, "run_start", {})

    started = await call(client, "run_start", {"plan_path": "good.md"})
    out["start"] = started
    run_id = started["data"]["run_id"]
    t0 = time.monotonic()
    progress = []
    status = None
    calls = 0
    while time.monotonic() - t0 < 90:
        calls += 1
        status = await call(
            client, "run_status", {"run_id": run_id, "wait_s": 10},
            progress_callback=lambda p, total, msg: progress.append(p),
        )
        if status["is_error"] or status["data"]["state"] != "running":
            break
    out["final"] = status
    out["status_calls"] = calls
    out["logs"] = await call(client, "task_logs", {"run_id": run_id, "task_id": "hello", "tail": 5})
    out["runs"] = await call(client, "runs_list")
    out["workers"] = await call(client, "workers_list")
    out["unknown_run"] = await call(client, "run_status", {"run_id": "no-such-run"})

    slow = await call(client, "run_start", {"plan_path": "slow.md"})
    slow_id = slow["data"]["run_id"]
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        s = await call(client, "run_status", {"run_id": slow_id, "wait_s": 5})
        if any(t["state"] == "running" for t in s["data"]["tasks"]):
            break
    # Nothing changes for 7 s: the wait runs out, telling the client how long it has waited.
    slow_progress = []
    t1 = time.monotonic()
    waited = await call(client, "run_status", {"run_id": slow_id, "wait_s": 7},
                        progress_callback=lambda p, total, msg: slow_progress.append([p, total, msg]))
    out["long_wait"] = {"seconds": time.monotonic() - t1, "progress": slow_progress,
                        "state": (waited["data"] or {}).get("state")}
    out["cancel"] = await call(client, "run_cancel", {"run_id": slow_id})
    out["cancelled"] = await call(client, "run_status", {"run_id": slow_id})

    out["set1"] = await call(client, "state_set", {"key": "mcp/k", "value": {"n": 1}})
    out["set_stale"] = await call(client, "state_set", {"key": "mcp/k", "value": {"n": 2}, "if_version": 0})
    out["set2"] = await call(client, "state_set", {"key": "mcp/k", "value": {"n": 2}, "if_version": 1})
    out["get"] = await call(client, "state_get", {"key": "mcp/k"})
    out["get_missing"] = await call(client, "state_get", {"key": "mcp/none"})
    out["list"] = await call(client, "state_list", {"prefix": "mcp/"})
    # Declared state ([state] in swarm.toml): a value of the wrong shape, one of the right shape,
    # and a key owned by another task (refused when the server runs as task `intruder`).
    out["typed_bad"] = await call(client, "state_set", {"key": "mcp/typed", "value": "three"})
    out["typed_ok"] = await call(client, "state_set", {"key": "mcp/typed", "value": 3})
    out["owned"] = await call(client, "state_set", {"key": "mcp/owned", "value": 1})
    # One agent waits for another's key: state_get with wait_s answers once it is written.
    t2 = time.monotonic()
    waiter = asyncio.create_task(call(client, "state_get", {"key": "mcp/later", "wait_s": 30}))
    seen_waiting = await call(client, "state_get", {"key": "mcp/later"})
    await call(client, "state_set", {"key": "mcp/later", "value": "here"})
    waited_for = await waiter
    out["waited_key"] = {"before": seen_waiting, "after": waited_for, "seconds": time.monotonic() - t2}
    out["models"] = await call(client, "models")
    out["slow_run_id"] = slow_id
    out["run_id"] = run_id


def raw_initialize(url, version, token):
    """The legacy handshake as an older client sends it, by hand: `initialize` with `version`,
    `notifications/initialized`, then `tools/list` and one `tools/call` on the session."""
    import urllib.request

    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "Authorization": f"Bearer {token}"}

    def post(h, msg):
        req = urllib.request.Request(url, data=json.dumps(msg).encode(), headers=h, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            if r.headers.get("content-type", "").startswith("text/event-stream"):
                data = [l[5:].strip() for l in text.splitlines() if l.startswith("data:") and l[5:].strip()]
                parsed = json.loads(data[-1]) if data else None
            else:
                parsed = json.loads(text) if text.strip() else None
            return r.status, r.headers, parsed

    status, rh, init = post(headers, {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}})
    h = dict(headers)
    if rh.get("mcp-session-id"):
        h["mcp-session-id"] = rh.get("mcp-session-id")
    h["mcp-protocol-version"] = version
    post(h, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    _, _, tools = post(h, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    _, _, called = post(h, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                            "params": {"name": "plan_check", "arguments": {"plan_path": "good.md"}}})
    return {
        "status": status,
        "protocol_version": (init or {}).get("result", {}).get("protocolVersion"),
        "tools": sorted(t["name"] for t in (tools or {}).get("result", {}).get("tools", [])),
        "call": (called or {}).get("result", {}).get("structuredContent"),
    }


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw-initialize", metavar="VERSION")
    ap.add_argument("--stdio-json", metavar="JSON", help='{"command": …, "args": […]}, as an MCP config has it')
    ap.add_argument("--light", action="store_true", help="list the tools and check a plan only")
    ap.add_argument("--swarm")
    ap.add_argument("--project")
    ap.add_argument("--stdio", action="store_true")
    ap.add_argument("--url")
    ap.add_argument("--token", help="swarm serve's bearer token")
    ap.add_argument("--mode", default="auto")
    a = ap.parse_args()
    if a.stdio_json:
        spec = json.loads(a.stdio_json)
        env = {k: v for k, v in os.environ.items() if k.startswith("SWARM_") or k == "PATH"}
        server = StdioServerParameters(command=spec["command"], args=spec.get("args", []), env=env, cwd=a.project)
    elif a.stdio:
        # The SDK gives the server a minimal environment; the store address is passed on.
        env = {k: v for k, v in os.environ.items() if k.startswith("SWARM_")}
        env["NO_COLOR"] = "1"
        server = StdioServerParameters(command=a.swarm, args=["mcp"], cwd=a.project, env=env)
    else:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {a.token}"})
        server = streamable_http_client(a.url, http_client=http)
    out = {}
    if a.raw_initialize:
        json.dump(raw_initialize(a.url, a.raw_initialize, a.token), sys.stdout)
        sys.stdout.write("\n")
        return
    try:
        async with Client(server, mode=a.mode, read_timeout_seconds=60) as client:
            if a.light:
                out["protocol_version"] = client.protocol_version
                out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
                out["good_plan"] = await call(client, "plan_check", {"plan_path": "good.md"})
            else:
                await scenario(client, out)
    except Exception as e:  # the test prints what was seen up to the failure
        out["exception"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(main())
