#!/usr/bin/env bash
# The pure core at the target scale: 100 members x 100 ClusterQueues x
# 100k Workloads (issue: policy benchmark). Prints p50/p99; see
# docs/bench.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${GF_BIN:-build/debug/bin}/bench_decide" "$@"
