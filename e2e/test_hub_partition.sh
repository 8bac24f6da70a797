#!/usr/bin/env bash
# gpufed hub, a partition between the hub and a lender (DESIGN.md §4) on
# kubesim: a hub and three members, east (no GPU quota: its GPU Jobs
# overflow), west (8 idle GPUs, the preferred lender) and north (4). The
# policy's leaseDuration is 3s (the heartbeat is renewed every second) and
# fenceMargin 2s. West is cut off from the hub only (kubesim's blackhole
# for the gpufed-hub identity) while it runs a copy.
#   fencing none   the lease goes Suspect, its GPUs stay counted, nothing
#                  new goes to west, and west's heartbeat Lease stops
#                  moving; after the heal the lease is Active again, the
#                  heartbeat moves again, and the Job finishes exactly once
#   fencing agent  the agent's fence is done here with the admin
#                  kubeconfig (fence_copies_in: the copy Workload
#                  deactivated, as `gpufed agent` does); after the fencing
#                  time the lease is Fenced, the origin runs again (in
#                  north) after the first run stopped, and on the heal the
#                  stale copy in west is deleted
#   blind window   the copy finishes after the partition began and before
#                  the fence: the hub fences the lease and runs the Job
#                  again in north (epoch 2); on the heal the first outcome
#                  stands (mirrored on the origin), the second run is
#                  withdrawn (Superseded) and the Job completed once
# Prints the time from the heal to convergence (never asserted). Needs
# GF_BIN and GF_SHARED, kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
hw_begin 60
hw_sim east west north

step "world: the shipped manifests, member Secrets, queues (east has no GPUs)"
hw_world east=0 west=8 north=4
policy() { # west's fencing
    policy_yaml "{overflowAfter: 1s, admitTimeout: 10s, leaseDuration: 3s, fenceMargin: 2s}" \
        "[ml]" east "west=$1" north | policy_install
}
policy none
hub_serve

job() { # name gpus duration
    job_yaml "$1" "$2" "$3" | E create -f - >/dev/null
}
copies_in() { # K job: the uids of the Job's copies in that member
    local uid
    uid=$(uid_of "$2")
    $1 get jobs -A -l "gpufed.io/origin-uid=$uid" -o jsonpath='{range .items[*]}{.metadata.uid} {end}'
}
# Runs of a Job, from the execution log: "cluster start_ms stop_ms" per
# run, in start order (stop_ms 0 while it runs).
runs() { # job
    local uid ids
    uid=$(uid_of "$1")
    ids="$uid $(copies_in W "$1") $(copies_in N "$1") $(jq -r --arg j "$1" \
        'select(.job|startswith($j)) | .job_uid' "$EXEC" 2>/dev/null | sort -u | tr '\n' ' ')"
    jq -r --arg ids "$ids" '. as $e | select(($ids | split(" ")) | any(. == $e.job_uid))
        | "\(.pod) \(.cluster) \(.event) \(.ts_ms)"' "$EXEC" |
        awk '{ if ($3=="start") { s[$1]=$4; c[$1]=$2; o[n++]=$1 } else if (!($1 in e)) e[$1]=$4 }
             END { for (i=0;i<n;i++) printf "%s %s %s\n", c[o[i]], s[o[i]], (o[i] in e) ? e[o[i]] : 0 }'
}
completed_once() { # job: exactly one Job (origin or copy) of it completed
    local n=0 k
    for k in E W N; do
        n=$((n + $($k get jobs -A -o json | jq --arg p "$1" \
            '[.items[] | select(.metadata.name|startswith($p)) |
              select(any(.status.conditions[]?; .type=="Complete" and .status=="True"))] | length')))
    done
    [ "$n" = 1 ]
}
blackhole_west() { # seconds
    "$GF_BIN/kubesim" fault west blackhole --identity gpufed-hub --for "${1}s" --dir "$D" >/dev/null
}
# The agent's fence, done with the admin kubeconfig as `gpufed agent`
# does it: every copy Workload (owned by a Job with gpufed.io/lease) in
# the member deactivated and annotated. Replace with the real agent once
# it runs in the member.
fence_copies_in() { # K
    local K=$1 ns job wl
    while read -r ns job; do
        [ -n "$job" ] || continue
        for wl in $($K -n "$ns" get workloads -o json | jq -r --arg j "$job" \
            '.items[] | select(any(.metadata.ownerReferences[]?; .kind=="Job" and .name==$j)) | .metadata.name'); do
            $K -n "$ns" patch workload "$wl" --type merge -p \
                "{\"metadata\":{\"annotations\":{\"gpufed.io/fenced-at\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}},\"spec\":{\"active\":false}}" >/dev/null
        done
    done < <($K get jobs -A -l gpufed.io/lease -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}')
}

step "heartbeat: the hub renews gpufed-heartbeat in every member"
wait_for 20 "heartbeat Lease in west" hb_renew_ms west
for K in E N; do
    $K -n gpufed-system get lease gpufed-heartbeat -o json | jq -e \
        '.spec.leaseDurationSeconds == 3 and (.spec.renewTime | test("\\.[0-9]{6}Z$"))' >/dev/null ||
        fail "heartbeat Lease: $($K -n gpufed-system get lease gpufed-heartbeat -o json | jq -c .spec)"
done
t=$(hb_renew_ms west)
wait_for 5 "heartbeat moves" hb_moves west "$t"
wait_for 10 "renewals counted" metric_is 'gpufed_member_suspect{member="west"}' 0

step "fencing none: a partition makes the lease Suspect, the heal makes it Active again"
job part-1 4 250s
wait_for 30 "part-1 Active in west" lease_line part-1 " Active - west 1$"
blackhole_west 20
t_fault=$(now_ms)
wait_for 10 "part-1 Suspect" lease_is part-1 Suspect
echo "   suspect after $(( $(now_ms) - t_fault )) ms"
metric_is 'gpufed_member_suspect{member="west"}' 1 || fail "west not suspect in /metrics"
# Unknown is not zero: west's GPUs lent to part-1 are still counted.
lent=$(metric 'gpufed_quota{member="west",cluster_queue="ml-gpu",flavor="a100",resource="nvidia.com/gpu",kind="lent"}')
[ "$lent" = 4 ] || fail "west lent during the partition: '$lent'"
grep -q 'cluster=west msg="member suspect"' "$work/hub.log" || fail "suspect not logged"
# /readyz names the suspect member and stays 200: one partitioned member
# does not take the hub out of service.
rz_code=$(curl -s -o "$work/readyz" -w '%{http_code}' "http://127.0.0.1:$hport/readyz")
[ "$rz_code" = 200 ] || fail "/readyz $rz_code during the partition: $(cat "$work/readyz")"
grep -q '^member west: suspect: ' "$work/readyz" || fail "/readyz does not name west: $(cat "$work/readyz")"
# A Job that would prefer west (8 GPUs) goes elsewhere or waits.
job part-2 2 10s
hb_frozen=$(hb_renew_ms west)
sleep 8
[ "$(hb_renew_ms west)" = "$hb_frozen" ] || fail "heartbeat moved during the partition"
if grep -q " west " < <(leases_of part-2); then fail "part-2 went to west while partitioned: $(leases_of part-2)"; fi
lease_is part-1 Suspect || fail "part-1 left Suspect during the partition: $(leases_of part-1)"
left=$(( 20000 - ($(now_ms) - t_fault) ))
[ $left -gt 1000 ] || fail "the checks outlasted the partition"
sleep $(( left / 1000 + 1 ))
t_heal=$(now_ms)
wait_for 30 "part-1 Active again" lease_is part-1 Active
echo "   heal -> lease Active: $(( $(now_ms) - t_heal )) ms"
wait_for 10 "heartbeat moves again" hb_moves west "$hb_frozen"
wait_for 10 "west healthy in /metrics" metric_is 'gpufed_member_suspect{member="west"}' 0
echo "   heal -> heartbeat moving, member healthy: $(( $(now_ms) - t_heal )) ms"
grep -q 'cluster=west msg="member healthy again"' "$work/hub.log" || fail "heal not logged"
wait_for 60 "part-1 Released(Completed)" lease_is part-1 Released Completed
wait_for 30 "part-2 done" completed_once part-2
r=$(runs part-1)
[ "$(wc -l <<<"$r")" = 1 ] && [[ "$r" == west* ]] || fail "part-1 runs: $r"
completed_once part-1 || fail "part-1 completed more or less than once"

step "fencing agent: Fenced after the fencing time, the origin runs again, the stale copy goes on heal"
policy agent
wait_for 20 "policy with fencing: agent applied" grep -q 'msg="policy reloaded"' "$work/hub.log"
job fence-1 4 200s
wait_for 30 "fence-1 Active in west" lease_line fence-1 " Active - west 1$"
wait_for 10 "fence-1 running in west" runs_match fence-1 "^west [0-9]+ 0$"
blackhole_west 25
t_fault=$(now_ms)
# The agent fences once the heartbeat has not moved for D (3 s).
sleep 3
fence_copies_in W
t_fenced=$(now_ms)
wait_for 20 "fence-1 Fenced" lease_is fence-1 Fenced
echo "   Fenced $(( $(now_ms) - t_fault )) ms after the partition began (D(1+rho)+M = 5.03 s after the last renewal)"
# The origin runs again, elsewhere (north) since east has no GPUs.
wait_for 30 "fence-1 epoch 2 in north" lease_line fence-1 " north 2$"
wait_for 30 "fence-1 running in north" runs_match fence-1 "^north "
r=$(runs fence-1)
echo "$r" | sed 's/^/   run: /'
first_stop=$(awk '$1=="west"{print $3}' <<<"$r")
second_start=$(awk '$1=="north"{print $2}' <<<"$r")
[ -n "$first_stop" ] && [ "$first_stop" != 0 ] || fail "the west run of fence-1 never stopped: $r"
[ "$first_stop" -le "$second_start" ] || fail "fence-1 ran in two places at once: $r"
echo "   first run stopped $(( second_start - first_stop )) ms before the second started (fence at +$(( t_fenced - t_fault )) ms)"
left=$(( 25000 - ($(now_ms) - t_fault) ))
[ $left -gt 0 ] && sleep $(( left / 1000 + 1 ))
t_heal=$(now_ms)
# Observation wins: the stale epoch-1 copy in west is deleted.
wait_for 30 "stale copy deleted in west" bash -c "[ -z \"\$(kubectl --kubeconfig '$D/west/kubeconfig-admin.yaml' get jobs -A -l gpufed.io/epoch=1,gpufed.io/origin-uid=$(uid_of fence-1) -o name)\" ]"
echo "   heal -> stale copy deleted: $(( $(now_ms) - t_heal )) ms"
wait_for 30 "epoch 1 lease Released(Fenced)" lease_line fence-1 " Released Fenced west 1$"
wait_for 60 "fence-1 done in north" completed_once fence-1
[ "$(runs fence-1 | wc -l)" = 2 ] || fail "fence-1 runs: $(runs fence-1)"

step "blind window: the copy finished unseen before the fence; on the heal its outcome stands and the second run is withdrawn"
job blind-1 4 30s
wait_for 30 "blind-1 Active in west" lease_line blind-1 " Active - west 1$"
blackhole_west 14
t_fault=$(now_ms)
# A second run would take long (the copy of epoch 2 is made from the
# origin as it is then).
E -n ml annotate job blind-1 --overwrite kubesim.gpufed.io/duration=600s >/dev/null
copy_complete() {
    W get jobs -A -l "gpufed.io/origin-uid=$(uid_of blind-1),gpufed.io/epoch=1" -o json |
        jq -e '[.items[] | select(any(.status.conditions[]?; .type=="Complete" and .status=="True"))] | length == 1'
}
wait_for 10 "blind-1's copy finished in west, unseen by the hub" copy_complete
# The agent's fence comes after the copy's end: the blind window.
fence_copies_in W
wait_for 20 "blind-1 epoch 1 Fenced" lease_line blind-1 " Fenced Fenced west 1$"
wait_for 30 "blind-1 runs again in north (epoch 2)" runs_match blind-1 "^north [0-9]+ 0$"
left=$(( 14000 - ($(now_ms) - t_fault) ))
[ $left -gt 0 ] || fail "the second run began after the heal: the window was not blind"
sleep $(( left / 1000 + 1 ))
t_heal=$(now_ms)
wait_for 30 "blind-1 epoch 1 Released(Completed)" lease_line blind-1 " Released Completed west 1$"
wait_for 30 "blind-1 epoch 2 Released(Superseded)" lease_line blind-1 " Released Superseded north 2$"
echo "   heal -> second run withdrawn: $(( $(now_ms) - t_heal )) ms"
[ "$(E -n ml get job blind-1 -o json | jq -r '.metadata.annotations["gpufed.io/outcome"] // ""')" = Succeeded ] ||
    fail "blind-1's outcome not mirrored: $(E -n ml get job blind-1 -o json | jq -c .metadata.annotations)"
wait_for 20 "the second run stopped" runs_match blind-1 "^north [0-9]+ [1-9][0-9]*$"
[ -z "$(N get jobs -A -l "gpufed.io/origin-uid=$(uid_of blind-1)" -o name)" ] || fail "blind-1's epoch 2 copy left in north"
completed_once blind-1 || fail "blind-1 completed more or less than once"
metric_is gpufed_double_completions_total 0 || fail "double completions: $(metric gpufed_double_completions_total)"
runs blind-1 | sed 's/^/   run: /'

hub_stop
echo "PASS"
