#!/usr/bin/env bash
# Differential tests: every case file under e2e/diff/cases/ is sent to
# kubesim (Kueue-lite off) and to a real kube-apiserver v1.28.7 on etcd
# ($GF_SHARED/realk8s), and the answers, normalized, must match, except
# where a case says that kubesim deliberately differs (docs/kubesim.md
# lists those). The format of a case file is in e2e/diff/README.md; the
# runner is e2e/diff/run.py. Both servers start once for all cases.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server; `make deps`) and
# /usr/bin/python3 with PyYAML. Fails, never skips, when one is missing.
# Every process and server started here is stopped on any exit.
set -euo pipefail

: "${GF_BIN:?GF_BIN must name the directory with kubesim}"
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
RK=$SHARED/realk8s
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=e2e/lib/kubesim.sh
. "$HERE/lib/kubesim.sh"

command -v etcd >/dev/null ||
    fail "etcd not found: this test needs a real kube-apiserver on etcd" \
        "(Debian package etcd-server; make deps installs it)"
[ -x "$RK/kube-apiserver" ] || fail "no kube-apiserver in $RK"
/usr/bin/python3 -c 'import yaml' || fail "python3 has no PyYAML"

sim_scratch
sim_on_exit() {
    if [ -d "$work/real" ]; then
        "$RK/down.sh" "$work/real" >/dev/null 2>&1 || true
    fi
}

step "a real API server and kubesim"
t0=$SECONDS
"$RK/up.sh" "$work/real" >"$work/up.log" 2>&1 &
up=$!
sim_start "$work/sim" --clusters diff --no-kueue
wait $up || fail "the real API server did not start: $(tail -3 "$work/up.log")"
echo "   both serving after $((SECONDS - t0)) s"

step "the cases"
t0=$SECONDS
/usr/bin/python3 "$HERE/diff/run.py" \
    --sim "$work/sim/diff/kubeconfig-admin.yaml" \
    --real "$work/real/kubeconfig-admin.yaml" \
    "$HERE"/diff/cases/*.yaml || fail "kubesim answers differently"
echo "   cases took $((SECONDS - t0)) s"
# Under ASan a leak shows as kubesim's exit status.
sim_stop
[ "$STOP_RC" = 0 ] || fail "kubesim exited with $STOP_RC on SIGTERM"
echo "PASS test_realk8s_diff"
