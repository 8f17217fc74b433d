#!/usr/bin/env bash
# Dispatch benchmark: N `exec` tasks running `true` at concurrency 8, through swarm (embedded
# store) and, in the same run, through `xargs -P8` and GNU parallel. Prints wall times and the
# ratios. Targets: swarm/xargs <= 1.5, swarm faster than GNU parallel.
#   bench/dispatch.sh [TASKS=2000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-2000}
rounds=${2:-3}

if ! command -v parallel >/dev/null 2>&1; then
  echo "installing GNU parallel (apt-get)..." >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq parallel >/dev/null
fi
cargo build --release --quiet --bin swarm
swarm="$PWD/target/release/swarm"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
    t0=$(now); "$@" >/dev/null 2>&1 || { echo "command failed: $*" >&2; exit 1; }; t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
  done
  echo "$best"
}

run_swarm() { (cd "$work" && "$swarm" run plan.md --store "sqlite:$work/.swarm/state.db" --no-progress); }
run_xargs() { seq 1 "$tasks" | xargs -P8 -I{} sh -c true; }
run_parallel() { seq 1 "$tasks" | parallel --will-cite -j8 -N0 sh -c true; }

command -v bc >/dev/null || { echo "bc is required" >&2; exit 1; }
t_swarm=$(best run_swarm)
t_xargs=$(best run_xargs)
t_parallel=$(best run_parallel)

printf 'dispatch bench: %s exec tasks running `true`, concurrency 8, best of %s\n' "$tasks" "$rounds"
printf '  swarm (sqlite)   %7.3f s\n' "$t_swarm"
printf '  xargs -P8        %7.3f s\n' "$t_xargs"
printf '  GNU parallel -j8 %7.3f s\n' "$t_parallel"
printf '  swarm/xargs      %7.2f   (target <= 1.5)\n' "$(echo "$t_swarm / $t_xargs" | bc -l)"
printf '  swarm/parallel   %7.2f   (target < 1.0)\n' "$(echo "$t_swarm / $t_parallel" | bc -l)"
