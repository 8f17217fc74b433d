#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need, then runs
# formatting, lint and every test. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_updated=""
apt_install() {
  if ! have apt-get; then echo "missing $* and no apt-get to install it" >&2; exit 1; fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

say "checking tools"
have git || apt_install git
have redis-server || apt_install redis-server   # the Redis store's tests start their own servers
have openssl || apt_install openssl             # the rediss:// test makes its own CA
have curl || apt_install curl                   # a test agent calls the model gateway with it
have cargo || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
have chromium || apt_install chromium             # the dashboard's test drives real browsers:
have firefox-esr || have firefox || apt_install firefox-esr   # Chromium and Firefox
python3 -c 'import venv' 2>/dev/null || apt_install python3-venv
./scripts/install-agents.sh   # the pinned agent CLIs, into .tools/ (the adapter tests run them for real)
# The independent MCP client (the official Python SDK) and the browser driver, in a project venv.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
git --version
redis-server --version
cargo --version
.venv/bin/python -c 'import importlib.metadata as m; print("mcp (python sdk)", m.version("mcp"), "· playwright", m.version("playwright"))'
chromium --version
{ firefox-esr --version || firefox --version; } 2>/dev/null

# A fresh checkout gains nothing from incremental compilation but its disk use (gigabytes).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Functions of the libraries and binaries stay under 80 lines (clippy.toml), tests excepted.
cargo clippy --workspace --lib --bins --quiet -- -D warnings -D clippy::too_many_lines

say "cargo test (embedded SQLite store)"
cargo test --workspace --no-fail-fast

say "cargo test: the integration suite again, on Redis (each test starts its own redis-server)"
SWARM_TEST_STORE=redis cargo test -p swarm-cli --no-fail-fast
