#!/usr/bin/env bash
# Watch ingest: kubeclient vs the Python client vs kubectl on 100k
# Workload events (issue: kubeclient benchmark). Prints figures and
# ratios; see docs/bench.md for what each line means.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${GF_BIN:-build/debug/bin}/bench_ingest" "$@"
