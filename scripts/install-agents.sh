#!/usr/bin/env bash
# Installs the pinned agent CLIs (docs/contract.md §6) into the project-local folder .tools/.
#
#   ./scripts/install-agents.sh        # then: .tools/node_modules/.bin/{opencode,kilo,cline}
#   ./scripts/install-agents.sh --user # into ${XDG_DATA_HOME:-~/.local/share}/swarm/tools, where an
#                                      # installed swarm (cargo install) finds them from any project
#
# Idempotent: does nothing when every binary exists and its package has the pinned version.
# Installs nodejs/npm with apt-get when npm is missing (root or sudo needed for that only).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/.tools"
if [ "${1:-}" = "--user" ]; then
  tools="${XDG_DATA_HOME:-$HOME/.local/share}/swarm/tools"
fi

# package@version  bin
pins=(
  "opencode-ai@1.18.33 opencode"
  "@kilocode/cli@7.7.7 kilo"
  "cline@3.0.65 cline"
)

installed_version() { # package -> version from its package.json, empty when absent
  local pj="$tools/node_modules/$1/package.json"
  [ -f "$pj" ] || return 0
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n1
}

up_to_date() {
  local entry spec bin pkg want
  for entry in "${pins[@]}"; do
    spec=${entry% *} bin=${entry#* }
    pkg=${spec%@*} want=${spec##*@}
    [ -x "$tools/node_modules/.bin/$bin" ] || return 1
    [ "$(installed_version "$pkg")" = "$want" ] || return 1
  done
}

if up_to_date; then
  echo "install-agents: pinned CLIs already in $tools (nothing to do)"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-agents: npm not found; installing nodejs and npm with apt-get"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends nodejs npm
fi

specs=()
for entry in "${pins[@]}"; do specs+=("${entry% *}"); done

mkdir -p "$tools"
start=$(date +%s)
echo "install-agents: npm install --prefix $tools ${specs[*]}"
npm install --prefix "$tools" --no-audit --no-fund "${specs[@]}"
echo "install-agents: done in $(($(date +%s) - start))s, $tools is $(du -sh "$tools" | cut -f1)"

if ! up_to_date; then
  echo "install-agents: after install, a binary is missing or has the wrong version:" >&2
  for entry in "${pins[@]}"; do
    spec=${entry% *} bin=${entry#* }
    echo "  $bin: want ${spec##*@}, package.json has '$(installed_version "${spec%@*}")'" >&2
  done
  exit 1
fi
