#!/usr/bin/env bash
# Dispatch benchmark: N `exec` tasks running `true` at concurrency 8, through swarm (embedded
# store) and, in the same run, through `xargs -P8` and GNU parallel. Prints wall times and the
# ratios. Targets: swarm/xargs <= 1.5, swarm faster than GNU parallel; on Redis (a local
# redis-server the script starts): swarm/xargs <= 2.5 and <= 8 Redis commands per task.
#   bench/dispatch.sh [TASKS=2000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-2000}
rounds=${2:-3}

need=()
command -v parallel >/dev/null 2>&1 || need+=(parallel)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v bc >/dev/null 2>&1 || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (apt-get)..." >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet --bin swarm
swarm="$PWD/target/release/swarm"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no --daemonize no \
  --logfile "$work/redis.log" >/dev/null 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
{
  printf -- '---\nname: dispatch\nconcurrency: 8\ndefaults:\n  agent: exec\n---\n\n'
  for i in $(seq 1 "$tasks"); do printf '## t%s: true\n- command: true\n\n' "$i"; done
} > "$work/plan.md"

now() { date +%s.%N; }
# best-of-N wall time of a command, in seconds
best() {
  local best="" t0 t1 d
  for _ in $(seq 1 "$rounds"); do
    rm -rf "$work/.swarm"
    t0=$(now); "$@" >"$work/last.out" 2>&1 || { echo "command failed: $*" >&2; grep -m3 -i "warn\|error\|cancel req" "$work/last.out" >&2; exit 1; }; t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
  done
  echo "$best"
}

run_swarm() { (cd "$work" && "$swarm" run plan.md --store "sqlite:$work/.swarm/state.db" --no-progress); }
run_swarm_redis() { (cd "$work" && "$swarm" run plan.md --store "redis://127.0.0.1:$port" --no-progress); }
# Total commands the server executed (commands inside Lua scripts included), minus INFO itself.
redis_calls() {
  redis-cli -p "$port" info commandstats | tr -d '\r' |
    awk -F'[=,:]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print n + 0 }'
}
run_xargs() { seq 1 "$tasks" | xargs -P8 -I{} sh -c true; }
run_parallel() { seq 1 "$tasks" | parallel --will-cite -j8 -N0 sh -c true; }

t_swarm=$(best run_swarm)
t_redis=$(best run_swarm_redis)
before=$(redis_calls); run_swarm_redis >/dev/null 2>&1; after=$(redis_calls)
per_task=$(echo "($after - $before) / $tasks" | bc -l)
t_xargs=$(best run_xargs)
t_parallel=$(best run_parallel)

printf 'dispatch bench: %s exec tasks running `true`, concurrency 8, best of %s\n' "$tasks" "$rounds"
printf '  swarm (sqlite)   %7.3f s\n' "$t_swarm"
printf '  swarm (redis)    %7.3f s\n' "$t_redis"
printf '  xargs -P8        %7.3f s\n' "$t_xargs"
printf '  GNU parallel -j8 %7.3f s\n' "$t_parallel"
printf '  swarm/xargs      %7.2f   (target <= 1.5)\n' "$(echo "$t_swarm / $t_xargs" | bc -l)"
printf '  swarm/parallel   %7.2f   (target < 1.0)\n' "$(echo "$t_swarm / $t_parallel" | bc -l)"
printf '  swarm(redis)/xargs %5.2f   (target <= 2.5)\n' "$(echo "$t_redis / $t_xargs" | bc -l)"
printf '  redis commands per task %5.2f   (target <= 8; INFO commandstats, Lua-internal calls counted)\n' "$per_task"
