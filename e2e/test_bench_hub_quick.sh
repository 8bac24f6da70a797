#!/usr/bin/env bash
# bench_hub --quick (3 members, 20 Jobs): proves the hub benchmark runs end
# to end (kubesim with Kueue-lite, gpufed hub, every probe's copy seen in a
# lender; bench_hub exits 1 otherwise) and prints every figure. Asserts
# nothing about time.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${GF_BIN:?GF_BIN must name the directory with the programs}"
out=$(bash e2e/bench/bench_hub.sh --quick)
echo "$out"
for line in "cold start to first decision" "hub RSS " \
    "decision latency (eligible -> copy)" "eligible -> redirect decided" \
    "redirect decided -> copy seen"; do
    grep -qF "$line" <<<"$out" || { echo "FAIL: missing: $line" >&2; exit 1; }
done
# Every probe's latency was measured (20 samples), and the figures are
# numbers.
grep -E '^decision latency .*p50 +-?[0-9]+ ms +p99 +-?[0-9]+ ms .*\(20 samples\)' \
    <<<"$out" >/dev/null || { echo "FAIL: latency samples" >&2; exit 1; }
grep -E '^hub RSS +[0-9]+ KB' <<<"$out" >/dev/null ||
    { echo "FAIL: hub RSS not read" >&2; exit 1; }
echo "PASS test_bench_hub_quick"
