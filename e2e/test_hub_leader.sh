#!/usr/bin/env bash
# gpufed hub, two replicas and leader election on kubesim (DESIGN.md §4,
# docs/controller.md "Leader election"): replicas a and b with a 4 s
# leader lease, a hub and two members (east overflows into west).
#   one leader      exactly one replica leads (/readyz, /metrics); both are
#                   ready; the standby makes no write while Jobs are
#                   redirected
#   failover        the leader is killed (SIGKILL) mid-run: the other takes
#                   over, rebuilds and finishes every redirect; every Job
#                   runs exactly once (kubesim's execution log); the time
#                   from the kill to the new leader's first write is
#                   printed next to the target, lease + 2 s
#   partition       the leader cut off from the hub API server (blackhole):
#                   it stops leading before the standby becomes leader
# Replica a talks to the hub as identity hub-a (bound to the manifests'
# Role of the hub), b as gpufed-hub, so that a fault can cut off one
# replica alone. Needs GF_BIN and GF_SHARED,
# kubectl, jq, curl and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/kubesim.sh"
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
for c in kubectl jq curl python3; do
    command -v $c >/dev/null || fail "'$c' not found (make deps)"
done

work=$(mktemp -d)
declare -A pid=()
cleanup() {
    local rc=$?
    for r in "${!pid[@]}"; do
        [ -n "${pid[$r]}" ] && kill -KILL "${pid[$r]}" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        for r in a b; do
            [ -f "$work/$r.log" ] || continue
            echo "--- hub $r log (last 30 lines)"
            tail -n 30 "$work/$r.log"
        done
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
    --time-scale 10 --exec-log "$EXEC" \
    --identity hub-a=hub-a
H() { kubectl --kubeconfig "$D/hub/kubeconfig-admin.yaml" "$@"; }
E() { kubectl --kubeconfig "$D/east/kubeconfig-admin.yaml" "$@"; }
W() { kubectl --kubeconfig "$D/west/kubeconfig-admin.yaml" "$@"; }


step "world: the shipped manifests, member Secrets, queues (east has no GPUs)"
H apply -k "$root/manifests/hub" >/dev/null
# hub-a gets exactly the hub's Role (the service account's).
H -n gpufed-system create rolebinding gpufed-hub-a --role gpufed-hub --user hub-a >/dev/null
for m in east west; do
    kubectl --kubeconfig "$D/$m/kubeconfig-admin.yaml" apply -k "$root/manifests/member" >/dev/null
    H -n gpufed-system create secret generic "$m-kubeconfig" \
        --from-file=kubeconfig="$D/$m/kubeconfig-gpufed-hub.yaml" >/dev/null
done
queues() { # gpus
    cat <<YAML
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
      - {name: nvidia.com/gpu, nominalQuota: $1}
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
YAML
}
queues 0 | E apply -f - >/dev/null
queues 8 | W apply -f - >/dev/null
port() { awk -v m="$1" '$1==m{print $2}' "$D/ready"; }
cat >"$work/policy.yaml" <<YAML
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: e2e}
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
    mode: redirect
    clusterQueues: [{member: east, name: ml-gpu}, {member: west, name: ml-gpu}]
    overflow: {namespaces: [ml]}
  timing: {overflowAfter: 2s, admitTimeout: 10s, leaseDuration: 30s}
YAML

kcfg() { # replica
    if [ "$1" = a ]; then echo "$D/hub/kubeconfig-hub-a.yaml"; else echo "$D/hub/kubeconfig-gpufed-hub.yaml"; fi
}
ident() { [ "$1" = a ] && echo hub-a || echo gpufed-hub; }
hub_start() { # replica
    "$GF_BIN/gpufed" hub --kubeconfig "$(kcfg "$1")" --policy "$work/policy.yaml" \
        --listen 127.0.0.1:0 --id "$1" --leader-lease 4s >>"$work/$1.log" 2>&1 &
    pid[$1]=$!
}
hport() { grep 'msg=serving' "$work/$1.log" | tail -1 | sed 's/.*port=//'; }
readyz() { curl -s "http://127.0.0.1:$(hport "$1")/readyz"; }
metric() { # replica name-with-labels: its value, 0 when absent
    local m
    m=$(curl -s "http://127.0.0.1:$(hport "$1")/metrics")
    awk -v k="$2" '$1==k{print $2; f=1} END{if(!f) print 0}' <<<"$m"
}
leading() { grep -q '^leading=true$' < <(readyz "$1"); }
# Milliseconds since the epoch of a log line's ts= field.
ts_ms() {
    python3 -c 'import sys,datetime
t=sys.argv[1]
d=datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print(int(d.timestamp()*1000))' "$1"
}
log_ts() { # replica message: ts of its last such line, in ms
    local l
    l=$(grep "msg=\"$2\"" "$work/$1.log" | tail -1 | sed 's/^ts=\([^ ]*\) .*/\1/')
    [ -n "$l" ] && ts_ms "$l"
}
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }

job() { # name gpus duration
    E create -f - >/dev/null <<YAML
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
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: trainer
        resources:
          requests: {cpu: "1", nvidia.com/gpu: "$2"}
          limits: {nvidia.com/gpu: "$2"}
YAML
}
leases_of() { # job
    H -n gpufed-system get ql -o json |
        jq -r --arg j "$1" '.items[] | select(.spec.origin.jobName==$j) |
            "\(.metadata.name) \(.status.phase // "Pending") \(.status.reason // "")"'
}
lease_is() { grep -q "^[^ ]* $2 ${3:-}" < <(leases_of "$1"); }
uid_of() { E -n ml get job "$1" -o jsonpath='{.metadata.uid}'; }
# Runs of a Job (its origin and its copies) by cluster, from the
# execution log.
runs() { # job
    local uid copies
    uid=$(uid_of "$1")
    copies=$(W get jobs -A -l "gpufed.io/origin-uid=$uid" -o jsonpath='{range .items[*]}{.metadata.uid} {end}')
    jq -r --arg u "$uid" --arg c "$copies" \
        'select(.event=="start") | . as $e | ($c | split(" ")) as $cs
         | select($e.job_uid == $u or ($cs | any(. == $e.job_uid))) | .cluster' \
        "$EXEC" 2>/dev/null | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}

step "one leader: a and b start, exactly one leads, both are ready"
hub_start a
hub_start b
wait_for 20 "both replicas serving" bash -c "grep -q msg=serving '$work/a.log' && grep -q msg=serving '$work/b.log'"
both_ready() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(hport a)/readyz")" = 200 ] &&
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(hport b)/readyz")" = 200 ]
}
one_leads() { leading a || leading b; }
wait_for 30 "both ready" both_ready
wait_for 20 "a leader" one_leads
if leading a; then L=a S=b; else L=b S=a; fi
! leading "$S" || fail "both replicas lead"
ra=$(readyz a) rb=$(readyz b)
grep -q "^leader=$L$" <<<"$ra" || fail "a's /readyz: $ra"
grep -q "^leader=$L$" <<<"$rb" || fail "b's /readyz: $rb"
[ "$(metric "$L" "gpufed_leader{id=\"$L\"}")" = 1 ] || fail "gpufed_leader of $L"
[ "$(metric "$S" "gpufed_leader{id=\"$S\"}")" = 0 ] || fail "gpufed_leader of $S"
[ "$(metric "$S" "gpufed_leader_holder{holder=\"$L\"}")" = 1 ] || fail "gpufed_leader_holder on $S"
echo "leader $L, standby $S"

step "the standby writes nothing while Jobs are redirected"
for i in 1 2 3; do job "long-$i" 2 100s; done
for i in 1 2 3; do wait_for 40 "long-$i Active" lease_is "long-$i" Active; done
[ "$(metric "$L" gpufed_writes_total)" != 0 ] || fail "the leader made no write"
[ "$(metric "$S" gpufed_writes_total)" = 0 ] || fail "the standby wrote: $(metric "$S" gpufed_writes_total)"
[ "$(metric "$S" gpufed_decision_passes_total)" = 0 ] || fail "the standby ran passes"

step "failover: SIGKILL the leader mid-run"
# Two more Jobs, eligible (overflowAfter 2 s) just after the kill: the
# new leader has writes to make at once.
job late-1 1 30s
job late-2 1 30s
sleep 1
t_kill=$(now_ms)
kill -KILL "${pid[$L]}"
wait "${pid[$L]}" 2>/dev/null || true
pid[$L]=""
first_write() { [ "$(metric "$S" gpufed_writes_total)" != 0 ]; }
wait_for 30 "$S writes" first_write
t_write=$(now_ms)
t_lead=$(log_ts "$S" "became leader")
leading "$S" || fail "$S does not lead"
echo "failover: kill -> $S leads $((t_lead - t_kill)) ms, -> first write $((t_write - t_kill)) ms (target: lease + 2 s = 6000 ms)"
for j in long-1 long-2 long-3 late-1 late-2; do
    wait_for 60 "$j Released(Completed)" lease_is "$j" Released Completed
    r=$(runs "$j")
    [ "$r" = "west=1 " ] || fail "$j runs: '$r'"
    [ "$(leases_of "$j" | wc -l)" = 1 ] || fail "$j leases: $(leases_of "$j")"
done
# Nothing ran twice at overlapping times: per Job, starts == 1 above;
# and no pod of one Job started while another of it was running.
overlap=$(jq -s -r '
    [.[] | select(.event=="start" or .event=="stop")] | group_by(.job_uid)[]
    | reduce .[] as $e ({n: 0, bad: false};
        if $e.event == "start" then (if .n > 0 then .bad = true else . end) | .n += 1
        else .n -= 1 end) | select(.bad)' "$EXEC")
[ -z "$overlap" ] || fail "overlapping runs: $overlap"

step "partition: the leader cut off from the hub API server stops before the standby leads"
old=$L
L=$S
S=$old
hub_start "$S"
wait_for 30 "$S serving again" bash -c "[ \"\$(grep -c msg=serving '$work/$S.log')\" -ge 2 ]"
wait_for 30 "$S ready" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$(hport "$S")/readyz)\" = 200 ]"
leading "$L" || fail "$L lost leadership when $S came back"
! leading "$S" || fail "$S leads as well"
job part-1 1 30s
t_fault=$(now_ms)
"$GF_BIN/kubesim" fault hub blackhole --identity "$(ident "$L")" --for 10s --dir "$D" >/dev/null
s_leads() { leading "$S"; }
wait_for 30 "$S takes over" s_leads
t_stop=$(log_ts "$L" "stopped leading")
t_new=$(log_ts "$S" "became leader")
[ -n "$t_stop" ] || fail "$L never logged 'stopped leading'"
echo "partition: $L stopped leading at +$((t_stop - t_fault)) ms, $S became leader at +$((t_new - t_fault)) ms"
[ "$t_stop" -lt "$t_new" ] || fail "$S became leader before $L stopped"
wait_for 60 "part-1 Released(Completed)" lease_is part-1 Released Completed
r=$(runs part-1)
[ "$r" = "west=1 " ] || fail "part-1 runs: '$r'"
# A deposed leader exits (status 1), as client-go's do; its Deployment
# starts it again, and it comes back as a standby behind the new leader.
rc=0
wait "${pid[$L]}" || rc=$?
pid[$L]=""
[ $rc -eq 1 ] || fail "$L exited with $rc after losing leadership, not 1"
grep -q "lost leadership: stopping" "$work/$L.log" || fail "$L did not log why it stopped"
n_serving=$(grep -c msg=serving "$work/$L.log")
hub_start "$L"
wait_for 30 "$L serving again" bash -c "[ \"\$(grep -c msg=serving '$work/$L.log')\" -gt $n_serving ]"
wait_for 30 "$L back and standing by" bash -c "curl -s http://127.0.0.1:$(hport "$L")/readyz | grep -q '^leader=$S\$'"
! leading "$L" || fail "$L leads again"

for r in a b; do
    kill -TERM "${pid[$r]}"
    rc=0
    wait "${pid[$r]}" || rc=$?
    pid[$r]=""
    [ $rc -eq 0 ] || fail "hub $r exited with $rc on SIGTERM"
done
echo "PASS"
