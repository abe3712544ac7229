#!/usr/bin/env bash
# The README's two commands: `bash scripts/run.sh demo` and `bash scripts/run.sh test`.
# Each does all set-up first (idempotent), then runs on Node 24.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
source "$here/scripts/env.sh"
cd "$here"
case "${1:-}" in
  demo) shift; exec node bin/weft demo "$@" ;;
  test) shift; exec node scripts/test.mjs "$@" ;;
  bench) shift; exec node dist/e2e/bench/run.js "$@" ;;
  *) echo "usage: scripts/run.sh demo|test|bench [args]" >&2; exit 2 ;;
esac
