#!/usr/bin/env bash
# gpufed hub, a loan's term and partitions on kubesim (DESIGN.md §2 "Loan",
# §4; docs/controller.md "Loans"). A hub, east (nodes with 8 GPUs, a quota
# of 2, the borrower; its gpufed agent runs, fencing: agent) and west (8
# idle GPUs, the lender). leaseDuration D = 3s, fenceMargin 2s, the
# default clockDrift 1%: the hub may delete a silent borrower's hold at
# D(1+rho)+margin = 5.03 s after its last answered heartbeat.
#   renewal    a loan whose Workload holds quota is renewed (its expiresAt
#              moves) past several terms, stays Active and ends Completed
#   unused     once nothing uses a loan (its Workload is deactivated), it
#              is released within one lease duration (reason Unused)
#   borrower   east cut off from the hub: east's agent reverts the grant
#              (nominal 0), and the hub deletes the hold in west only
#              after D(1+rho)+margin from east's last heartbeat (asserted
#              from the heartbeat's renewTime and the hub's Fenced line);
#              the grant is 0 before the hold goes
#   cohort     a Workload of east's cohort (another ClusterQueue, higher
#              priority, no loan mark) is admitted on a loan's grant
#              ahead of the loan's own; east cut off: the agent reverts
#              the grant and, the cohort being over its quota, stops that
#              Workload too (gpufed.io/fenced-for-loan, Event
#              FencedForLoan), so east never uses more than its quota of
#              2 once the hold is gone; after the heal the hub reactivates
#              it and every Job ends once, never two runs at once
#   lender     west cut off from the hub: the hold stays reserved and the
#              grant stays; after the heal the loan is Active and ends
# Sampled all along (S2 on quota): east's grant never exceeds what west's
# holds reserve; from the cohort step on, neither does what east's
# ClusterQueues hold beyond its quota of 2. Needs GF_BIN and GF_SHARED,
# kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
agent_pid=""
hw_on_exit() { [ -z "$agent_pid" ] || kill -KILL "$agent_pid" 2>/dev/null || true; }
hw_begin 60
HW_LOGS+=("agent log=$work/agent.log")
hw_sim east west -- --nodes 2 --gpus-per-node 4

step "world: east has 8 GPUs on its nodes and a quota of 2; west's 8 are idle"
loan_world "{overflowAfter: 1s, admitTimeout: 6s, leaseDuration: 3s, fenceMargin: 2s, gracePeriod: 1s}" agent
hub_start
# The agent starts once the hub's heartbeat is in east (without one it
# would fence at once).
wait_for 20 "the hub's heartbeat in east" hb_renew_ms east
"$GF_BIN/gpufed" agent --kubeconfig "$D/east/kubeconfig-member-agent.yaml" \
    --member east --listen 127.0.0.1:0 >>"$work/agent.log" 2>&1 &
agent_pid=$!
wait_for 10 "east's agent ready" grep -q 'msg=ready' "$work/agent.log"

job() { # name gpus duration
    job_yaml "$1" "$2" "$3" | E create -f - >/dev/null
}
runs() { # job: "event cluster" per start, stop and finish
    jq -r --arg u "$(uid_of "$1")" 'select(.job_uid==$u and (.event=="start" or .event=="stop" or .event=="finish")) |
        "\(.event) \(.cluster)"' "$EXEC"
}
starts() { runs "$1" | grep -c '^start ' || true; }
done_ok() { # job
    E -n ml get job "$1" -o json | jq -e \
        'any(.status.conditions[]?; .type=="Complete" and .status=="True")' >/dev/null
}
wl_of() { E -n ml get workloads -o json | jq -r --arg j "$1" \
    '.items[] | select(.metadata.ownerReferences[]?.name==$j) | .metadata.name'; }
wl_reserved() { # job
    E -n ml get workloads -o json | jq -e --arg j "$1" '.items[] |
        select(.metadata.ownerReferences[]?.name==$j) |
        select(any(.status.conditions[]?; .type=="QuotaReserved" and .status=="True"))' >/dev/null
}
# The expiresAt of the job's Active lease.
expires() {
    leases_json | jq -r --arg j "$1" '.items[] | select(.spec.origin.jobName==$j and
        .status.phase=="Active") | .status.expiresAt // "-"' | head -1
}
moved() { # job from
    local e
    e=$(expires "$1")
    [ -n "$e" ] && [ "$e" != "$2" ]
}
lease_name() { leases_of "$1" | awk '{print $1}' | head -1; } # job
# When the hub's log turned LEASE to PHASE (its first such line with
# head, its last with tail), in ms.
phase_ms() { # lease phase head|tail
    local ts
    ts=$(grep "msg=\"lease phase\"" "$work/hub.log" | grep "key=$1 " |
        grep "phase=$2" | "$3" -1 | sed 's/^ts=\([^ ]*\).*/\1/')
    [ -n "$ts" ] && iso_ms "$ts"
}

step "renewal: a loan in use is renewed past several terms and ends Completed"
job renew-1 4 80s
sample_until 30 "renew-1's loan Active" lease_is renew-1 Active
sample_until 10 "renew-1 holds quota in east" wl_reserved renew-1
t0=$(now_ms)
renewals=0
e=$(expires renew-1)
while [ $renewals -lt 3 ]; do
    sample_until 10 "renew-1's loan renewed (expiresAt $e)" moved renew-1 "$e"
    e=$(expires renew-1)
    renewals=$((renewals + 1))
done
echo "   $renewals renewals in $(( $(now_ms) - t0 )) ms (D = 3000 ms)"
sample_until 40 "renew-1 done" done_ok renew-1
sample_until 20 "renew-1's loan Released(Completed)" lease_is renew-1 Released Completed
[ "$(starts renew-1)" = 1 ] || fail "renew-1 runs: $(runs renew-1 | tr '\n' ';')"
sample_until 20 "nothing lent after renew-1" nothing_lent

step "unused: a loan nothing uses is released within one lease duration"
job idle-1 4 600s
sample_until 30 "idle-1's loan Active" lease_is idle-1 Active
sample_until 10 "idle-1 holds quota in east" wl_reserved idle-1
E -n ml patch workload "$(wl_of idle-1)" --type merge -p '{"spec":{"active":false}}' >/dev/null
t0=$(now_ms)
# One term (3 s) from its last renewal, plus a decision pass and the
# release's writes: the deadline only bounds the wait.
sample_until 7 "idle-1's loan Released(Unused)" lease_is idle-1 Released Unused
echo "   deactivated -> Released(Unused): $(( $(now_ms) - t0 )) ms (D = 3000 ms)"
sample_until 10 "nothing lent after idle-1" nothing_lent
E -n ml delete job idle-1 --wait=false >/dev/null

step "borrower: east cut off; its agent reverts the grant; the hold goes only after D(1+rho)+margin"
no_hold() { ! any_hold; }
grant_zero() { [ "$(grant)" = 0 ]; }
job part-1 4 150s
sample_until 30 "part-1's loan Active" lease_is part-1 Active
sample_until 10 "part-1 holds quota in east" wl_reserved part-1
"$GF_BIN/kubesim" fault east blackhole --identity gpufed-hub --for 12s --dir "$D" >/dev/null
t_fault=$(now_ms)
sample_until 20 "east's agent reverts the grant" grant_zero
t_revert=$(now_ms)
# The sampler has seen the grant at 0 with the hold still there.
any_hold || fail "the hold in west went before east's grant was seen reverted"
sample_until 20 "the hold in west deleted" no_hold
t_gone=$(now_ms)
# The heartbeat east last got from the hub (frozen by the partition), and
# the instant the hub turned the loan Fenced, which its hold's delete
# follows: at least D(1+rho)+margin = 5030 ms apart.
renew_ms=$(hb_renew_ms east)
lease=$(lease_name part-1)
fenced_ms=$(phase_ms "$lease" Fenced head) ||
    fail "no Fenced line for $lease in the hub's log"
echo "   fault -> grant reverted $(( t_revert - t_fault )) ms, -> hold gone $(( t_gone - t_fault )) ms;" \
    "last heartbeat -> Fenced $(( fenced_ms - renew_ms )) ms (>= 5030)"
[ $(( fenced_ms - renew_ms )) -ge 5030 ] ||
    fail "the hub fenced the loan $(( fenced_ms - renew_ms )) ms after east's last heartbeat"
grep -q 'reason=LoanReverted\|LoanReverted' < <(E get events -A -o json | jq -r '.items[].reason') ||
    fail "no LoanReverted Event in east"
sample_until 40 "part-1's loan Released(Fenced) after the heal" lease_is part-1 Released Fenced
sample_until 60 "part-1 done" done_ok part-1
r=$(runs part-1)
# Never two runs of part-1 at once.
printf '%s\n' "$r" | awk '$1=="start"{n++; if (n>1) exit 1} $1=="stop"||$1=="finish"{n--}' ||
    fail "part-1 ran twice at once: $(printf '%s' "$r" | tr '\n' ';')"
echo "   part-1 starts: $(starts part-1)"
sample_until 20 "nothing lent after part-1" nothing_lent

step "cohort: a Workload admitted on the grant ahead of the loan's is stopped at the fence"
E apply -f - >/dev/null <<EOF
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: ml-other}
spec:
  cohortName: ml
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu, nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 0}
      - {name: nvidia.com/gpu, nominalQuota: 0}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: other, namespace: ml}
spec: {clusterQueue: ml-other}
EOF
LOAN_QUOTA=2
grant_is() { [ "$(grant)" = "$1" ]; }
# ml-other is in no group: the hub never lends for it, but its Workloads
# borrow whatever the cohort has, the grant included. Higher priority:
# Kueue admits it first when part-2's grant is raised.
JOB_QUEUE=other JOB_LABELS="kueue.x-k8s.io/priority-class: high" job sneak-1 4 100s
job part-2 4 40s
sample_until 30 "part-2's loan raises the grant" grant_is 4
"$GF_BIN/kubesim" fault east blackhole --identity gpufed-hub --for 12s --dir "$D" >/dev/null
t_fault=$(now_ms)
wl_reserved sneak-1 || fail "sneak-1 was not admitted on the grant (the scenario needs it)"
! wl_reserved part-2 || fail "part-2 was admitted ahead of sneak-1 (the scenario needs the opposite)"
lease=$(leases_of part-2 | awk '{print $1}' | head -1)
sneak_fenced() {
    E -n ml get workloads -o json | jq -e --arg j sneak-1 --arg l "$lease" '.items[] |
        select(.metadata.ownerReferences[]?.name==$j) |
        select(.spec.active==false and .metadata.annotations["gpufed.io/fenced-for-loan"]==$l)' >/dev/null
}
sample_until 20 "east's agent reverts the grant" grant_zero
sample_until 10 "east's agent stops sneak-1 for loan $lease" sneak_fenced
t_stop=$(now_ms)
sample_until 20 "the hold in west deleted" no_hold
t_gone=$(now_ms)
u=$(east_used)
echo "   fault -> sneak-1 stopped $(( t_stop - t_fault )) ms, -> hold gone $(( t_gone - t_fault )) ms; east holds $u GPUs (quota 2)"
[ "$u" -le 2 ] || fail "east's Workloads hold $u GPUs on a quota of 2 with no hold left"
grep -q '^FencedForLoan$' < <(E -n ml get events -o json | jq -r '.items[].reason') ||
    fail "no FencedForLoan Event in east"
sample_until 40 "part-2's first loan Released(Fenced) after the heal" lease_is part-2 Released Fenced
sample_until 90 "sneak-1 done" done_ok sneak-1
sample_until 90 "part-2 done" done_ok part-2
for j in sneak-1 part-2; do
    r=$(runs $j)
    printf '%s\n' "$r" | awk '$1=="start"{n++; if (n>1) exit 1} $1=="stop"||$1=="finish"{n--}' ||
        fail "$j ran twice at once: $(printf '%s' "$r" | tr '\n' ';')"
    echo "   $j starts: $(starts $j)"
done
sample_until 30 "nothing lent after the cohort step" nothing_lent

step "lender: west cut off; the hold and the grant stay; after the heal the loan goes on"
job lend-1 4 150s
sample_until 30 "lend-1's loan Active" lease_is lend-1 Active
sample_until 10 "lend-1 holds quota in east" wl_reserved lend-1
g0=$(grant)
t_fault=$(now_ms)
"$GF_BIN/kubesim" fault west blackhole --identity gpufed-hub --for 8s --dir "$D" >/dev/null
sample_until 15 "lend-1's loan Suspect" lease_is lend-1 Suspect
deadline=$((SECONDS + 6))
while [ $SECONDS -lt $deadline ]; do
    loan_sample
    [ "$(grant)" = "$g0" ] || fail "the grant changed while west was silent: $(grant), was $g0"
    [ -n "$(holds)" ] || fail "the hold in west is not reserved while west is silent"
done
sample_until 20 "lend-1's loan Active again after the heal" lease_is lend-1 Active
# The heal to the loan Active again, from the hub's log (the fault ends
# 8 s after it was set, give or take the command's start): L2's bound is
# two heartbeat periods, 2 s here.
lease=$(lease_name lend-1)
active_ms=$(phase_ms "$lease" Active tail) ||
    fail "no Active line for $lease in the hub's log"
echo "   heal -> lend-1's loan Active again: $(( active_ms - t_fault - 8000 )) ms (two heartbeat periods: 2000 ms)"
sample_until 60 "lend-1 done" done_ok lend-1
[ "$(starts lend-1)" = 1 ] || fail "lend-1 runs: $(runs lend-1 | tr '\n' ';')"
sample_until 20 "lend-1's loan Released(Completed)" lease_is lend-1 Released Completed
sample_until 20 "nothing lent after lend-1" nothing_lent
echo "   samples=$samples"
hub_stop
term_wait "$agent_pid" "gpufed agent"
agent_pid=""
echo "PASS"
