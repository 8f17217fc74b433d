#!/usr/bin/env bash
# Workers benchmark (issue 20): N `exec` tasks running `true` through 1, 2 and 4 local
# `swarm worker`s (each -j 8) on one redis-server, against `swarm run` without workers (-j 8)
# on the same server, in one run. Prints tasks/s, the ratios, and the Redis commands per task:
# those clients sent and all the server ran (inside Lua scripts too), counted with MONITOR in
# a separate round so it does not slow the timed ones.
# Targets: <= 10 commands per task; 4 workers >= 0.8x the single process's throughput.
#   bench/workers.sh [TASKS=2000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-2000}
rounds=${2:-3}

command -v redis-server >/dev/null 2>&1 || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 2; }
cargo build --release --quiet --bin swarm
swarm="${CARGO_TARGET_DIR:-$PWD/target}/release/swarm"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no --daemonize no \
  --logfile "$work/redis.log" >/dev/null 2>&1 &
redis_pid=$!
workers=()
stop_workers() {
  for w in "${workers[@]:-}"; do [ -n "$w" ] && kill -TERM "$w" 2>/dev/null || true; done
  for w in "${workers[@]:-}"; do [ -n "$w" ] && wait "$w" 2>/dev/null || true; done
  workers=()
}
trap 'stop_workers; kill $redis_pid 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
store="redis://127.0.0.1:$port"
mkdir -p "$work/project"
{
  printf -- '---\nname: workers\nnamespace: bench\nconcurrency: 8\ndefaults:\n  agent: exec\n---\n\n'
  for i in $(seq 1 "$tasks"); do printf '## t%s: true\n- command: true\n\n' "$i"; done
} > "$work/project/plan.md"

now() { date +%s.%N; }
start_workers() {
  for i in $(seq 1 "$1"); do
    (cd "$work/project" && exec "$swarm" worker --store "$store" --namespace bench --name "w$i" -j 8 --agents exec \
      >"$work/w$i.log" 2>&1) &
    workers+=($!)
  done
  # Each says it is alive before the run starts.
  until [ "$(redis-cli -p "$port" hlen 'swarm:{bench}:workers')" -ge "$1" ]; do sleep 0.05; done
}
# One run of the plan: without workers (`local`) or queued for them (`queued`).
run_once() {
  local extra=()
  [ "$1" = queued ] && extra=(--workers -j 256)
  (cd "$work/project" && "$swarm" run plan.md --store "$store" --json "${extra[@]}" >"$work/last.out" 2>&1) ||
    { echo "run failed:" >&2; tail -5 "$work/last.out" >&2; exit 1; }
}
best() {
  local best="" t0 t1 d
  for _ in $(seq 1 "$rounds"); do
    t0=$(now); run_once "$1"; t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
  done
  echo "$best"
}
# Commands per task of one run: "sent all" (clients' own; all the server ran, scripts' calls too).
commands() {
  redis-cli -p "$port" monitor >"$work/monitor.log" &
  local mon=$!
  sleep 0.3
  run_once "$1"
  sleep 0.3
  kill "$mon"; wait "$mon" 2>/dev/null || true
  local all sent
  all=$(grep -c '^[0-9]' "$work/monitor.log" || true)
  sent=$(grep '^[0-9]' "$work/monitor.log" | grep -vc 'lua\]' || true)
  echo "$(echo "$sent / $tasks" | bc -l) $(echo "$all / $tasks" | bc -l)"
}

t_local=$(best local)
read -r sent_local all_local < <(commands local)
declare -A t_w sent_w all_w
for n in 1 2 4; do
  start_workers "$n"
  t_w[$n]=$(best queued)
  read -r sent all < <(commands queued)
  sent_w[$n]=$sent; all_w[$n]=$all
  stop_workers
done

tps() { echo "$tasks / $1" | bc -l; }
printf 'workers bench: %s exec tasks running `true`, best of %s rounds, one redis-server (%s cores here)\n' \
  "$tasks" "$rounds" "$(nproc)"
printf '  %-26s %8s %9s %10s %10s\n' "" "seconds" "tasks/s" "cmds sent" "cmds all"
printf '  %-26s %8.2f %9.1f %10.2f %10.2f\n' "swarm run, no workers (-j8)" "$t_local" "$(tps "$t_local")" "$sent_local" "$all_local"
for n in 1 2 4; do
  printf '  %-26s %8.2f %9.1f %10.2f %10.2f\n' "$n worker(s), -j8 each" "${t_w[$n]}" "$(tps "${t_w[$n]}")" "${sent_w[$n]}" "${all_w[$n]}"
done
printf '  4 workers / no workers throughput %5.2f   (target >= 0.8)\n' "$(echo "$t_local / ${t_w[4]}" | bc -l)"
printf '  commands per task with 4 workers: %.2f sent, %.2f with scripts'"'"' calls   (target <= 10)\n' "${sent_w[4]}" "${all_w[4]}"
