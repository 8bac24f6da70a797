#!/usr/bin/env bash
# gpufed hub end to end on kubesim (issue: the controller's benchmark):
# decision latency (eligible -> copy in the lender) with 3 members and a
# few hundred Jobs, then with many members and many tracked Workloads at
# several sizes; the hub's RSS per tracked Workload; cold start to the
# first decision. Prints figures and ratios, asserts nothing about time;
# see docs/bench.md.
#
#   bench_hub.sh            the full run (SIZES overrides the scaling sizes,
#                           "MEMBERSxWORKLOADS_PER_MEMBER ...")
#   bench_hub.sh --quick    3 members, 20 Jobs: seconds (make test)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${GF_BIN:-build/debug/bin}
crds=$(mktemp -d)
trap 'rm -rf "$crds"' EXIT
# kubesim registers CRDs from one folder: Kueue's and the QuotaLease.
cp e2e/testdata/kueue/crds/*.yaml manifests/hub/crd-quotalease.yaml "$crds/"

run() { # label, bench_hub args...
    local label=$1
    shift
    echo "== $label"
    "$BIN/bench_hub" --crds "$crds" "$@" | tee "$crds/out"
    # One summary row: members, tracked, cold start, RSS, p50, p99.
    awk -v l="$label" '
        /^bench_hub:/ { m = $2 }
        /^cold start/ { cs = $6; tr = $8; gsub(/[(]/, "", tr) }
        /^hub RSS / && !rss { rss = $3 }
        /^decision latency/ { p50 = $7; p99 = $10 }
        END { printf "%s %s %s %s %s %s %s\n", l, m, tr, cs, rss, p50, p99 }' \
        "$crds/out" >>"$crds/summary"
}

if [ "${1:-}" = "--quick" ]; then
    run quick --quick
    exit 0
fi

run "3x0" --members 3 --probes 300 --rate 20
# Jobs that arrive together: 100 submitted at 1000/s.
run "3x0-burst" --members 3 --probes 100 --rate 1000
for s in ${SIZES:-10x0 10x1000 10x5000 30x1000 100x0 100x1000}; do
    run "$s" --members "${s%x*}" --background "${s#*x}" --probes 200
done

echo "== summary"
awk '
    { name[NR] = $1; m[NR] = $2; tr[NR] = $3; cs[NR] = $4; rss[NR] = $5
      p50[NR] = $6; p99[NR] = $7
      if ($1 ~ /x0$/) base[$2] = NR }
    END {
      printf "%-10s %8s %9s %10s %10s %8s %8s\n", "run", "members",
             "tracked", "cold (s)", "RSS (KB)", "p50 ms", "p99 ms"
      for (i = 1; i <= NR; i++)
        printf "%-10s %8s %9s %10s %10s %8s %8s\n", name[i], m[i], tr[i],
               cs[i], rss[i], p50[i], p99[i]
      # RSS per tracked Workload: against the run with the same members
      # and no background Workloads.
      for (i = 1; i <= NR; i++) {
        b = base[m[i]]
        if (b != "" && b != i && tr[i] > tr[b])
          printf "RSS per tracked Workload, %s vs %s: %.0f bytes\n", name[i],
                 name[b], (rss[i] - rss[b]) * 1024 / (tr[i] - tr[b])
      }
      # Scaling: each run against the smallest one with background.
      ref = 0
      for (i = 1; i <= NR; i++) if (name[i] !~ /x0$/) {
        if (!ref) { ref = i; continue }
        printf "%s vs %s: %.1fx the Workloads, cold start %.1fx, p99 %.1fx\n",
               name[i], name[ref], tr[i] / tr[ref], cs[i] / cs[ref],
               p99[i] / p99[ref]
      }
    }' "$crds/summary"
