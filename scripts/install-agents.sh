#!/usr/bin/env bash
# Installs the pinned agent CLIs (docs/contract.md §6) into the project-local folder .tools/:
# the npm ones into .tools/node_modules, aider into its own Python venv .tools/aider-venv.
#
#   ./scripts/install-agents.sh        # then: .tools/node_modules/.bin/{opencode,kilo,cline,claude,
#                                      #   codex,gemini} and .tools/aider-venv/bin/aider
#   ./scripts/install-agents.sh --user # into ${XDG_DATA_HOME:-~/.local/share}/swarm/tools, where an
#                                      # installed swarm (cargo install) finds them from any project
#
# Idempotent: does nothing when every binary exists and its package has the pinned version.
# Installs nodejs/npm (and python3-venv) with apt-get when missing (root or sudo needed for that).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/.tools"
if [ "${1:-}" = "--user" ]; then
  tools="${XDG_DATA_HOME:-$HOME/.local/share}/swarm/tools"
fi

# package@version  bin   (npm)
pins=(
  "opencode-ai@1.18.33 opencode"
  "@kilocode/cli@7.7.7 kilo"
  "cline@3.0.65 cline"
  "@anthropic-ai/claude-code@2.1.332 claude"
  "@openai/codex@0.171.0 codex"
  "@google/gemini-cli@0.61.0 gemini"
)
# aider (PyPI), in its own venv: its dependencies (litellm, numpy, tree-sitter…) stay out of
# every other Python environment.
aider_version=0.86.2
venv="$tools/aider-venv"

installed_version() { # package -> version from its package.json, empty when absent
  local pj="$tools/node_modules/$1/package.json"
  [ -f "$pj" ] || return 0
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n1
}

# Claude Code's package ships bin/claude.exe as a small placeholder that its postinstall replaces
# with the native binary of the optional dependency @anthropic-ai/claude-code-<platform> (~400 MB).
claude_pkg="$tools/node_modules/@anthropic-ai/claude-code"
claude_native() { # the platform package's binary
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  local musl=""
  if ldd --version 2>&1 | grep -qi musl; then musl="-musl"; fi
  echo "$tools/node_modules/@anthropic-ai/claude-code-linux-$arch$musl/claude"
}
claude_placed() { # the real binary is in place of the placeholder
  local exe="$claude_pkg/bin/claude.exe"
  [ -f "$exe" ] && [ "$(stat -c %s "$exe")" -gt 1000000 ]
}
place_claude() {
  [ -d "$claude_pkg" ] && ! claude_placed || return 0
  # npm may skip install scripts (allowScripts, --ignore-scripts): run the postinstall ourselves,
  # then fall back to a hard link (or a copy) of the platform binary.
  (cd "$claude_pkg" && node install.cjs) || true
  claude_placed && return 0
  local native
  native=$(claude_native)
  if [ -x "$native" ]; then
    ln -f "$native" "$claude_pkg/bin/claude.exe" 2>/dev/null || cp -f "$native" "$claude_pkg/bin/claude.exe"
    chmod +x "$claude_pkg/bin/claude.exe"
  fi
}

aider_ok() {
  [ -x "$venv/bin/aider" ] && compgen -G "$venv/lib/python3*/site-packages/aider_chat-$aider_version.dist-info" >/dev/null
}

npm_ok() {
  local entry spec bin pkg want
  for entry in "${pins[@]}"; do
    spec=${entry% *} bin=${entry#* }
    pkg=${spec%@*} want=${spec##*@}
    [ -x "$tools/node_modules/.bin/$bin" ] || return 1
    [ "$(installed_version "$pkg")" = "$want" ] || return 1
  done
  claude_placed
}

if npm_ok && aider_ok; then
  echo "install-agents: pinned CLIs already in $tools (nothing to do)"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
mkdir -p "$tools"
# The physical path: the venv's scripts name their interpreter by it (.tools may be a symlink).
tools=$(cd "$tools" && pwd -P)
venv="$tools/aider-venv"
claude_pkg="$tools/node_modules/@anthropic-ai/claude-code"
start=$(date +%s)

if ! npm_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-agents: npm not found; installing nodejs and npm with apt-get"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends nodejs npm
  fi
  specs=()
  for entry in "${pins[@]}"; do specs+=("${entry% *}"); done
  echo "install-agents: npm install --prefix $tools ${specs[*]}"
  npm install --prefix "$tools" --no-audit --no-fund "${specs[@]}"
  place_claude
fi

if ! aider_ok; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "install-agents: python3-venv not found; installing it with apt-get"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends python3-venv
  fi
  echo "install-agents: aider-chat==$aider_version into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aider-chat==$aider_version"
fi
echo "install-agents: done in $(($(date +%s) - start))s, $tools is $(du -sh "$tools/" | cut -f1)"

if ! npm_ok || ! aider_ok; then
  echo "install-agents: after install, a binary is missing or has the wrong version:" >&2
  for entry in "${pins[@]}"; do
    spec=${entry% *} bin=${entry#* }
    echo "  $bin: want ${spec##*@}, package.json has '$(installed_version "${spec%@*}")'" >&2
  done
  claude_placed || echo "  claude: $claude_pkg/bin/claude.exe is still the placeholder (no $(claude_native))" >&2
  aider_ok || echo "  aider: want $aider_version in $venv" >&2
  exit 1
fi
