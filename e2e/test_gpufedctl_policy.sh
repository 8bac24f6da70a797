#!/usr/bin/env bash
# gpufedctl policy check, as an admin runs it: the annotated manifest is
# valid (exit 0); a copy with several mistakes reports every one of them
# at once, each as FILE:LINE:COL: error: PATH: MSG (exit 1); a file that
# cannot be read exits 2.
set -euo pipefail
BIN=${GF_BIN:?GF_BIN must name the directory with gpufedctl}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
manifest=manifests/policy/federation-policy.yaml
check() { "$BIN/gpufedctl" policy check "$@"; }

out=$(check "$manifest") || fail "manifest rejected: $out"
grep -q "valid: 3 members, 2 groups" <<<"$out" || fail "summary: $out"

# Four mistakes: a negative cap, a fraction over 1, a group naming an
# unknown member, and a ClusterQueue claimed by two groups.
sed -e '0,/maxGPUs: 32 /s//maxGPUs: -4 /' \
    -e 's/lending: {maxFraction: 0.75}/lending: {maxFraction: 1.5}/' \
    -e 's/- {member: north, name: research}/- {member: south, name: research}/' \
    -e 's/- {member: west, name: serving}/- {member: west, name: research-gpu}/' \
    "$manifest" >"$work/broken.yaml"
set +e
out=$(check "$work/broken.yaml" 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] || fail "broken policy: exit $rc"
echo "$out"
for want in \
    'spec.members\[0\].lending.maxGPUs: .*negative' \
    'spec.members\[1\].lending.maxFraction: .*' \
    'spec.groups\[0\].clusterQueues\[2\].member: .*south' \
    'spec.groups\[1\].clusterQueues\[1\]: ClusterQueue west/research-gpu is claimed by two groups'; do
    grep -Eq "^$work/broken.yaml:[0-9]+:[0-9]+: error: $want" <<<"$out" ||
        fail "missing error: $want"
done
[ "$(grep -c ': error: ' <<<"$out")" -ge 4 ] || fail "not every error reported"

set +e
check "$work/missing.yaml" 2>/dev/null
rc=$?
check "$manifest" "$work/broken.yaml" >/dev/null 2>&1
rc2=$?
set -e
[ $rc -eq 2 ] || fail "unreadable file: exit $rc"
[ $rc2 -eq 1 ] || fail "one bad file among two: exit $rc2"
# explain, offline: a policy plus a ledger snapshot.
snap=policy/fuzz/corpus/snapshot/federation.json
out=$("$BIN/gpufedctl" policy explain \
    "$manifest" "$snap" east/research/train-b)
grep -q "next: start a loan lease in west/research-gpu (flavor gpu-a100-80gb), epoch 1" \
    <<<"$out" || fail "explain train-b: $out"
out=$("$BIN/gpufedctl" policy explain "$manifest" "$snap" east/research/train-c -o json)
[ "$(jq -r .decision.rule <<<"$out")" = overflowAfter ] || fail "explain -o json: $out"
# --at moves the clock: two minutes later train-c may overflow too
out=$("$BIN/gpufedctl" policy explain "$manifest" "$snap" east/research/train-c --at 720000)
grep -q "next: start" <<<"$out" || fail "explain --at: $out"
# without a Workload: every action of the next pass
out=$("$BIN/gpufedctl" policy explain "$manifest" "$snap")
[ "$(grep -c '^start ' <<<"$out")" -eq 1 ] || fail "explain all: $out"
set +e
"$BIN/gpufedctl" policy explain "$manifest" "$snap" east/research/nope >/dev/null 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "explain of a missing Workload: exit $rc"
echo "PASS test_gpufedctl_policy"
