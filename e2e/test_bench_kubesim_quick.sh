#!/usr/bin/env bash
# The kubesim benchmark at a small size, so `make test` proves it runs end to
# end: every request succeeds and every watch event arrives. Figures are
# printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
"${GF_BIN:-build/debug/bin}/bench_kubesim" --quick
echo "PASS test_bench_kubesim_quick"
