#!/usr/bin/env bash
# `make demo` in its fast mode (DEMO_FAST=1: 16 short Jobs), without a
# terminal: it must exit 0, print plain frames with no escape codes, show
# the hub's redirects and leases live, say in its summary that every Job
# finished exactly once in both runs with at least one run in another
# member, and leave none of its processes behind.
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
[ "${BASH_REMATCH[1]}" = 16 ] || fail "expected 16 Jobs: $fed"
[ "${BASH_REMATCH[3]}" -ge 1 ] || fail "nothing redirected: $fed"
grep -Eq '^without federation: 16/16 jobs finished exactly once, 0 ran in another member' \
    "$out" || fail "no clean verdict for the run without gpufed"
grep -q 'FAILED' "$out" && fail "a check failed"

# Everything the demo started is gone: no kubesim or gpufed serving from
# its work directory.
! pgrep -f "$tmp/gpufed-demo" >/dev/null ||
    fail "processes left behind"
step "ok: $fed"
