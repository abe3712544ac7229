#!/usr/bin/env bash
# Prints the folder holding the Kubernetes OpenAPI validators the chart tests use, fetching
# them once into .toolchain/kube-models/ (never into the project's node_modules).
#
# No kubeconform or kubernetes-json-schema is shipped by npm or Debian, so the schema source
# is tommy351's kubernetes-models: each release embeds one Kubernetes version's OpenAPI
# spec, compiled to validators (ajv). The releases that exist bracket our support range:
#   kubernetes-models@4.3.1 -> Kubernetes v1.27.1 (below our floor, 1.29)
#   kubernetes-models@4.5.1 -> Kubernetes v1.33.0 (our ceiling)
#   kubernetes-models@5.1.0 -> Kubernetes v1.36.0 (newer than we claim; catches removals)
# GA APIs only gain fields between minors, so an object valid against both 1.27 and 1.33 is
# valid for every version in 1.29-1.33. 4.3.1 also ships its schemas as JSON, which
# scripts/kube-validate.ts closes (additionalProperties: false) for a strict unknown-field
# check like `kubeconform -strict`. Installed under aliases k8s-<minor>.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/.toolchain/kube-models"
specs=(k8s-1.27@npm:kubernetes-models@4.3.1 k8s-1.33@npm:kubernetes-models@4.5.1 k8s-1.36@npm:kubernetes-models@5.1.0)

have=1
for s in "${specs[@]}"; do
  alias=${s%%@npm:*}
  want=${s##*@}
  got=$(node -p "require('$dir/node_modules/$alias/package.json').version" 2>/dev/null || true)
  [ "$got" = "$want" ] || have=0
done
if [ "$have" = 0 ]; then
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private":true,"description":"weft chart-test toolchain; see scripts/get-kube-models.sh"}' >"$dir/package.json"
  npm install --silent --no-audit --no-fund --prefix "$dir" "${specs[@]}" >/dev/null
fi
echo "$dir"
