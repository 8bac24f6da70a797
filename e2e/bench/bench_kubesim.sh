#!/usr/bin/env bash
# kubesim at scale: 100 clusters x 1k Workloads (issue: kubesim benchmark).
# Prints figures; see docs/bench.md for what each line means.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${GF_BIN:-build/debug/bin}/bench_kubesim" "$@"
