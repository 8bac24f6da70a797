#!/usr/bin/env bash
# The end-to-end demo (`make demo`): a hub and three member clusters on
# kubesim (east, west, north), each with two teams' GPU ClusterQueues in
# one cohort; `gpufed hub`; a seeded, skewed stream of GPU Jobs submitted
# with kubectl, most of them to east, whose quota overflows while west
# and north sit mostly idle.
#
# It runs the same trace twice, first with gpufed, then without it (each
# member's Kueue on its own), shows each run live (each member's GPU
# quota, the QuotaLeases, the hub's decisions and why) and ends with a
# summary: where the Jobs ran and their queue wait with and without
# federation. It exits 0 only if, in both runs, every Job finished exactly
# once and no Job ran in two places at overlapping times (read from
# kubesim's execution log).
#
# Without a terminal it prints plain frames one after another, with no
# escape codes; on a terminal it redraws in place. It stops everything it
# started on any exit, Ctrl-C included.
#
# Environment:
#   DEMO_FAST=1    a short run for the tests (fewer, shorter Jobs)
#   DEMO_SEED=N    another trace (default 15)
#   DEMO_KEEP=1    keep the work directory (logs, kubeconfigs) at the end
#   GF_BIN         the programs (default: build/debug/bin); `make demo`
#                  sets it
#   GF_SHARED      the folder with kueue/crds (default: ../shared)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export GF_BIN=${GF_BIN:-$root/build/debug/bin}
SHARED=${GF_SHARED:-$(cd "$root/.." && pwd)/shared}
. "$here/lib/kubesim.sh"
report() { python3 "$here/demo_report.py" "$@"; }

for c in kubectl python3; do
    command -v $c >/dev/null || fail "'$c' not found (make deps installs it)"
done
for p in kubesim gpufed; do
    [ -x "$GF_BIN/$p" ] || fail "no $GF_BIN/$p: build first (make demo does)"
done
[ -d "$SHARED/kueue/crds" ] || fail "no Kueue CRDs in $SHARED/kueue/crds"

# --- the scenario ----------------------------------------------------------

MEMBERS=(east west north)
TEAMS=(vision nlp)
# Nominal nvidia.com/gpu per member and team: east's teams are the busy
# ones; west and north have as much again, mostly idle.
declare -A QUOTA=([east/vision]=16 [east/nlp]=8 [west/vision]=8
    [west/nlp]=8 [north/vision]=8 [north/nlp]=8)
CAPACITY=56
SCALE=10            # simulated seconds per real second
SEED=${DEMO_SEED:-15}
if [ "${DEMO_FAST:-0}" = 1 ]; then
    # 4 s of submissions; with the setup and both runs about 45 s.
    JOBS=16 WINDOW=4 SKEW=0.85 MIN_DUR=60 MAX_DUR=100 OVERFLOW_AFTER=2s
    DEADLINE=60
else
    # 50 s of submissions; the run without gpufed drains in about 110 s,
    # the whole demo takes about 3.5 minutes.
    JOBS=46 WINDOW=50 SKEW=0.75 MIN_DUR=60 MAX_DUR=270 OVERFLOW_AFTER=3s
    DEADLINE=200
fi

# --- how gpufed is installed --------------------------------------------------
# With the shipped kustomizations (manifests/hub and manifests/member): the
# hub runs as its own least-privilege identity, gpufed-hub, everywhere:
# its kubeconfig in the hub and the member Secrets it reads are kubesim's
# kubeconfig-gpufed-hub.yaml, and kubesim enforces the manifests' RBAC.
IDENTITY=gpufed-hub

# --- processes and cleanup ---------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/gpufed-demo.XXXXXX")
hub_pid=""
sub_pid=""
stop_hub() {
    [ -n "$hub_pid" ] || return 0
    kill -TERM "$hub_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$hub_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
}
stop_submitter() {
    [ -n "$sub_pid" ] || return 0
    kill -TERM "$sub_pid" 2>/dev/null || true
    wait "$sub_pid" 2>/dev/null || true
    sub_pid=""
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -t 1 ] && printf '\033[?25h'
    stop_submitter
    stop_hub
    # Logs help after a failure, not after Ctrl-C.
    if [ $rc -eq 130 ]; then sim_cleanup 0; else sim_cleanup $rc; fi
    if [ $rc -ne 0 ] && [ $rc -ne 130 ] && [ -f "$work/fed/hub.log" ]; then
        echo "--- gpufed hub log (last 20 lines)"
        tail -n 20 "$work/fed/hub.log"
    fi
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "work directory kept: $work"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# --- one world -------------------------------------------------------------

# world DIR: kubesim with the hub and the members, the teams' namespaces
# and queues in every member, and (when gpufed runs) the hub's side.
world() {
    local d=$1 m t
    sim_start "$d" --clusters "hub,$(IFS=,; echo "${MEMBERS[*]}")" \
        --crds "$SHARED/kueue/crds" --seed "$SEED" --time-scale "$SCALE" \
        --nodes 4 --gpus-per-node 8 --exec-log "$d/exec.log"
    for m in "${MEMBERS[@]}"; do
        {
            cat <<YAML
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: a100}
spec:
  nodeLabels: {nvidia.com/gpu.product: A100-SXM4-80GB}
YAML
            for t in "${TEAMS[@]}"; do
                local g=${QUOTA[$m/$t]}
                cat <<YAML
---
apiVersion: v1
kind: Namespace
metadata:
  name: $t
  labels: {gpufed.io/accept-overflow: "true"}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: $t}
spec:
  cohortName: research
  namespaceSelector: {}
  queueingStrategy: BestEffortFIFO
  # A team takes back, by preemption, what others borrowed from its
  # nominal quota, gpufed's copies included (DESIGN.md: the lender's
  # Kueue keeps every limit).
  preemption: {reclaimWithinCohort: Any, withinClusterQueue: LowerPriority}
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: $((g * 8))}
      - {name: memory, nominalQuota: $((g * 64))Gi}
      - {name: nvidia.com/gpu, nominalQuota: $g}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: $t, namespace: $t}
spec: {clusterQueue: $t}
YAML
            done
        } | kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" apply -f - \
            >/dev/null
        # The nodes carry the GPU product label that the a100 flavor's
        # nodeLabels select: Kueue puts them in each admitted Job's
        # nodeSelector, as GPU Operator labels real nodes.
        kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" label nodes --all \
            nvidia.com/gpu.product=A100-SXM4-80GB >/dev/null
    done
}

# hub_side DIR: gpufed's CRD, identity and member Secrets in the hub, its
# RBAC in the members, the policy; then `gpufed hub`.
hub_side() {
    local d=$1 m
    local H=(kubectl --kubeconfig "$d/hub/kubeconfig-admin.yaml")
    "${H[@]}" apply -k "$root/manifests/hub" >/dev/null
    for m in "${MEMBERS[@]}"; do
        kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" \
            apply -k "$root/manifests/member" >/dev/null
    done
    for m in "${MEMBERS[@]}"; do
        "${H[@]}" -n gpufed-system create secret generic "$m-kubeconfig" \
            --from-file=kubeconfig="$d/$m/kubeconfig-$IDENTITY.yaml" \
            >/dev/null
    done
    {
        cat <<YAML
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: demo}
spec:
  resource: nvidia.com/gpu
  members:
YAML
        for m in "${MEMBERS[@]}"; do
            local port
            port=$(awk -v m="$m" '$1 == m {print $2}' "$d/ready")
            cat <<YAML
  - name: $m
    apiServer: https://127.0.0.1:$port
    credentialsSecret: gpufed-system/$m-kubeconfig
    fencing: none
YAML
        done
        echo "  groups:"
        for t in "${TEAMS[@]}"; do
            echo "  - name: $t"
            echo "    mode: redirect"
            echo "    clusterQueues:"
            for m in "${MEMBERS[@]}"; do
                echo "    - {member: $m, name: $t}"
            done
            echo "    overflow: {namespaces: [$t]}"
        done
        cat <<YAML
  timing: {overflowAfter: $OVERFLOW_AFTER, admitTimeout: 60s}
YAML
    } >"$d/policy.yaml"
    "$GF_BIN/gpufedctl" policy check "$d/policy.yaml" >/dev/null
    "$GF_BIN/gpufed" hub --kubeconfig "$d/hub/kubeconfig-$IDENTITY.yaml" \
        --policy "$d/policy.yaml" >"$d/hub.log" 2>&1 &
    hub_pid=$!
    for _ in $(seq 1 100); do
        grep -q 'msg="hub started"' "$d/hub.log" && return 0
        kill -0 "$hub_pid" 2>/dev/null || fail "gpufed hub exited at start"
        sleep 0.1
    done
    fail "gpufed hub did not start in 10 s"
}

# submit DIR: the trace's Jobs, each at its offset, with kubectl. Writes
# `id submit_ms` lines to DIR/submits.
submit() {
    local d=$1 off m t g dur id t0 wait_ms sub_ms
    t0=$(now_ms)
    while read -r off m t g dur id; do
        wait_ms=$((t0 + off - $(now_ms)))
        [ $wait_ms -gt 0 ] && sleep "$(printf '%d.%03d' \
            $((wait_ms / 1000)) $((wait_ms % 1000)))"
        # The wait is measured from the moment the submitter asks.
        sub_ms=$(now_ms)
        kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" create -f - \
            >/dev/null <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: $t-train-$id
  namespace: $t
  labels: {kueue.x-k8s.io/queue-name: $t}
  annotations: {kubesim.gpufed.io/duration: ${dur}s}
spec:
  suspend: true
  backoffLimit: 0
  template:
    metadata:
      labels: {demo.gpufed.io/job: $id}
    spec:
      restartPolicy: Never
      containers:
      - name: train
        image: nvcr.io/nvidia/pytorch:24.05-py3
        command: [python, train.py, --epochs, "3"]
        resources:
          requests: {cpu: $((g * 4)), memory: $((g * 32))Gi, nvidia.com/gpu: $g}
          limits: {nvidia.com/gpu: $g}
YAML
        echo "$id $sub_ms" >>"$d/submits"
    done <"$work/trace"
}

# show DIR TITLE: one frame.
show() {
    local d=$1 title=$2 m args=()
    for m in "${MEMBERS[@]}"; do
        kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" \
            get clusterqueues -o json >"$d/cq-$m.json" 2>/dev/null ||
            rm -f "$d/cq-$m.json"
        args+=(--member "$m=$d/cq-$m.json")
    done
    if [ -n "$hub_pid" ]; then
        kubectl --kubeconfig "$d/hub/kubeconfig-admin.yaml" \
            get quotaleases -A -o json >"$d/leases.json" 2>/dev/null ||
            rm -f "$d/leases.json"
        args+=(--leases "$d/leases.json" --hub-log "$d/hub.log")
    fi
    [ -t 1 ] && args+=(--tty)
    report frame --title "$title" --trace "$work/trace" \
        --submits "$d/submits" --exec-log "$d/exec.log" "${args[@]}" \
        --t0-ms "$T0" --now-ms "$(now_ms)" --scale "$SCALE" \
        >"$d/frame.txt"
    if [ -t 1 ]; then
        # Home, the frame, then clear what an earlier, longer frame left.
        printf '\033[H'
        sed 's/$/\x1b[K/' "$d/frame.txt"
        printf '\033[J'
    else
        echo "----"
        cat "$d/frame.txt"
    fi
}

# run DIR TITLE WITH_HUB: one run of the trace, shown live every 2 s
# until every Job has finished (or the deadline passes).
run() {
    local d=$1 title=$2 with_hub=$3 deadline
    mkdir -p "$d"
    : >"$d/submits"
    step "$title: starting kubesim (hub, ${MEMBERS[*]}) and the queues"
    world "$d"
    if [ "$with_hub" = 1 ]; then
        step "$title: starting gpufed hub (as $IDENTITY)"
        hub_side "$d"
    fi
    step "$title: submitting $JOBS Jobs over ${WINDOW}s"
    T0=$(now_ms)
    submit "$d" &
    sub_pid=$!
    deadline=$((T0 + DEADLINE * 1000))
    [ -t 1 ] && printf '\033[2J\033[?25l'
    while :; do
        show "$d" "$title"
        report done --trace "$work/trace" --exec-log "$d/exec.log" && break
        [ "$(now_ms)" -lt $deadline ] || {
            echo "$title: not every Job finished within ${DEADLINE}s"
            break
        }
        sleep 2
    done
    [ -t 1 ] && printf '\033[?25h'
    wait "$sub_pid" || fail "the submitter failed"
    sub_pid=""
    if [ "$with_hub" = 1 ]; then
        outcomes "$d"
        stop_hub
    fi
    sim_stop
}

# outcomes DIR: what a submitter sees on the origin Jobs that ran
# elsewhere: gpufed.io/placement and gpufed.io/outcome.
outcomes() {
    local d=$1 m n
    echo
    echo "origin Jobs that ran elsewhere (gpufed.io/placement, gpufed.io/outcome):"
    for m in "${MEMBERS[@]}"; do
        kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" get jobs -A \
            -o jsonpath='{range .items[?(@.metadata.annotations.gpufed\.io/placement)]}{.metadata.namespace}/{.metadata.name}{" placement="}{.metadata.annotations.gpufed\.io/placement}{" outcome="}{.metadata.annotations.gpufed\.io/outcome}{"\n"}{end}' |
            sed "s|^|  $m/|" >"$d/outcomes.txt"
        n=$(wc -l <"$d/outcomes.txt")
        head -n 4 "$d/outcomes.txt"
        [ "$n" -le 4 ] || echo "  $m: ... $((n - 4)) more"
    done
}

report trace --seed "$SEED" --jobs "$JOBS" --window "$WINDOW" \
    --members "$(IFS=,; echo "${MEMBERS[*]}")" \
    --teams "$(IFS=,; echo "${TEAMS[*]}")" --skew "$SKEW" \
    --min-duration "$MIN_DUR" --max-duration "$MAX_DUR" >"$work/trace"

run "$work/fed" "with federation" 1
run "$work/solo" "without federation" 0

report summary --trace "$work/trace" --members "$(IFS=,; echo "${MEMBERS[*]}")" \
    --capacity "$CAPACITY" --scale "$SCALE" \
    --run "with federation|$work/fed/submits|$work/fed/exec.log" \
    --run "without federation|$work/solo/submits|$work/solo/exec.log"
