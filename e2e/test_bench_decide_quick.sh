#!/usr/bin/env bash
# bench_decide --quick: it runs, the ledger it builds stays consistent
# (the program checks and exits 1 otherwise) and every figure is printed.
# Asserts nothing about time.
set -euo pipefail
BIN=${GF_BIN:?GF_BIN must name the directory with the programs}
out=$("$BIN/bench_decide" --quick)
echo "$out"
for line in "ledger update (one Workload)" "decision (one pending Workload)" \
    "full decision pass"; do
    grep -qF "$line" <<<"$out" || { echo "FAIL: missing: $line" >&2; exit 1; }
done
echo "PASS test_bench_decide_quick"
