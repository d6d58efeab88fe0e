#!/usr/bin/env bash
# The Claude Desktop bundle: writes dist/gems-mcp.mcpb (manifest from the real server, see
# scripts/mcpb/build.py) and packs it with the MCPB CLI, which validates the manifest as it packs.
# Needs the gems_mcp package importable by python3, and npm the first time (it installs
# @anthropic-ai/mcpb into $GEMS_INSTALL_DIR, default ~/.cache/gems-mcp-install).
# Usage: scripts/build_mcpb.sh [OUT.mcpb]        (default dist/gems-mcp.mcpb)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/dist/gems-mcp.mcpb}
STAGE=$ROOT/dist/mcpb
python3 -c "import gems_mcp" 2>/dev/null || {
  echo "build_mcpb.sh: python3 cannot import gems_mcp; activate the environment gems-mcp is installed in (pip install -e .)" >&2
  exit 1
}
. "$ROOT/scripts/npm_clis.sh"
need_npm_clis @anthropic-ai/mcpb@2.1.2

python3 "$ROOT/scripts/mcpb/build.py" "$STAGE"
mkdir -p "$(dirname "$OUT")"
mcpb pack "$STAGE" "$OUT"
