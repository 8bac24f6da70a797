#!/usr/bin/env bash
# gpufed hub, the redirect protocol end to end on kubesim (DESIGN.md §3):
# a hub and two members, east (no GPU quota of its own: every GPU Job there
# overflows) and west (8 idle GPUs). Each scenario asserts on the objects in
# every cluster and on kubesim's execution log:
#   overflow        a Job that waits in east runs once, in west; the origin
#                   shows placement, outcome and Events; the lease ends
#                   Released(Completed)
#   no lender       a Job larger than any lender's idle quota stays home
#   orphan          a copy whose QuotaLease does not exist is deleted
#   copy fails      the failure is mirrored (outcome Failed), no retry
#   copy refused    host access the group does not allow: the lease ends
#                   Failed(CreateRefused), the Job is given back to its
#                   home, and no second lease is made (rule copyRefused)
#   origin deleted  the copy goes too: Released(Cancelled)
#   not allowed     a namespace the policy does not let overflow stays home;
#                   a lender namespace that has not opted in gets no copy
#   not admitted    the lender's Kueue is frozen: the copy is withdrawn
#                   after admitTimeout and the origin runs again (and then
#                   elsewhere, or later, exactly once)
#   rotation        new credentials in a member's Secret: the hub
#                   reconnects and keeps working
#   reload          a policy that narrows sharing applies without a
#                   restart; an invalid one is refused with file:line:col
#                   and an Event, and the last good one stays
#   crash           the hub killed (SIGKILL) right after each protocol step
#                   and restarted: the Job still runs exactly once
# The hub runs as the gpufed-hub identity under manifests/hub and
# manifests/member (kubesim enforces their RBAC). Needs GF_BIN and
# GF_SHARED, kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
hw_begin
hw_sim east west

step "world: the shipped manifests, member Secrets, queues (east has no GPUs)"
hw_world east=- west=-
queues_yaml 0 - ml private ml2 | E apply -f - >/dev/null
queues_yaml 8 - ml private ml2 | W apply -f - >/dev/null
policy_yaml "{overflowAfter: 2s, admitTimeout: 4s, leaseDuration: 30s}" \
    "[ml, ml2]" east west | policy_install

job() { # name gpus [ns] [duration] [extra annotation]
    job_yaml "$1" "$2" "${4:-30s}" "${3:-ml}" "${5:-}" | E create -f - >/dev/null
}
ann() { # ns job key
    E -n "$1" get job "$2" -o json | jq -r --arg k "$3" '.metadata.annotations[$k] // ""'
}
runs() { starts_by_cluster "$1" west; }

hub_start

step "overflow: a Job waiting in east runs in west, exactly once"
job train-1 4
wait_for 30 "train-1 lease Released(Completed)" lease_is train-1 Released Completed
[ "$(ann ml train-1 gpufed.io/outcome)" = Succeeded ] || fail "outcome: $(ann ml train-1 gpufed.io/outcome)"
[ "$(ann ml train-1 gpufed.io/placement)" = west ] || fail "placement: $(ann ml train-1 gpufed.io/placement)"
r=$(runs train-1)
[ "$r" = "west=1 " ] || fail "train-1 runs: '$r'"
ev=$(event_reasons E train-1)
for want in Redirected CopyAdmitted CopySucceeded; do
    [[ " $ev" == *" $want "* ]] || fail "train-1 events lack $want: $ev"
done
[ "$(echo "$ev" | tr ' ' '\n' | grep -c '^Redirected$')" = 1 ] || fail "Redirected twice: $ev"
# The origin stays held: its Kueue neither counts it nor runs it.
[ "$(E -n ml get job train-1 -o jsonpath='{.spec.suspend}')" = true ] || fail "origin unsuspended"
# The lease's status recorded every transition.
H -n gpufed-system get ql -o json | jq -e '.items[] | select(.spec.origin.jobName=="train-1") |
    [.status.transitions[].phase] | index("Active") != null and index("Released") != null' >/dev/null ||
    fail "transitions: $(H -n gpufed-system get ql -o json | jq -c '.items[].status.transitions')"

step "/healthz, /readyz, /metrics"
hport=$(logged_port)
[ "$(curl -s "http://127.0.0.1:$hport/healthz")" = ok ] || fail "/healthz"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hport/readyz")" = 200 ] || fail "/readyz"
curl -s "http://127.0.0.1:$hport/metrics" >"$work/metrics.txt"
grep -q '^gpufed_leases{phase="Released"} 1$' "$work/metrics.txt" || fail "metrics: leases $(grep gpufed_leases "$work/metrics.txt")"
grep -q '^gpufed_quota{member="west",cluster_queue="ml-gpu",flavor="a100",resource="nvidia.com/gpu",kind="nominal"} 8$' "$work/metrics.txt" ||
    fail "metrics: quota $(grep 'gpufed_quota.*nvidia' "$work/metrics.txt")"
grep -q '^gpufed_member_synced{member="east"} 1$' "$work/metrics.txt" || fail "metrics: synced"
grep -q '^gpufed_leases_started_total [1-9]' "$work/metrics.txt" || fail "metrics: started"

step "no lender: a Job larger than west's idle quota stays home"
job huge-1 16
sleep 4
[ -z "$(leases_of huge-1)" ] || fail "huge-1 got a lease: $(leases_of huge-1)"
E -n ml delete job huge-1 --wait=false >/dev/null

step "orphan: a copy whose lease does not exist is deleted by rule"
W create -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: orphan-1
  namespace: ml
  labels: {gpufed.io/lease: no-such-lease, gpufed.io/epoch: "1"}
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: trainer}]
EOF
wait_for 20 "orphan-1 deleted" bash -c "! kubectl --kubeconfig '$D/west/kubeconfig-admin.yaml' -n ml get job orphan-1"
grep -q 'msg="orphan copy deleted" job=ml/orphan-1' "$work/hub.log" || fail "orphan not logged"

step "copy fails: the failure is mirrored once, no retry"
job fail-1 2 ml 10s '"kubesim.gpufed.io/fail": "true"'
wait_for 30 "fail-1 Released(Completed)" lease_is fail-1 Released Completed
[ "$(ann ml fail-1 gpufed.io/outcome)" = Failed ] || fail "fail-1 outcome: $(ann ml fail-1 gpufed.io/outcome)"
sleep 3
[ "$(leases_of fail-1 | wc -l)" = 1 ] || fail "fail-1 retried: $(leases_of fail-1)"

step "copy refused: host access the group does not allow, the Job stays home, no second lease"
job_yaml refuse-1 2 10s | sed 's/^      restartPolicy: Never$/&\n      hostNetwork: true/' |
    E create -f - >/dev/null
wait_for 30 "refuse-1 Failed(CreateRefused)" lease_is refuse-1 Failed CreateRefused
grep -q 'msg="copy refused".*hostNetwork' "$work/hub.log" ||
    fail "the refusal is not logged with its reason: $(grep 'copy refused' "$work/hub.log" | tail -1)"
wl_active() { # job: its Workload in east is active (given back, or never held)
    local a
    a=$(E -n ml get workloads -o json | jq -r --arg j "$1" \
        '[.items[] | select(.metadata.ownerReferences[0].name==$j) | .spec.active != false] | first // ""')
    [ "$a" = true ]
}
wait_for 20 "refuse-1 given back to east" wl_active refuse-1
# Decide has looked at it again: past overflowAfter (2 s) since it came
# home, and over more passes than that takes (one a second at least).
p0=$(metric gpufed_decision_passes_total)
t0=$(now_ms)
looked_again() { [ "$(metric gpufed_decision_passes_total)" -ge $((p0 + 4)) ] && [ $(($(now_ms) - t0)) -ge 3000 ]; }
wait_for 30 "four passes and 3 s since refuse-1 came home" looked_again
[ "$(leases_of refuse-1 | wc -l)" = 1 ] || fail "refuse-1 redirected again: $(leases_of refuse-1)"
echo "refuse-1: one lease after $(($(metric gpufed_decision_passes_total) - p0)) passes in $(($(now_ms) - t0)) ms at home"
E -n ml delete job refuse-1 --wait=false >/dev/null

step "origin deleted: the copy goes too"
job cancel-1 2 ml 600s
wait_for 30 "cancel-1 Active" lease_is cancel-1 Active
uid=$(uid_of cancel-1)
E -n ml delete job cancel-1 >/dev/null
wait_for 30 "cancel-1 Released(Cancelled)" lease_is cancel-1 Released Cancelled
[ -z "$(W get jobs -A -l "gpufed.io/origin-uid=$uid" -o name)" ] || fail "copy of cancel-1 left behind"

step "not allowed: a namespace outside overflow.namespaces stays home"
job private-1 2 private
step "not opted in: ml2 is allowed by the policy but not labelled in west"
job optin-1 2 ml2
sleep 4
[ -z "$(leases_of private-1)" ] || fail "private-1 got a lease"
[ -z "$(leases_of optin-1)" ] || fail "optin-1 got a lease"
E -n private delete job private-1 --wait=false >/dev/null
E -n ml2 delete job optin-1 --wait=false >/dev/null

step "not admitted: west's Kueue frozen, the copy is withdrawn and the origin runs again"
"$GF_BIN/kubesim" fault west kueue-frozen --for 9s --dir "$D" >/dev/null
job frozen-1 2 ml 10s
wait_for 30 "frozen-1 Released(NotAdmitted)" lease_is frozen-1 Released NotAdmitted
wait_for 60 "frozen-1 done" lease_is frozen-1 Released Completed
r=$(runs frozen-1)
[ "$r" = "west=1 " ] || fail "frozen-1 runs: '$r'"

step "rotation: new credentials in east's Secret, the hub reconnects"
H -n gpufed-system create secret generic east-kubeconfig \
    --from-file=kubeconfig="$D/east/kubeconfig-gpufed-hub.yaml" \
    --dry-run=client -o yaml | sed 's/^metadata:/metadata:\n  labels: {rotated: "1"}/' |
    H apply -f - >/dev/null
wait_for 20 "member credentials changed" grep -q 'member credentials changed' "$work/hub.log"
job rotate-1 2
wait_for 30 "rotate-1 Released(Completed)" lease_is rotate-1 Released Completed
# The heartbeat goes on with the new client (renewed every 10 s here).
hb_east() { E -n gpufed-system get lease gpufed-heartbeat -o jsonpath='{.spec.renewTime}'; }
hb_was=$(hb_east)
hb_moved() { [ "$(hb_east)" != "$hb_was" ]; }
wait_for 25 "east's heartbeat renewed after the rotation" hb_moved

step "policy reload narrows sharing; an invalid file is refused and the last good one stays"
cp "$work/policy.yaml" "$work/policy.good"
# Written next to it and renamed: the file changes in one step, as the
# kubelet's ConfigMap swap does.
sed 's/^  timing:/  sharing: {default: deny}\n  timing:/' "$work/policy.good" >"$work/policy.new"
mv "$work/policy.new" "$work/policy.yaml"
wait_for 20 "narrowed policy reloaded" grep -q 'msg="policy reloaded"' "$work/hub.log"
job narrow-1 2
sleep 4
[ -z "$(leases_of narrow-1)" ] || fail "narrow-1 got a lease under default deny"
printf 'apiVersion: gpufed.io/v1alpha1\nkind: FederationPolicy\nspec:\n  members: 7\n' >"$work/policy.new"
mv "$work/policy.new" "$work/policy.yaml"
wait_for 20 "invalid policy refused" grep -q 'policy file refused' "$work/hub.log"
grep -q 'msg="policy error" path=[^ ]*policy.yaml at=4:' "$work/hub.log" ||
    fail "the refusal does not name file:line:col: $(grep 'policy error' "$work/hub.log" | tail -2)"
H -n gpufed-system get events -o jsonpath='{range .items[*]}{.reason} {end}' |
    grep -q PolicyRefused || fail "no PolicyRefused Event in the hub"
sleep 3
[ -z "$(leases_of narrow-1)" ] || fail "narrow-1 got a lease under the refused file"
cp "$work/policy.good" "$work/policy.new"
mv "$work/policy.new" "$work/policy.yaml"
wait_for 30 "narrow-1 redirected once sharing is back" lease_is narrow-1 Released Completed

hub_stop

step "crash: SIGKILL after each protocol step, restart, still exactly once"
for w in record hold-origin create-copy set-phase mark-outcome; do
    j="crash-${w}"
    hub_start GPUFED_CRASH_AFTER="$w:1"
    job "$j" 2
    wait_for 30 "hub killed after $w" bash -c "! kill -0 $hub_pid 2>/dev/null"
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
    grep -q "crash hook: killing the hub\" after=$w" "$work/hub.log" ||
        fail "the hook did not fire after $w"
    hub_start
    wait_for 40 "$j Released(Completed) after a crash after $w" lease_is "$j" Released Completed
    r=$(runs "$j")
    [ "$r" = "west=1 " ] || fail "$j runs: '$r'"
    [ "$(leases_of "$j" | wc -l)" = 1 ] || fail "$j leases: $(leases_of "$j")"
    uid=$(uid_of "$j")
    [ "$(W get jobs -A -l "gpufed.io/origin-uid=$uid" -o name | wc -l)" = 1 ] ||
        fail "$j copies: $(W get jobs -A -l "gpufed.io/origin-uid=$uid" -o name)"
    hub_stop
done

echo "PASS"
