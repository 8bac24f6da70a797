#!/usr/bin/env bash
# gpufed hub, reclaim end to end on kubesim (DESIGN.md §4 "Reclaim"): a hub
# and two members, east (no GPU quota of its own: its GPU Jobs overflow)
# and west (8 GPUs, the lender). Copies of east's Jobs fill west; then
# west's own Jobs arrive in its ClusterQueue.
#   gpufed's reclaim  west's Job waits reclaimAfter: exactly the GPUs it
#                     needs are reclaimed, from the newest copies
#                     (victimOrder); each victim's lease turns Reclaiming
#                     with reclaimStarted and reclaimDeadline, its copy
#                     carries gpufed.io/reclaim-deadline and a Reclaiming
#                     Event, nothing stops before the deadline, west's Job
#                     starts within grace + termination + slack (printed),
#                     the leases end Released(Reclaimed), the origins get
#                     Reclaiming then Reclaimed Events and keep their uid
#                     (their place in east's queue), and every victim
#                     finishes exactly once
#   Kueue's reclaim   west's ClusterQueue has reclaimWithinCohort: Any, so
#                     west's Kueue preempts a copy itself: the lease ends
#                     Released(Preempted), the origin is told (Kueue's
#                     reason), the job finishes exactly once, and the hub
#                     does not send it back to west within reclaimAfter
#   crash             the hub killed (SIGKILL) right after marking a victim,
#                     then right after stopping one, and restarted: the
#                     reclaims complete from the leases' status, nothing
#                     stops before its deadline, each job finishes once
#   partition         fencing: agent, an agent in west started on the
#                     heartbeat the earlier parts left (D = 6 s) while the
#                     policy lowers D to 3 s: the hub steps the term down
#                     and the agent fences nothing; then west's own Job
#                     starts a reclaim, and before its deadline the hub
#                     is cut off from west (blackhole for gpufed-hub) for
#                     longer than D(1+rho) + M: the victim's copy stops no
#                     earlier than the agent's fence and within termination
#                     + slack after it, west's own Job runs during the cut,
#                     the victim's lease ends Released(Fenced), no two runs
#                     of a Job overlap (S1), and each finishes exactly once
#                     after the heal (figures printed)
# Each ends with no lease left non-final. Needs GF_BIN and GF_SHARED,
# kubectl, jq, curl and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
HW_NEEDS=python3 hw_begin
hw_sim east west
GRACE_S=5
RECLAIM_AFTER_S=3
KQ_RECLAIM_AFTER_S=5 # Kueue's reclaim: the hub waits this long to send back
TERM_S=1 # the Jobs' terminationGracePeriodSeconds
SLACK_S=2

step "world: the shipped manifests, member Secrets, queues (east has no GPUs)"
hw_world east=- west=-
queues() { queues_yaml "$1" "${2:-Never}"; } # gpus [reclaimWithinCohort]
queues 0 | E apply -f - >/dev/null
queues 8 | W apply -f - >/dev/null
policy() { # reclaimAfter
    policy_yaml "{overflowAfter: 1s, admitTimeout: 20s, leaseDuration: 6s, reclaimAfter: $1, gracePeriod: ${GRACE_S}s}" \
        "[ml]" east west
}
policy "${RECLAIM_AFTER_S}s" | policy_install

job() { # E|W name gpus duration
    JOB_TERM_S=$TERM_S job_yaml "$2" "$3" "$4" | $1 create -f - >/dev/null
}
lease_field() { # lease jsonpath
    H -n gpufed-system get ql "$1" -o jsonpath="$2"
}
in_phase() { # phase: origins of the leases in it
    leases_json | jq -r --arg p "$1" '.items[] | select(.status.phase==$p) |
        .spec.origin.jobName' | sort | tr '\n' ' '
}
count_in() { # phase n
    [ "$(in_phase "$1" | wc -w)" = "$2" ]
}
ms() { # RFC 3339 (fractional seconds optional) -> epoch ms
    python3 -c 'import sys, datetime as d
s = sys.argv[1].replace("Z", "+00:00")
print(int(d.datetime.fromisoformat(s).timestamp() * 1000))' "$1"
}
# Pod events of a job in the execution log: the origin by uid in east,
# its copies by name (copy names are JOB-<hash>-<epoch>) in west.
execs() { # job event [reason]: "cluster=count ..."
    local uid
    uid=$(uid_of "$1")
    jq -r --arg u "$uid" --arg re "^$1-[0-9a-f]{8}-[0-9]+\$" --arg ev "$2" \
        --arg rs "${3:-}" 'select(.event==$ev and ($rs=="" or .reason==$rs))
        | select(.job_uid==$u or (.cluster=="west" and (.job|test($re))))
        | .cluster' "$EXEC" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'
}
first_exec_ms() { # cluster job-name-regex event
    jq -r --arg c "$1" --arg re "$2" --arg ev "$3" \
        'select(.cluster==$c and .event==$ev and (.job|test($re))) | .ts_ms' \
        "$EXEC" | sort -n | head -n 1
}
finished_once() { # job: exactly one of its runs succeeded
    local r n
    r=$(execs "$1" stop Succeeded)
    n=$(echo "$r" | tr ' ' '\n' | awk -F= '{s+=$2} END {print s+0}')
    [ "$n" = 1 ] || fail "$1 finished $n times: '$r'"
}
all_final() {
    [ -z "$(leases_json | jq -r '.items[] | select(.status.phase != "Released"
        and .status.phase != "Failed") | .metadata.name')" ]
}
hub_dead() { ! kill -0 "$hub_pid" 2>/dev/null; }
hub_serve

step "copies fill west: vic-1..vic-4 (2 GPUs each), started one by one"
# vic-1 and vic-2 outlast the checks; the victims, vic-3 and vic-4, their
# deadline by 10 s or more (each runs twice, so it is kept shorter).
for i in 1 2 3 4; do
    job E "vic-$i" 2 $((i <= 2 ? 300 : 250))s
    wait_for 30 "vic-$i Active in west" latest_lease_is "vic-$i" Active
    # Distinct startedAt seconds: victimOrder's newest is unambiguous.
    sleep 1.1
done
declare -A uid0 copy
for i in 1 2 3 4; do
    uid0[vic-$i]=$(uid_of "vic-$i")
    copy[vic-$i]=$(W -n ml get jobs -l "gpufed.io/origin-uid=${uid0[vic-$i]}" -o jsonpath='{.items[0].metadata.name}')
    [ -n "${copy[vic-$i]}" ] || fail "vic-$i has no copy in west"
done

step "west's own Job needs 4 GPUs: after reclaimAfter the 2 newest copies are reclaimed"
job W own-1 4 20s
wait_for 30 "two leases Reclaiming" count_in Reclaiming 2
# One read of the leases while both are Reclaiming: on a busy machine a
# later read can come after their deadline.
lj=$(leases_json)
victims=$(jq -r '.items[] | select(.status.phase=="Reclaiming") | .spec.origin.jobName' <<<"$lj" | sort | tr '\n' ' ')
[ "$victims" = "vic-3 vic-4 " ] || fail "victims '$victims', want the newest: vic-3 vic-4"
declare -A started deadline lease
for j in vic-3 vic-4; do
    sel='.items[] | select(.spec.origin.jobName==$j and .status.phase=="Reclaiming")'
    lease[$j]=$(jq -r --arg j "$j" "$sel | .metadata.name" <<<"$lj")
    started[$j]=$(jq -r --arg j "$j" "$sel | .status.reclaimStarted // \"\"" <<<"$lj")
    deadline[$j]=$(jq -r --arg j "$j" "$sel | .status.reclaimDeadline // \"\"" <<<"$lj")
done
# A victim's copy goes soon after its deadline (gracePeriod after the
# decision): the hint only it carries is read first, on a busy machine too.
declare -A hint
hinted() { # job
    hint[$1]=$(W -n ml get job "${copy[$1]}" -o jsonpath='{.metadata.annotations.gpufed\.io/reclaim-deadline}') &&
        [ -n "${hint[$1]}" ]
}
for j in vic-3 vic-4; do
    wait_for 10 "$j's copy carries the checkpoint hint" hinted $j
done
sleep 1
[ "$(in_phase Reclaiming)" = "vic-3 vic-4 " ] || fail "more victims: $(in_phase Reclaiming)"
[ "$(in_phase Active)" = "vic-1 vic-2 " ] || fail "Active: $(in_phase Active)"
for j in vic-3 vic-4; do
    [ -n "${started[$j]}" ] && [ -n "${deadline[$j]}" ] ||
        fail "$j: reclaimStarted '${started[$j]}' reclaimDeadline '${deadline[$j]}'"
    # The deadline is the decision's time + gracePeriod; the lease turns
    # Reclaiming one write later.
    g=$(($(ms "${deadline[$j]}") - $(ms "${started[$j]}")))
    [ $g -le $((GRACE_S * 1000)) ] && [ $g -ge $((GRACE_S * 1000 - 1000)) ] ||
        fail "$j: deadline ${g} ms after reclaimStarted, want gracePeriod less one write"
    [ "${hint[$j]}" = "${deadline[$j]}" ] ||
        fail "$j's copy: reclaim-deadline '${hint[$j]}', its lease's reclaimDeadline '${deadline[$j]}'"
    wait_for 10 "$j's copy got a Reclaiming Event" \
        bash -c "kubectl --kubeconfig '$D/west/kubeconfig-admin.yaml' -n ml get events --field-selector involvedObject.name='${copy[$j]}' -o jsonpath='{.items[*].reason}' | grep -qw Reclaiming"
    [[ " $(event_reasons E $j)" == *" Reclaiming "* ]] || fail "$j origin events: $(event_reasons E $j)"
done
echo "   victims vic-3 vic-4, deadline ${deadline[vic-3]} (${GRACE_S}s grace)"

step "at the deadline the copies stop; the leases end Released(Reclaimed)"
wait_for 40 "vic-3 and vic-4 Released(Reclaimed)" \
    bash -c "[ \"\$(kubectl --kubeconfig '$D/hub/kubeconfig-admin.yaml' -n gpufed-system get ql -o json |
        jq '[.items[] | select(.status.reason==\"Reclaimed\")] | length')\" = 2 ]"
for j in vic-3 vic-4; do
    [ "$(leases_of $j | head -n 1 | cut -d' ' -f2,3)" = "Released Reclaimed" ] ||
        fail "$j first lease: $(leases_of $j | head -n 1)"
    stop=$(first_exec_ms west "^${copy[$j]}\$" stop)
    [ -n "$stop" ] || fail "$j's copy never stopped"
    early=$(($(ms "${deadline[$j]}") - stop))
    [ $early -le 0 ] || fail "$j's copy stopped ${early} ms before its deadline"
    ev=$(event_reasons E $j)
    [[ " $ev" == *" Reclaimed "* ]] || fail "$j origin events lack Reclaimed: $ev"
    [[ "$(event_msg E $j Reclaimed)" == *"keeping its place"* ]] ||
        fail "$j Reclaimed message: $(event_msg E $j Reclaimed)"
    # Requeued, not recreated: the same Workload, the same place.
    [ "$(uid_of $j)" = "${uid0[$j]}" ] || fail "$j was recreated"
done
own_start=$(first_exec_ms west '^own-1$' start)
[ -n "$own_start" ] || fail "own-1 never started"
t0=$(ms "${started[vic-3]}")
[ $(ms "${started[vic-4]}") -lt $t0 ] && t0=$(ms "${started[vic-4]}")
took=$((own_start - t0))
echo "   west's own Job started ${took} ms after reclaimStarted (bound $(((GRACE_S + TERM_S + SLACK_S) * 1000)) ms = grace + termination + slack)"
[ $took -le $(((GRACE_S + TERM_S + SLACK_S) * 1000)) ] || fail "own-1 waited ${took} ms"
m=$(metric 'gpufed_reclaims_total{lender="west",cause="reclaim"}')
[ "$m" = 2 ] || fail "metrics: reclaims '$m'"
m=$(metric gpufed_reclaim_seconds_count)
[ "$m" = 2 ] || fail "metrics: reclaim_seconds_count '$m'"
echo "   gpufed_reclaim_seconds_sum $(metric gpufed_reclaim_seconds_sum) gpufed_reclaim_seconds_count $m"

step "every job finishes exactly once; no lease left non-final"
for i in 1 2 3 4; do
    wait_for 90 "vic-$i done" latest_lease_is "vic-$i" Released Completed
done
wait_for 20 "all leases final" all_final
for i in 1 2 3 4; do
    finished_once "vic-$i"
done
echo "   vic-3 runs: $(execs vic-3 start); vic-4 runs: $(execs vic-4 start)"

step "crash: the hub killed right after the mark, then right after the stop"
# Restarted with no command in memory, it continues each reclaim from
# the leases' status and what west shows.
hub_stop
hub_start GPUFED_CRASH_AFTER=mark-reclaim:1
for i in 1 2; do
    job E "cr-$i" 2 200s
    wait_for 30 "cr-$i Active in west" latest_lease_is "cr-$i" Active
done
job W own-3 8 10s
for w in mark-reclaim deactivate-copy; do
    wait_for 30 "hub killed after $w" hub_dead
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
    grep -q "crash hook: killing the hub\" after=$w" "$work/hub.log" ||
        fail "the hook did not fire after $w"
    [ $w = mark-reclaim ] && hub_start GPUFED_CRASH_AFTER=deactivate-copy:1 || hub_start
done
wait_for 40 "cr-1 and cr-2 Released(Reclaimed)" \
    bash -c "[ \"\$(kubectl --kubeconfig '$D/hub/kubeconfig-admin.yaml' -n gpufed-system get ql -o json |
        jq '[.items[] | select(.status.reason==\"Reclaimed\" and
            (.spec.origin.jobName|startswith(\"cr-\")))] | length')\" = 2 ]"
for j in cr-1 cr-2; do
    l=$(leases_of $j | head -n 1 | cut -d' ' -f1)
    dl=$(lease_field "$l" '{.status.reclaimDeadline}')
    c=$(W -n ml get events -o json | jq -r --arg p "$j-" '[.items[] |
        select(.reason=="Reclaiming" and (.involvedObject.name|startswith($p)))]
        | length')
    [ "$c" -ge 1 ] || fail "$j's copy got no Reclaiming Event"
    stop=$(first_exec_ms west "^$j-[0-9a-f]{8}-1\$" stop)
    [ -n "$stop" ] && [ "$stop" -ge "$(ms "$dl")" ] ||
        fail "$j's copy stopped at '$stop', before its deadline $dl"
done
own_start=$(first_exec_ms west '^own-3$' start)
[ -n "$own_start" ] || fail "own-3 never started"
echo "   with two restarts, west's own Job started $((own_start - $(ms "$(lease_field \
    "$(leases_of cr-1 | head -n 1 | cut -d' ' -f1)" '{.status.reclaimStarted}')"))) ms after reclaimStarted"
for j in cr-1 cr-2; do
    wait_for 60 "$j done" latest_lease_is "$j" Released Completed
done
wait_for 20 "all leases final" all_final
for j in cr-1 cr-2; do
    finished_once "$j"
done
wait_for 20 "hub serving" has_port
hport=$(logged_port)

step "Kueue's reclaim: west's ClusterQueue reclaims within its cohort itself"
cp "$work/policy.yaml" "$work/policy.old"
policy "${KQ_RECLAIM_AFTER_S}s" >"$work/policy.new"
mv "$work/policy.new" "$work/policy.yaml"
wait_for 20 "policy reloaded" grep -q 'msg="policy reloaded"' "$work/hub.log"
queues 8 Any | W apply -f - >/dev/null
for i in 1 2 3 4; do
    job E "kq-$i" 2 200s
    wait_for 30 "kq-$i Active in west" latest_lease_is "kq-$i" Active
done
job W own-2 2 10s
wait_for 30 "a copy preempted by west's Kueue" \
    bash -c "kubectl --kubeconfig '$D/hub/kubeconfig-admin.yaml' -n gpufed-system get ql -o json |
        jq -e '[.items[] | select(.status.reason==\"Preempted\")] | length == 1' >/dev/null"
pj=$(leases_json | jq -r '.items[] | select(.status.reason=="Preempted") | .spec.origin.jobName')
wait_for 20 "$pj's lease Released(Preempted)" latest_lease_is "$pj" Released Preempted
released_at=$(leases_json | jq -r --arg j "$pj" '.items[] | select(.spec.origin.jobName==$j and
    .status.reason=="Preempted") | [.status.transitions[] | select(.phase=="Released")][0].time')
msg=$(event_msg E "$pj" Preempted)
# Kueue's reason for the Preempted condition, named in the Event.
[[ "$msg" =~ InCohortReclamation|InCohortReclaimWhileBorrowing ]] ||
    fail "$pj Preempted message: '$msg'"
echo "   $pj: $msg"
m=$(metric 'gpufed_reclaims_total{lender="west",cause="kueue"}')
[ "$m" = 1 ] || fail "metrics: kueue reclaims '$m'"
# own-2 ends in a second; west has room again, but the hub waits
# reclaimAfter before sending the same Workload back to the same lender.
wait_for 30 "own-2 done" bash -c "[ -n \"\$(jq -r 'select(.job==\"own-2\" and .event==\"stop\")' '$EXEC')\" ]"
wait_for 60 "$pj runs again" latest_lease_is "$pj" Released Completed
second=$(leases_json | jq -r --arg j "$pj" '[.items[] | select(.spec.origin.jobName==$j)]
    | sort_by(.spec.epoch) | .[1].metadata.creationTimestamp')
gap=$(($(ms "$second") - $(ms "$released_at")))
echo "   $pj sent again ${gap} ms after its release (reclaimAfter $KQ_RECLAIM_AFTER_S s)"
wait_for 90 "kq jobs done" bash -c 'for i in 1 2 3 4; do
    kubectl --kubeconfig '"'$D/hub/kubeconfig-admin.yaml'"' -n gpufed-system get ql -o json |
    jq -e --arg j "kq-$i" "[.items[] | select(.spec.origin.jobName==\$j and .status.reason==\"Completed\")] | length == 1" >/dev/null || exit 1; done'
wait_for 20 "all leases final" all_final
for i in 1 2 3 4; do
    finished_once "kq-$i"
done
# Last, after everything else: this one is policy/decide's rule (a
# Workload whose lease from a lender ended Reclaimed or Preempted is not
# sent to that lender again within reclaimAfter; why rule
# recentlyReclaimed). The times are the API server's, to the second.
[ $gap -ge $(((KQ_RECLAIM_AFTER_S - 1) * 1000)) ] ||
    fail "$pj sent back to west ${gap} ms after Kueue preempted it (policy/decide rule recentlyReclaimed)"

step "reclaim racing a partition: fencing agent, D lowered from 6 s to 3 s, west's agent up"
# The world kept small: D = 3 s, fenceMargin M = 2 s, rho = 0.01, so the
# hub fences D(1+rho) + M = 5.03 s after the last renewal that may have
# landed, and the agent at most Tw + D(1+rho) + P = 4.03 s after it (Tw
# = P = D/6); the grace period (8 s) outlasts the agent's bound.
hub_stop
queues 8 | W apply -f - >/dev/null # Kueue reclaims nothing itself again
RP_GRACE_S=8
policy_yaml "{overflowAfter: 2s, admitTimeout: 20s, leaseDuration: 3s, fenceMargin: 2s, clockDrift: 0.01, reclaimAfter: ${RECLAIM_AFTER_S}s, gracePeriod: ${RP_GRACE_S}s}" \
    "[ml]" east west=agent | policy_install
hub_serve
# The agent starts at once, on the heartbeat the earlier hub left with
# D = 6 s: the hub finds that term in the Lease, holds it while counting
# 3 times it (18 s: its predecessor may have been stepping down to it),
# then steps it down to 3 s, held for the term before it, while the
# copies below run, so the agent never sees a term shorter than twice its
# poll and fences nothing; the hub's fencing bound reaches 3 s only then,
# about 25 s after the hub started.
hb_d_is() { [ "$(W -n gpufed-system get lease gpufed-heartbeat -o jsonpath='{.spec.leaseDurationSeconds}')" = "$1" ]; }
t_policy=$(now_ms)
agent_pid=""
hw_on_exit() { [ -z "$agent_pid" ] || kill -KILL "$agent_pid" 2>/dev/null || true; }
alog="$work/agent-west.log"
HW_LOGS+=("agent west log=$alog")
# The command line of manifests/member/agent.yaml.
"$GF_BIN/gpufed" agent --member west \
    --kubeconfig "$D/west/kubeconfig-member-agent.yaml" \
    --listen 127.0.0.1:0 >>"$alog" 2>&1 &
agent_pid=$!
wait_for 10 "agent serving" has_port "$alog"
aport=$(logged_port "$alog")
wait_for 20 "agent ready" hub_ready "$aport"
t=$(hb_renew_ms west)
wait_for 15 "heartbeat moves" hb_moves west "$t"
fences() { metric gpufed_agent_fences_total "$aport"; }
# A job's runs (the origin in east, its copies in west), one per Pod:
# "cluster start_ms stop_ms reason" in start order; stop 0 while running.
runs_of() { # job
    jq -r --arg u "$(uid_of "$1")" --arg re "^$1-[0-9a-f]{8}-[0-9]+\$" \
        'select(.job_uid==$u or (.cluster=="west" and (.job|test($re)))) |
        "\(.pod) \(.cluster) \(.event) \(.ts_ms) \(.reason // "-")"' "$EXEC" |
        awk '{ k = $1 " " $2
               if ($3 == "start") { s[k] = $4; c[k] = $2; o[n++] = k }
               else if (!(k in e)) { e[k] = $4; r[k] = $5 } }
             END { for (i = 0; i < n; i++) printf "%s %s %s %s\n", c[o[i]], s[o[i]],
                   (o[i] in e) ? e[o[i]] : 0, (o[i] in r) ? r[o[i]] : "-" }'
}
running_in_west() { grep -qE '^west [0-9]+ 0 ' < <(runs_of "$1"); } # job
# S1: no run of the job starts before the one before it stopped.
no_overlap() { # job
    local r
    r=$(runs_of "$1")
    awk '{ if (NR > 1 && (stop == 0 || $2 < stop)) bad = 1; stop = $3 }
         END { exit bad }' <<<"$r" || fail "$1 ran twice at once: $r"
}
trans() { # job epoch: "Phase(Reason) ..." of that epoch's lease
    leases_json | jq -r --arg j "$1" --argjson e "$2" '.items[] |
        select(.spec.origin.jobName==$j and .spec.epoch==$e) |
        [.status.transitions[]? | "\(.phase)(\(.reason // ""))"] | join(" ")'
}

step "copies rp-1 and rp-2 (4 GPUs each) fill west; west's own Job makes rp-2 the victim"
for j in rp-1 rp-2; do
    # Outlasts the term stepping down (about 25 s, more on a loaded
    # machine; kubesim runs Jobs 10 times faster).
    job E $j 4 600s
    wait_for 30 "$j Active in west" latest_lease_is $j Active
    wait_for 10 "$j running in west" running_in_west $j
    sleep 1.1 # distinct startedAt seconds: rp-2 is the newest
done
step "the heartbeat's term steps down from 6 s to 3 s while rp-1 and rp-2 run: no fence"
term_is() { [ "$(metric 'gpufed_member_fence_term_seconds{member="west"}')" = "$1" ]; }
wait_for 60 "the hub's fencing bound counts D = 3 s" term_is 3
hb_d_is 3 || fail "the heartbeat does not carry D = 3 s once the bound does"
echo "   D = 3 s in the hub's bound $(($(now_ms) - t_policy)) ms after the hub started (the Lease carried 6 s)"
fences0=$(fences)
[ "${fences0:-0}" = 0 ] || fail "west's agent fenced while D was lowered: $fences0"
for j in rp-1 rp-2; do
    running_in_west $j || fail "$j no longer runs in west after D was lowered"
done
nf=$(leases_json | jq '[.items[] | select([.status.transitions[]?.phase] | index("Fenced"))] | length')
[ "$nf" = 0 ] || fail "$nf lease(s) went Fenced while D was lowered"
job W own-4 4 20s
wait_for 30 "rp-2 Reclaiming" latest_lease_is rp-2 Reclaiming
[ "$(in_phase Reclaiming)" = "rp-2 " ] || fail "victims: '$(in_phase Reclaiming)', want rp-2"
rl=$(leases_of rp-2 | tail -n 1 | cut -d' ' -f1)
rstart=$(ms "$(lease_field "$rl" '{.status.reclaimStarted}')")
rdead=$(ms "$(lease_field "$rl" '{.status.reclaimDeadline}')")
rcopy=$(W -n ml get jobs -l "gpufed.io/origin-uid=$(uid_of rp-2)" -o jsonpath='{.items[0].metadata.name}')
marked() { [ -n "$(W -n ml get job "$rcopy" -o jsonpath='{.metadata.annotations.gpufed\.io/reclaim-deadline}')" ]; }
wait_for 10 "rp-2's copy marked" marked

step "before the deadline, the hub cut off from west for 10 s (> the fencing bound)"
t_cut=$(now_ms)
[ $t_cut -lt $rdead ] || fail "the cut came $((t_cut - rdead)) ms after the deadline"
"$GF_BIN/kubesim" fault west blackhole --identity gpufed-hub --for 10s --dir "$D" >/dev/null
wait_for 15 "west's agent fenced" bash -c "[ \"\$(curl -s http://127.0.0.1:$aport/metrics |
    awk '\$1==\"gpufed_agent_fences_total\"{printf \"%d\", \$2}')\" = $((${fences0%.*} + 1)) ]"
# Read while the hub is still cut off: the last renewal that landed.
last_hb=$(hb_renew_ms west)
fence_ms=$(log_ms "$alog" 'msg=fencing ')
wait_for 10 "rp-2's copy stopped" bash -c "[ -n \"\$(jq -r --arg j '$rcopy' \
    'select(.job==\$j and .event==\"stop\") | .ts_ms' '$EXEC')\" ]"
stop=$(first_exec_ms west "^$rcopy\$" stop)
[ "$(now_ms)" -lt $((t_cut + 10000)) ] ||
    fail "rp-2's copy stopped only after the heal (cut at $t_cut, stop $stop)"
echo "   cut $((t_cut - rstart)) ms after reclaimStarted; deadline +$((rdead - rstart)) ms"
echo "   agent fenced $((fence_ms - last_hb)) ms after the last renewal (+$((fence_ms - rstart)) ms after reclaimStarted)"
echo "   reclaimStarted -> copy stop $((stop - rstart)) ms; agent fence -> copy stop $((stop - fence_ms)) ms"
# Only the agent can stop the copy while the hub is cut off (its
# deadline was still ahead at the cut): no earlier than the fence, and
# within the pods' termination and the observation slack after it.
[ "$stop" -ge "$fence_ms" ] || fail "rp-2's copy stopped $((fence_ms - stop)) ms before the agent fenced"
[ $((stop - fence_ms)) -le $(((TERM_S + SLACK_S) * 1000)) ] ||
    fail "rp-2's copy stopped $((stop - fence_ms)) ms after the agent's fence"
wait_for 20 "own-4 started in west" bash -c "[ -n \"\$(jq -r 'select(.job==\"own-4\" and .event==\"start\")' '$EXEC')\" ]"
own_start=$(first_exec_ms west '^own-4$' start)
# Kueue-lite frees the quota at the eviction, as the copy's Pods stop:
# the two instants are printed, not ordered.
echo "   reclaimStarted -> own-4 start $((own_start - rstart)) ms (copy stop $((stop - rstart)) ms), the hub cut off from west"
[ "$own_start" -lt $((t_cut + 10000)) ] || fail "own-4 started only after the heal"
# The fence stopped both copies. The next epoch's copy is made from the
# origin Job as it is then, so the runs after the heal need not last
# another minute: 5 s each.
for j in rp-1 rp-2; do
    E -n ml annotate job $j kubesim.gpufed.io/duration=50s --overwrite >/dev/null
done

step "after the heal: each job finishes exactly once, never two runs at once"
for j in rp-1 rp-2; do
    wait_for 120 "$j done" latest_lease_is $j Released Completed
done
wait_for 20 "all leases final" all_final
for j in rp-1 rp-2; do
    finished_once $j
    no_overlap $j
    echo "   $j runs: $(runs_of $j | tr '\n' ';')"
done
tr2=$(trans rp-2 1)
echo "   rp-2 epoch 1: $tr2"
# No epoch wasted at the heal: west lends again only once its agent can
# have seen the heartbeat move (decide's rule recovering), so epoch 2
# runs to its end and no copy is stopped by a still-fenced agent.
n_ep=$(leases_of rp-2 | wc -l)
echo "   rp-2 epochs: $n_ep"
[ "$n_ep" = 2 ] || fail "rp-2 took $n_ep epochs, want 2: $(leases_of rp-2 | tr '\n' ';')"
[[ "$tr2" == *"Reclaiming("* ]] || fail "rp-2 epoch 1 never Reclaiming: $tr2"
[[ "$tr2" == *"Released(Fenced)" ]] || fail "rp-2 epoch 1 did not end Released(Fenced): $tr2"
hub_fenced=$(leases_json | jq -r --arg n "$rl" '.items[] | select(.metadata.name==$n) |
    [.status.transitions[] | select(.phase=="Fenced")][0].time // empty')
[ -z "$hub_fenced" ] || echo "   hub's Fenced $(($(ms "$hub_fenced") - last_hb)) ms after the last renewal"
own_done=$(jq -r 'select(.job=="own-4" and .event=="stop") | .reason' "$EXEC")
[ "$own_done" = Succeeded ] || fail "own-4: '$own_done'"
kill -TERM "$agent_pid"
wait "$agent_pid" || fail "the agent exited with $? on SIGTERM"
agent_pid=""

hub_stop
echo "PASS"
