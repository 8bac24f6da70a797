#!/usr/bin/env bash
# The ingest benchmark's --quick run (5k events): it must work end to end
# with all three clients and print every figure. Asserts nothing about
# time.
set -euo pipefail
BIN=${GF_BIN:?GF_BIN must name the directory with the programs}
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
cd "$(dirname "$0")/.."
out=$("$BIN/bench_ingest" --quick --kubesim "$BIN/kubesim" \
    --crds "$SHARED/kueue/crds")
echo "$out"
for line in "kubeclient watch, wall" "python watch, wall" \
    "kubectl get --watch (list), wall" "kubeclient is faster by" \
    "from memory: frame + parse, wall" "from memory: + project + store, wall" \
    "of which the JSON parse" "objects in the store"; do
    grep -qF "$line" <<<"$out" || { echo "FAIL: missing: $line" >&2; exit 1; }
done
grep -q "5000 objects in the store" <<<"$out" ||
    { echo "FAIL: the store did not get every object" >&2; exit 1; }
echo "PASS test_bench_ingest_quick"
