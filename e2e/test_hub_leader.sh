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
# kubectl, jq and curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
hw_begin 30
HW_LOGS=("hub a log=$work/a.log" "hub b log=$work/b.log")
declare -A pid=()
hw_on_exit() {
    local r
    for r in "${!pid[@]}"; do
        [ -n "${pid[$r]}" ] && kill -KILL "${pid[$r]}" 2>/dev/null || true
    done
}
hw_sim east west -- --identity hub-a=hub-a

step "world: the shipped manifests, member Secrets, queues (east has no GPUs)"
hw_world east=0 west=8
# hub-a gets exactly the hub's Role (the service account's).
H -n gpufed-system create rolebinding gpufed-hub-a --role gpufed-hub --user hub-a >/dev/null
policy_yaml "{overflowAfter: 2s, admitTimeout: 10s, leaseDuration: 30s}" \
    "[ml]" east west | policy_install

kcfg() { # replica
    if [ "$1" = a ]; then echo "$D/hub/kubeconfig-hub-a.yaml"; else echo "$D/hub/kubeconfig-gpufed-hub.yaml"; fi
}
ident() { [ "$1" = a ] && echo hub-a || echo gpufed-hub; }
hub_start() { # replica
    "$GF_BIN/gpufed" hub --kubeconfig "$(kcfg "$1")" --policy "$work/policy.yaml" \
        --listen 127.0.0.1:0 --id "$1" --leader-lease 4s >>"$work/$1.log" 2>&1 &
    pid[$1]=$!
}
hport() { logged_port "$work/$1.log"; }
readyz() { curl -s "http://127.0.0.1:$(hport "$1")/readyz"; }
rmetric() { # replica name-with-labels: its value, 0 when absent
    local v
    v=$(metric "$2" "$(hport "$1")")
    echo "${v:-0}"
}
leading() { grep -q '^leading=true$' < <(readyz "$1"); }
log_ts() { log_ms "$work/$1.log" "msg=\"$2\""; } # replica message

job() { # name gpus duration
    job_yaml "$1" "$2" "$3" | E create -f - >/dev/null
}
runs() { starts_by_cluster "$1" west; }

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
[ "$(rmetric "$L" "gpufed_leader{id=\"$L\"}")" = 1 ] || fail "gpufed_leader of $L"
[ "$(rmetric "$S" "gpufed_leader{id=\"$S\"}")" = 0 ] || fail "gpufed_leader of $S"
[ "$(rmetric "$S" "gpufed_leader_holder{holder=\"$L\"}")" = 1 ] || fail "gpufed_leader_holder on $S"
echo "leader $L, standby $S"

step "the standby writes nothing while Jobs are redirected"
for i in 1 2 3; do job "long-$i" 2 100s; done
for i in 1 2 3; do wait_for 40 "long-$i Active" lease_is "long-$i" Active; done
[ "$(rmetric "$L" gpufed_writes_total)" != 0 ] || fail "the leader made no write"
[ "$(rmetric "$S" gpufed_writes_total)" = 0 ] || fail "the standby wrote: $(rmetric "$S" gpufed_writes_total)"
[ "$(rmetric "$S" gpufed_decision_passes_total)" = 0 ] || fail "the standby ran passes"

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
first_write() { [ "$(rmetric "$S" gpufed_writes_total)" != 0 ]; }
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
