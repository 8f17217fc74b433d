#!/usr/bin/env bash
# Smoke check: the pinned opencode (from ./scripts/install-agents.sh) against swarm's fake model
# server. opencode gets an openai-compatible provider `local` through OPENCODE_CONFIG_CONTENT and
# runs `opencode run --model local/ok --format json "write hello.txt"` in a temporary directory
# with HOME and XDG dirs isolated; the scenario answers with a `write` tool call, then `DONE`.
#
#   ./scripts/smoke-opencode.sh                  # exit 0 when hello.txt was written with the content
#   ./scripts/smoke-opencode.sh --save-fixtures  # also copy opencode's JSON events and the request
#                                                # log to crates/swarm-fakellm/tests/fixtures/
# SMOKE_KEEP=1 keeps the temporary directory. Not part of scripts/test.sh (yet).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

save=""
[ "${1:-}" = "--save-fixtures" ] && save=1

opencode="$root/.tools/node_modules/.bin/opencode"
[ -x "$opencode" ] || { echo "smoke: $opencode missing; run ./scripts/install-agents.sh" >&2; exit 2; }

cargo build --quiet -p swarm-fakellm --example serve
serve="$root/target/debug/examples/serve"

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ -n "${SMOKE_KEEP:-}" ]; then echo "smoke: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

mkdir -p "$tmp/work" "$tmp/home" "$tmp/xdg/config" "$tmp/xdg/data" "$tmp/xdg/cache" "$tmp/xdg/state"
cat >"$tmp/scenario.toml" <<'EOF'
log = "requests.jsonl"
[models.ok]
steps = [ { write = { path = "hello.txt", content = "hello from the fake model\n" } }, { say = "DONE" } ]
EOF

"$serve" --scenario "$tmp/scenario.toml" --port 0 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
base_url=""
for _ in $(seq 1 100); do
  base_url=$(sed -n 's/^listening //p' "$tmp/server.out")
  [ -n "$base_url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base_url" ] || { echo "smoke: the fake server did not start" >&2; exit 1; }
echo "smoke: fake model server at $base_url"

config=$(cat <<EOF
{
  "\$schema": "https://opencode.ai/config.json",
  "autoupdate": false,
  "share": "disabled",
  "model": "local/ok",
  "small_model": "local/ok",
  "provider": {
    "local": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "swarm fake model server",
      "options": { "baseURL": "$base_url", "apiKey": "x" },
      "models": { "ok": { "name": "ok", "tool_call": true } }
    }
  }
}
EOF
)

start=$(date +%s)
set +e
(
  cd "$tmp/work"
  env -i PATH="$PATH" TERM=dumb \
    HOME="$tmp/home" \
    XDG_CONFIG_HOME="$tmp/xdg/config" XDG_DATA_HOME="$tmp/xdg/data" \
    XDG_CACHE_HOME="$tmp/xdg/cache" XDG_STATE_HOME="$tmp/xdg/state" \
    OPENCODE_CONFIG_CONTENT="$config" \
    OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1 \
    timeout 180 "$opencode" run --model local/ok --format json --auto --print-logs --log-level INFO \
      "write hello.txt" </dev/null >"$tmp/opencode.jsonl" 2>"$tmp/opencode.err"
)
status=$?
set -e
elapsed=$(($(date +%s) - start))

echo "smoke: opencode exited $status after ${elapsed}s"
echo "smoke: opencode JSON event types: $(sed -n 's/^{"type":"\([^"]*\)".*/\1/p' "$tmp/opencode.jsonl" | tr '\n' ' ')"
echo "smoke: fake server requests:"
sed 's/^/  /' "$tmp/requests.jsonl" 2>/dev/null | cut -c1-220 || true
grep -iE 'npm|install|fetch|http' "$tmp/opencode.err" | grep -v "$base_url" | head -20 | sed 's/^/  stderr: /' || true

if [ -n "$save" ]; then
  fixtures="$root/crates/swarm-fakellm/tests/fixtures"
  mkdir -p "$fixtures"
  cp "$tmp/opencode.jsonl" "$fixtures/opencode-1.18.33-write-hello.stdout.jsonl"
  cp "$tmp/requests.jsonl" "$fixtures/opencode-1.18.33-write-hello.requests.jsonl"
  echo "smoke: saved fixtures to $fixtures"
fi

if [ -f "$tmp/work/hello.txt" ] && [ "$(cat "$tmp/work/hello.txt")" = "hello from the fake model" ]; then
  echo "smoke: OK, hello.txt written"
else
  echo "smoke: FAILED, no hello.txt with the scripted content; stderr tail:" >&2
  tail -30 "$tmp/opencode.err" >&2
  exit 1
fi
