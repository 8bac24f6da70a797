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
# Needs GF_BIN and GF_SHARED, kubectl, jq.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/kubesim.sh"
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
for c in kubectl jq; do
    command -v $c >/dev/null || fail "'$c' not found (make deps)"
done

work=$(mktemp -d)
hub_pid=""
cleanup() {
    local rc=$?
    [ -n "$hub_pid" ] && kill -KILL "$hub_pid" 2>/dev/null || true
    if [ $rc -ne 0 ] && [ -f "$work/hub.log" ]; then
        echo "--- hub log (last 60 lines)"
        tail -n 60 "$work/hub.log"
    fi
    sim_cleanup $rc
    [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

D="$work/sim"
EXEC="$work/exec.jsonl"
sim_start "$D" --clusters hub,east,west --crds "$SHARED/kueue/crds" \
    --time-scale 10 --exec-log "$EXEC" --nodes 2 --gpus-per-node 4
H() { kubectl --kubeconfig "$D/hub/kubeconfig-admin.yaml" "$@"; }
E() { kubectl --kubeconfig "$D/east/kubeconfig-admin.yaml" "$@"; }
W() { kubectl --kubeconfig "$D/west/kubeconfig-admin.yaml" "$@"; }

step "world: east has 8 GPUs on its nodes and a quota of 2; west's 8 are idle"
H apply -k "$root/manifests/hub" >/dev/null
for m in east west; do
    kubectl --kubeconfig "$D/$m/kubeconfig-admin.yaml" apply -k "$root/manifests/member" >/dev/null
    H -n gpufed-system create secret generic "$m-kubeconfig" \
        --from-file=kubeconfig="$D/$m/kubeconfig-gpufed-hub.yaml" >/dev/null
done
queues() { # gpus
    cat <<EOF
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: a100}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: ml-gpu}
spec:
  cohortName: ml
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu, nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 64}
      - {name: nvidia.com/gpu, nominalQuota: $1}
---
apiVersion: v1
kind: Namespace
metadata: {name: ml}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: ml, namespace: ml}
spec: {clusterQueue: ml-gpu}
EOF
}
queues 2 | E apply -f - >/dev/null
queues 8 | W apply -f - >/dev/null
# Holds live in the lender's gpufed-system, whose overflow queue selects
# it by this label. ml in west does not opt in: nothing runs in the
# lender for a loan.
W label namespace gpufed-system gpufed.io/accept-overflow=true >/dev/null
port() { awk -v m="$1" '$1==m{print $2}' "$D/ready"; }
cat >"$work/policy.yaml" <<EOF
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: e2e-loan}
spec:
  resource: nvidia.com/gpu
  members:
  - {name: east, apiServer: "https://127.0.0.1:$(port east)", credentialsSecret: gpufed-system/east-kubeconfig, fencing: none}
  - {name: west, apiServer: "https://127.0.0.1:$(port west)", credentialsSecret: gpufed-system/west-kubeconfig, fencing: none}
  flavorEquivalence:
  - name: a100
    flavors: [{member: east, flavor: a100}, {member: west, flavor: a100}]
  groups:
  - name: ml
    mode: loan
    budgetFlavors: [a100]
    clusterQueues: [{member: east, name: ml-gpu}, {member: west, name: ml-gpu}]
    overflow: {namespaces: [ml]}
  timing: {overflowAfter: 2s, admitTimeout: 6s, leaseDuration: 30s}
EOF
"$GF_BIN/gpufedctl" policy check "$work/policy.yaml" >/dev/null

hub_start() { # [env...]
    env "$@" "$GF_BIN/gpufed" hub --kubeconfig "$D/hub/kubeconfig-gpufed-hub.yaml" \
        --policy "$work/policy.yaml" --listen 127.0.0.1:0 >>"$work/hub.log" 2>&1 &
    hub_pid=$!
}
hub_stop() {
    [ -n "$hub_pid" ] || return 0
    kill -TERM "$hub_pid" 2>/dev/null || true
    local rc=0
    wait "$hub_pid" || rc=$?
    hub_pid=""
    [ $rc -eq 0 ] || fail "gpufed hub exited with $rc on SIGTERM"
}

job() { # name gpus [duration]
    E create -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: ml
  labels: {kueue.x-k8s.io/queue-name: ml}
  annotations: {kubesim.gpufed.io/duration: "${3:-40s}"}
spec:
  parallelism: 1
  completions: 1
  backoffLimit: 0
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: trainer
        resources:
          requests: {cpu: "1", nvidia.com/gpu: "$2"}
          limits: {nvidia.com/gpu: "$2"}
EOF
}
# Reserved holds in west, "name gpus" per line.
holds() {
    W -n gpufed-system get workloads -l gpufed.io/lease -o json | jq -r '.items[] |
        select(any(.status.conditions[]?; .type=="QuotaReserved" and .status=="True")) |
        "\(.metadata.name) \(.spec.podSets[0].template.spec.containers[0].resources.requests["nvidia.com/gpu"])"'
}
# GPUs east's cohort uses now (its ClusterQueues' reserved usage).
east_used() {
    E get clusterqueues -o json | jq '[.items[] | .status.flavorsReservation[]?.resources[]? |
        select(.name=="nvidia.com/gpu") | (.total | tonumber)] | add // 0'
}
grant() { # the grant's nominal quota in east, 0 when absent
    E get clusterqueues -o json | jq '[.items[] | select(.metadata.name=="gpufed-loan-ml-gpu") |
        .spec.resourceGroups[].flavors[].resources[] | select(.name=="nvidia.com/gpu") |
        (.nominalQuota | tonumber)] | add // 0'
}
# One sample of S2: holds, then east's usage and the grant, then holds
# again. Kueue in east keeps its usage within 2 + the grant, the grant is
# raised only once a hold is reserved and lowered before the hold goes:
# whatever east uses is covered by holds seen around the read.
max_used=0
samples=0
sample() {
    local h1 h3 used g cover
    h1=$(holds)
    used=$(east_used)
    g=$(grant)
    h3=$(holds)
    cover=$(printf '%s\n%s\n' "$h1" "$h3" | awk 'NF==2 && !s[$1]++ {t+=$2} END {print t+0}')
    samples=$((samples + 1))
    [ "$used" -gt "$max_used" ] && max_used=$used
    [ "$used" -le $((2 + cover)) ] ||
        fail "S2: east uses $used GPUs, its quota is 2 and west's holds reserve $cover (grant $g)"
    [ "$g" -le "$cover" ] || fail "S2: the grant is $g, west's holds reserve $cover"
}
# Starts of a Job in the execution log, per cluster.
runs() { # job
    local uid
    uid=$(E -n ml get job "$1" -o jsonpath='{.metadata.uid}')
    jq -r --arg u "$uid" 'select(.event=="start" and .job_uid==$u) | .cluster' "$EXEC" |
        sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
all_done() { # jobs...
    local j
    for j in "$@"; do
        E -n ml get job "$j" -o json | jq -e \
            'any(.status.conditions[]?; (.type=="Complete" or .type=="Failed") and .status=="True")' \
            >/dev/null || return 1
    done
}
nothing_lent() {
    [ -z "$(W -n gpufed-system get workloads -l gpufed.io/lease -o name)" ] && [ "$(grant)" = 0 ]
}

hub_start

step "loan: four 2-GPU Jobs in east run at home, on quota moved from west"
jobs=(train-1 train-2 train-3 train-4)
for j in "${jobs[@]}"; do job "$j" 2; done
deadline=$((SECONDS + 90))
until all_done "${jobs[@]}"; do
    [ $SECONDS -lt $deadline ] || fail "the Jobs did not finish: $(E -n ml get workloads -o wide)"
    sample
done
sample
echo "   samples=$samples east_max_gpus_in_use=$max_used (quota 2)"
[ "$max_used" -gt 2 ] || fail "east never used more than its own quota ($max_used)"
for j in "${jobs[@]}"; do
    r=$(runs "$j")
    [ "$r" = "east=1 " ] || fail "$j runs: '$r'"
done
wait_for 40 "no hold and no lent quota left" nothing_lent
H -n gpufed-system get ql -o json | jq -e '[.items[] | select(.spec.mode=="Loan")] | length > 0 and
    all(.status.phase=="Released")' >/dev/null ||
    fail "loan leases: $(H -n gpufed-system get ql -o json | jq -c '[.items[] | [.spec.mode, .status.phase, .status.reason]]')"
hub_stop

step "crash: SIGKILL after a hold is created and after a grant is lowered"
n=0
for w in create-hold lower-grant; do
    n=$((n + 1))
    j="crash-$n"
    hub_start GPUFED_CRASH_AFTER="$w:1"
    job "$j" 4 20s
    deadline=$((SECONDS + 60))
    while kill -0 "$hub_pid" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || fail "hub not killed after $w"
        sample
    done
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
    grep -q "crash hook: killing the hub\" after=$w" "$work/hub.log" ||
        fail "the hook did not fire after $w"
    sample
    hub_start
    deadline=$((SECONDS + 60))
    until all_done "$j"; do
        [ $SECONDS -lt $deadline ] || fail "$j did not finish after a crash after $w"
        sample
    done
    r=$(runs "$j")
    [ "$r" = "east=1 " ] || fail "$j runs: '$r'"
    wait_for 40 "no hold and no lent quota left after a crash after $w" nothing_lent
    hub_stop
done
echo "   samples=$samples"

echo "PASS"
