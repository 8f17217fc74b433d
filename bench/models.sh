#!/usr/bin/env bash
# Model hierarchy benchmark, against swarm's fake model enforcing each model's limit over a
# rolling minute (429 + retry-after past it). Three runs in one go:
#   (a) sustained: 16 opencode tasks at concurrency 8 on 3 models x 10 a minute, through the
#       gateway with the limits declared. opencode 1.18 makes 4 requests a task here (a title,
#       then write, report, DONE): 64 requests, 30 fit the first minute, the rest go as each slot
#       frees; the ideal below says what perfect pacing of the same work would take.
#   (b) burst: 6 tasks at once on 3 models x 6 a minute, through the gateway.
#   (c) baseline: the burst with every task pinned to one model, as before the gateway.
# For each: makespan, provider 429s, attempts, failed tasks; for the gateway runs also the
# ideal makespan (the same task timelines replayed against the limits with perfect pacing,
# see bench/models_report.py), their ratio, and the longest time a model had a free slot while
# a request waited. Targets for (a) and (b): ratio <= 1.10, longest idle slot <= 1 s, 0 429s,
# every task done on its first attempt.
#   bench/models.sh [SUSTAINED_TASKS=16]
set -euo pipefail
cd "$(dirname "$0")/.."
sustained=${1:-16}
./scripts/install-agents.sh >/dev/null
cargo build --release --quiet --bin swarm
swarm="${CARGO_TARGET_DIR:-$PWD/target}/release/swarm"
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
work=$(mktemp -d)
trap 'kill $fake_pid 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT

worker='steps = [ { write = { path = "out.txt", content = "written\n" } }, { report = { status = "done", summary = "done" } }, { say = "DONE" } ]'
{
  echo "log = \"requests.jsonl\""
  for m in s1 s2 s3; do printf '[models.%s]\nlimits = { rpm = 10 }\n%s\n' "$m" "$worker"; done
  for m in m1 m2 m3; do printf '[models.%s]\nlimits = { rpm = 6 }\n%s\n' "$m" "$worker"; done
} > "$work/scenario.toml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$swarm" fake-llm --scenario "$work/scenario.toml" --port "$port" > "$work/fake.out" 2>&1 &
fake_pid=$!
until grep -q listening "$work/fake.out" 2>/dev/null; do sleep 0.1; done

project() { # name, tasks, concurrency, extra swarm.toml, task fields
  local dir="$work/$1"
  mkdir -p "$dir"
  cat > "$dir/swarm.toml" <<TOML
[run]
retry_backoff = "2s"
[providers.fake]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$port/v1"
paid = false
models = ["s1", "s2", "s3", "m1", "m2", "m3"]
$4
TOML
  {
    printf -- '---\nconcurrency: %s\ndefaults:\n  agent: opencode\n  timeout: 10m\n  retries: 2\n---\n\n' "$3"
    for i in $(seq 1 "$2"); do
      printf '## t%s: Task %s\n%s\n\nWrite out.txt, report, say DONE.\n\n' "$i" "$i" "$5"
    done
  } > "$dir/plan.md"
  (cd "$dir" && git init -q . 2>/dev/null || true)
  echo "$dir"
}

hierarchy() { # rpm, model names...
  local rpm=$1 list="" limits=""
  shift
  for m in "$@"; do
    list="$list\"fake/$m\", "
    limits="$limits[models.limits.\"fake/$m\"]"$'\n'"rpm = $rpm"$'\n'
  done
  printf '[models]\nlayers = [[%s]]\nmax_wait = "5m"\n%s' "${list%, }" "$limits"
}

measure() { # label, dir, rpm, concurrency
  local label=$1 dir=$2 before after
  before=$(wc -l < "$work/requests.jsonl" 2>/dev/null || echo 0)
  (cd "$dir" && "$swarm" run plan.md --no-progress > run.out 2>&1) || true
  after=$(wc -l < "$work/requests.jsonl")
  python3 bench/models_report.py "$label" "$(ls -d "$dir"/.swarm/runs/*/ | head -1)" \
    "$work/requests.jsonl" "$before" "$after" "$3" 3 "$4"
}

echo "model hierarchy bench (the fake provider enforces each model's rpm over a rolling minute)"
a=$(project sustained "$sustained" 8 "$(hierarchy 10 s1 s2 s3)" "")
measure "(a) sustained, $sustained tasks, 3 x 10/min" "$a" 10 8
b=$(project burst 6 6 "$(hierarchy 6 m1 m2 m3)" "")
measure "(b) burst, 6 tasks, 3 x 6/min" "$b" 6 6
sleep 61 # let m1's window empty
c=$(project pinned 6 6 "" "- model: fake/m1")
measure "(c) burst pinned to one model" "$c" 6 6
