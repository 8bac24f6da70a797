#!/usr/bin/env bash
# Each fault kind alone, with exact expectations (docs/failure-semantics.md,
# docs/chaos.md "Each fault alone"). One world (e2e/lib/fedworld.sh): a
# hub, east (no GPU quota: its GPU Jobs overflow), west (8 GPUs, the
# preferred lender) and north (4); `gpufed agent` in west and north,
# `fencing: agent`, leaseDuration D = 3s (renewals every second),
# fenceMargin M = 2s, clockDrift rho = 0.01, so Tw = min(D/6, M/2) = 0.5s
# and the hub's fencing time is sent + D(1+rho) + M = sent + 5.03s. The
# faults come one after another, each while a copy runs in west, with a
# full check after each: every Job of the step finished exactly once
# (execution log), and the hub's ledger matches the ClusterQueues.
#
#   restart       west's API server restarts at once (every connection
#                 cut, its watch cache lost): the hub relists west
#                 (gpufed_watch_relists_total), the lease may go Suspect
#                 (watches down) and back to Active but never Fenced, the
#                 hub keeps renewing, so the agent does not fence, and the
#                 copy is neither deleted nor duplicated (same uid). (A
#                 restart that also refuses connections for L stops the
#                 renewals: the agent may then fence once L + 2·D/3 + P
#                 reaches D, which the protocol allows.)
#   latency       below Tw (200 ms for 4 s on the hub's requests): no renewal
#                 fails, the member never turns suspect, the lease never
#                 leaves Active. Above the fencing time (8 s per request for
#                 10 s): every renewal times out after Tw (may have landed,
#                 so it counts as sent; kubesim drops a request whose client
#                 gave up, as the API server's ?timeout= does), the lease
#                 goes Suspect then Fenced, the hub's Fenced comes at least
#                 D(1+rho) + M after the last renewal that landed, the
#                 agent fences (its Event Fenced) before the hub's Fenced,
#                 no earlier than D/(1+rho) - P after it (P, its poll), the copy
#                 stops before the origin runs again (in north, epoch 2),
#                 and on the heal the stale copy is deleted
#   5xx           one 503 on the hub's requests to west. It hits the hub,
#                 not the agent (the fault is for the gpufed-hub identity,
#                 so the agent's reads go on): the renewal answered 503
#                 may have landed (a 5xx is not a definite refusal), so it
#                 counts as sent and as failed (renewals_total error);
#                 west turns suspect, the hub stops renewing and probes
#                 with reads; the next probe (D/3 later) succeeds, west is
#                 healthy and a renewal goes at once. The heartbeat stands
#                 still for about 2·D/3 < D, so the agent does not fence;
#                 the lease goes Suspect and back to Active, never Fenced
#   kueue-frozen  west's Kueue-lite and job runner frozen for 7 s, north
#                 full: a new copy in west is not admitted, after
#                 admitTimeout (5 s) its lease ends Released(NotAdmitted)
#                 and the copy is gone without having run; the Job runs
#                 exactly once (a later epoch); a copy already running in
#                 west is not stopped and its lease stays Active
#   clock-drift   the hub at +10,000 ppm and west's agent at -10,000 ppm
#                 (within rho, the worst way round: the hub's clock fast,
#                 the agent's slow), then the hub cut off from west: the
#                 agent fences no earlier than D/(1+rho) - P after the last
#                 renewal and before the hub's Fenced, which comes no
#                 earlier than D + M/(1+rho) (real time) after it; no
#                 overlap of the two runs
#   agent-partition  the agent cut off from its own API server (blackhole
#                 for member-agent), assumption A3 broken. For 0.5 s:
#                 nothing fenced, the hub still renews (no renewal error),
#                 the lease stays Active, one run. For 4 s (> D): the agent
#                 cannot fence during the cut (the copy runs on, west is
#                 never suspect); after the heal it fences, since its
#                 credit is the last read before the cut (a cut longer
#                 than about D - D/3 - 2P does this); the hub, which never
#                 lost west, ends the lease Released(Fenced) with no
#                 Suspect, and the Job runs again once, with no overlap
#   agent-kill    SIGKILL of west's agent, restarted at once while the
#                 heartbeat is fresh: it does not fence. SIGKILL again, the
#                 hub cut off from west, the agent restarted once the
#                 heartbeat is older than D: it fences at once, before the
#                 hub's Fenced; the Job runs again in north exactly once
# At the end the chaos checker (e2e/chaos/check.py) runs on the whole run:
# S1, S2, S3 and L2 enforced. Figures printed (time to suspect, to fence,
# to recover), never asserted beyond the protocol's own bounds. Needs
# GF_BIN and GF_SHARED, kubectl, jq, curl and /usr/bin/python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/fedworld.sh"
HW_NEEDS=/usr/bin/python3 hw_begin 60

WEST_GPU='gpufed_quota{member="west",cluster_queue="ml-gpu",flavor="a100",resource="nvidia.com/gpu",kind="lent"}'
# D(1+rho) + M, in ms: the hub's fencing time after the last renewal
# that may have landed.
FENCE_MS=$((D_MS + D_MS * RHO_PPM / 1000000 + M_MS))
# The earliest an agent may fence after a renewal's send (its renewTime):
# its credit is the send of the last read that still showed the old value,
# at most one poll P = min(D/6, 1 s) before the renewal landed, and D on
# its clock is at least D/(1+rho) of real time.
P_MS=$((D_MS / 6 < 1000 ? D_MS / 6 : 1000))
AGENT_MIN_MS=$((D_MS * 1000000 / (1000000 + RHO_PPM) - P_MS))

step "world: hub, east (0 GPUs), west (8), north (4); agents in west and north"
fed_world
fed_policy agent
fed_hub_start
fed_agent_start west
fed_agent_start north
wait_for 20 "heartbeat in west" hb_renew_ms west
t=$(hb_renew_ms west)
wait_for 5 "heartbeat moves" hb_moves west "$t"
wait_for 20 "hub ready" hub_ready

# The phases a lease may go through when nothing is fenced.
only_active_suspect() { # job epoch
    local t
    t=$(trans "$1" "$2")
    [[ " $t " != *" Fenced("* ]] || fail "$1 epoch $2 went Fenced: $t"
    local w
    for w in $t; do
        case $w in
        "Pending("* | "Active("* | "Suspect("* | "Released(Completed)") ;;
        *) fail "$1 epoch $2: unexpected transition $w in: $t" ;;
        esac
    done
}
# No two runs of the job overlap (execution log).
no_overlap() {
    local r
    r=$(runs "$1" | sort -k2,2n)
    awk '{ if (NR > 1 && (stop == 0 || $2 < stop)) bad = 1; stop = $3 }
         END { exit bad }' <<<"$r" || fail "$1 ran twice at once: $r"
}
# Every lease of the job (none for a Job that ran at home) is final.
leases_final() {
    local l
    l=$(leases_of "$1")
    [ -z "$l" ] || ! grep -qvE '^[^ ]+ (Released|Failed) ' <<<"$l"
}
# A step's end: every named Job done exactly once, its leases final, and
# the ledger matching the ClusterQueues within two heartbeat periods and
# a poll.
settle() { # jobs...
    local j
    for j in "$@"; do
        wait_for 60 "$j finished exactly once" completed_once "$j"
        wait_for 20 "$j's leases final" leases_final "$j"
    done
    wait_for 5 "ledger matches the ClusterQueues" fed_ledger_matches
}
agent_fences() { ametric "$1" gpufed_agent_fences_total; }
hub_phase_ms() { # job epoch phase: when the hub logged the lease's phase
    local name
    name=$(leases_of "$1" | awk -v e="$2" '$5==e{print $1}')
    log_ms "$work/hub.log" "key=[^ ]*$name .*msg=\"lease phase\" phase=$3 "
}
agent_fence_ms() { log_ms "$work/agent-$1.log" 'msg=fencing '; }
# The lines of a log written by the process started last.
current_log() { awk '/^--- started/ {b = ""} {b = b $0 "\n"} END {printf "%s", b}' "$1"; }

# --- 1. restart ---------------------------------------------------------
step "restart: west's API server restarts, its watch cache lost"
job r-1 4 120s
wait_for 30 "r-1 Active in west" lease_line r-1 " Active - west 1$"
wait_for 10 "r-1 running in west" runs_match r-1 "^west [0-9]+ 0 "
copy0=$(copy_of west r-1)
relists0=$(metric_sum gpufed_watch_relists_total 'member="west"')
fences0=$(agent_fences west)
t_fault=$(now_ms)
fault west restart
relisted() { [ "$(metric_sum gpufed_watch_relists_total 'member="west"')" -gt "$relists0" ]; }
wait_for 20 "the hub relists west" relisted
echo "   restart -> relist counted: $(($(now_ms) - t_fault)) ms"
wait_for 20 "west healthy" metric_is 'gpufed_member_suspect{member="west"}' 0
wait_for 20 "r-1 Active" lease_line r-1 " Active - west 1$"
echo "   restart -> west healthy, lease Active: $(($(now_ms) - t_fault)) ms"
[ "$(copy_of west r-1)" = "$copy0" ] || fail "r-1's copy changed: '$copy0' -> '$(copy_of west r-1)'"
settle r-1
only_active_suspect r-1 1
[ "$(agent_fences west)" = "$fences0" ] || fail "west's agent fenced on a restart"
r=$(runs r-1)
[ "$(wc -l <<<"$r")" = 1 ] && [[ $r == west* ]] || fail "r-1 runs: $r"
echo "   r-1 transitions: $(trans r-1 1); relists of west: $relists0 -> $(metric_sum gpufed_watch_relists_total 'member="west"')"

# --- 2. latency -----------------------------------------------------------
step "latency below Tw: 200 ms on the hub's requests to west for 4 s"
job l-1 4 80s
wait_for 30 "l-1 Active in west" lease_line l-1 " Active - west 1$"
err0=$(metric 'gpufed_heartbeat_renewals_total{member="west",result="error"}')
ok0=$(metric 'gpufed_heartbeat_renewals_total{member="west",result="ok"}')
fault west latency --identity gpufed-hub --latency 200ms --for 4s
t_end=$(($(now_ms) + 4000))
while [ "$(now_ms)" -lt $t_end ]; do
    metric_is 'gpufed_member_suspect{member="west"}' 0 || fail "west suspect under 200 ms of latency"
    sleep 0.2
done
err1=$(metric 'gpufed_heartbeat_renewals_total{member="west",result="error"}')
ok1=$(metric 'gpufed_heartbeat_renewals_total{member="west",result="ok"}')
[ "${err1:-0}" = "${err0:-0}" ] || fail "renewals failed under 200 ms of latency: $err0 -> $err1"
[ "${ok1%.*}" -ge $((${ok0%.*} + 3)) ] || fail "renewals under latency: $ok0 -> $ok1"
settle l-1
[ "$(trans l-1 1)" = "$(trans l-1 1 | tr ' ' '\n' | grep -v Suspect | tr '\n' ' ' | sed 's/ $//')" ] ||
    fail "l-1 went Suspect under 200 ms of latency: $(trans l-1 1)"
echo "   renewals during the burst: $((${ok1%.*} - ${ok0%.*})) ok, 0 failed"

step "latency above the fencing time: 8 s on the hub's requests to west for 10 s"
job l-2 4 80s
wait_for 30 "l-2 Active in west" lease_line l-2 " Active - west 1$"
wait_for 10 "l-2 running in west" runs_match l-2 "^west [0-9]+ 0 "
fences0=$(agent_fences west)
t_fault=$(now_ms)
fault west latency --identity gpufed-hub --latency 8s --for 10s
wait_for 10 "l-2 Suspect" lease_line l-2 " Suspect - west 1$"
echo "   latency -> Suspect: $(($(now_ms) - t_fault)) ms"
wait_for 20 "l-2 Fenced" lease_line l-2 " Fenced [^ ]+ west 1$"
wait_for 20 "l-2 runs again in north" runs_match l-2 "^north "
last_hb=$(hb_renew_ms west)
fence_ms=$(agent_fence_ms west)
[ "$(agent_fences west)" = $((fences0 + 1)) ] || fail "west's agent fences: $fences0 -> $(agent_fences west)"
hub_fenced=$(hub_phase_ms l-2 1 Fenced)
echo "   last renewal landed +$((last_hb - t_fault)) ms, agent fenced +$((fence_ms - t_fault)) ms, hub Fenced +$((hub_fenced - t_fault)) ms (after the fault)"
[ $((fence_ms - last_hb)) -ge $AGENT_MIN_MS ] || fail "the agent fenced $((fence_ms - last_hb)) ms after the last renewal (< D/(1+rho) - P)"
[ "$fence_ms" -lt "$hub_fenced" ] || fail "the hub's Fenced came before the agent's fence"
[ $((hub_fenced - last_hb)) -ge $FENCE_MS ] || fail "the hub fenced $((hub_fenced - last_hb)) ms after the last renewal (< D(1+rho)+M)"
ev=$(W -n ml get events -o json | jq -r '[.items[] | select(.reason == "Fenced" and .type == "Warning")] | length')
[ "$ev" -ge 1 ] || fail "no Fenced Event in west"
r=$(runs l-2)
echo "$r" | sed 's/^/   run: /'
w_stop=$(awk '$1=="west"{print $3}' <<<"$r")
n_start=$(awk '$1=="north"{print $2}' <<<"$r")
[ "$w_stop" != 0 ] && [ "$w_stop" -le "$n_start" ] || fail "l-2 ran in two places at once: $r"
wait_for 30 "the stale copy deleted on the heal" bash -c "! grep -q . < <(kubectl --kubeconfig '$D/west/kubeconfig-admin.yaml' get jobs -A -l gpufed.io/epoch=1,gpufed.io/origin-uid=$(E -n ml get job l-2 -o jsonpath='{.metadata.uid}') -o name)"
wait_for 30 "l-2 epoch 1 Released(Fenced)" lease_line l-2 " Released Fenced west 1$"
settle l-2
echo "   l-2 epoch 1: $(trans l-2 1)"

# --- 3. 5xx --------------------------------------------------------------------
step "5xx: one 503 on the hub's requests to west"
job x-1 4 80s
wait_for 30 "x-1 Active in west" lease_line x-1 " Active - west 1$"
fences0=$(agent_fences west)
err0=$(metric 'gpufed_heartbeat_renewals_total{member="west",result="error"}')
t_fault=$(now_ms)
fault west 5xx --identity gpufed-hub --count 1
renewal_failed() { [ "$(metric 'gpufed_heartbeat_renewals_total{member="west",result="error"}')" != "${err0:-}" ]; }
wait_for 10 "a renewal refused" renewal_failed
wait_for 10 "x-1 Suspect" lease_line x-1 " Suspect - west 1$"
echo "   503 -> Suspect: $(($(now_ms) - t_fault)) ms"
wait_for 10 "x-1 Active again" lease_line x-1 " Active - west 1$"
echo "   503 -> Active again: $(($(now_ms) - t_fault)) ms"
settle x-1
only_active_suspect x-1 1
[ "$(agent_fences west)" = "$fences0" ] || fail "west's agent fenced on one 503"
[ "$(runs x-1 | wc -l)" = 1 ] || fail "x-1 runs: $(runs x-1)"
echo "   x-1 transitions: $(trans x-1 1)"

# --- 4. kueue-frozen -----------------------------------------------------
step "kueue-frozen: west's Kueue frozen 7 s, north full; a new copy is not admitted"
job n-fill 4 150s north
wait_for 20 "n-fill running at home in north" runs_match n-fill "^north [0-9]+ 0 "
job k-run 2 200s
wait_for 30 "k-run running in west" runs_match k-run "^west [0-9]+ 0 "
t_fault=$(now_ms)
fault west kueue-frozen --for 7s
job k-new 4 30s
wait_for 20 "k-new's copy in west" lease_line k-new " (Pending|Active) - west 1$"
wait_for 20 "k-new epoch 1 Released(NotAdmitted)" lease_line k-new " Released NotAdmitted west 1$"
echo "   freeze -> Released(NotAdmitted): $(($(now_ms) - t_fault)) ms"
settle k-new
r=$(runs k-new)
[ "$(wc -l <<<"$r")" = 1 ] || fail "k-new runs: $r"
start=$(awk '{print $2}' <<<"$r")
[ "$start" -ge $((t_fault + 7000)) ] || fail "k-new started during the freeze: $r"
echo "   k-new: $(leases_of k-new | awk '{print $2 "(" $3 ") " $4 " epoch " $5}' | paste -sd, -)"
runs_match k-run "^west [0-9]+ 0 " || fail "k-run was stopped: $(runs k-run)"
only_active_suspect k-run 1
[[ " $(trans k-run 1) " != *" Suspect("* ]] || fail "k-run went Suspect: $(trans k-run 1)"
settle k-run n-fill

# --- 5. clock drift ----------------------------------------------------------
step "clock drift within rho: the hub at +10000 ppm, west's agent at -10000 ppm"
hub_stop
fed_hub_start $RHO_PPM
grep -q 'clock rate skewed for testing" ppm=10000$' < <(sed -n '/^--- started/h; //!H; ${x; p}' "$work/hub.log") ||
    fail "the hub does not run skewed"
fed_agent_kill west
fed_agent_start west -$RHO_PPM
grep -q 'clock rate skewed for testing" ppm=-10000$' "$work/agent-west.log" || fail "the agent does not run skewed"
wait_for 20 "west healthy" metric_is 'gpufed_member_suspect{member="west"}' 0
# A restarted hub counts three times the term it finds for one hold
# (docs/failure-semantics.md, "Changing D"): the cut below is timed
# against D itself.
wait_for 30 "the restarted hub's fencing bound back to D" \
    metric_is 'gpufed_member_fence_term_seconds{member="west"}' 3
job d-1 4 80s
wait_for 30 "d-1 Active in west" lease_line d-1 " Active - west 1$"
wait_for 10 "d-1 running in west" runs_match d-1 "^west [0-9]+ 0 "
fences0=$(agent_fences west)
t_fault=$(now_ms)
fault west blackhole --identity gpufed-hub --for 10s
wait_for 20 "d-1 Fenced" lease_line d-1 " Fenced [^ ]+ west 1$"
wait_for 20 "d-1 runs again in north" runs_match d-1 "^north "
last_hb=$(hb_renew_ms west)
fence_ms=$(agent_fence_ms west)
hub_fenced=$(hub_phase_ms d-1 1 Fenced)
[ "$(agent_fences west)" = $((fences0 + 1)) ] || fail "west's agent fences: $fences0 -> $(agent_fences west)"
echo "   agent fenced $((fence_ms - last_hb)) ms, hub Fenced $((hub_fenced - last_hb)) ms after the last renewal"
[ $((fence_ms - last_hb)) -ge $AGENT_MIN_MS ] || fail "the slow agent fenced early"
[ "$fence_ms" -lt "$hub_fenced" ] || fail "the fast hub's Fenced came before the slow agent's fence"
# The hub's D(1+rho)+M on a clock 1% fast: D + M/(1+rho) of real time.
[ $((hub_fenced - last_hb)) -ge $((D_MS + M_MS * 1000000 / (1000000 + RHO_PPM))) ] ||
    fail "the hub fenced $((hub_fenced - last_hb)) ms after the last renewal"
r=$(runs d-1)
w_stop=$(awk '$1=="west"{print $3}' <<<"$r")
n_start=$(awk '$1=="north"{print $2}' <<<"$r")
[ "$w_stop" != 0 ] && [ "$w_stop" -le "$n_start" ] || fail "d-1 ran in two places at once: $r"
echo "   west run stopped $((n_start - w_stop)) ms before the north run started"
wait_for 30 "d-1 epoch 1 Released(Fenced)" lease_line d-1 " Released Fenced west 1$"
settle d-1

# --- 6. agent partition ----------------------------------------------------
step "agent-partition: west's agent cut off from its API server for 0.5 s"
job a-1 4 80s
wait_for 30 "a-1 Active in west" lease_line a-1 " Active - west 1$"
wait_for 10 "a-1 running in west" runs_match a-1 "^west [0-9]+ 0 "
fences0=$(agent_fences west)
err0=$(metric 'gpufed_heartbeat_renewals_total{member="west",result="error"}')
hb0=$(hb_renew_ms west)
agent_reads() { ametric west 'gpufed_agent_heartbeat_reads_total{result="ok"}'; }
reads0=$(agent_reads)
fault west blackhole --identity member-agent --for 500ms
# The agent reads again and sees the heartbeat move: four answered reads
# since the fault, of which one may have been sent before it and one
# held through the cut, so two at least sent after it.
read_again() {
    local n
    n=$(agent_reads)
    [ -n "$n" ] && [ $((n - ${reads0%.*})) -ge 4 ]
}
wait_for 10 "west's agent reads the heartbeat again after the cut" read_again
hb_moves west "$hb0" || fail "the hub stopped renewing"
[ "$(agent_fences west)" = "$fences0" ] || fail "west's agent fenced after 0.5 s cut off"
settle a-1
[[ "$(trans a-1 1)" != *Suspect* && "$(trans a-1 1)" != *Fenced* ]] || fail "a-1: $(trans a-1 1)"
[ "$(metric 'gpufed_heartbeat_renewals_total{member="west",result="error"}')" = "$err0" ] ||
    fail "renewals failed while only the agent was cut off"
[ "$(runs a-1 | wc -l)" = 1 ] || fail "a-1 runs: $(runs a-1)"

step "agent-partition: cut off for 4 s (> D): its fence lands only once it reaches its API server again"
job a-2 4 80s
wait_for 30 "a-2 Active in west" lease_line a-2 " Active - west 1$"
wait_for 10 "a-2 running in west" runs_match a-2 "^west [0-9]+ 0 "
fences0=$(agent_fences west)
copy0=$(copy_of west a-2)
t_fault=$(now_ms)
fault west blackhole --identity member-agent --for 4s
# The agent's deadline passes during the cut, but it cannot write: the
# copy runs on, and the hub, which still reaches west, renews.
# A look that ends after the cut (a slow kubectl on a busy machine) says
# nothing about the cut: the agent may have fenced by then.
while [ $(($(now_ms) - t_fault)) -lt 3800 ]; do
    suspect=$(metric 'gpufed_member_suspect{member="west"}')
    c=$(copy_of west a-2) || c=""
    [ $(($(now_ms) - t_fault)) -lt 4000 ] || break
    [ "$suspect" = 0 ] || fail "west suspect while only its agent is cut off"
    [ "$c" = "$copy0" ] || fail "a-2's copy touched during the cut: '$c'"
    sleep 0.2
done
# Still running, or stopped no earlier than the cut's end (this look too
# may come after it).
stop=$(runs a-2 | awk 'NR==1 && $1=="west" {print $3}')
[ "$stop" = 0 ] || [ "${stop:-0}" -ge $((t_fault + 4000)) ] ||
    fail "a-2 stopped during the cut: $(runs a-2)"
# Its deadline passed during the cut: it decided to fence and could not
# write. After the heal its first read shows the heartbeat moved, but
# that cannot move its credit past the last read before the cut (the
# renewal may have landed just after it), so it stays fenced, and its
# LIST and patches land: the copy stops, after the cut.
wait_for 15 "a-2's first run stopped by the agent's fence" runs_match a-2 "^west [0-9]+ [1-9][0-9]* Suspended$"
[ "$(agent_fences west)" -gt "$fences0" ] || fail "the agent did not fence"
stop=$(runs a-2 | awk 'NR==1{print $3}')
[ "$stop" -ge $((t_fault + 4000)) ] || fail "a-2's copy stopped during the cut: $(runs a-2)"
echo "   cut -> agent's fence decided: $(($(agent_fence_ms west) - t_fault)) ms," \
    "copy stopped: $((stop - t_fault)) ms (the cut ends at 4000 ms)"
wait_for 20 "a-2 epoch 1 Released(Fenced)" lease_line a-2 " Released Fenced west 1$"
[[ "$(trans a-2 1)" != *Suspect* ]] || fail "the hub suspected west: $(trans a-2 1)"
settle a-2
no_overlap a-2
echo "   a-2: $(leases_of a-2 | awk '{print $2 "(" $3 ") " $4 " epoch " $5}' | paste -sd, -)"

# --- 7. agent kill ------------------------------------------------------------
step "agent-kill: SIGKILL of west's agent, restarted while the heartbeat is fresh"
job g-1 4 120s
wait_for 30 "g-1 Active in west" lease_line g-1 " Active - west 1$"
wait_for 10 "g-1 running in west" runs_match g-1 "^west [0-9]+ 0 "
fed_agent_kill west
fault_note west agent-kill
fed_agent_start west
sleep $((2 * D_MS / 1000))
[ "$(agent_fences west)" = 0 ] || fail "the restarted agent fenced on a fresh heartbeat"
[[ "$(copy_of west g-1)" == *" true" ]] || fail "g-1's copy touched: $(copy_of west g-1)"

step "agent-kill: SIGKILL, the hub cut off from west, the agent restarted on a stale heartbeat"
fed_agent_kill west
fault west blackhole --identity gpufed-hub --for 12s
while [ $(($(now_ms) - $(hb_renew_ms west))) -lt $D_MS ]; do sleep 0.2; done
last_hb=$(hb_renew_ms west)
t_start=$(now_ms)
fed_agent_start west
fenced_copy() { [[ "$(copy_of west g-1)" == *" false" ]]; }
wait_for 10 "g-1's copy fenced by the restarted agent" fenced_copy
fence_ms=$(agent_fence_ms west)
# At once: decided on its first read of the heartbeat, by the start rule.
first=$(grep -A1 'msg="heartbeat read"' < <(current_log "$work/agent-west.log") | grep comp=agent | sed -n 2p)
[[ $first == *"msg=fencing "*"was last renewed "*"ago by this cluster's clock"* ]] ||
    fail "the restarted agent did not fence on its first read: $first"
echo "   agent start -> fence: $((fence_ms - t_start)) ms (heartbeat age at start $((t_start - last_hb)) ms)"
wait_for 20 "g-1 Fenced" lease_line g-1 " Fenced [^ ]+ west 1$"
hub_fenced=$(hub_phase_ms g-1 1 Fenced)
[ "$fence_ms" -lt "$hub_fenced" ] || fail "the hub's Fenced came before the restarted agent's fence"
wait_for 20 "g-1 runs again in north" runs_match g-1 "^north "
r=$(runs g-1)
w_stop=$(awk '$1=="west"{print $3}' <<<"$r")
n_start=$(awk '$1=="north"{print $2}' <<<"$r")
[ "$w_stop" != 0 ] && [ "$w_stop" -le "$n_start" ] || fail "g-1 ran in two places at once: $r"
wait_for 30 "g-1 epoch 1 Released(Fenced)" lease_line g-1 " Released Fenced west 1$"
settle g-1

step "the chaos checker on the whole run"
fed_check S1,S2,S3,L2
hub_stop
echo "PASS"
