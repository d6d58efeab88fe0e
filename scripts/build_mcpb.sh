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
. "$ROOT/scripts/npm_clis.sh"
need_npm_clis @anthropic-ai/mcpb@2.1.2

python3 "$ROOT/scripts/mcpb/build.py" "$STAGE"
mkdir -p "$(dirname "$OUT")"
mcpb pack "$STAGE" "$OUT"
