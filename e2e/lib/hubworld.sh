# The world of the hub e2e scripts, each building block once: source it
# after lib/kubesim.sh (which gives fail, step, wait_for, sim_*).
#
#   hw_begin [TAIL]        checks GF_SHARED, kubectl, jq and curl (and
#                          HW_NEEDS), and makes $work and the EXIT trap
#                          (sim_scratch); on exit it kills $hub_pid (and
#                          what hw_on_exit, if the script defines it,
#                          kills) and, on failure, prints the last TAIL
#                          (40) lines of every log in HW_LOGS ("title=path";
#                          the hub's by default)
#   hw_sim MEMBER... [-- KUBESIM-FLAGS]
#                          kubesim serving hub and the members (time scale
#                          10, execution log $EXEC, $work/exec.jsonl unless
#                          set) in $D
#   hw_world MEMBER=GPUS...  the shipped hub and member manifests, each
#                          member's kubeconfig Secret in the hub, and the
#                          ml queues with GPUS of nominal quota (queues_yaml;
#                          GPUS "-" leaves the queues to the script)
#   queues_yaml GPUS [RECLAIM] [NS...]  ResourceFlavor a100, ClusterQueue
#                          ml-gpu (cohort ml, preemption.reclaimWithinCohort
#                          RECLAIM when given and not "-"), and per NS (ml
#                          by default) a Namespace, opted in to overflow
#                          when it is ml, with LocalQueue ml (QUEUE_CQ,
#                          QUEUE_CQ_LABELS and QUEUE_LQ name and label
#                          them otherwise)
#   policy_yaml TIMING OVERFLOW MEMBER[=FENCING]...  a FederationPolicy
#                          with one ml group over the members' ml-gpu
#                          queues (fencing none by default); TIMING and
#                          OVERFLOW (the namespaces) are YAML flow values;
#                          the group's mode is POLICY_MODE (redirect; with
#                          loan or both, a100 is its budget flavor)
#   policy_install         writes stdin to $work/policy.yaml once
#                          `gpufedctl policy check` accepts it (renamed
#                          into place, as the kubelet swaps a ConfigMap)
#   hub_start [VAR=VALUE...]  starts `gpufed hub` as gpufed-hub with that
#                          environment, appending to $work/hub.log; sets
#                          hub_pid (hub_serve also waits until it serves
#                          and sets hport)
#   hub_stop               SIGTERM; fails unless it exits 0 (term_wait PID
#                          WHAT does that for any process)
#   logged_port [LOG]      the port the latest run logged in LOG (a hub's
#                          or an agent's; $work/hub.log by default)
#   hub_ready [PORT]       /readyz answers 200
#   metric SERIES [PORT]   a series' value by exact name and labels ("" when
#                          absent), written out in full
#   job_yaml NAME GPUS DURATION [NS] [ANNOTATIONS]  a suspended Kueue Job
#                          in LocalQueue JOB_QUEUE (ml), with JOB_LABELS
#                          (JOB_IMAGE, JOB_TERM_S and JOB_POD_LABELS shape
#                          its Pod template)
#   uid_of JOB [NS]        the uid of an origin Job in east
#   leases_json, leases_of JOB, lease_is JOB PHASE [REASON] [LENDER],
#   latest_lease_is JOB PHASE [REASON], exec_counts JOB COND MEMBER...,
#   starts_by_cluster JOB MEMBER...,
#   lease_line JOB ERE, runs_match JOB ERE, hb_renew_ms M, hb_moves M FROM,
#   log_ms FILE ERE,
#   event_reasons K NAME [NS], event_msg K NAME REASON [NS], iso_ms TIME
#                          observations, described where they are defined
#   loan_world TIMING [EAST_FENCING]  the loan scripts' world on hw_sim
#                          east west: east, the borrower, has 8 GPUs on its
#                          nodes and a quota of 2, west's 8 are idle; one
#                          group in mode loan (POLICY_MODE=loan)
#   holds, grant, nothing_lent, loan_sample, sample_until SECS WHAT CMD...
#                          the loan's objects, and S2 on quota sampled
#                          (samples, max_used; LOAN_QUOTA also checks
#                          east's usage), described where they are defined
# Needs GF_BIN and GF_SHARED.

HW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
hub_pid=""
hport=""
HW_LOGS=()
HW_TAIL=40

now_ms() { date +%s%3N; }
K() { kubectl --kubeconfig "$D/$1/kubeconfig-admin.yaml" "${@:2}"; }
H() { K hub "$@"; }
E() { K east "$@"; }
W() { K west "$@"; }
N() { K north "$@"; }

# The hub scripts' part of sim_exit.
sim_on_exit() { # rc
    local entry
    [ -n "$hub_pid" ] && kill -KILL "$hub_pid" 2>/dev/null || true
    if declare -F hw_on_exit >/dev/null; then hw_on_exit || true; fi
    [ "$1" -ne 0 ] || return 0
    for entry in "${HW_LOGS[@]}"; do
        [ -f "${entry#*=}" ] || continue
        echo "--- ${entry%%=*} (last $HW_TAIL lines)"
        tail -n "$HW_TAIL" "${entry#*=}"
    done
}

hw_begin() { # [tail]
    local c
    SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
    for c in kubectl jq curl ${HW_NEEDS:-}; do
        command -v "$c" >/dev/null || fail "'$c' not found (make deps)"
    done
    HW_TAIL=${1:-40}
    sim_scratch
    HW_LOGS=("hub log=$work/hub.log")
}

hw_sim() { # member... [-- kubesim flags]
    local clusters=hub
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        clusters+=",$1"
        shift
    done
    [ $# -gt 0 ] && shift
    D="$work/sim"
    EXEC=${EXEC:-$work/exec.jsonl}
    sim_start "$D" --clusters "$clusters" --crds "$SHARED/kueue/crds" \
        --time-scale 10 --exec-log "$EXEC" "$@"
}

queues_yaml() { # gpus [reclaimWithinCohort|-] [namespace...]
    local gpus=$1 reclaim=${2:--} ns
    shift $(($# < 2 ? $# : 2))
    [ $# -gt 0 ] || set -- ml
    cat <<EOF
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: a100}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: ${QUEUE_CQ:-ml-gpu}${QUEUE_CQ_LABELS:+, labels: {$QUEUE_CQ_LABELS\}}}
spec:
  cohortName: ml
  namespaceSelector: {}
EOF
    [ "$reclaim" = - ] || echo "  preemption: {reclaimWithinCohort: $reclaim}"
    cat <<EOF
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: a100
      resources:
      - {name: cpu, nominalQuota: 64}
      - {name: memory, nominalQuota: 256Gi}
      - {name: nvidia.com/gpu, nominalQuota: $gpus}
EOF
    for ns in "$@"; do
        cat <<EOF
---
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels: {gpufed.io/accept-overflow: "$([ "$ns" = ml ] && echo true || echo false)"}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: ${QUEUE_LQ:-ml}, namespace: $ns}
spec: {clusterQueue: ${QUEUE_CQ:-ml-gpu}}
EOF
    done
}

hw_world() { # member=gpus...
    local mg m
    # The hub runs as gpufed-hub under the RBAC of manifests/ (kubesim
    # enforces it), exactly as the contract's commands install it.
    H apply -k "$HW_ROOT/manifests/hub" >/dev/null
    for mg in "$@"; do
        m=${mg%%=*}
        K "$m" apply -k "$HW_ROOT/manifests/member" >/dev/null
        H -n gpufed-system create secret generic "$m-kubeconfig" \
            --from-file=kubeconfig="$D/$m/kubeconfig-gpufed-hub.yaml" >/dev/null
        [ "${mg#*=}" = - ] || queues_yaml "${mg#*=}" | K "$m" apply -f - >/dev/null
    done
}

sim_port() { awk -v m="$1" '$1==m{print $2}' "$D/ready"; }

policy_yaml() { # timing overflow member[=fencing]...
    local timing=$1 overflow=$2 mf m flavors="" queues=""
    shift 2
    cat <<EOF
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: e2e}
spec:
  resource: nvidia.com/gpu
  members:
EOF
    for mf in "$@"; do
        m=${mf%%=*}
        echo "  - {name: $m, apiServer: \"https://127.0.0.1:$(sim_port "$m")\", credentialsSecret: gpufed-system/$m-kubeconfig, fencing: $([ "$mf" = "$m" ] && echo none || echo "${mf#*=}")}"
        flavors+="${flavors:+, }{member: $m, flavor: a100}"
        queues+="${queues:+, }{member: $m, name: ml-gpu}"
    done
    cat <<EOF
  flavorEquivalence:
  - name: a100
    flavors: [$flavors]
  groups:
  - name: ml
    mode: ${POLICY_MODE:-redirect}
EOF
    [ "${POLICY_MODE:-redirect}" = redirect ] || echo "    budgetFlavors: [a100]"
    cat <<EOF
    clusterQueues: [$queues]
    overflow: {namespaces: $overflow}
  timing: $timing
EOF
}

policy_install() { # < policy
    cat >"$work/policy.yaml.new"
    "$GF_BIN/gpufedctl" policy check "$work/policy.yaml.new" >/dev/null
    mv "$work/policy.yaml.new" "$work/policy.yaml"
}

hub_start() { # [VAR=VALUE...]
    # The marker lets logged_port tell this run's port from an earlier run's.
    echo "--- started at $(now_ms)" >>"$work/hub.log"
    env "$@" "$GF_BIN/gpufed" hub --kubeconfig "$D/hub/kubeconfig-gpufed-hub.yaml" \
        --policy "$work/policy.yaml" --listen 127.0.0.1:0 >>"$work/hub.log" 2>&1 &
    hub_pid=$!
}

# SIGTERM to PID; fails unless it exits 0.
term_wait() { # pid what
    local rc=0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" || rc=$?
    [ $rc -eq 0 ] || fail "$2 exited with $rc on SIGTERM"
}

hub_stop() {
    [ -n "$hub_pid" ] || return 0
    term_wait "$hub_pid" "gpufed hub"
    hub_pid=""
}

# The port the latest run logged in a log that several runs append to
# (empty until that run serves).
logged_port() { # [log]
    sed -n '/^--- started/h; /msg=serving/{s/.*port=//; h}; ${x; p}' \
        "${1:-$work/hub.log}" | grep -E '^[0-9]+$' || true
}
has_port() { [ -n "$(logged_port "$@")" ]; }

hub_serve() { # [VAR=VALUE...]
    hub_start "$@"
    wait_for 20 "hub serving" has_port
    hport=$(logged_port)
}

hub_ready() { # [port]
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${1:-$hport}/readyz")" = 200 ]
}

# A series by its exact name and labels: its value ("" when absent),
# written out in full (the exposition writes 20 as 2e+01).
metric() { # series [port]
    local m
    m=$(curl -s "http://127.0.0.1:${2:-$hport}/metrics")
    awk -v k="$1" '$1==k{printf "%.15g\n", $2}' <<<"$m"
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }

job_yaml() { # name gpus duration [namespace] [annotations]
    cat <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: ${4:-ml}
  labels: {kueue.x-k8s.io/queue-name: ${JOB_QUEUE:-ml}${JOB_LABELS:+, $JOB_LABELS}}
  annotations: {kubesim.gpufed.io/duration: "$3"${5:+, $5}}
spec:
  parallelism: 1
  completions: 1
  backoffLimit: 0
  suspend: true
  template:
EOF
    [ -z "${JOB_POD_LABELS:-}" ] || printf '    metadata:\n      labels: {%s}\n' "$JOB_POD_LABELS"
    echo "    spec:"
    echo "      restartPolicy: Never"
    [ -z "${JOB_TERM_S:-}" ] || echo "      terminationGracePeriodSeconds: $JOB_TERM_S"
    cat <<EOF
      containers:
      - name: main
        image: ${JOB_IMAGE:-trainer}
        resources:
          requests: {cpu: "1", nvidia.com/gpu: "$2"}
          limits: {nvidia.com/gpu: "$2"}
EOF
}

uid_of() { E -n "${2:-ml}" get job "$1" -o jsonpath='{.metadata.uid}'; }

leases_json() { H -n gpufed-system get ql -o json; }
# "name phase reason lender epoch" per lease of an origin Job, oldest
# epoch first (reason "-" when there is none).
leases_of() { # job
    leases_json | jq -r --arg j "$1" '[.items[] | select(.spec.origin.jobName==$j)]
        | sort_by(.spec.epoch)[] |
        "\(.metadata.name) \(.status.phase // "Pending") \(if (.status.reason // "") == "" then "-" else .status.reason end) \(.spec.lender.member) \(.spec.epoch)"'
}
# Some lease of the job is in PHASE (with REASON, lent by LENDER).
lease_is() { # job phase [reason] [lender]
    # Not a pipe: grep -q stops early, and pipefail would see SIGPIPE.
    grep -q "^[^ ]* $2 ${3:-[^ ]*} ${4:-[^ ]*} " < <(leases_of "$1")
}
# Some lease of the job matches the ERE.
lease_line() { grep -qE "$2" < <(leases_of "$1"); } # job ere
# The job's latest lease is in PHASE (with REASON).
latest_lease_is() { # job phase [reason]
    local last
    last=$(leases_of "$1" | tail -n 1)
    [[ "$last" == *" $2 ${3:-}"* ]]
}

# An RFC 3339 time (any fraction) in ms since the epoch.
iso_ms() { date -d "$1" +%s%3N; } # time

# The logfmt ts of the last line of FILE matching ERE, in ms.
log_ms() { # file ere
    local ts
    ts=$(grep -E "$2" "$1" | tail -1 | sed 's/^ts=\([^ ]*\).*/\1/')
    [ -n "$ts" ] && iso_ms "$ts"
}

# Pod events of a Job that pass a jq condition (default: starts), by
# cluster ("cluster=count ..."), from the execution log: of the origin (by
# uid) and of its copies (Jobs labelled with its origin uid) in MEMBERs.
exec_counts() { # job jq-condition member...
    local uid copies="" m
    uid=$(uid_of "$1")
    for m in "${@:3}"; do
        copies+=$(K "$m" get jobs -A -l "gpufed.io/origin-uid=$uid" -o jsonpath='{range .items[*]}{.metadata.uid} {end}')
    done
    jq -r --arg u "$uid" --arg c "$copies" \
        "select(${2:-.event==\"start\"})"' | . as $e | ($c | split(" ")) as $cs
         | select($e.job_uid == $u or ($cs | any(. == $e.job_uid))) | .cluster' \
        "$EXEC" 2>/dev/null | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
# Starts of a Job's Pods by cluster, its copies' in MEMBERs counted.
starts_by_cluster() { exec_counts "$1" "" "${@:2}"; } # job member...
# Some run of the job (a line of `runs JOB`, which the script defines)
# matches the ERE.
runs_match() { grep -qE "$2" < <(runs "$1"); } # job ere

# The member's heartbeat renewTime (the hub's wall clock at the send), ms;
# fails while there is none.
hb_renew_ms() { # member
    local t
    t=$(K "$1" -n gpufed-system get lease gpufed-heartbeat -o jsonpath='{.spec.renewTime}') &&
        [ -n "$t" ] && iso_ms "$t"
}
hb_moves() { [ "$(hb_renew_ms "$1")" != "$2" ]; } # member from-ms

# The reasons of an object's Events, "Reason Reason ".
event_reasons() { # K name [namespace]
    $1 -n "${3:-ml}" get events --field-selector "involvedObject.name=$2" \
        -o jsonpath='{range .items[*]}{.reason} {end}'
}
# The message of an object's first Event with REASON ("" when none).
event_msg() { # K name reason [namespace]
    $1 -n "${4:-ml}" get events --field-selector "involvedObject.name=$2" -o json |
        jq -r --arg r "$3" '[.items[] | select(.reason==$r) | .message] | first // ""'
}

# The loan scripts' world, on hw_sim east west -- --nodes 2 --gpus-per-node
# 4: east (the borrower) has 8 GPUs on its nodes and a quota of 2; west's
# 8 are idle. One group in mode loan over both, a100 its budget flavor.
loan_world() { # timing [east-fencing]
    POLICY_MODE=loan
    hw_world east=2 west=8
    # Holds live in the lender's gpufed-system, whose overflow queue
    # selects it by this label. ml in west does not opt in: nothing runs
    # in the lender for a loan.
    W label namespace gpufed-system gpufed.io/accept-overflow=true >/dev/null
    W label --overwrite namespace ml gpufed.io/accept-overflow=false >/dev/null
    policy_yaml "$1" "[ml]" "east${2:+=$2}" west | policy_install
}

# Reserved holds in west, "name gpus" per line.
holds() {
    W -n gpufed-system get workloads -l gpufed.io/lease -o json | jq -r '.items[] |
        select(any(.status.conditions[]?; .type=="QuotaReserved" and .status=="True")) |
        "\(.metadata.name) \(.spec.podSets[0].template.spec.containers[0].resources.requests["nvidia.com/gpu"])"'
}
any_hold() { [ -n "$(W -n gpufed-system get workloads -l gpufed.io/lease -o name)" ]; }
# The grant's nominal quota in east, 0 when absent.
grant() {
    E get clusterqueues -o json | jq '[.items[] | select(.metadata.name=="gpufed-loan-ml-gpu") |
        .spec.resourceGroups[].flavors[].resources[] | select(.name=="nvidia.com/gpu") |
        (.nominalQuota | tonumber)] | add // 0'
}
nothing_lent() { ! any_hold && [ "$(grant)" = 0 ]; }
# GPUs east's cohort uses now (its ClusterQueues' reserved usage).
east_used() {
    E get clusterqueues -o json | jq '[.items[] | .status.flavorsReservation[]?.resources[]? |
        select(.name=="nvidia.com/gpu") | (.total | tonumber)] | add // 0'
}

# One sample of S2 on quota: west's reserved holds, then the grant (and,
# with LOAN_QUOTA set to east's own quota, east's usage), then the holds
# again. The grant is raised only once a hold is reserved and lowered or
# reverted before the hold goes, and Kueue in east keeps its usage within
# its quota plus the grant: what the grant (and east's usage beyond its
# quota) comes to is covered by the holds seen around the read. Counts
# samples and keeps east's highest usage in max_used.
samples=0
max_used=0
loan_sample() {
    local h1 h3 used=0 g cover
    h1=$(holds)
    [ -z "${LOAN_QUOTA:-}" ] || used=$(east_used)
    g=$(grant)
    h3=$(holds)
    cover=$(printf '%s\n%s\n' "$h1" "$h3" | awk 'NF==2 && !s[$1]++ {t+=$2} END {print t+0}')
    samples=$((samples + 1))
    [ "$used" -le "$max_used" ] || max_used=$used
    [ -z "${LOAN_QUOTA:-}" ] || [ "$used" -le $((LOAN_QUOTA + cover)) ] ||
        fail "S2: east uses $used GPUs, its quota is $LOAN_QUOTA and west's holds reserve $cover (grant $g)"
    [ "$g" -le "$cover" ] || fail "S2: the grant is $g, west's holds reserve $cover"
}
# Samples S2 until CMD succeeds; fails with WHAT after SECS.
sample_until() { # secs what cmd...
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $what"
        loan_sample
    done
}
