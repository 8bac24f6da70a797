#!/usr/bin/env bash
# gpufed hub, loan mode end to end on kubesim (DESIGN.md §2 "Loan",
# docs/controller.md "Loans"): a hub and two members in one group with
# mode loan. east's nodes have 8 GPUs but its ClusterQueue only 2; west's
# 8 GPUs of quota are idle. Jobs submitted to east must all run in east,
# each exactly once, with more GPUs at once than east's own quota, by
# quota moved from west: a hold reserved in west first, then a grant
# (gpufed-loan-ml-gpu) raised in east's cohort.
#   loan     sampled all along: east never uses more than its quota plus
#            what west's holds reserve (S2); afterwards no hold and no
#            lent quota is left anywhere
#   crash    the hub killed (SIGKILL) after it created a hold (before the
#            grant), and after it lowered a grant (before the hold's
#            delete), and restarted: no excess quota, no stuck hold
# Needs GF_BIN and GF_SHARED, kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
hw_begin 60
hw_sim east west -- --nodes 2 --gpus-per-node 4

step "world: east has 8 GPUs on its nodes and a quota of 2; west's 8 are idle"
loan_world "{overflowAfter: 2s, admitTimeout: 6s, leaseDuration: 30s}"

job() { # name gpus [duration]
    job_yaml "$1" "$2" "${3:-40s}" | E create -f - >/dev/null
}
# S2 also on east's usage: within its quota of 2 plus what west's holds
# reserve.
LOAN_QUOTA=2
runs() { starts_by_cluster "$1"; } # job
all_done() { # jobs...
    local j
    for j in "$@"; do
        E -n ml get job "$j" -o json | jq -e \
            'any(.status.conditions[]?; (.type=="Complete" or .type=="Failed") and .status=="True")' \
            >/dev/null || return 1
    done
}
hub_gone() { ! kill -0 "$hub_pid" 2>/dev/null; }

hub_start

step "loan: four 2-GPU Jobs in east run at home, on quota moved from west"
jobs=(train-1 train-2 train-3 train-4)
for j in "${jobs[@]}"; do job "$j" 2; done
sample_until 90 "the Jobs finish" all_done "${jobs[@]}"
loan_sample
echo "   samples=$samples east_max_gpus_in_use=$max_used (quota 2)"
[ "$max_used" -gt 2 ] || fail "east never used more than its own quota ($max_used)"
for j in "${jobs[@]}"; do
    r=$(runs "$j")
    [ "$r" = "east=1 " ] || fail "$j runs: '$r'"
done
wait_for 40 "no hold and no lent quota left" nothing_lent
leases_json | jq -e '[.items[] | select(.spec.mode=="Loan")] | length > 0 and
    all(.status.phase=="Released")' >/dev/null ||
    fail "loan leases: $(leases_json | jq -c '[.items[] | [.spec.mode, .status.phase, .status.reason]]')"
hub_stop

step "crash: SIGKILL after a hold is created and after a grant is lowered"
n=0
for w in create-hold lower-grant; do
    n=$((n + 1))
    j="crash-$n"
    hub_start GPUFED_CRASH_AFTER="$w:1"
    job "$j" 4 20s
    sample_until 60 "hub killed after $w" hub_gone
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
    grep -q "crash hook: killing the hub\" after=$w" "$work/hub.log" ||
        fail "the hook did not fire after $w"
    loan_sample
    hub_start
    sample_until 60 "$j finishes after a crash after $w" all_done "$j"
    r=$(runs "$j")
    [ "$r" = "east=1 " ] || fail "$j runs: '$r'"
    wait_for 40 "no hold and no lent quota left after a crash after $w" nothing_lent
    hub_stop
done
echo "   samples=$samples"

echo "PASS"
