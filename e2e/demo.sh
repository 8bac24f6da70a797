#!/usr/bin/env bash
# The end-to-end demo (`make demo`): a hub and three member clusters on
# kubesim (east, west, north), each with two teams' GPU ClusterQueues (a
# cohort per team); `gpufed hub`; a seeded, skewed stream of GPU Jobs submitted
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
# Team nlp's group is in mode both: its Jobs that wait in east first try
# a loan (they run at home, on quota a lender reserves for them, since
# east's nodes have GPUs beyond its quota), then a redirect; the summary
# says how many ran on loans and east/nlp's peak over its own quota.
#
# In the run with gpufed every member runs `gpufed agent` (fencing: agent)
# and, once copies run in a lender, the demo cuts that lender off from the
# hub (kubesim's blackhole for the hub's identity) and heals it: its
# leases go Suspect, then Fenced (the agent has deactivated the copies by
# then), the origins run again elsewhere, and on the heal the stale copies
# are deleted. The summary says how long each step took. A Job that ran
# to its end twice (the blind window of docs/failure-semantics.md, lost)
# fails the demo.
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

for c in kubectl python3 curl; do
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
declare -A QUOTA=([east/vision]=8 [east/nlp]=8 [west/vision]=8
    [west/nlp]=8 [north/vision]=8 [north/nlp]=8)
CAPACITY=48
# Each member has 4 nodes of 8 GPUs (32) for 16 of quota: east's spare 16
# GPUs can run nlp's Jobs on quota lent by west or north (a loan), while
# vision's overflow is redirected.
LOAN_TEAM=nlp
SCALE=10            # simulated seconds per real second
SEED=${DEMO_SEED:-15}
# The failure timings (DESIGN.md §4) are short, so that the partition's
# story fits the demo: the hub renews every member's heartbeat every
# D/3; an agent fences its member's copies once the heartbeat has not
# moved for D; the hub counts a lender's copies as fenced D(1+rho) + M
# after its last renewal that may have landed.
RHO=0.01
if [ "${DEMO_FAST:-0}" = 1 ]; then
    # 4 s of submissions; with the setup, the partition and both runs
    # about 50 s. The partition comes once the first copies run
    # (redirects begin after overflowAfter). D = 3 s and M = 2 s, as in
    # e2e/test_hub_partition.sh, so that a partition fits these Jobs.
    JOBS=20 WINDOW=4 SKEW=0.85 MIN_DUR=60 MAX_DUR=100 OVERFLOW_AFTER=2s
    DEADLINE=60 PART_AT=3 LEASE_S=3 MARGIN_S=2
else
    # 50 s of submissions; the run without gpufed drains in about 110 s,
    # the whole demo takes about 3.5 minutes. The partition comes 40% into
    # the submissions, when east has overflowed into both lenders.
    JOBS=46 WINDOW=50 SKEW=0.75 MIN_DUR=60 MAX_DUR=270 OVERFLOW_AFTER=3s
    DEADLINE=200 PART_AT=20 LEASE_S=6 MARGIN_S=3
fi

# The hub's fence comes D(1+rho) + M to D/3 + D(1+rho) + M into a
# partition (9.06 to 11.06 s with D = 6 s, M = 3 s): its last renewal
# that may have landed was sent up to one period after the partition
# began (a renewal that timed out counts). The partition lasts one
# renewal period beyond the latest fence, so that the hub has fenced the
# lender's leases and re-dispatched their origins before the heal:
# ceil(2 + 9.06) + 2 = 14 s (8 s in the fast run).
PART_S=$(awk -v d="$LEASE_S" -v m="$MARGIN_S" -v r="$RHO" 'BEGIN {
    f = d / 3 + d * (1 + r) + m; c = int(f); if (c < f) c++; print c + d / 3 }')
# The blind window: a copy that finishes after the partition began but
# before the agent's fence (at most D later) has finished unseen, and its
# origin runs again after the hub's fence. The hub withdraws that second
# run when it sees the heal, but a second run shorter than the time from
# the fence to the heal plus the reflectors' backoff would finish first:
# the Job would finish twice, which the demo reports as the failure it
# is. So the demo cuts off a lender only when none of its running copies
# is due to end within D + 1 s: every copy is then still running when
# the agent fences it.
AVOID_MS=$(((LEASE_S + 1) * 1000))

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
agent_pids=()
declare -A AGENT_PORT=()   # each member's agent's /metrics port
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
stop_agents() {
    local p
    for p in "${agent_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${agent_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    agent_pids=()
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
    stop_agents
    # Logs help after a failure, not after Ctrl-C.
    if [ $rc -eq 130 ]; then sim_cleanup 0; else sim_cleanup $rc; fi
    if [ $rc -ne 0 ] && [ $rc -ne 130 ] && [ -f "$work/fed/hub.log" ]; then
        echo "--- gpufed hub log (last 20 lines)"
        tail -n 20 "$work/fed/hub.log"
        for m in "${MEMBERS[@]}"; do
            [ -f "$work/fed/agent-$m.log" ] || continue
            echo "--- gpufed agent in $m (last 5 lines)"
            tail -n 5 "$work/fed/agent-$m.log"
        done
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
  # One cohort per team: a loan's grant lends to its whole cohort, and
  # nlp's loans are for nlp.
  cohortName: research-$t
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
        # A loan's hold waits in the lender's gpufed-system, in gpufed's
        # overflow queue, which selects namespaces by this label.
        kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" label namespace \
            gpufed-system gpufed.io/accept-overflow=true >/dev/null
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
    fencing: agent
YAML
        done
        echo "  groups:"
        for t in "${TEAMS[@]}"; do
            echo "  - name: $t"
            # nlp's quota is a budget that east's spare nodes can back: a
            # loan first (the Job runs at home on quota a lender holds
            # for it), a redirect when no loan fits.
            if [ "$t" = "$LOAN_TEAM" ]; then
                echo "    mode: both"
                echo "    budgetFlavors: [a100]"
            else
                echo "    mode: redirect"
            fi
            echo "    clusterQueues:"
            for m in "${MEMBERS[@]}"; do
                echo "    - {member: $m, name: $t}"
            done
            echo "    overflow: {namespaces: [$t]}"
        done
        cat <<YAML
  timing:
    overflowAfter: $OVERFLOW_AFTER
    admitTimeout: 60s
    leaseDuration: ${LEASE_S}s
    fenceMargin: ${MARGIN_S}s
    clockDrift: "$RHO"
YAML
    } >"$d/policy.yaml"
    "$GF_BIN/gpufedctl" policy check "$d/policy.yaml" >/dev/null
    "$GF_BIN/gpufed" hub --kubeconfig "$d/hub/kubeconfig-$IDENTITY.yaml" \
        --policy "$d/policy.yaml" --listen 127.0.0.1:0 --id hub-0 \
        >"$d/hub.log" 2>&1 &
    hub_pid=$!
    HUB_PORT=""
    for _ in $(seq 1 100); do
        if grep -q 'msg="hub started"' "$d/hub.log"; then
            HUB_PORT=$(sed -n 's/.*msg=serving.*port=//p' "$d/hub.log" |
                tail -n 1)
            [ -n "$HUB_PORT" ] && break
        fi
        kill -0 "$hub_pid" 2>/dev/null || fail "gpufed hub exited at start"
        sleep 0.1
    done
    [ -n "$HUB_PORT" ] || fail "gpufed hub did not start in 10 s"
    # One agent per member, as manifests/member deploys it, under its own
    # identity (kubesim's member-agent, the gpufed-agent ServiceAccount).
    # Each starts once the hub's heartbeat Lease exists in its member: an
    # agent that finds none fences at once (the hub never reached it) and
    # would fence the first copies too.
    for m in "${MEMBERS[@]}"; do
        for _ in $(seq 1 100); do
            kubectl --kubeconfig "$d/$m/kubeconfig-admin.yaml" \
                -n gpufed-system get lease gpufed-heartbeat \
                >/dev/null 2>&1 && break
            sleep 0.1
        done
        "$GF_BIN/gpufed" agent --member "$m" \
            --kubeconfig "$d/$m/kubeconfig-member-agent.yaml" \
            --listen 127.0.0.1:0 >"$d/agent-$m.log" 2>&1 &
        agent_pids+=($!)
    done
    for m in "${MEMBERS[@]}"; do
        AGENT_PORT[$m]=""
        for _ in $(seq 1 100); do
            if grep -q 'msg=ready' "$d/agent-$m.log"; then
                AGENT_PORT[$m]=$(sed -n 's/.*msg=serving.*port=//p' \
                    "$d/agent-$m.log" | tail -n 1)
                break
            fi
            sleep 0.1
        done
        [ -n "${AGENT_PORT[$m]}" ] ||
            fail "gpufed agent in $m not ready in 10 s"
        ! grep -q 'msg=fencing' "$d/agent-$m.log" ||
            fail "gpufed agent in $m fenced at start"
    done
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
        curl -s -m 1 "http://127.0.0.1:$HUB_PORT/metrics" \
            >"$d/hub-metrics.txt" || rm -f "$d/hub-metrics.txt"
        args+=(--leases "$d/leases.json" --hub-log "$d/hub.log"
            --hub-metrics "$d/hub-metrics.txt" --partition "$d/partition")
        for m in "${MEMBERS[@]}"; do
            curl -s -m 1 "http://127.0.0.1:${AGENT_PORT[$m]}/metrics" \
                >"$d/agent-$m-metrics.txt" || rm -f "$d/agent-$m-metrics.txt"
            args+=(--agent "$m=$d/agent-$m-metrics.txt")
        done
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

# partition DIR: once copies run in a lender, cut the lender with the
# most running copies off from the hub for PART_S seconds (kubesim heals
# it by itself). Writes `lender start_ms duration_ms` to DIR/partition.
partition() {
    local d=$1 lender t
    [ ! -s "$d/partition" ] || return 0
    [ "$(now_ms)" -ge $((T0 + PART_AT * 1000)) ] || return 0
    lender=$(report lender --trace "$work/trace" --exec-log "$d/exec.log" \
        --now-ms "$(now_ms)" --scale "$SCALE" --avoid-ms "$AVOID_MS")
    [ -n "$lender" ] || return 0
    t=$(now_ms)
    "$GF_BIN/kubesim" fault "$lender" blackhole --identity "$IDENTITY" \
        --for "${PART_S}s" --dir "$d" >/dev/null
    echo "$lender $t $((PART_S * 1000))" >"$d/partition"
}

# run DIR TITLE WITH_HUB: one run of the trace, shown live every 2 s
# until every Job has finished (or the deadline passes); with the hub,
# also until the partition has healed and the hub has converged.
run() {
    local d=$1 title=$2 with_hub=$3 deadline done_args=()
    mkdir -p "$d"
    : >"$d/submits"
    : >"$d/partition"
    step "$title: starting kubesim (hub, ${MEMBERS[*]}) and the queues"
    world "$d"
    if [ "$with_hub" = 1 ]; then
        step "$title: starting gpufed hub (as $IDENTITY)"
        hub_side "$d"
    fi
    step "$title: submitting $JOBS Jobs over ${WINDOW}s"
    T0=$(now_ms)
    echo "$T0" >"$d/t0"
    submit "$d" &
    sub_pid=$!
    deadline=$((T0 + DEADLINE * 1000))
    [ "$with_hub" = 1 ] && done_args=(--partition "$d/partition"
        --hub-log "$d/hub.log")
    [ -t 1 ] && printf '\033[2J\033[?25l'
    while :; do
        [ "$with_hub" = 1 ] && partition "$d"
        show "$d" "$title"
        report done --trace "$work/trace" --exec-log "$d/exec.log" \
            "${done_args[@]}" && break
        [ "$(now_ms)" -lt $deadline ] || {
            echo "$title: not over within ${DEADLINE}s (a Job unfinished," \
                "or the hub not converged after the heal)"
            break
        }
        # A lender qualifies for the partition only for a while after a
        # copy starts there (see AVOID_MS): look every half second.
        for _ in 1 2 3 4; do
            [ "$with_hub" = 1 ] && partition "$d"
            sleep 0.5
        done
    done
    [ -t 1 ] && printf '\033[?25h'
    wait "$sub_pid" || fail "the submitter failed"
    sub_pid=""
    if [ "$with_hub" = 1 ]; then
        outcomes "$d"
        stop_hub
        stop_agents
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
    --run "without federation|$work/solo/submits|$work/solo/exec.log" \
    --partition "with federation|$work/fed" \
    --loans "with federation|$work/fed/hub.log|$work/fed/exec.log" \
    --loan-quota "east/$LOAN_TEAM=${QUOTA[east/$LOAN_TEAM]}"
