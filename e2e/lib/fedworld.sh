# A federation on kubesim for the e2e fault scripts: source it after
# lib/kubesim.sh (it brings lib/hubworld.sh), then call hw_begin, which
# makes the scratch directory $work and the EXIT trap (the agents' logs
# are shown with the hub's on failure).
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
#   fed_hub_start [PPM]    hub_serve with GPUFED_CLOCK_RATE_PPM=PPM when
#                          given (hub_stop stops it)
#   fed_agent_start M [PPM]  starts `gpufed agent` in member M as the
#                          manifests run it (identity member-agent), logs
#                          to $work/agent-M.log; waits until it is ready
#   fed_agent_kill M       SIGKILL
#   job NAME GPUS DURATION [MEMBER]  a suspended Kueue Job in ml (MEMBER
#                          defaults to east), its Pod template labelled
#                          chaos.gpufed.io/job=NAME (copies keep it), and
#                          recorded in $work/run/submits.jsonl
#   fault M KIND ARGS...   `kubesim fault`, recorded in
#                          $work/run/faults.jsonl (fault_note M KIND: a
#                          fault the script does itself, recorded only)
#   trans JOB EPOCH, runs JOB, completed_once JOB, metric_sum FAMILY FILTER,
#   ametric M SERIES, copy_of M JOB  observations, described where they
#                          are defined (more in lib/hubworld.sh)
#
# $work/run is laid out as the chaos suite's run directory, so
# fed_check ENFORCE runs e2e/chaos/check.py on everything that happened.
# Needs GF_BIN, GF_SHARED, kubectl, jq, curl.

. "$(dirname "${BASH_SOURCE[0]}")/hubworld.sh"
FED_ROOT=$HW_ROOT
FED_MEMBERS=(east west north)
declare -A FED_NOMINAL=([east]=0 [west]=8 [north]=4)
D_MS=3000 M_MS=2000 RHO_PPM=10000
declare -A agent_pid=() aport=()

fed_world() {
    EXEC="$work/run/exec.log"
    mkdir -p "$work/run/final"
    : >"$work/run/faults.jsonl"
    : >"$work/run/submits.jsonl"
    hw_sim "${FED_MEMBERS[@]}"
    T0=$(now_ms)
    local m args=()
    for m in "${FED_MEMBERS[@]}"; do
        args+=("$m=${FED_NOMINAL[$m]}")
    done
    hw_world "${args[@]}"
}

fed_policy() { # fencing of west and north
    policy_yaml "{overflowAfter: 1s, admitTimeout: 5s, leaseDuration: 3s, fenceMargin: 2s, clockDrift: 0.01}" \
        "[ml]" east "west=$1" "north=$1" | policy_install
}

fed_hub_start() { hub_serve GPUFED_CLOCK_RATE_PPM="${1:-0}"; } # [ppm]

fed_agent_ready() { hub_ready "${aport[$1]}"; } # member

fed_agent_start() { # member [ppm]
    local log="$work/agent-$1.log"
    [ -f "$log" ] || HW_LOGS+=("agent $1 log=$log")
    echo "--- started at $(now_ms)" >>"$log"
    # The command line of manifests/member/agent.yaml.
    GPUFED_CLOCK_RATE_PPM=${2:-0} "$GF_BIN/gpufed" agent --member "$1" \
        --kubeconfig "$D/$1/kubeconfig-member-agent.yaml" \
        --listen 127.0.0.1:0 >>"$log" 2>&1 &
    agent_pid[$1]=$!
    wait_for 10 "agent $1 serving" has_port "$log"
    aport[$1]=$(logged_port "$log")
    wait_for 20 "agent $1 ready" fed_agent_ready "$1"
}

fed_agent_kill() { # member
    kill -KILL "${agent_pid[$1]}" 2>/dev/null || true
    wait "${agent_pid[$1]}" 2>/dev/null || true
    agent_pid[$1]=""
}

hw_on_exit() {
    local m
    for m in "${!agent_pid[@]}"; do
        [ -n "${agent_pid[$m]}" ] && kill -KILL "${agent_pid[$m]}" 2>/dev/null || true
    done
}

job() { # name gpus duration [member]
    local m=${4:-east} uid
    uid=$(JOB_IMAGE=nvcr.io/nvidia/pytorch:24.05-py3 \
        JOB_POD_LABELS="chaos.gpufed.io/job: $1" job_yaml "$1" "$2" "$3" |
        K "$m" create -o jsonpath='{.metadata.uid}' -f -)
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

# The sum of a hub family's series whose labels contain FILTER.
metric_sum() { # family filter
    local m
    m=$(curl -s "http://127.0.0.1:$hport/metrics")
    awk -v f="$1{" -v s="$2" 'index($1, f) == 1 && index($1, s) {n += $2} END {printf "%.15g\n", n}' <<<"$m"
}
ametric() { metric "$2" "${aport[$1]}"; } # member series

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
# Exactly one run of the job succeeded (execution log), and nothing of it
# runs any more.
completed_once() {
    local r
    r=$(runs "$1")
    [ "$(grep -c ' Succeeded$' <<<"$r")" = 1 ] && ! grep -q ' 0 -$' <<<"$r"
}
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
