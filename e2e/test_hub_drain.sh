#!/usr/bin/env bash
# gpufed hub, drain and uncordon end to end on kubesim (`gpufedctl drain
# MEMBER` / `gpufedctl uncordon MEMBER`, the ConfigMap gpufed-drain): a hub
# and three members, east (no GPU quota: its GPU Jobs overflow), west (8
# idle GPUs) and north (4).
#   commands        idempotent, clear words, exit status; the ConfigMap is
#                   created, patched one key at a time, emptied
#   drain stops     a drained west lends nothing new: a Job that north can
#   lending         take goes to north, one only west could take stays
#                   home; /metrics and /readyz say west is drained
#   restart         a restarted hub still lends nothing from west (its
#                   first list of the ConfigMap gates every decision)
#   uncordon        west lends again: the Job that stayed home goes there
#   withdraw        (DRAIN_WITHDRAW=1) a Pending lease out of west is
#                   withdrawn at once when west is drained, long before
#                   admitTimeout; needs decide's drain rules (WITHDRAW)
#   reclaim         (DRAIN_RECLAIM=1) every Active lease out of west goes
#                   Reclaiming with the policy's gracePeriod, its copy is
#                   marked with the deadline, the lease ends
#                   Released(Reclaimed) and the Job finishes exactly once,
#                   elsewhere or at home; needs the reclaim path of the
#                   lease machine and decide's drain rules (RECLAIM)
# The hub runs as the gpufed-hub identity under manifests/hub and
# manifests/member (kubesim enforces their RBAC); gpufedctl runs as the
# cluster admin. Needs GF_BIN and GF_SHARED, kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
# The parts that need the rest of the reclaim work (see above).
DRAIN_WITHDRAW=${DRAIN_WITHDRAW:-1}
DRAIN_RECLAIM=${DRAIN_RECLAIM:-1}
hw_begin
hw_sim east west north
CTL() { "$GF_BIN/gpufedctl" "$@" --kubeconfig "$D/hub/kubeconfig-admin.yaml"; }

step "world: the shipped manifests, member Secrets, queues (east has no GPUs)"
# With the reclaim part on, west's two long copies take 6 of its GPUs and
# pend-1 still needs 6 idle there: west gets 12.
west_gpus=8
[ "$DRAIN_RECLAIM" = 1 ] && west_gpus=12
hw_world east=0 west=$west_gpus north=4
# admitTimeout is long so that a withdrawal seen soon after a drain is the
# drain's, not the timeout's; gracePeriod is short so that a reclaim ends
# within the test.
policy_yaml "{overflowAfter: 2s, admitTimeout: 60s, leaseDuration: 30s, gracePeriod: 10s}" \
    "[ml]" east west north | policy_install

# The hub's port once it is ready (hport).
ready() { hport=$(logged_port) && hub_ready; }

job() { # name gpus [duration]
    job_yaml "$1" "$2" "${3:-30s}" | E create -f - >/dev/null
}
lent_after() { # member time
    leases_json |
        jq -r --arg m "$1" --arg t "$2" '.items[] | select(.spec.lender.member==$m) |
            select(.metadata.creationTimestamp > $t) | .metadata.name'
}
drain_data() { H -n gpufed-system get configmap gpufed-drain -o json | jq -c '.data // {}'; }
# Completions of a Job (successful stops) by cluster, its copies' in any
# member counted.
finished() { exec_counts "$1" '.event=="stop" and .reason=="Succeeded"' west north; }

step "commands: usage, and uncordon of a member never drained"
rc=0
"$GF_BIN/gpufedctl" drain >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "drain without a member: exit $rc, want 2"
"$GF_BIN/gpufedctl" drain --help >"$work/help.txt"
grep -q 'gpufedctl uncordon MEMBER' "$work/help.txt" || fail "drain --help: $(cat "$work/help.txt")"
out=$(CTL uncordon west)
[ "$out" = "member west is not drained; nothing changed" ] || fail "uncordon before any drain: '$out'"
H -n gpufed-system get configmap gpufed-drain >/dev/null 2>&1 && fail "uncordon created the ConfigMap"
# The hub's identity may read the ConfigMap but not write it.
HUBK() { kubectl --kubeconfig "$D/hub/kubeconfig-gpufed-hub.yaml" "$@"; }
[ "$(HUBK -n gpufed-system auth can-i patch configmaps/gpufed-drain)" = no ] || fail "the hub may patch gpufed-drain"
[ "$(HUBK -n gpufed-system auth can-i watch configmaps/gpufed-drain)" = yes ] || fail "the hub may not watch gpufed-drain"

hub_start
wait_for 30 "hub ready" ready
[ "$(metric 'gpufed_member_drained{member="west"}')" = 0 ] || fail "west drained before any drain"

if [ "$DRAIN_RECLAIM" = 1 ]; then
    step "reclaim (setup): two long Jobs run as copies in west"
    job long-1 3 300s
    job long-2 3 300s
    for j in long-1 long-2; do
        wait_for 30 "$j Active in west" lease_is $j Active - west
    done
fi

if [ "$DRAIN_WITHDRAW" = 1 ]; then
    step "withdraw (setup): west's Kueue frozen, a lease to west stays Pending"
    "$GF_BIN/kubesim" fault west kueue-frozen --for 40s --dir "$D" >/dev/null
    job pend-1 6 10s # only west has 6 idle
    wait_for 30 "pend-1 Pending in west" lease_is pend-1 Pending - west
fi

step "drain west: the ConfigMap is created; a second drain changes nothing"
t_drain=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CTL drain west >"$work/drain.txt"
grep -q '^member west drained: it lends nothing new$' "$work/drain.txt" || fail "drain: $(cat "$work/drain.txt")"
if [ "$DRAIN_RECLAIM" = 1 ]; then
    for j in long-1 long-2; do
        grep -q "origin east/ml/.*: reclaimed after the grace period" "$work/drain.txt" ||
            fail "drain does not list $j: $(cat "$work/drain.txt")"
    done
elif [ "$DRAIN_WITHDRAW" = 1 ]; then
    grep -q "  [^ ]*pend-1[^ ]*  Pending  6 GPU(s)  origin east/ml/.*: withdrawn" "$work/drain.txt" ||
        fail "drain does not list pend-1: $(cat "$work/drain.txt")"
else
    grep -q '^no live leases lent by west$' "$work/drain.txt" || fail "drain: $(cat "$work/drain.txt")"
fi
d1=$(drain_data)
jq -e '.west | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' <<<"$d1" >/dev/null || fail "ConfigMap data: $d1"
out=$(CTL drain west | head -1)
[[ "$out" == "member west already drained since "*"; nothing changed" ]] || fail "second drain: '$out'"
[ "$(drain_data)" = "$d1" ] || fail "a second drain changed the ConfigMap: $(drain_data)"
wait_for 10 "gpufed_member_drained west 1" metric_is 'gpufed_member_drained{member="west"}' 1
[ "$(metric 'gpufed_member_drained{member="north"}')" = 0 ] || fail "north drained"
rz=$(curl -s "http://127.0.0.1:$hport/readyz")
grep -q "^member west: drained since ${d1:9:20}" <<<"$rz" || fail "/readyz: $rz"
grep -q '^ok$' <<<"$rz" || fail "/readyz not ok while west is drained: $rz"
grep -q 'msg="member drained" member=west' "$work/hub.log" || fail "no 'member drained' log line"

if [ "$DRAIN_RECLAIM" = 1 ]; then
    step "reclaim: every Active lease out of west goes Reclaiming with gracePeriod"
    for j in long-1 long-2; do
        wait_for 10 "$j Reclaiming" lease_is $j Reclaiming '[^ ]*' west
        uid=$(uid_of $j)
        marked() {
            [ -n "$(K west get jobs -A -l "gpufed.io/origin-uid=$1" -o json |
                jq -r '.items[0].metadata.annotations["gpufed.io/reclaim-deadline"] // ""')" ]
        }
        wait_for 10 "$j's copy marked with gpufed.io/reclaim-deadline" marked "$uid"
    done
fi

if [ "$DRAIN_WITHDRAW" = 1 ]; then
    step "withdraw: pend-1's Pending lease out of west is withdrawn, long before admitTimeout"
    wait_for 20 "pend-1 withdrawn" lease_is pend-1 Released NotAdmitted west
    "$GF_BIN/kubesim" fault clear west --dir "$D" >/dev/null
fi

step "drain stops lending: north takes what it can, the rest stays home"
job small-1 2 10s
wait_for 30 "small-1 lent by north" lease_is small-1 '[A-Za-z]*' '[^ ]*' north
job big-1 6 10s # only west has 6 idle
sleep 4
[ -z "$(leases_of big-1)" ] || fail "big-1 got a lease while west is drained: $(leases_of big-1)"
[ -z "$(lent_after west "$t_drain")" ] || fail "west lent while drained: $(lent_after west "$t_drain")"
grep -q 'msg="drained name is not a member' "$work/hub.log" && fail "a member was reported unknown"

step "a name that is no member: drained in the ConfigMap, reported once by the hub"
CTL drain nowhere >/dev/null
wait_for 10 "unknown name reported" grep -q 'msg="drained name is not a member of the policy; ignored" configmap=gpufed-drain member=nowhere' "$work/hub.log"
CTL uncordon nowhere >/dev/null
[ "$(drain_data | jq -c 'keys')" = '["west"]' ] || fail "ConfigMap after nowhere: $(drain_data)"

step "restart: the restarted hub still lends nothing from west"
hub_stop
hub_start
wait_for 30 "hub ready after the restart" ready
sleep 4
[ -z "$(leases_of big-1)" ] || fail "big-1 got a lease after a restart: $(leases_of big-1)"
[ -z "$(lent_after west "$t_drain")" ] || fail "west lent after a restart: $(lent_after west "$t_drain")"

if [ "$DRAIN_RECLAIM" = 1 ]; then
    step "reclaim: the leases end Released(Reclaimed) after the grace period"
    for j in long-1 long-2; do
        wait_for 60 "$j Released(Reclaimed)" lease_is $j Released Reclaimed west
        st=$(H -n gpufed-system get ql -o json | jq -c --arg j $j '.items[] |
            select(.spec.origin.jobName==$j and .spec.lender.member=="west") | .status')
        g=$(jq -r '((.reclaimDeadline | sub("\\.[0-9]+Z$";"Z") | fromdate) -
                    (.reclaimStarted | sub("\\.[0-9]+Z$";"Z") | fromdate))' <<<"$st")
        echo "   $j: reclaimStarted $(jq -r .reclaimStarted <<<"$st") deadline $(jq -r .reclaimDeadline <<<"$st") (${g}s)"
        [ "$g" -ge 9 ] && [ "$g" -le 11 ] || fail "$j: deadline - started = ${g}s, want gracePeriod 10s: $st"
        jq -e '[.transitions[].phase] | index("Reclaiming") != null' <<<"$st" >/dev/null ||
            fail "$j: no Reclaiming transition: $st"
    done
    step "reclaim: the Jobs finish exactly once, elsewhere or at home; nothing new in west"
    E -n ml delete job big-1 --wait=false >/dev/null # leaves north's room to them
    fin() { [ -n "$(finished "$1")" ]; }
    for j in long-1 long-2; do
        wait_for 120 "$j finished" fin $j
        f=$(finished $j)
        [[ "$f" =~ ^[a-z]+=1\ $ ]] || fail "$j finished: '$f'"
        [[ "$f" != west=* ]] || fail "$j finished in drained west: '$f'"
        echo "   $j: finished $f"
    done
    [ -z "$(lent_after west "$t_drain")" ] || fail "west lent while drained: $(lent_after west "$t_drain")"
    nonfinal=$(H -n gpufed-system get ql -o json | jq -r '.items[] | select(.spec.lender.member=="west") |
        select((.status.phase // "Pending") != "Released" and .status.phase != "Failed") | .metadata.name')
    [ -z "$nonfinal" ] || fail "leases out of west left non-final: $nonfinal"
fi

step "uncordon west: it lends again"
out=$(CTL uncordon west)
[ "$out" = "member west uncordoned: it lends again" ] || fail "uncordon: '$out'"
[ "$(drain_data)" = "{}" ] || fail "ConfigMap after uncordon: $(drain_data)"
out=$(CTL uncordon west)
[ "$out" = "member west is not drained; nothing changed" ] || fail "second uncordon: '$out'"
if [ "$DRAIN_RECLAIM" != 1 ]; then
    wait_for 30 "big-1 lent by west" lease_is big-1 '[A-Za-z]*' '[^ ]*' west
    wait_for 60 "big-1 Released(Completed)" lease_is big-1 Released Completed west
else
    job big-2 6 10s
    wait_for 60 "big-2 Released(Completed) in west" lease_is big-2 Released Completed west
fi
[ "$(metric 'gpufed_member_drained{member="west"}')" = 0 ] || fail "west still drained in /metrics"
grep -q 'msg="member uncordoned" member=west' "$work/hub.log" || fail "no 'member uncordoned' log line"

hub_stop
echo "PASS"
