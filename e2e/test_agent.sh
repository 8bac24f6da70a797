#!/usr/bin/env bash
# gpufed agent, fencing end to end on kubesim (DESIGN.md §4): a member,
# east, with the shipped manifests/member (so the agent runs as
# gpufed-agent under its real RBAC), borrowed copies running there, and the
# hub's heartbeat Lease renewed by this script (every second,
# leaseDurationSeconds 3) in place of a hub:
#   wrong RBAC     an agent given the hub's kubeconfig exits 2, saying why
#   renewing       nothing is fenced while the heartbeat moves
#   lapse          renewals stop: within a deadline every running copy's
#                  Workload is spec.active=false with gpufed.io/fenced-at,
#                  its pods stop (execution log), an Event Fenced is on the
#                  copy, /metrics says fenced; a finished copy is left alone
#   late copy      a copy created while fenced is fenced too
#   heal           renewals resume: the agent leaves the fenced state,
#                  nothing is reactivated, new copies are left alone (also
#                  by a restarted agent that finds a fresh heartbeat)
#   restart        an agent started on a stale heartbeat fences at once
#   stale cache    with the agent's Job watch refused (its role loses
#                  "watch", kubesim watch-drop cuts the open one), a copy
#                  its caches never saw is fenced from the fence's LIST
# Prints the time from the last renewal to the fence (about D) and from
# the fence to the copies' pods stopping, and from the fence to the
# patch of a copy only the LIST saw. Needs GF_BIN and GF_SHARED,
# kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
hw_begin
HW_LOGS=("agent log=$work/agent.log")
agent_pid=""
renew_pid=""
hw_on_exit() {
    [ -n "$renew_pid" ] && kill "$renew_pid" 2>/dev/null || true
    [ -n "$agent_pid" ] && kill -KILL "$agent_pid" 2>/dev/null || true
}

D="$work/sim"
EXEC="$work/exec.jsonl"
LEASE_S=3
sim_start "$D" --clusters hub,east --crds "$SHARED/kueue/crds" --exec-log "$EXEC"
micro_now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }

agent_start() { # kubeconfig
    "$GF_BIN/gpufed" agent --kubeconfig "$1" --member east \
        --listen 127.0.0.1:0 >>"$work/agent.log" 2>&1 &
    agent_pid=$!
}
agent_stop() {
    [ -n "$agent_pid" ] || return 0
    term_wait "$agent_pid" "gpufed agent"
    agent_pid=""
}
aport() { grep 'comp=agent.*msg=serving' "$work/agent.log" | tail -1 | sed 's/.*port=//'; }
ready() { hub_ready "$(aport)"; }
ametric() { metric "$1" "$(aport)"; } # series
# The logfmt ts of the agent's last line with msg, in ms since the epoch.
agent_log_ms() { log_ms "$work/agent.log" "msg=\"$1\"|msg=$1 "; } # msg

step "wrong RBAC: the hub's kubeconfig is refused, the agent says why and exits 2"
H apply -k "$root/manifests/hub" >/dev/null
rc=0
timeout 30 "$GF_BIN/gpufed" agent --kubeconfig "$D/hub/kubeconfig-gpufed-hub.yaml" \
    --member east >"$work/wrong.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "agent with the hub's kubeconfig exited $rc: $(tail -3 "$work/wrong.log")"
grep -q 'level=error comp=agent.*msg="cannot run: refused by the API server".*status=403' "$work/wrong.log" ||
    fail "no clear refusal: $(grep level=error "$work/wrong.log" | head -3)"
grep -q 'gpufed-hub' "$work/wrong.log" || fail "the refusal does not name the identity"

step "world: manifests/member, queues, the heartbeat renewed every second"
E apply -k "$root/manifests/member" >/dev/null
# The lender's overflow queue as the hub makes it (managed by gpufed).
QUEUE_CQ=gpufed-ml-gpu QUEUE_LQ=gpufed-ml-gpu \
    QUEUE_CQ_LABELS="app.kubernetes.io/managed-by: gpufed" queues_yaml 8 |
    E apply -f - >/dev/null
E apply -f - >/dev/null <<EOF
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: gpufed-heartbeat, namespace: gpufed-system}
spec:
  holderIdentity: hub-0
  leaseDurationSeconds: $LEASE_S
  acquireTime: "$(micro_now)"
  renewTime: "$(micro_now)"
EOF
# The renewals go through curl, not kubectl: a kubectl start can take
# longer than a second on a loaded machine, and a renewal period near D
# would fence for real. The token stays in a header file, off argv.
kc="$D/east/kubeconfig-admin.yaml"
server=$(kubectl config view --raw --kubeconfig "$kc" -o jsonpath='{.clusters[0].cluster.server}')
kubectl config view --raw --kubeconfig "$kc" \
    -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.pem"
printf 'Authorization: Bearer %s\n' \
    "$(kubectl config view --raw --kubeconfig "$kc" -o jsonpath='{.users[0].user.token}')" >"$work/auth.hdr"
renew_once() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$work/ca.pem" \
        -H @"$work/auth.hdr" -H 'Content-Type: application/merge-patch+json' -X PATCH \
        -d "{\"spec\":{\"renewTime\":\"$(micro_now)\"}}" \
        "$server/apis/coordination.k8s.io/v1/namespaces/gpufed-system/leases/gpufed-heartbeat") || true
    [ "$code" = 200 ]
}
renew_once || fail "cannot renew the heartbeat with curl"
renew_start() {
    (
        while true; do
            if renew_once; then
                now_ms >"$work/last_renew.tmp"
                mv "$work/last_renew.tmp" "$work/last_renew"
            fi
            sleep 1
        done
    ) &
    renew_pid=$!
}
renew_stop() {
    kill "$renew_pid" 2>/dev/null || true
    wait "$renew_pid" 2>/dev/null || true
    renew_pid=""
}
renew_start

# A copy as the hub makes it (controller/copy.h): gpufed labels, the
# overflow queue, suspended until Kueue admits it.
copy() { # name duration
    local labels="gpufed.io/lease: west-$1-1, gpufed.io/origin-cluster: west"
    labels+=", gpufed.io/origin-uid: 00000000-0000-0000-0000-$(printf '%012d' "${#1}")"
    labels+=', gpufed.io/epoch: "1"'
    JOB_QUEUE=gpufed-ml-gpu JOB_LABELS=$labels job_yaml "$1" 1 "$2" |
        E create -f - >/dev/null
}
# The copy's Workload, by its controller ownerReference.
wl_of() { # job -> "name active fenced-at"
    local uid
    uid=$(uid_of "$1")
    E -n ml get workloads -o json | jq -r --arg u "$uid" '.items[] |
        select(any(.metadata.ownerReferences[]?; .uid == $u and .controller)) |
        "\(.metadata.name) \(.spec.active != false) \(.metadata.annotations["gpufed.io/fenced-at"] // "-")"'
}
fenced() { # job
    local w
    w=$(wl_of "$1")
    [[ "$w" =~ ^[^\ ]+\ false\ [0-9]{4}- ]]
}
active() { # job
    local w
    w=$(wl_of "$1")
    [[ "$w" =~ ^[^\ ]+\ true\ -$ ]]
}
running() { # job: a pod of it started and has not stopped
    local uid
    uid=$(uid_of "$1")
    jq -e -s --arg u "$uid" '[.[] | select(.job_uid == $u)] |
        (map(select(.event == "start")) | length) > (map(select(.event == "stop")) | length)' \
        "$EXEC" >/dev/null 2>&1
}
stopped() { # job: every pod of it that started has stopped
    ! running "$1"
}
complete() {
    [ "$(E -n ml get job "$1" -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')" = True ]
}

copy done-1 2s
copy run-1 600s
copy run-2 600s
wait_for 30 "done-1 complete" complete done-1
wait_for 30 "run-1 running" running run-1
wait_for 30 "run-2 running" running run-2

step "renewing: the agent starts, is ready, and fences nothing"
agent_start "$D/east/kubeconfig-member-agent.yaml"
wait_for 20 "agent serving" grep -q 'msg=serving' "$work/agent.log"
wait_for 20 "agent ready" ready
[ "$(ametric gpufed_agent_fenced)" = 0 ] || fail "fenced at start: $(ametric gpufed_agent_fenced)"
# Longer than D plus the clock offset: a fence would have happened.
sleep $((LEASE_S * 2))
! grep -q 'msg=fencing' "$work/agent.log" || fail "fenced while renewals continue"
for j in run-1 run-2 done-1; do active $j || fail "$j touched: $(wl_of $j)"; done
reads=$(ametric 'gpufed_agent_heartbeat_reads_total{result="ok"}')
[ "${reads%.*}" -ge 8 ] || fail "heartbeat reads: $reads"

step "lapse: renewals stop; every running copy is fenced within a deadline"
renew_stop
last=$(cat "$work/last_renew")
for j in run-1 run-2; do wait_for 15 "$j fenced" fenced $j; done
fence_ms=$(agent_log_ms fencing)
[ -n "$fence_ms" ] || fail "no fencing line"
grep -q 'msg=fencing member=east heartbeat_age_ms=[0-9]* d_ms=3000 copies=2' "$work/agent.log" ||
    fail "fencing line: $(grep msg=fencing "$work/agent.log")"
for j in run-1 run-2; do wait_for 15 "$j pods stopped" stopped $j; done
stop_ms=$(jq -s --arg a "$(uid_of run-1)" --arg b "$(uid_of run-2)" \
    '[.[] | select(.event == "stop" and (.job_uid == $a or .job_uid == $b)) | .ts_ms] | max' "$EXEC")
reasons=$(jq -r -s --arg a "$(uid_of run-1)" '.[] | select(.event == "stop" and .job_uid == $a) | .reason' "$EXEC")
[ "$reasons" = Suspended ] || fail "run-1 stop reason: $reasons"
active done-1 || fail "finished copy done-1 touched: $(wl_of done-1)"
ev=$(E -n ml get events --field-selector involvedObject.name=run-1 -o json)
msg=$(jq -r '.items[] | select(.reason == "Fenced") | .message' <<<"$ev")
[ -n "$msg" ] || fail "no Fenced Event on run-1: $(jq -c '[.items[].reason]' <<<"$ev")"
[[ "$msg" == *"has not moved for"*"lease duration 3s"* ]] || fail "Event message: $msg"
[ "$(jq -r '.items[] | select(.reason == "Fenced") | .type' <<<"$ev")" = Warning ] || fail "Event type"
[ "$(ametric gpufed_agent_fenced)" = 1 ] || fail "metric fenced: $(ametric gpufed_agent_fenced)"
[ "$(ametric gpufed_agent_fences_total)" = 1 ] || fail "fences_total: $(ametric gpufed_agent_fences_total)"
[ "$(ametric gpufed_agent_copies_fenced_total)" = 2 ] || fail "copies: $(ametric gpufed_agent_copies_fenced_total)"
age=$(ametric gpufed_agent_heartbeat_age_seconds)
awk -v a="$age" 'BEGIN{exit !(a >= 3)}' || fail "heartbeat age: $age"
echo "figure: last renewal -> fence decision: $((fence_ms - last)) ms (D = ${LEASE_S}000 ms, agent polls every 500 ms)"
echo "figure: fence decision -> copies' pods stopped (execution log): $((stop_ms - fence_ms)) ms"

step "late copy: created while fenced, fenced too"
copy late-1 600s
wait_for 15 "late-1 fenced" fenced late-1
[ "$(ametric gpufed_agent_copies_fenced_total)" = 3 ] || fail "copies: $(ametric gpufed_agent_copies_fenced_total)"
[ "$(ametric gpufed_agent_fences_total)" = 1 ] || fail "fences_total: $(ametric gpufed_agent_fences_total)"

step "heal: renewals resume; nothing reactivated, new copies left alone"
renew_start
wait_for 15 "heartbeat moved again" grep -q 'msg="heartbeat moved again"' "$work/agent.log"
[ "$(ametric gpufed_agent_fenced)" = 0 ] || fail "still fenced"
copy new-1 600s
wait_for 30 "new-1 running" running new-1
agent_stop
agent_start "$D/east/kubeconfig-member-agent.yaml"
wait_for 20 "restarted agent ready" ready
copy new-2 600s
wait_for 30 "new-2 running" running new-2
sleep $((LEASE_S * 2))
for j in run-1 run-2 late-1; do fenced $j || fail "$j reactivated: $(wl_of $j)"; done
for j in new-1 new-2; do
    active $j || fail "$j touched after the heal: $(wl_of $j)"
    running $j || fail "$j stopped after the heal"
done
[ "$(grep -c 'msg=fencing' "$work/agent.log")" = 1 ] || fail "fenced again: $(grep msg=fencing "$work/agent.log")"

step "restart: an agent that starts on a stale heartbeat fences at once"
agent_stop
renew_stop
last=$(cat "$work/last_renew")
# Stale by the agent's rule: older than D minus the clock offset (1 s).
while [ $(($(now_ms) - last)) -lt $((LEASE_S * 1000)) ]; do sleep 0.2; done
t0=$(now_ms)
agent_start "$D/east/kubeconfig-member-agent.yaml"
wait_for 15 "new-1 fenced by the restarted agent" fenced new-1
wait_for 15 "new-2 fenced by the restarted agent" fenced new-2
fence_ms=$(agent_log_ms fencing)
echo "figure: agent start on a stale heartbeat -> fence decision: $((fence_ms - t0)) ms"
[ "$(ametric gpufed_agent_fenced)" = 1 ] || fail "metric fenced after restart"
for j in new-1 new-2; do wait_for 15 "$j pods stopped" stopped $j; done
agent_stop

step "stale cache: a copy the agent's watches never saw is fenced from a fresh LIST"
renew_start
agent_start "$D/east/kubeconfig-member-agent.yaml"
wait_for 20 "agent ready (stale-cache step)" ready
fences0=$(grep -c 'msg=fencing' "$work/agent.log" || true)
refused0=$(grep -c 'msg="watch refused" resource=jobs' "$work/agent.log" || true)
# The agent's Job cache goes stale for good: its role loses "watch" on
# Jobs (it keeps "list") and its open watches are cut, so the Job watch
# is refused (the reflector retries only after 5 minutes). Only a fresh
# LIST can see a copy created from now on.
E patch clusterrole gpufed-agent --type=json \
    -p '[{"op":"replace","path":"/rules/1/verbs","value":["get","list"]}]' >/dev/null
"$GF_BIN/kubesim" fault east watch-drop --identity member-agent --dir "$D" >/dev/null
job_watch_refused() {
    [ "$(grep -c 'msg="watch refused" resource=jobs' "$work/agent.log" || true)" -gt "$refused0" ]
}
wait_for 20 "the agent's Job watch refused" job_watch_refused
"$GF_BIN/kubesim" fault clear east --dir "$D" >/dev/null
copy stale-1 600s
wait_for 30 "stale-1 running" running stale-1
renew_stop
wait_for 15 "stale-1 fenced" fenced stale-1
[ "$(grep -c 'msg=fencing' "$work/agent.log")" = $((fences0 + 1)) ] || fail "fencing lines"
fline=$(grep 'msg=fencing' "$work/agent.log" | tail -1)
# The caches had nothing to fence (new-1 and new-2 were fenced earlier,
# stale-1 is not in the Job cache): only the LIST can have found it.
[[ "$fline" == *" copies=0 "* ]] || fail "the cache saw stale-1: $fline"
grep -q 'msg="fence list read" member=east copies_listed=[0-9]* copies=1 ' "$work/agent.log" ||
    fail "no LIST fenced stale-1: $(grep 'fence list' "$work/agent.log" | tail -3)"
fence_ms=$(agent_log_ms fencing)
fenced_ms=$(date -d "$(grep 'msg="copy fenced" job=ml/stale-1 ' "$work/agent.log" | tail -1 |
    sed 's/^ts=\([^ ]*\).*/\1/')" +%s%3N)
lists=$(ametric 'gpufed_agent_fence_lists_total{result="ok"}')
[ "${lists%.*}" -ge 1 ] || fail "fence lists: $lists"
echo "figure: fence decision -> stale-1 (not in the agent's cache) patched: $((fenced_ms - fence_ms)) ms (one poll is 500 ms)"
wait_for 15 "stale-1 pods stopped" stopped stale-1
E apply -k "$root/manifests/member" >/dev/null
agent_stop

echo "PASS"
