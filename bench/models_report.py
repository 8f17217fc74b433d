#!/usr/bin/env python3
"""One run of bench/models.sh, measured: makespan, the ideal makespan for the same work under the
same limits, provider 429s, attempts, and the longest time a model had a free slot while a
request that could use it was waiting in the gateway.

    models_report.py LABEL RUN_DIR PROVIDER_LOG FIRST_LINE LAST_LINE RPM MODELS CONCURRENCY

RUN_DIR is the run's `.swarm/runs/<id>` (report.json, and requests.jsonl: one line per request
the gateway served, with when it arrived, how long it waited and how long the model took).
PROVIDER_LOG is the fake provider's request log (lines FIRST_LINE..LAST_LINE are this run's).

The ideal replays the run as observed, with perfect pacing: every task keeps its own timeline
(time from its attempt's start to its first request, the model's latency for each request, the
agent's time between an answer and its next request, the time from its last answer to its end),
tasks start in plan order as soon as one of CONCURRENCY slots frees, and each request goes at
the first moment any of MODELS models has room in its rolling minute (RPM). The only thing the
ideal removes is waiting that the limits did not force.
"""
import bisect
import heapq
import json
import sys
from datetime import datetime

MINUTE = 60_000


def ms(iso):
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def load(run_dir, provider_log, first, last):
    report = json.load(open(f"{run_dir}/report.json"))
    try:
        requests = [json.loads(l) for l in open(f"{run_dir}/requests.jsonl") if l.strip()]
    except FileNotFoundError:
        requests = []
    lines = open(provider_log).read().splitlines()[first:last]
    provider = [json.loads(l) for l in lines]
    provider = [r for r in provider if r.get("path", "").endswith("chat/completions")]
    return report, requests, provider


def timelines(report, requests):
    """Per task, in plan order: (start overhead, [(latency, gap after)], end overhead)."""
    by_task = {}
    for r in sorted(requests, key=lambda r: r["arrived_ms"]):
        by_task.setdefault(r["task"], []).append(r)
    out = []
    for t in report["tasks"]:
        a = t["attempts"][-1]
        start, end = ms(a["started_at"]), ms(a["ended_at"])
        reqs = by_task.get(t["id"], [])
        if not reqs:
            out.append((end - start, [], 0))
            continue
        steps = []
        for i, r in enumerate(reqs):
            done = r["arrived_ms"] + r["waited_ms"] + r["latency_ms"]
            nxt = reqs[i + 1]["arrived_ms"] if i + 1 < len(reqs) else end
            steps.append((r["latency_ms"], max(0, nxt - done)))
        lat, tail = steps[-1]
        steps[-1] = (lat, 0)
        out.append((max(0, reqs[0]["arrived_ms"] - start), steps, tail))
    return out


def ideal(report, requests, rpm, models, concurrency):
    """The makespan of the same task timelines under perfect pacing."""
    run_start = ms(report["started_at"])
    first_start = min((ms(t["attempts"][0]["started_at"]) for t in report["tasks"] if t["attempts"]), default=run_start)
    last_end = max((ms(t["attempts"][-1]["ended_at"]) for t in report["tasks"] if t["attempts"]), default=run_start)
    launch, wind_down = first_start - run_start, ms(report["ended_at"]) - last_end
    served = [[] for _ in range(models)]  # per model: times of requests served (sorted)

    def slot(ready):
        best = None
        for m, times in enumerate(served):
            # The earliest t >= ready with fewer than rpm requests in (t - 60 s, t].
            t = ready
            while True:
                inside = len(times) - bisect.bisect_right(times, t - MINUTE)
                if inside < rpm:
                    break
                t = times[len(times) - rpm] + MINUTE
            if best is None or t < best[0]:
                best = (t, m)
        bisect.insort(served[best[1]], best[0])
        return best[0]

    # Event-driven: each slot of `concurrency` runs tasks in plan order; requests are placed in
    # the order they become ready across all running tasks.
    tasks = timelines(report, requests)
    free_slots = [0] * concurrency
    ready = []  # (ready time, task index, step index)
    ends = []
    for i in range(min(concurrency, len(tasks))):
        start = heapq.heappop(free_slots)
        heapq.heappush(ready, (start + tasks[i][0], i, 0))
    nxt = concurrency
    while ready:
        at, i, k = heapq.heappop(ready)
        _, steps, tail = tasks[i]
        if k == len(steps):  # the task ends
            end = at + tail
            ends.append(end)
            if nxt < len(tasks):
                heapq.heappush(ready, (end + tasks[nxt][0], nxt, 0))
                nxt += 1
            continue
        latency, gap = steps[k]
        done = slot(at) + latency
        heapq.heappush(ready, (done + gap, i, k + 1))
    return launch + (max(ends) if ends else 0) + wind_down


def longest_idle(requests, provider, rpm, models):
    """The longest stretch (ms) during which some request waited in the gateway while some
    model had room in its rolling minute (as the provider counted it)."""
    waits = [(r["arrived_ms"], r["arrived_ms"] + r["waited_ms"]) for r in requests if r["waited_ms"] > 0]
    if not waits:
        return 0
    by_model = {}
    for r in provider:
        if r["response"]["kind"] in ("text", "tool_call"):
            by_model.setdefault(r["model"], []).append(r["at_ms"])
    for times in by_model.values():
        times.sort()
    lo, hi = min(w[0] for w in waits), max(w[1] for w in waits)
    step, longest, run = 10, 0, 0
    for t in range(lo, hi + 1, step):
        waiting = any(a <= t < b for a, b in waits)
        room = len(by_model) < models or any(bisect.bisect_right(ts, t) - bisect.bisect_right(ts, t - MINUTE) < rpm for ts in by_model.values())
        run = run + step if waiting and room else 0
        longest = max(longest, run)
    return longest


def main():
    label, run_dir, log, first, last, rpm, models, concurrency = sys.argv[1:]
    rpm, models, concurrency = int(rpm), int(models), int(concurrency)
    report, requests, provider = load(run_dir, log, int(first), int(last))
    makespan = ms(report["ended_at"]) - ms(report["started_at"])
    limited = sum(1 for r in provider if r["response"]["kind"] == "rate_limited")
    attempts = sum(len(t["attempts"]) for t in report["tasks"])
    failed = sum(1 for t in report["tasks"] if t["state"] != "succeeded")
    first_try = sum(1 for t in report["tasks"] if t["state"] == "succeeded" and len(t["attempts"]) == 1)
    line = (f"  {label:<30} makespan {makespan / 1000:6.1f} s   429s {limited:3d}   "
            f"tasks {len(report['tasks'])} ({first_try} on the first attempt, {failed} failed)   attempts {attempts}")
    if requests:
        best = ideal(report, requests, rpm, models, concurrency)
        idle = longest_idle(requests, provider, rpm, models)
        line += (f"\n  {'':<30} ideal {best / 1000:6.1f} s   ratio {makespan / best:.2f} (target <= 1.10)   "
                 f"longest idle slot {idle / 1000:.2f} s (target <= 1)")
    print(line)


if __name__ == "__main__":
    main()
