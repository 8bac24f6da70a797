#!/usr/bin/env bash
# e2e/demo_report.py on made-up inputs, the cases a demo run cannot be
# counted on to produce:
#   double completion  a Job of the partition finished twice: the summary
#                      says S3 VIOLATED and exits 1
#   clean partition    the same partition, the second run withdrawn: the
#                      summary says what was suspected, fenced and run
#                      again, the time to convergence, and exits 0
#   lender             the member with the most running copies, unless one
#                      of them is due to end within --avoid-ms (the blind
#                      window)
#   done               a run with a partition is over only once the lender
#                      is healthy again and no lease is Suspect or Fenced
# Needs python3 only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "-- $*"; }
report() { python3 "$here/demo_report.py" "$@"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Times: the run starts at T (ms since the epoch); north is cut off at
# T+2 s for 14 s.
T=1800000000000
ts() { # offset_ms: the hub log's ts
    date -u -d "@$(((T + $1) / 1000)).$(printf '%03d' $(((T + $1) % 1000)))" \
        +%Y-%m-%dT%H:%M:%S.%3NZ
}
ev() { # cluster pod event offset_ms reason job
    printf '{"cluster":"%s","namespace":"nlp","pod":"%s","event":"%s","ts_ms":%d,"reason":"%s","gpus":4,"labels":{"demo.gpufed.io/job":"%s"}}\n' \
        "$1" "$2" "$3" $((T + $4)) "$5" "$6"
}

d=$tmp/fed
mkdir -p "$d"
printf '0 east nlp 4 60 j001\n100 east nlp 2 60 j002\n' >"$tmp/trace"
printf 'j001 %d\nj002 %d\n' "$T" $((T + 100)) >"$d/submits"
echo "$T" >"$d/t0"
echo "north $((T + 2000)) 14000" >"$d/partition"
L=east-nlp-train-j001-0a1b2c3d
cat >"$d/hub.log" <<EOF
ts=$(ts 500) level=info comp=lease key=$L-1 msg="lease phase" phase=Active reason= rule="copy admitted"
ts=$(ts 3000) level=warn comp=heartbeat cluster=north msg="member suspect" why="renewal failed: timed out"
ts=$(ts 3100) level=info comp=lease key=$L-1 msg="lease phase" phase=Suspect reason= rule="lender unreachable"
ts=$(ts 11500) level=info comp=lease key=$L-1 msg="lease phase" phase=Fenced reason=Fenced rule="fencing time passed"
ts=$(ts 17000) level=info comp=heartbeat cluster=north msg="member healthy again"
ts=$(ts 17400) level=info comp=lease key=$L-1 msg="lease phase" phase=Released reason=Completed rule="copy finished"
EOF
echo "ts=$(ts 7900) level=warn comp=agent cluster=north msg=fencing member=north copies=0 why=x" \
    >"$d/agent-north.log"
# j001's copy finished in north unseen (the blind window); its second
# run at home is given in each case below.
{
    ev north p1 start 1000 "" j001
    ev north p1 stop 7000 Succeeded j001
    ev east p3 start 200 "" j002
    ev east p3 stop 6200 Succeeded j002
    ev east p2 start 12500 "" j001
} >"$d/exec.base"
summary() {
    report summary --trace "$tmp/trace" --members east,west,north \
        --capacity 56 --scale 10 --run "with federation|$d/submits|$d/exec.log" \
        --partition "with federation|$d"
}

step "double completion: S3 VIOLATED, exit 1"
{ cat "$d/exec.base"; ev east p2 stop 18500 Succeeded j001; } >"$d/exec.log"
rc=0
out=$(summary) || rc=$?
[ $rc -eq 1 ] || fail "summary exited $rc: $out"
grep -q '^  S3 VIOLATED: j001 ran to its end twice (the blind window' <<<"$out" ||
    fail "no plain S3 statement: $out"
grep -q '^with federation: FAILED partition checks:' <<<"$out" ||
    fail "not marked FAILED: $out"

step "clean partition: the second run withdrawn, exit 0"
{ cat "$d/exec.base"; ev east p2 stop 17800 Deleted j001; } >"$d/exec.log"
cat >>"$d/hub.log" <<EOF
ts=$(ts 17600) level=info comp=lease key=$L-2 msg="lease phase" phase=Released reason=Superseded rule="the first run's outcome stands"
EOF
rc=0
out=$(summary) || rc=$?
[ $rc -eq 0 ] || fail "summary exited $rc: $out"
grep -q '^  with federation: north cut off from the hub (blackhole for gpufed-hub) at +2.0s (simulated 0m20s) for 14s$' \
    <<<"$out" || fail "partition: $out"
grep -q '^    leases: 1 Suspect, 1 Fenced; the agent in north fenced after 5.9s, the hub counted them fenced after 9.5s$' \
    <<<"$out" || fail "leases: $out"
grep -q '^    run again after the fence: 1 Job (finished: j001 in north)$' <<<"$out" ||
    fail "run again: $out"
grep -q '^    blind window: 1 copy finished unseen before the fence' <<<"$out" ||
    fail "blind window: $out"
grep -q '^    heal to convergence (north healthy again, no lease Suspect or Fenced): 1.6s$' \
    <<<"$out" || fail "convergence: $out"
! grep -q 'VIOLATED\|FAILED' <<<"$out" || fail "a clean run failed: $out"
# A later lease of the same origin is progress, not convergence.
cat >>"$d/hub.log" <<EOF
ts=$(ts 25000) level=info comp=lease key=$L-3 msg="lease phase" phase=Released reason=Completed rule="copy finished"
EOF
out=$(summary)
grep -q '^    heal to convergence (north healthy again, no lease Suspect or Fenced): 1.6s$' \
    <<<"$out" || fail "convergence counts a later lease: $out"
# A loan whose lender was cut off: its Job runs on at home, its lease
# goes Suspect and is Active again on the heal, which settles it; the
# release when the Job ends, 13 s later, is not convergence.
N=east-nlp-train-j002-4e5f6a7b-1
cat >>"$d/hub.log" <<EOF
ts=$(ts 3200) level=info comp=loan key=$N msg="lease phase" phase=Suspect reason="" granted=1 rule="member unreachable"
ts=$(ts 17300) level=info comp=loan key=$N msg="lease phase" phase=Active reason="" granted=1 rule="members back: loan granted"
ts=$(ts 30000) level=info comp=loan key=$N msg="lease phase" phase=Releasing reason=Completed granted=1 rule="origin finished"
ts=$(ts 30010) level=info comp=loan key=$N msg="lease phase" phase=Released reason=Completed granted=0 rule=released
EOF
out=$(summary)
grep -q '^    heal to convergence (north healthy again, no lease Suspect or Fenced): 1.6s$' \
    <<<"$out" || fail "convergence counts a loan's later release: $out"

step "lender: the most running copies, none of them about to end"
e=$tmp/exec-lender.log
{
    ev north a start 0 "" j001   # 60 s simulated: ends at +6 s
    ev north b start 0 "" j002   # ends at +6 s
    ev west c start 4000 "" j001 # ends at +10 s
} >"$e"
l() { report lender --trace "$tmp/trace" --exec-log "$e" --now-ms $((T + 1000)) \
    --scale 10 --avoid-ms "$1"; }
[ "$(l 0)" = north ] || fail "lender without avoidance: '$(l 0)'"
[ "$(l 7000)" = west ] || fail "lender avoiding copies ending within 7 s: '$(l 7000)'"
[ -z "$(l 10000)" ] || fail "lender when every copy ends soon: '$(l 10000)'"

step "done: only once the hub has converged after the heal"
{ cat "$d/exec.base"; ev east p2 stop 17800 Deleted j001; } >"$d/exec.log"
report "done" --trace "$tmp/trace" --exec-log "$d/exec.log" \
    --partition "$d/partition" --hub-log "$d/hub.log" || fail "not done"
sed -i '/member healthy again/d' "$d/hub.log"
! report "done" --trace "$tmp/trace" --exec-log "$d/exec.log" \
    --partition "$d/partition" --hub-log "$d/hub.log" ||
    fail "done before the lender was healthy again"
echo "ts=$(ts 17000) level=info comp=heartbeat cluster=north msg=\"member healthy again\"" \
    >>"$d/hub.log"
echo "ts=$(ts 18000) level=info comp=lease key=$L-4 msg=\"lease phase\" phase=Suspect reason= rule=x" \
    >>"$d/hub.log"
! report "done" --trace "$tmp/trace" --exec-log "$d/exec.log" \
    --partition "$d/partition" --hub-log "$d/hub.log" ||
    fail "done while a lease was Suspect"
echo PASS
