#!/usr/bin/env bash
# `make demo` in its fast mode (DEMO_FAST=1: 20 short Jobs), without a
# terminal: it must exit 0, print plain frames with no escape codes, show
# the hub's redirects, loans and leases live, show the partition live (the
# lender marked, the hub holding it suspect, its agent fencing, its
# leases Suspect then Fenced, the heal), say in its summary what the
# partition did, how many Jobs ran on loans and east/nlp's peak over its
# own quota, and that every Job finished exactly once in both runs
# with at least one run in another member, and leave none of its
# processes behind.
#
# Needs GF_BIN and GF_SHARED (make e2e sets both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/kubesim.sh"

# A private TMPDIR: the demo's work directory is under it, so that what
# it leaves running (if anything) can be found by that path alone.
tmp=$(mktemp -d)
out=$tmp/out
trap 'rm -rf "$tmp"' EXIT

step "the fast demo, no terminal"
rc=0
TMPDIR=$tmp DEMO_FAST=1 bash "$here/demo.sh" </dev/null >"$out" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
    tail -n 60 "$out" >&2
    fail "demo exited $rc"
fi

! grep -q $'\033' "$out" || fail "escape codes without a terminal"
[ "$(grep -c '^gpufed demo: with federation' "$out")" -ge 3 ] ||
    fail "fewer than 3 live frames of the federated run"
grep -q '^gpufed demo: without federation' "$out" ||
    fail "no frame of the run without gpufed"
grep -Eq '^  [0-9:]{8} redirect east/[a-z]+/[^ ]+ -> (west|north)/[a-z]+, [0-9]+ GPUs: pending ' \
    "$out" || fail "no redirect decision with its reason shown"
grep -Eq '^  east-[a-z]+-train-j[0-9]+-[0-9a-f]+-1 +(Active|Released) ' "$out" ||
    fail "no QuotaLease shown"
grep -Eq '^  east/[a-z]+/[a-z]+-train-j[0-9]+ placement=(west|north) outcome=Succeeded$' \
    "$out" || fail "no origin Job with placement and outcome"

fed=$(grep -E '^with federation: [0-9]+/[0-9]+ jobs finished exactly once' "$out") ||
    fail "no verdict for the run with gpufed"
[[ $fed =~ ^with\ federation:\ ([0-9]+)/([0-9]+)\ jobs\ finished\ exactly\ once,\ ([0-9]+)\ ran\ in\ another\ member ]] ||
    fail "verdict: $fed"
[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] || fail "$fed"
[ "${BASH_REMATCH[1]}" = 20 ] || fail "expected 20 Jobs: $fed"
[ "${BASH_REMATCH[3]}" -ge 1 ] || fail "nothing redirected: $fed"
grep -Eq '^without federation: 20/20 jobs finished exactly once, 0 ran in another member' \
    "$out" || fail "no clean verdict for the run without gpufed"
grep -q 'FAILED' "$out" && fail "a check failed"

step "loans: nlp's group is in mode both"
grep -Eq '^  [0-9:]{8} loan east/nlp/[^ ]+ <- (west|north)/nlp, [0-9]+ GPUs: mode loan: ' \
    "$out" || fail "no loan decision with its reason shown"
grep -Eq '^  [1-9][0-9]* Jobs? ran at home on quota lent by another member$' "$out" ||
    fail "summary: no Job ran on a loan: $(grep -A2 '^loans' "$out")"
grep -Eq '^  peak GPUs in use in east/nlp: [0-9]+, [1-9][0-9]* over its own quota of 8$' \
    "$out" || fail "summary: east/nlp never above its own quota: $(grep -A2 '^loans' "$out")"
grep -E '^  peak GPUs|ran at home on quota' "$out" | sed 's/^ */  measured: /'

step "the partition, live and in the summary"
part=$(grep -E '^  with federation: (west|north) cut off from the hub' "$out") ||
    fail "no partition in the summary: $(grep -A3 '^the partition' "$out")"
lender=$(awk '{print $3}' <<<"$part")
grep -Eq "^$lender +[0-9.]+s +SUSPECT +FENCED, [1-9][0-9]* cop(y|ies) fenced +PARTITIONED \(hub cut off\) [0-9]+s\$" \
    "$out" || fail "no frame with $lender partitioned, suspect and fenced by its agent"
grep -Eq "^$lender +[0-9.]+s +healthy .* healed\$" "$out" ||
    fail "no frame with $lender healed"
grep -Eq "^  [0-9:]{8} member $lender SUSPECT: " "$out" ||
    fail "the hub's suspicion not in the decisions"
grep -Eq "^  [0-9:]{8} agent $lender FENCING [1-9][0-9]* cop(y|ies): the hub's heartbeat" \
    "$out" || fail "the agent's fence not in the decisions"
grep -Eq "^  [0-9:]{8} lease east-[a-z]+-train-j[0-9]+-[0-9a-f]+-[0-9]+ Fenced Fenced: " \
    "$out" || fail "no lease Fenced in the decisions"
grep -Eq "^  [0-9:]{8} lease east-[a-z]+-train-j[0-9]+-[0-9a-f]+-[0-9]+ Released Fenced: " \
    "$out" || fail "no fenced lease released on the heal"
grep -Eq '^    leases: [1-9][0-9]* Suspect, [1-9][0-9]* Fenced; ' "$out" ||
    fail "summary: $(grep '^    leases:' "$out")"
grep -Eq '^    run again after the fence: [1-9][0-9]* Jobs? \(finished: ' "$out" ||
    fail "summary: nothing run again after the fence"
grep -Eq '^  without federation: no partition' "$out" ||
    fail "summary: the run without gpufed"
grep -E '^    leases: |^    heal to convergence' "$out" | sed 's/^   /  measured:/'

# Everything the demo started is gone: no kubesim or gpufed serving from
# its work directory.
! pgrep -f "$tmp/gpufed-demo" >/dev/null ||
    fail "processes left behind"
step "ok: $fed"
