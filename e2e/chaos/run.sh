#!/usr/bin/env bash
# The chaos suite's driver (docs/chaos.md): one seeded run.
#
# kubesim serves a hub and three members (east, west, north; 4 nodes of 8
# GPUs each; one ClusterQueue per member in cohort ml: east 8 GPUs of
# nominal quota, west and north 16). gpufed is installed with the shipped
# manifests and a policy with short timings (overflowAfter 2s,
# leaseDuration 3s, fenceMargin 2s). A seeded stream of GPU Jobs, skewed
# to east, is submitted while a seeded schedule of faults is injected
# (schedule.py). Then every fault is cleared, the run waits for every Job
# to finish (with a deadline), measures how long the hub's ledger takes to
# match the ClusterQueues, snapshots every cluster's objects and runs the
# invariant checker (check.py) on what it saw.
#
#   run.sh --seed N [--events N] [--jobs N] [--window S] [--drain S]
#          [--waves N] [--out DIR]
#
# --waves (default 2): bursts of the lenders' own Jobs in west or north
# (schedule.py), so that reclaims happen (reclaimAfter 3s, gracePeriod 4s
# in the policy); the checker bounds each one (S4).
#
# What runs depends on what the gpufed binary supports, detected from its
# --help (or forced with CHAOS_AGENT=0|1, CHAOS_HA=0|1, CHAOS_HEARTBEAT=0|1):
#   agents    `gpufed agent --help` succeeds and `gpufed hub --help` names
#             its heartbeat (an agent fences every copy when no hub renews
#             the heartbeat): one `gpufed agent` per member (identity
#             member-agent), `fencing: agent` in the policy, and the faults
#             agent-partition and agent-kill. CHAOS_AGENT=1 runs agents
#             without heartbeats, with `fencing: none`.
#   two hubs  `gpufed hub --help` names --leader-lease: replicas a and b
#             (--id a / --id b); hub-kill kills the one that leads
#   clocks    `gpufed hub --help` names GPUFED_CLOCK_RATE_PPM: clock-drift
#             faults restart a hub replica or an agent with a clock rate
#             within +-rho (the policy's clockDrift)
# CHAOS_DRIFT_BEYOND_RHO=1 is a negative mode, never in `make test`: at
# mid-window the agent of the member that lends the most is restarted at
# half speed (-500000 ppm, fifty times rho) and the hub is cut off from
# that member for 15 s, so that the hub's fencing deadline passes before
# the agent fences: the checker should catch S1 (it needs agents and a hub
# that renews heartbeats).
# CHAOS_ENFORCE=S1,S2,.. makes only those invariants fail the run; the
# others are still checked and printed (default: all fail it).
# CHAOS_MODE (default both): the group's mode. With loans (both, loan),
# east's pending Jobs first try a loan (east's nodes have 24 GPUs beyond
# its quota; its ClusterQueue may borrow 8), then a redirect; a sampler reads every member's loan grants
# and reserved holds all along (s2.jsonl) and the checker holds S2 on
# quota at every sample.
#
# Everything goes to the run directory (kept when the run fails, or with
# --out): exec.log, faults.jsonl, submits.jsonl, schedule, world.json,
# final/, hub and agent logs. A failing run prints its seed and the
# command that replays its schedule. Needs GF_BIN, GF_SHARED, kubectl,
# jq, curl and /usr/bin/python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/e2e/lib/kubesim.sh"
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
PY=/usr/bin/python3
for c in kubectl jq curl $PY; do
    command -v $c >/dev/null || fail "'$c' not found (make deps)"
done

SEED="" EVENTS=20 JOBS="" WINDOW="" DRAIN=150 OUT="" WAVES=2
RECLAIM_AFTER_MS=3000 GRACE_MS=4000
while [ $# -gt 0 ]; do
    case $1 in
    --seed) SEED=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --drain) DRAIN=$2; shift 2 ;;
    --waves) WAVES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) fail "unknown argument '$1'" ;;
    esac
done
[ -n "$SEED" ] || fail "--seed is required"
# About one fault every 1.5 s and one Job every 1.5 s by default.
WINDOW=${WINDOW:-$(( EVENTS * 3 / 2 > 30 ? EVENTS * 3 / 2 : 30 ))}
JOBS=${JOBS:-$(( WINDOW * 2 / 3 ))}

MEMBERS=(east west north)
MODE=${CHAOS_MODE:-both}
declare -A NOMINAL=([east]=8 [west]=16 [north]=16)
NODES=4 GPUS_PER_NODE=8
SCALE=10
D_MS=3000          # leaseDuration: heartbeats every D/3
PERIOD_MS=1000     # the hub's decision pass period (its default)

have=""
detect() { # what [0|1|auto]
    case ${2:-auto} in
    1) return 0 ;;
    0) return 1 ;;
    esac
    case $1 in
    agent) "$GF_BIN/gpufed" agent --help >/dev/null 2>&1 &&
        detect heartbeat "${CHAOS_HEARTBEAT:-auto}" ;;
    heartbeat) grep -qi heartbeat < <("$GF_BIN/gpufed" hub --help 2>&1) ;;
    ha) grep -q -- --leader-lease < <("$GF_BIN/gpufed" hub --help 2>&1) ;;
    clock) grep -q GPUFED_CLOCK_RATE_PPM < <("$GF_BIN/gpufed" hub --help 2>&1) ;;
    esac
}
AGENT=0 HA=0 HB=0 CLOCK=0
if detect agent "${CHAOS_AGENT:-auto}"; then AGENT=1; have+="agent,"; fi
if detect ha "${CHAOS_HA:-auto}"; then HA=1; have+="ha,"; fi
if detect heartbeat "${CHAOS_HEARTBEAT:-auto}"; then HB=1; fi
if detect clock auto; then CLOCK=1; have+="clock-hook,"; fi
REPLICAS=(hub)
[ $HA = 1 ] && REPLICAS=(a b)
# With `fencing: agent` the hub treats a partitioned member's leases as
# fenced once the heartbeat deadline passes: only safe when it renews
# heartbeats (without them every agent fences every copy at once).
FENCING=none
[ $AGENT = 1 ] && [ $HB = 1 ] && FENCING=agent
# rho, the policy's clockDrift (the default, written out), in ppm.
RHO=0.01 RHO_PPM=10000
BEYOND=${CHAOS_DRIFT_BEYOND_RHO:-0}
if [ "$BEYOND" = 1 ] && [ $FENCING != agent ]; then
    fail "CHAOS_DRIFT_BEYOND_RHO=1 needs agents and a hub that renews" \
        "heartbeats (fencing: agent); this gpufed has agents=$AGENT" \
        "heartbeat=$HB"
fi
if [ "$BEYOND" = 1 ] && [ $CLOCK != 1 ]; then
    fail "CHAOS_DRIFT_BEYOND_RHO=1 needs gpufed's clock hook"
fi
# The clock rate each process slot starts with (hub-a, agent-east ...):
# a drift fault is a property of the machine, kept across restarts.
declare -A RATE=()

if [ -n "$OUT" ]; then
    mkdir -p "$OUT"
    RUN=$(cd "$OUT" && pwd)
else
    RUN=$(mktemp -d "${TMPDIR:-/tmp}/gpufed-chaos.XXXXXX")
fi
D="$RUN/sim"
declare -A hub_pid=() agent_pid=()
s2_pid=""
keep=0
[ -n "$OUT" ] && keep=1

kill_now() { # pid
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${hub_pid[@]}" "${agent_pid[@]}" "$s2_pid"; do
        [ -n "$p" ] && kill_now "$p"
    done
    sim_cleanup $rc
    if [ $rc -ne 0 ]; then
        echo "chaos: seed $SEED FAILED; replay its schedule with:"
        echo "  make chaos SEED=$SEED EVENTS=$EVENTS"
        echo "chaos: run directory kept: $RUN"
    elif [ $keep = 1 ]; then
        echo "chaos: run directory: $RUN"
    else
        rm -rf "$RUN"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
K() { kubectl --kubeconfig "$D/$1/kubeconfig-admin.yaml" "${@:2}"; }

step "seed $SEED: $JOBS jobs and $EVENTS fault events over ${WINDOW}s" \
    "(agents=$AGENT, hub replicas=${#REPLICAS[@]}, fencing=$FENCING," \
    "clock hook=$CLOCK${BEYOND:+, beyond rho=$BEYOND})"
$PY "$here/schedule.py" --seed "$SEED" --events "$EVENTS" --jobs "$JOBS" \
    --window "$WINDOW" --have "$have" --rho-ppm $RHO_PPM \
    --waves "$WAVES" --wave-gpus "${NOMINAL[west]}" >"$RUN/schedule"
if [ "$BEYOND" = 1 ]; then
    # One more line, outside the seeded draw: the schedule of a normal run
    # stays as it was.
    echo "$((WINDOW * 1000 / 2)) beyond - -" >>"$RUN/schedule"
    sort -n -s -k1,1 -o "$RUN/schedule" "$RUN/schedule"
fi

# --- the world -------------------------------------------------------------
sim_start "$D" --clusters "hub,$(IFS=,; echo "${MEMBERS[*]}")" \
    --crds "$SHARED/kueue/crds" --seed "$SEED" --time-scale $SCALE \
    --nodes $NODES --gpus-per-node $GPUS_PER_NODE --exec-log "$RUN/exec.log"
K hub apply -k "$root/manifests/hub" >/dev/null
for m in "${MEMBERS[@]}"; do
    K "$m" apply -k "$root/manifests/member" >/dev/null
    # Loans' holds wait in gpufed-system, in gpufed's overflow queue.
    K "$m" label namespace gpufed-system gpufed.io/accept-overflow=true >/dev/null
    K hub -n gpufed-system create secret generic "$m-kubeconfig" \
        --from-file=kubeconfig="$D/$m/kubeconfig-gpufed-hub.yaml" >/dev/null
    K "$m" apply -f - >/dev/null <<EOF
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
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 512}
      - {name: memory, nominalQuota: 4Ti}
      # At most 8 GPUs borrowed, so that with loans (east's nodes have 24
      # GPUs beyond its quota) east's overflow is also redirected.
      - {name: nvidia.com/gpu, nominalQuota: ${NOMINAL[$m]}, borrowingLimit: 8}
---
apiVersion: v1
kind: Namespace
metadata:
  name: ml
  labels: {gpufed.io/accept-overflow: "true"}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: ml, namespace: ml}
spec: {clusterQueue: ml-gpu}
EOF
done
port() { awk -v m="$1" '$1==m{print $2}' "$D/ready"; }
{
    cat <<EOF
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: chaos}
spec:
  resource: nvidia.com/gpu
  members:
EOF
    for m in "${MEMBERS[@]}"; do
        echo "  - {name: $m, apiServer: \"https://127.0.0.1:$(port $m)\"," \
            "credentialsSecret: gpufed-system/$m-kubeconfig, fencing: $FENCING}"
    done
    cat <<EOF
  flavorEquivalence:
  - name: a100
    flavors: [{member: east, flavor: a100}, {member: west, flavor: a100}, {member: north, flavor: a100}]
  groups:
  - name: ml
    mode: $MODE
    budgetFlavors: [a100]
    clusterQueues: [{member: east, name: ml-gpu}, {member: west, name: ml-gpu}, {member: north, name: ml-gpu}]
    overflow: {namespaces: [ml]}
  timing: {overflowAfter: 2s, admitTimeout: 5s, leaseDuration: 3s, fenceMargin: 2s, clockDrift: $RHO,
           reclaimAfter: $((RECLAIM_AFTER_MS / 1000))s, gracePeriod: $((GRACE_MS / 1000))s}
EOF
} >"$RUN/policy.yaml"
"$GF_BIN/gpufedctl" policy check "$RUN/policy.yaml" >/dev/null

# --- processes ---------------------------------------------------------------
hub_start() { # replica
    local id=$1 args=()
    [ $HA = 1 ] && args=(--id "$id")
    echo "--- started at $(now_ms)" >>"$RUN/hub-$id.log"
    GPUFED_CLOCK_RATE_PPM=${RATE[hub-$id]:-0} \
        "$GF_BIN/gpufed" hub --kubeconfig "$D/hub/kubeconfig-gpufed-hub.yaml" \
        --policy "$RUN/policy.yaml" --listen 127.0.0.1:0 "${args[@]}" \
        >>"$RUN/hub-$id.log" 2>&1 &
    hub_pid[$id]=$!
}
# The /metrics port of a replica's current process.
hub_port() {
    sed -n '/^--- started/h; /msg=serving/{s/.*port=//; h}; ${x; p}' \
        "$RUN/hub-$1.log" | grep -E '^[0-9]+$' || true
}
# The replica to kill: the one whose /readyz says it leads, else the first
# one running.
hub_victim() {
    local id p body
    for id in "${REPLICAS[@]}"; do
        [ -n "${hub_pid[$id]:-}" ] || continue
        p=$(hub_port "$id")
        [ -n "$p" ] || continue
        body=$(curl -s -m 1 "http://127.0.0.1:$p/readyz" || true)
        if [[ $body == *"leader=$id"* ]]; then echo "$id"; return; fi
    done
    for id in "${REPLICAS[@]}"; do
        [ -n "${hub_pid[$id]:-}" ] && { echo "$id"; return; }
    done
}
agent_start() { # member
    # The agent's command line follows manifests/member/agent.yaml.
    GPUFED_CLOCK_RATE_PPM=${RATE[agent-$1]:-0} \
        "$GF_BIN/gpufed" agent --member "$1" \
        --kubeconfig "$D/$1/kubeconfig-member-agent.yaml" \
        --listen 127.0.0.1:0 >>"$RUN/agent-$1.log" 2>&1 &
    agent_pid[$1]=$!
}

for id in "${REPLICAS[@]}"; do hub_start "$id"; done
for _ in $(seq 1 100); do
    grep -q 'msg="hub started"' "$RUN/hub-${REPLICAS[0]}.log" && break
    kill -0 "${hub_pid[${REPLICAS[0]}]}" 2>/dev/null ||
        fail "gpufed hub exited at start: $(tail -5 "$RUN/hub-${REPLICAS[0]}.log")"
    sleep 0.1
done
if [ $AGENT = 1 ]; then
    for m in "${MEMBERS[@]}"; do agent_start "$m"; done
fi

# --- the schedule's actions --------------------------------------------------
T0=$(now_ms)

# S2 on quota, sampled all along: per member the loan grants' nominal
# quota (gpufed-loan-*) and the reserved holds, read before and after the
# grants of every member (a read is not a snapshot). A sample whose reads
# fail (an API server restarting) is skipped.
holds_of() { # member: [[name, gpus], ...] reserved
    K "$1" -n gpufed-system get workloads -l gpufed.io/lease -o json | jq -c '[.items[] |
        select(any(.status.conditions[]?; .type=="QuotaReserved" and .status=="True")) |
        [.metadata.name, (.spec.podSets[0].template.spec.containers[0].resources.requests["nvidia.com/gpu"] // "0" | tonumber)]]'
}
grant_of() { # member: the loan grants' nominal nvidia.com/gpu
    K "$1" get clusterqueues -o json | jq '[.items[] | select(.metadata.name | startswith("gpufed-loan-")) |
        .spec.resourceGroups[]?.flavors[]?.resources[]? | select(.name=="nvidia.com/gpu") |
        (.nominalQuota | tonumber)] | add // 0'
}
s2_sampler() {
    local m ts line ok
    local -A h1 g h3
    while :; do
        ts=$(now_ms) ok=1
        for m in "${MEMBERS[@]}"; do h1[$m]=$(holds_of "$m" 2>/dev/null) || ok=0; done
        for m in "${MEMBERS[@]}"; do g[$m]=$(grant_of "$m" 2>/dev/null) || ok=0; done
        for m in "${MEMBERS[@]}"; do h3[$m]=$(holds_of "$m" 2>/dev/null) || ok=0; done
        if [ $ok = 1 ]; then
            line="{\"ts_ms\":$ts,\"members\":{"
            for m in "${MEMBERS[@]}"; do
                line+="\"$m\":{\"grant\":${g[$m]},\"holds\":$(jq -cn --argjson a "${h1[$m]}" --argjson b "${h3[$m]}" '$a + $b')},"
            done
            echo "${line%,}}}" >>"$RUN/s2.jsonl"
        fi
        sleep 0.3
    done
}
if [ "$MODE" != redirect ]; then
    s2_sampler &
    s2_pid=$!
fi
log_fault() { # kind member for_ms [identity] [extra json]
    local x=${5:-}
    [ -n "$x" ] || x='{}'
    jq -cn --arg k "$1" --arg m "$2" --argjson f "$3" --arg i "${4:-}" \
        --argjson ts "$(now_ms)" --argjson t0 "$T0" --argjson x "$x" \
        '{t_ms: ($ts - $t0), ts_ms: $ts, kind: $k, member: $m, for_ms: $f}
         + (if $i == "" then {} else {identity: $i} end) + $x' \
        >>"$RUN/faults.jsonl"
}
sim_fault() { # member kind [args...]
    "$GF_BIN/kubesim" fault "$@" --dir "$D" >/dev/null ||
        echo "chaos: kubesim fault $* failed" >&2
}
# Stops a process gracefully (SIGTERM: a hub finishes its writes in
# flight), with SIGKILL after 5 s.
stop_now() { # pid
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill_now "$1"
}
# "This process now runs with rate r": the rate is kept for the slot and
# a running process is restarted with it (a stopped one gets it when it is
# restored). [extra json] is merged into the fault's record.
fault_clock_drift() { # member process=ppm [extra json]
    local m=$1 proc=${2%%=*} ppm=${2#*=} slot id="" pid="" restarted=false
    case $proc in
    hub) slot=hub-hub id=hub ;;
    hub-a | hub-b) slot=$proc id=${proc#hub-} ;;
    agent) slot=agent-$m ;;
    *) fail "unknown clock-drift process '$proc'" ;;
    esac
    RATE[$slot]=$ppm
    if [ -n "$id" ]; then pid=${hub_pid[$id]:-}; else pid=${agent_pid[$m]:-}; fi
    local ts
    ts=$(now_ms)
    if [ -n "$pid" ]; then
        local log n i
        if [ -n "$id" ]; then log=$RUN/hub-$id.log; else log=$RUN/agent-$m.log; fi
        stop_now "$pid"
        n=$(wc -l <"$log")
        if [ -n "$id" ]; then hub_start "$id"; else agent_start "$m"; fi
        restarted=true
        # The new process must say it runs skewed: a hook that silently
        # did nothing would make every drift run a plain restart.
        for i in $(seq 1 50); do
            [ "$ppm" != 0 ] || break
            grep -q "clock rate skewed for testing\" ppm=$ppm\$" \
                < <(tail -n +"$((n + 1))" "$log") && break
            [ "$i" -lt 50 ] ||
                fail "$proc restarted with GPUFED_CLOCK_RATE_PPM=$ppm" \
                    "but did not log its skew: $(tail -3 "$log")"
            sleep 0.1
        done
    fi
    local x extra=${3:-}
    [ -n "$extra" ] || extra='{}'
    # The record's time is when the process was stopped; restart_ts_ms
    # when it ran again.
    x=$(jq -cn --arg p "$proc" --argjson ppm "$ppm" --argjson r $restarted \
        --argjson ts "$ts" --argjson t0 "$T0" --argjson rts "$(now_ms)" \
        --argjson x "$extra" \
        '{t_ms: ($ts - $t0), ts_ms: $ts, process: $p, ppm: $ppm,
          restarted: $r, restart_ts_ms: $rts} + $x')
    [ -z "$id" ] || m=""
    log_fault clock-drift "$m" 0 "" "$x"
}
# The negative mode's action (CHAOS_DRIFT_BEYOND_RHO=1): the member with
# the most copies not yet finished is the lender whose agent goes slow.
fault_beyond_rho() {
    local m best="" n most=-1
    for m in "${MEMBERS[@]}"; do
        n=$(K "$m" get jobs -A -l gpufed.io/lease -o json 2>/dev/null |
            jq '[.items[] | select(.status.completionTime == null)] | length') ||
            n=0
        [ "$n" -gt "$most" ] && { most=$n; best=$m; }
    done
    echo "chaos: beyond rho: $best's agent at -500000 ppm ($most copies" \
        "running), the hub cut off from $best for 15 s"
    # The agent must be running, and must have seen the heartbeat move on
    # its skewed clock before the cut: a freshly started agent dates its
    # credit from the Lease's renewTime by the wall clock, which the skew
    # leaves alone. Two seconds is more than two renewals (D/3 = 1 s).
    [ -n "${agent_pid[$best]:-}" ] || agent_start "$best"
    fault_clock_drift "$best" "agent=-500000" \
        "{\"beyond_rho\":true,\"copies\":$most}"
    sleep 2
    sim_fault "$best" blackhole --identity gpufed-hub --for 15000ms
    log_fault blackhole "$best" 15000 gpufed-hub '{"beyond_rho":true}'
}
do_fault() { # kind member for_ms [arg]
    local k=$1 m=$2 f=$3 a=${4:-} id
    case $k in
    partition)
        sim_fault "$m" blackhole --identity gpufed-hub --for "${f}ms"
        log_fault blackhole "$m" "$f" gpufed-hub ;;
    agent-partition)
        sim_fault "$m" blackhole --identity member-agent --for "${f}ms"
        log_fault blackhole "$m" "$f" member-agent ;;
    restart)
        if [ "$f" -gt 0 ]; then sim_fault "$m" restart --for "${f}ms"
        else sim_fault "$m" restart; fi
        log_fault restart "$m" "$f" ;;
    latency)
        sim_fault "$m" latency --identity gpufed-hub --latency "$a" --for "${f}ms"
        log_fault latency "$m" "$f" gpufed-hub "{\"latency\":\"$a\"}" ;;
    5xx | 429)
        sim_fault "$m" "$k" --identity gpufed-hub --count "$a" --for "${f}ms"
        log_fault "$k" "$m" "$f" gpufed-hub "{\"count\":$a}" ;;
    reset | watch-drop)
        sim_fault "$m" "$k" --identity gpufed-hub --for "${f}ms"
        log_fault "$k" "$m" "$f" gpufed-hub ;;
    kueue-frozen)
        sim_fault "$m" kueue-frozen --for "${f}ms"
        log_fault kueue-frozen "$m" "$f" ;;
    hub-kill)
        id=$(hub_victim)
        [ -n "$id" ] || return 0
        kill_now "${hub_pid[$id]}"
        hub_pid[$id]=""
        log_fault hub-kill "" "$f" "" "{\"replica\":\"$id\"}" ;;
    agent-kill)
        [ -n "${agent_pid[$m]:-}" ] || return 0
        kill_now "${agent_pid[$m]}"
        agent_pid[$m]=""
        log_fault agent-kill "$m" "$f" ;;
    clock-drift) fault_clock_drift "$m" "$a" ;;
    *) fail "unknown fault kind '$k' in the schedule" ;;
    esac
}
restore() { # hub|agent member
    local id
    if [ "$1" = hub ]; then
        for id in "${REPLICAS[@]}"; do
            [ -n "${hub_pid[$id]:-}" ] || hub_start "$id"
        done
    elif [ -z "${agent_pid[$2]:-}" ]; then
        agent_start "$2"
    fi
}
submit() { # id member gpus duration_s
    local name="train-$1" uid="" i
    local manifest
    manifest=$(cat <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $name
  namespace: ml
  labels: {kueue.x-k8s.io/queue-name: ml}
  annotations: {kubesim.gpufed.io/duration: "${4}s"}
spec:
  suspend: true
  backoffLimit: 0
  template:
    metadata:
      labels: {chaos.gpufed.io/job: $1}
    spec:
      restartPolicy: Never
      # A small grace period: S4's bound allows the Pods' termination
      # time, and Kubernetes' default (30 s) would hide a late stop.
      # kubesim stops Pods at once; the checker reads this value.
      terminationGracePeriodSeconds: 1
      containers:
      - name: train
        image: nvcr.io/nvidia/pytorch:24.05-py3
        resources:
          requests: {cpu: "$(($3 * 4))", memory: $(($3 * 32))Gi, nvidia.com/gpu: "$3"}
          limits: {nvidia.com/gpu: "$3"}
EOF
    )
    local ts
    ts=$(now_ms)
    # An API server restart may refuse the connection for a while; a
    # create that landed but whose answer was lost is found by name.
    for i in $(seq 1 40); do
        uid=$(K "$2" create -f - -o jsonpath='{.metadata.uid}' \
            <<<"$manifest" 2>/dev/null) && break
        uid=$(K "$2" -n ml get job "$name" -o jsonpath='{.metadata.uid}' \
            2>/dev/null) && [ -n "$uid" ] && break
        uid=""
        sleep 0.25
    done
    [ -n "$uid" ] || fail "could not submit $name to $2"
    jq -cn --arg id "$1" --arg m "$2" --arg n "$name" --arg u "$uid" \
        --argjson g "$3" --argjson ts "$ts" \
        '{id: $id, member: $m, namespace: "ml", name: $n, uid: $u,
          gpus: $g, ts_ms: $ts}' >>"$RUN/submits.jsonl"
}

: >"$RUN/faults.jsonl"
: >"$RUN/submits.jsonl"
step "running the schedule"
late=0
# The schedule on fd 3: nothing in the loop may eat it from stdin.
while read -r -u 3 off what a1 a2 a3 a4 a5; do
    wait_ms=$((T0 + off - $(now_ms)))
    if [ $wait_ms -gt 0 ]; then
        sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
    elif [ $wait_ms -lt -1000 ]; then
        late=$((late + 1))
    fi
    case $what in
    job) submit "$a1" "$a2" "$a3" "$a4" ;;
    fault) do_fault "$a1" "$a2" "$a3" "${a4:-}" ;;
    restore) restore "$a1" "$a2" ;;
    beyond) fault_beyond_rho ;;
    esac
    : "${a5:-}"
done 3<"$RUN/schedule"
[ $late -eq 0 ] || echo "chaos: $late events ran more than 1 s late"

# --- heal ----------------------------------------------------------------------
step "healing: faults cleared, every process running"
"$GF_BIN/kubesim" fault clear --dir "$D" >/dev/null
for id in "${REPLICAS[@]}"; do [ -n "${hub_pid[$id]:-}" ] || hub_start "$id"; done
if [ $AGENT = 1 ]; then
    for m in "${MEMBERS[@]}"; do restore agent "$m"; done
fi
HEAL=$(now_ms)

# The ledger against the ClusterQueues, now: 0 when they match. The
# ClusterQueues are read before /metrics and again after it: Jobs still
# run, and a ledger value between the two reads is what the ClusterQueue
# showed at some instant in between (each read takes a while on a loaded
# machine, and one Job finishing between them is no divergence).
ledger_matches() { # out-dir
    local d=$1 id p args=() m
    mkdir -p "$d"
    for m in "${MEMBERS[@]}"; do
        K "$m" get clusterqueues -o json >"$d/cq-$m.before.json" || return 1
        args+=(--cq-before "$m=$d/cq-$m.before.json")
    done
    for id in "${REPLICAS[@]}"; do
        p=$(hub_port "$id")
        [ -n "$p" ] || continue
        curl -sf -m 2 "http://127.0.0.1:$p/metrics" >"$d/metrics.txt" && break
    done
    [ -s "$d/metrics.txt" ] || return 1
    for m in "${MEMBERS[@]}"; do
        K "$m" get clusterqueues -o json >"$d/cq-$m.json" || return 1
        args+=(--cq "$m=$d/cq-$m.json")
    done
    local rc=0
    $PY "$here/check.py" ledger --metrics "$d/metrics.txt" "${args[@]}" \
        >"$d/ledger-diff.txt" || rc=$?
    # Every mismatch seen, for the record.
    [ $rc -eq 0 ] || sed "s/^/$(now_ms) /" "$d/ledger-diff.txt" >>"$d/ledger-diffs.log"
    return $rc
}
converged=null
while [ $(($(now_ms) - HEAL)) -lt 30000 ]; do
    if ledger_matches "$RUN/heal"; then
        converged=$(($(now_ms) - HEAL))
        break
    fi
    sleep 0.2
done
echo "chaos: ledger matched the ClusterQueues ${converged} ms after the heal" \
    "(poll resolution ~0.5 s; jobs still running)"

step "waiting for every Job (at most ${DRAIN}s)"
deadline=$(($(now_ms) + DRAIN * 1000))
until $PY "$here/check.py" done "$RUN" >"$RUN/done.txt"; do
    [ "$(now_ms)" -lt $deadline ] || {
        echo "chaos: not every Job finished within ${DRAIN}s: $(cat "$RUN/done.txt")"
        break
    }
    sleep 2
done
DRAINED=$(now_ms)
# Leases end a little after their copies; give them a few heartbeat
# periods (and the checker reports what is left).
for _ in $(seq 1 50); do
    n=$(K hub -n gpufed-system get quotaleases -o json |
        jq '[.items[] | select((.status.phase // "Pending") as $p |
             $p != "Released" and $p != "Failed")] | length') || n=unknown
    [ "$n" = 0 ] && break
    sleep 0.2
done
# The sampler stops with the traffic: what follows only reads.
if [ -n "$s2_pid" ]; then
    kill_now "$s2_pid"
    s2_pid=""
fi
# L2 at the end: two heartbeat periods to match, then what is seen is final.
fin="$RUN/final"
end_deadline=$(($(now_ms) + 2 * D_MS / 3))
until ledger_matches "$fin"; do
    [ "$(now_ms)" -lt $end_deadline ] || break
    sleep 0.2
done
for m in "${MEMBERS[@]}"; do
    K "$m" get jobs -A -o json >"$fin/jobs-$m.json"
    K "$m" get workloads -A -o json >"$fin/workloads-$m.json"
done
K hub -n gpufed-system get quotaleases -o json >"$fin/leases.json"

members_json=$(for m in "${MEMBERS[@]}"; do
    jq -cn --arg m "$m" --argjson c $((NODES * GPUS_PER_NODE)) \
        --argjson n "${NOMINAL[$m]}" '{($m): {capacity: $c, cohort_nominal: $n}}'
done | jq -cs add)
jq -n --argjson seed "$SEED" --argjson t0 "$T0" --argjson endt "$(now_ms)" \
    --argjson heal "$HEAL" --argjson drained "$DRAINED" \
    --argjson conv "$converged" --argjson member "$members_json" \
    --argjson members "$(printf '%s\n' "${MEMBERS[@]}" | jq -R . | jq -cs .)" \
    --argjson d "$D_MS" --argjson p "$PERIOD_MS" \
    --argjson agent "$AGENT" --argjson ha "$HA" \
    --argjson ra "$RECLAIM_AFTER_MS" --argjson grace "$GRACE_MS" \
    '{seed: $seed, t0_ms: $t0, end_ms: $endt, heal_ms: $heal,
      drained_ms: $drained, converged_ms: $conv, members: $members,
      member: $member, agents: ($agent == 1), replicas: (if $ha == 1 then 2 else 1 end),
      timing: {overflow_after_ms: 2000, period_ms: $p, lease_duration_ms: $d,
               slack_ms: 3000, heal_ms: 3000, poll_ms: 1000,
               reclaim_after_ms: $ra, grace_period_ms: $grace}}' >"$RUN/world.json"

step "checking the invariants"
echo "chaos: drain took $(( (DRAINED - HEAL) / 1000 ))s after the heal"
$PY "$here/check.py" run "$RUN" --enforce "${CHAOS_ENFORCE:-}"
echo "PASS seed $SEED"
