#!/usr/bin/env bash
# Model hierarchy benchmark: 6 opencode tasks at once against 3 models that each allow 6
# requests a minute (swarm's fake model enforcing it, 429 + retry-after past it), run twice in
# one go: (a) through swarm's gateway with the hierarchy and the limits declared, (b) every task
# pinned to one model, as before the gateway. Prints, for both: makespan, provider 429s,
# attempts used, failed tasks, and goodput = requests served / the three models' capacity over
# the makespan (their declared rate times the makespan). Targets for (a): zero 429s, every task
# done on its first attempt, goodput >= 0.9.
#   bench/models.sh [TASKS=6]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-6}
./scripts/install-agents.sh >/dev/null
cargo build --release --quiet --bin swarm
swarm="$PWD/target/release/swarm"
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
work=$(mktemp -d)
trap 'kill $fake_pid 2>/dev/null; rm -rf "$work"' EXIT

worker='steps = [ { write = { path = "out.txt", content = "written\n" } }, { report = { status = "done", summary = "done" } }, { say = "DONE" } ]'
{
  echo "log = \"requests.jsonl\""
  for m in m1 m2 m3; do printf '[models.%s]\nlimits = { rpm = 6 }\n%s\n' "$m" "$worker"; done
} > "$work/scenario.toml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$swarm" fake-llm --scenario "$work/scenario.toml" --port "$port" > "$work/fake.out" 2>&1 &
fake_pid=$!
until grep -q listening "$work/fake.out" 2>/dev/null; do sleep 0.1; done

project() { # name, extra swarm.toml, task fields
  local dir="$work/$1"
  mkdir -p "$dir"
  cat > "$dir/swarm.toml" <<EOF
[run]
retry_backoff = "2s"
[providers.fake]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$port/v1"
paid = false
models = ["m1", "m2", "m3"]
$2
EOF
  {
    printf -- '---\nconcurrency: %s\ndefaults:\n  agent: opencode\n  timeout: 10m\n  retries: 2\n---\n\n' "$tasks"
    for i in $(seq 1 "$tasks"); do
      printf '## t%s: Task %s\n%s\n\nWrite out.txt, report, say DONE.\n\n' "$i" "$i" "$3"
    done
  } > "$dir/plan.md"
  (cd "$dir" && git init -q . 2>/dev/null || true)
  echo "$dir"
}

hierarchy='[models]
layers = [["fake/m1", "fake/m2", "fake/m3"]]
max_wait = "5m"
[models.limits."fake/m1"]
rpm = 6
[models.limits."fake/m2"]
rpm = 6
[models.limits."fake/m3"]
rpm = 6'

measure() { # label, dir
  local label=$1 dir=$2 before after start end
  before=$(wc -l < "$work/requests.jsonl" 2>/dev/null || echo 0)
  start=$(date +%s.%N)
  (cd "$dir" && "$swarm" run plan.md --no-progress > run.out 2>&1) || true
  end=$(date +%s.%N)
  after=$(wc -l < "$work/requests.jsonl")
  python3 - "$label" "$dir" "$work/requests.jsonl" "$before" "$after" "$start" "$end" <<'PY'
import json, sys, glob, math
label, d, log, before, after, start, end = sys.argv[1:]
recs = [json.loads(l) for l in open(log).read().splitlines()[int(before):int(after)]]
chat = [r for r in recs if r.get("path", "").endswith("chat/completions")]
served = sum(1 for r in chat if r["response"]["kind"] in ("text", "tool_call"))
limited = sum(1 for r in chat if r["response"]["kind"] == "rate_limited")
report = json.load(open(glob.glob(f"{d}/.swarm/runs/*/report.json")[0]))
attempts = sum(len(t["attempts"]) for t in report["tasks"])
failed = sum(1 for t in report["tasks"] if t["state"] != "succeeded")
makespan = float(end) - float(start)
# The providers' capacity over the makespan at their declared rate (3 models x 6 a minute). A
# sliding window also allows one full window at the start, so a short run can pass 1.0.
bound = 3 * 6 * makespan / 60
print(f"  {label:<28} makespan {makespan:6.1f} s   429s {limited:3d}   attempts {attempts:2d}   failed {failed}   "
      f"served {served:3d}   goodput {served / bound:.2f}")
PY
}

echo "model hierarchy bench: $tasks opencode tasks, 3 models x 6 requests/minute (enforced by the fake provider)"
a=$(project hierarchy "$hierarchy" "")
measure "(a) gateway + hierarchy" "$a"
sleep 61 # let the provider's windows empty between the two
b=$(project pinned "" "- model: fake/m1")
measure "(b) pinned to one model" "$b"
