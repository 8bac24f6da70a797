# A federation on kubesim for the e2e fault scripts: source it after
# lib/kubesim.sh, with `work` set to the script's scratch directory.
#
#   fed_world              kubesim serving hub, east, west and north (time
#                          scale 10, one execution log), the shipped hub and
#                          member manifests, each member's Secret, and the
#                          ml queues: east has no GPU quota (its GPU Jobs
#                          overflow), west 8 GPUs (the preferred lender),
#                          north 4
#   fed_policy FENCING     writes $work/policy.yaml: every member with that
#                          fencing mode (east, a lender of nothing, keeps
#                          none), leaseDuration 3s, fenceMargin 2s,
#                          clockDrift 0.01, overflowAfter 1s, admitTimeout 5s
#   fed_hub_start [PPM]    starts `gpufed hub` (logs to $work/hub.log), with
#                          GPUFED_CLOCK_RATE_PPM=PPM when given; waits until
#                          it serves and sets hport
#   fed_hub_stop           SIGTERM; fails unless it exits 0
#   fed_agent_start M [PPM]  starts `gpufed agent` in member M as the
#                          manifests run it (identity member-agent), logs
#                          to $work/agent-M.log; waits until it is ready
#   fed_agent_kill M       SIGKILL
#   fed_cleanup RC         for the EXIT trap, before sim_cleanup
#   job NAME GPUS DURATION [MEMBER]  a suspended Kueue Job in ml (MEMBER
#                          defaults to east), its Pod template labelled
#                          chaos.gpufed.io/job=NAME (copies keep it), and
#                          recorded in $work/run/submits.jsonl
#   fault M KIND ARGS...   `kubesim fault`, recorded in
#                          $work/run/faults.jsonl (fault_note M KIND: a
#                          fault the script does itself, recorded only)
#   leases_of JOB, lease_line JOB REGEX, trans JOB EPOCH, runs JOB,
#   completed_once JOB, metric SERIES, ametric M SERIES, log_ms FILE ERE,
#   hb_renew_ms M           observations, described where they are defined
#
# $work/run is laid out as the chaos suite's run directory, so
# fed_check ENFORCE runs e2e/chaos/check.py on everything that happened.
# Needs GF_BIN, GF_SHARED, kubectl, jq, curl.

FED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FED_MEMBERS=(east west north)
declare -A FED_NOMINAL=([east]=0 [west]=8 [north]=4)
D_MS=3000 M_MS=2000 RHO_PPM=10000
hub_pid=""
hport=""
declare -A agent_pid=() aport=()

now_ms() { date +%s%3N; }
K() { kubectl --kubeconfig "$D/$1/kubeconfig-admin.yaml" "${@:2}"; }
H() { K hub "$@"; }
E() { K east "$@"; }
W() { K west "$@"; }
N() { K north "$@"; }

fed_world() {
    D="$work/sim"
    EXEC="$work/run/exec.log"
    mkdir -p "$work/run/final"
    : >"$work/run/faults.jsonl"
    : >"$work/run/submits.jsonl"
    sim_start "$D" --clusters hub,east,west,north --crds "$GF_SHARED/kueue/crds" \
        --time-scale 10 --exec-log "$EXEC"
    T0=$(now_ms)
    H apply -k "$FED_ROOT/manifests/hub" >/dev/null
    local m
    for m in "${FED_MEMBERS[@]}"; do
        K "$m" apply -k "$FED_ROOT/manifests/member" >/dev/null
        H -n gpufed-system create secret generic "$m-kubeconfig" \
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
      - {name: cpu, nominalQuota: 64}
      - {name: memory, nominalQuota: 256Gi}
      - {name: nvidia.com/gpu, nominalQuota: ${FED_NOMINAL[$m]}}
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
}

fed_port() { awk -v m="$1" '$1==m{print $2}' "$D/ready"; }

fed_policy() { # fencing of west and north
    cat >"$work/policy.yaml.new" <<EOF
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: e2e}
spec:
  resource: nvidia.com/gpu
  members:
  - {name: east, apiServer: "https://127.0.0.1:$(fed_port east)", credentialsSecret: gpufed-system/east-kubeconfig, fencing: none}
  - {name: west, apiServer: "https://127.0.0.1:$(fed_port west)", credentialsSecret: gpufed-system/west-kubeconfig, fencing: $1}
  - {name: north, apiServer: "https://127.0.0.1:$(fed_port north)", credentialsSecret: gpufed-system/north-kubeconfig, fencing: $1}
  flavorEquivalence:
  - name: a100
    flavors: [{member: east, flavor: a100}, {member: west, flavor: a100}, {member: north, flavor: a100}]
  groups:
  - name: ml
    mode: redirect
    clusterQueues: [{member: east, name: ml-gpu}, {member: west, name: ml-gpu}, {member: north, name: ml-gpu}]
    overflow: {namespaces: [ml]}
  timing: {overflowAfter: 1s, admitTimeout: 5s, leaseDuration: 3s, fenceMargin: 2s, clockDrift: 0.01}
EOF
    "$GF_BIN/gpufedctl" policy check "$work/policy.yaml.new" >/dev/null
    mv "$work/policy.yaml.new" "$work/policy.yaml"
}

# The port a process logged last (its current run), from a log that
# several runs append to.
fed_logged_port() { # log
    sed -n '/^--- started/h; /msg=serving/{s/.*port=//; h}; ${x; p}' "$1" |
        grep -E '^[0-9]+$' || true
}

fed_hub_start() { # [ppm]
    echo "--- started at $(now_ms)" >>"$work/hub.log"
    GPUFED_CLOCK_RATE_PPM=${1:-0} "$GF_BIN/gpufed" hub \
        --kubeconfig "$D/hub/kubeconfig-gpufed-hub.yaml" \
        --policy "$work/policy.yaml" --listen 127.0.0.1:0 >>"$work/hub.log" 2>&1 &
    hub_pid=$!
    wait_for 10 "hub serving" fed_has_port "$work/hub.log"
    hport=$(fed_logged_port "$work/hub.log")
}
fed_has_port() { [ -n "$(fed_logged_port "$1")" ]; }

fed_hub_stop() {
    local rc=0
    kill -TERM "$hub_pid"
    wait "$hub_pid" || rc=$?
    hub_pid=""
    [ $rc -eq 0 ] || fail "gpufed hub exited with $rc on SIGTERM"
}

fed_agent_ready() { # member
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${aport[$1]}/readyz")" = 200 ]
}

fed_agent_start() { # member [ppm]
    local log="$work/agent-$1.log"
    echo "--- started at $(now_ms)" >>"$log"
    # The command line of manifests/member/agent.yaml.
    GPUFED_CLOCK_RATE_PPM=${2:-0} "$GF_BIN/gpufed" agent --member "$1" \
        --kubeconfig "$D/$1/kubeconfig-member-agent.yaml" \
        --listen 127.0.0.1:0 >>"$log" 2>&1 &
    agent_pid[$1]=$!
    wait_for 10 "agent $1 serving" fed_has_port "$log"
    aport[$1]=$(fed_logged_port "$log")
    wait_for 20 "agent $1 ready" fed_agent_ready "$1"
}

fed_agent_kill() { # member
    kill -KILL "${agent_pid[$1]}" 2>/dev/null || true
    wait "${agent_pid[$1]}" 2>/dev/null || true
    agent_pid[$1]=""
}

fed_cleanup() { # rc
    local m
    [ -n "$hub_pid" ] && kill -KILL "$hub_pid" 2>/dev/null || true
    for m in "${!agent_pid[@]}"; do
        [ -n "${agent_pid[$m]}" ] && kill -KILL "${agent_pid[$m]}" 2>/dev/null || true
    done
    if [ "$1" -ne 0 ]; then
        [ -f "$work/hub.log" ] && { echo "--- hub log (last 60 lines)"; tail -n 60 "$work/hub.log"; }
        for m in "${!agent_pid[@]}"; do
            echo "--- agent $m log (last 20 lines)"
            tail -n 20 "$work/agent-$m.log"
        done
    fi
}

job() { # name gpus duration [member]
    local m=${4:-east} uid
    uid=$(K "$m" create -o jsonpath='{.metadata.uid}' -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: ml
  labels: {kueue.x-k8s.io/queue-name: ml}
  annotations: {kubesim.gpufed.io/duration: "$3"}
spec:
  parallelism: 1
  completions: 1
  backoffLimit: 0
  suspend: true
  template:
    metadata:
      labels: {chaos.gpufed.io/job: $1}
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: nvcr.io/nvidia/pytorch:24.05-py3
        resources:
          requests: {cpu: "1", nvidia.com/gpu: "$2"}
          limits: {nvidia.com/gpu: "$2"}
EOF
    )
    jq -cn --arg id "$1" --arg m "$m" --arg u "$uid" --argjson g "$2" \
        --argjson ts "$(now_ms)" \
        '{id: $id, member: $m, namespace: "ml", name: $id, uid: $u,
          gpus: $g, ts_ms: $ts}' >>"$work/run/submits.jsonl"
}

fault() { # member kind [kubesim fault flags...]
    local ts
    ts=$(now_ms)
    "$GF_BIN/kubesim" fault "$@" --dir "$D" >/dev/null
    jq -cn --arg m "$1" --arg k "$2" --arg a "${*:3}" --argjson ts "$ts" \
        --argjson t0 "$T0" \
        '{t_ms: ($ts - $t0), ts_ms: $ts, kind: $k, member: $m, args: $a,
          for_ms: 0}' >>"$work/run/faults.jsonl"
}

# A fault done by the script itself (a process killed), recorded only.
fault_note() { # member kind
    jq -cn --arg m "$1" --arg k "$2" --argjson ts "$(now_ms)" --argjson t0 "$T0" \
        '{t_ms: ($ts - $t0), ts_ms: $ts, kind: $k, member: $m, for_ms: 0}' \
        >>"$work/run/faults.jsonl"
}

# A hub series by its exact name and labels: its value ("" when absent),
# written out in full (the exposition writes 20 as 2e+01).
metric() {
    local m
    m=$(curl -s "http://127.0.0.1:$hport/metrics")
    awk -v k="$1" '$1==k{printf "%.15g\n", $2}' <<<"$m"
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# The sum of a hub family's series whose labels contain FILTER.
metric_sum() { # family filter
    local m
    m=$(curl -s "http://127.0.0.1:$hport/metrics")
    awk -v f="$1{" -v s="$2" 'index($1, f) == 1 && index($1, s) {n += $2} END {printf "%.15g\n", n}' <<<"$m"
}
ametric() { # member series
    local m
    m=$(curl -s "http://127.0.0.1:${aport[$1]}/metrics")
    awk -v k="$2" '$1==k{printf "%.15g\n", $2}' <<<"$m"
}

# "name phase reason lender epoch" per lease of the job.
leases_of() {
    H -n gpufed-system get ql -o json |
        jq -r --arg j "$1" '.items[] | select(.spec.origin.jobName==$j) |
            "\(.metadata.name) \(.status.phase // "Pending") \(if (.status.reason // "") == "" then "-" else .status.reason end) \(.spec.lender.member) \(.spec.epoch)"'
}
lease_line() { grep -qE "$2" < <(leases_of "$1"); }
# The phases a job's lease of an epoch went through, oldest first, as
# "Phase(Reason)" words.
trans() { # job epoch
    H -n gpufed-system get ql -o json |
        jq -r --arg j "$1" --argjson e "$2" '.items[] |
            select(.spec.origin.jobName==$j and .spec.epoch==$e) |
            [.status.transitions[]? | "\(.phase)(\(.reason // ""))"] | join(" ")'
}
# Runs of a job (origin and copies, by the Pod label the copies keep):
# "cluster start_ms stop_ms reason" in start order; stop 0 while running.
runs() {
    jq -r --arg j "$1" 'select((.labels // {})["chaos.gpufed.io/job"] == $j) |
        "\(.pod) \(.cluster) \(.event) \(.ts_ms) \(.reason // "-")"' "$EXEC" |
        awk '{ k = $1 " " $2
               if ($3 == "start") { s[k] = $4; c[k] = $2; o[n++] = k }
               else if (!(k in e)) { e[k] = $4; r[k] = $5 } }
             END { for (i = 0; i < n; i++) printf "%s %s %s %s\n", c[o[i]], s[o[i]],
                   (o[i] in e) ? e[o[i]] : 0, (o[i] in r) ? r[o[i]] : "-" }'
}
runs_match() { grep -qE "$2" < <(runs "$1"); }
# Exactly one run of the job succeeded (execution log), and nothing of it
# runs any more.
completed_once() {
    local r
    r=$(runs "$1")
    [ "$(grep -c ' Succeeded$' <<<"$r")" = 1 ] && ! grep -q ' 0 -$' <<<"$r"
}
# The logfmt ts of the last line of FILE matching ERE, in ms.
log_ms() { # file ere
    local ts
    ts=$(grep -E "$2" "$1" | tail -1 | sed 's/^ts=\([^ ]*\).*/\1/')
    [ -n "$ts" ] && date -d "$ts" +%s%3N
}
# The member's heartbeat renewTime (the hub's wall clock at the send), ms.
hb_renew_ms() {
    date -d "$(K "$1" -n gpufed-system get lease gpufed-heartbeat -o jsonpath='{.spec.renewTime}')" +%s%3N
}
hb_moves() { [ "$(hb_renew_ms "$1")" != "$2" ]; }
# The copy Job of a job in a member (the newest epoch there): "uid active"
# where active is its Workload's spec.active.
copy_of() { # member job
    local j
    j=$(K "$1" get jobs -A -l gpufed.io/lease -o json |
        jq -r --arg j "$2" '[.items[] | select(.spec.template.metadata.labels["chaos.gpufed.io/job"]==$j)] | last | .metadata.uid // empty')
    [ -n "$j" ] || return 1
    K "$1" get workloads -A -o json | jq -r --arg u "$j" '.items[] |
        select(any(.metadata.ownerReferences[]?; .uid == $u)) | "\($u) \(.spec.active != false)"'
}

# The hub's ledger against every member's ClusterQueues (check.py ledger).
fed_ledger_matches() {
    local d="$work/run/final" m args=()
    curl -sf -m 2 "http://127.0.0.1:$hport/metrics" >"$d/metrics.txt" || return 1
    for m in "${FED_MEMBERS[@]}"; do
        K "$m" get clusterqueues -o json >"$d/cq-$m.json" || return 1
        args+=(--cq "$m=$d/cq-$m.json")
    done
    /usr/bin/python3 "$FED_ROOT/e2e/chaos/check.py" ledger --metrics "$d/metrics.txt" \
        "${args[@]}" >"$d/ledger-diff.txt"
}

# Snapshots the world and runs the chaos checker on the whole run.
fed_check() { # enforce
    local d="$work/run/final" m
    for m in "${FED_MEMBERS[@]}"; do
        K "$m" get jobs -A -o json >"$d/jobs-$m.json"
        K "$m" get workloads -A -o json >"$d/workloads-$m.json"
    done
    H -n gpufed-system get quotaleases -o json >"$d/leases.json"
    fed_ledger_matches || true
    local members_json
    members_json=$(for m in "${FED_MEMBERS[@]}"; do
        jq -cn --arg m "$m" --argjson n "${FED_NOMINAL[$m]}" \
            '{($m): {capacity: 32, cohort_nominal: $n}}'
    done | jq -cs add)
    jq -n --argjson t0 "$T0" --argjson endt "$(now_ms)" \
        --argjson member "$members_json" \
        '{seed: 0, t0_ms: $t0, end_ms: $endt, heal_ms: $endt, drained_ms: $endt,
          converged_ms: 0, members: ["east", "west", "north"],
          member: $member, agents: true, replicas: 1,
          timing: {overflow_after_ms: 1000, period_ms: 1000,
                   lease_duration_ms: 3000, slack_ms: 3000, heal_ms: 3000,
                   poll_ms: 1000}}' >"$work/run/world.json"
    /usr/bin/python3 "$FED_ROOT/e2e/chaos/check.py" run "$work/run" --enforce "$1"
}
