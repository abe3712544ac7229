#!/usr/bin/env bash
# The Dockerfile's build stage as a script, so CI exercises the very steps the image runs.
#
#   scripts/build-image-stage.sh --out DIR   (in the Dockerfile, at /src of node:24-bookworm)
#       installs the build packages, `npm ci` (which builds the addon), builds the bpf objects
#       and the TypeScript, prunes dev dependencies and assembles the runtime tree in DIR,
#       which the final stage copies to /opt/weft.
#   scripts/build-image-stage.sh --check     (CI, no Docker engine)
#       makes the Docker build context the way `docker build` would (the tree minus
#       .dockerignore) in a temp dir, checks every input the build needs survived the
#       .dockerignore, runs the same steps there (build packages are checked, not installed),
#       then proves the assembled tree runs on its own: `weft version` from it, the addon's
#       shared libraries resolve to the final stage's packages, no dev dependency is left.
set -euo pipefail

# Build-stage Debian packages (node:24-bookworm already has python3, make, g++).
BUILD_APT=(clang llvm libbpf-dev make g++ python3)
# What the runtime tree must contain; also the context inputs checked against .dockerignore.
INPUTS=(package.json package-lock.json tsconfig.json bin/weft addon/binding.gyp addon/src addon/index.d.ts
  bpf/Makefile bpf/include cmd pkg scripts/env.sh scripts/build-image-stage.sh)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=build
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --out) out="$2"; shift ;;
    *) echo "usage: build-image-stage.sh --out DIR | --check" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "build-image-stage: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

check_inputs() {
  local root="$1" p
  for p in "${INPUTS[@]}"; do
    [ -e "$root/$p" ] || die "build input $p is missing from the build context (excluded by .dockerignore?)"
  done
  compgen -G "$root/bpf/*.bpf.c" >/dev/null || die "no bpf/*.bpf.c in the build context"
}

apt_build_deps() {
  local missing=() p
  for p in "${BUILD_APT[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$mode" = check ]; then die "build packages missing here: ${missing[*]} (scripts/setup.sh installs them)"; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -rf /var/lib/apt/lists/*
}

# The build proper, in the context folder $1, runtime tree into $2.
build() {
  local src="$1" dest="$2"
  cd "$src"
  # node-gyp must build against the running Node's own headers (no header download).
  if [ -z "${npm_config_nodedir:-}" ]; then
    local nd
    nd=$(dirname "$(dirname "$(command -v node)")")
    [ -d "$nd/include/node" ] && export npm_config_nodedir="$nd"
  fi
  say "npm ci (builds the native addon)"
  npm ci --no-audit --no-fund --prefer-offline >"$src/.npm-ci.log" 2>&1 || { cat "$src/.npm-ci.log" >&2; die "npm ci failed"; }
  [ -f addon/build/Release/weft_native.node ] || die "npm ci did not build addon/build/Release/weft_native.node"
  say "npm run build (bpf objects and TypeScript)"
  npm run -s build
  say "npm prune --omit=dev"
  npm prune --omit=dev --no-audit --no-fund >/dev/null
  say "assembling the runtime tree in $dest"
  mkdir -p "$dest/addon/build/Release" "$dest/bpf/build"
  cp -a package.json package-lock.json bin node_modules "$dest/"
  cp -a addon/build/Release/weft_native.node "$dest/addon/build/Release/"
  cp -a bpf/build/*.bpf.o "$dest/bpf/build/"
  # Compiled code without the tests.
  mkdir -p "$dest/dist"
  tar -C dist --exclude='*.test.js' --exclude='*.test.js.map' -cf - . | tar -C "$dest/dist" -xf -
}

verify_runtime() {
  local dest="$1" lib
  say "verifying the runtime tree"
  node "$dest/bin/weft" version >/dev/null || die "'weft version' fails from the runtime tree"
  ldd "$dest/addon/build/Release/weft_native.node" | grep -q 'not found' && die "addon has unresolved libraries: $(ldd "$dest/addon/build/Release/weft_native.node" | grep 'not found')"
  lib=$(ldd "$dest/addon/build/Release/weft_native.node" | awk '/libbpf/ {print $3}')
  [ -n "$lib" ] || die "addon does not link libbpf"
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null | grep -q '^libbpf1' || die "addon's libbpf ($lib) is not from Debian's libbpf1, which the final stage installs"
  # (@types/node may stay: some runtime dependencies declare it as a dependency.)
  for d in typescript tap eslint typescript-eslint; do
    [ ! -e "$dest/node_modules/$d" ] || die "dev dependency $d is left in the runtime tree"
  done
  [ -n "$(find "$dest/bpf/build" -name '*.bpf.o' -print -quit)" ] || die "no bpf objects in the runtime tree"
  [ -z "$(find "$dest/dist" -name '*.test.js' -print -quit)" ] || die "tests left in the runtime tree"
}

if [ "$mode" = build ]; then
  [ -n "$out" ] || die "--out DIR is required"
  check_inputs "$here"
  apt_build_deps
  build "$here" "$out"
  verify_runtime "$out"
  say "ok: runtime tree in $out"
  exit 0
fi

# --check: the same steps on a copy of the Docker build context.
[ -f "$here/Dockerfile" ] || die "no Dockerfile"
grep -q 'scripts/build-image-stage.sh' "$here/Dockerfile" || die "the Dockerfile's build stage does not run scripts/build-image-stage.sh"
tmp=$(mktemp -d /tmp/weft-image-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
excludes=()
if [ -f "$here/.dockerignore" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    line=$(echo "$line" | xargs)
    [ -z "$line" ] && continue
    case "$line" in '!'*) die ".dockerignore negations are not supported by this check: $line" ;; esac
    excludes+=("--exclude=./${line#/}")
  done <"$here/.dockerignore"
fi
say "making the build context (tree minus .dockerignore) in $tmp/src"
mkdir -p "$tmp/src"
tar -C "$here" --anchored "${excludes[@]}" -cf - . | tar -C "$tmp/src" -xf -
for d in node_modules dist addon/build bpf/build .git .toolchain; do
  [ ! -e "$tmp/src/$d" ] || die ".dockerignore lets $d into the build context (stale host artifacts would leak into the image)"
done
check_inputs "$tmp/src"
apt_build_deps
(build "$tmp/src" "$tmp/out")
verify_runtime "$tmp/out"
say "ok: the image build stage builds and its runtime tree runs"
