#!/usr/bin/env bash
# gpufed hub with its hub cluster on a real kube-apiserver v1.28 (from
# $GF_SHARED/realk8s): the real server validates the QuotaLease CRD, the
# leases the hub writes (spec and status, through the status
# subresource) and the hub's least-privilege RBAC from manifests/hub. The
# members stay on kubesim (the real server runs no Kueue). One Job
# overflows from east to west and runs there exactly once.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server), kubectl and jq. A
# missing one fails the test: this is never a silent pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/kubesim.sh"
. "$here/lib/hubworld.sh"
REALK8S="${GF_SHARED:?GF_SHARED must name the shared folder}/realk8s"
HW_NEEDS=etcd hw_begin 30
hw_on_exit() { "$REALK8S/down.sh" "$work/srv" >/dev/null 2>&1 || true; }
[ -x "$REALK8S/kube-apiserver" ] || fail "no kube-apiserver in $REALK8S"

step "hub: a real kube-apiserver with manifests/hub"
"$REALK8S/up.sh" "$work/srv" >/dev/null || fail "kube-apiserver did not start"
H() { kubectl --kubeconfig "$work/srv/kubeconfig-admin.yaml" --cache-dir "$work/kc" "$@"; }
H apply -k "$root/manifests/hub" >/dev/null
H wait --for condition=established crd/quotaleases.gpufed.io --timeout 30s >/dev/null

step "heartbeat Lease: the hub's MicroTime format is what a real server accepts"
# The Lease the hub creates in each member (pinned by test_heartbeat.c),
# then a renewal in the same format; a real server refuses other formats.
H -n gpufed-system create -f "$root/controller/test/testdata/heartbeat-lease.json" >/dev/null ||
    fail "the real server refused the heartbeat Lease"
rv=$(H -n gpufed-system get lease gpufed-heartbeat -o jsonpath='{.metadata.resourceVersion}')
H -n gpufed-system patch lease gpufed-heartbeat --type merge -p \
    "{\"metadata\":{\"resourceVersion\":\"$rv\"},\"spec\":{\"renewTime\":\"2026-12-06T05:21:36.123456Z\"}}" >/dev/null ||
    fail "the real server refused a heartbeat renewal"
if H -n gpufed-system patch lease gpufed-heartbeat --type merge \
    -p '{"spec":{"renewTime":"2026-12-06T05:21:36Z"}}' >/dev/null 2>&1; then
    fail "the real server took a renewTime without microseconds: this check proves nothing"
fi
H -n gpufed-system delete lease gpufed-heartbeat >/dev/null

step "members: east (no GPU quota) and west (8 idle GPUs) on kubesim"
D="$work/sim"
sim_start "$D" --clusters east,west --crds "$SHARED/kueue/crds" --time-scale 10
for m in east west; do
    K "$m" apply -k "$root/manifests/member" >/dev/null
    H -n gpufed-system create secret generic "$m-kubeconfig" \
        --from-file=kubeconfig="$D/$m/kubeconfig-gpufed-hub.yaml" >/dev/null
done
queues_yaml 0 | E apply -f - >/dev/null
queues_yaml 8 | W apply -f - >/dev/null
cat >"$work/policy.yaml" <<EOF
apiVersion: gpufed.io/v1alpha1
kind: FederationPolicy
metadata: {name: realk8s}
spec:
  members:
  - {name: east, apiServer: "https://127.0.0.1:$(sim_port east)", credentialsSecret: gpufed-system/east-kubeconfig, fencing: none}
  - {name: west, apiServer: "https://127.0.0.1:$(sim_port west)", credentialsSecret: gpufed-system/west-kubeconfig, fencing: none}
  flavorEquivalence:
  - name: a100
    flavors: [{member: east, flavor: a100}, {member: west, flavor: a100}]
  groups:
  - name: ml
    clusterQueues: [{member: east, name: ml-gpu}, {member: west, name: ml-gpu}]
  timing: {overflowAfter: 2s}
EOF

step "gpufed hub as gpufed-hub on the real server: one Job overflows"
"$GF_BIN/gpufed" hub --kubeconfig "$work/srv/kubeconfig-gpufed-hub.yaml" \
    --policy "$work/policy.yaml" >"$work/hub.log" 2>&1 &
hub_pid=$!
job_yaml train-1 4 20s | E create -f - >/dev/null
released() {
    H -n gpufed-system get ql -o json |
        jq -e '.items[] | select(.spec.origin.jobName=="train-1") |
               select(.status.phase=="Released" and .status.reason=="Completed")' >/dev/null
}
for _ in $(seq 1 150); do released && break; sleep 0.2; done
released || fail "train-1's lease did not end Released(Completed) on the real server: $(H -n gpufed-system get ql -o json | jq -c '.items[].status')"
H -n gpufed-system get ql -o json | jq -e '.items[0].status.transitions | length >= 2' >/dev/null ||
    fail "no transitions recorded: $(H -n gpufed-system get ql -o json | jq -c '.items[0].status')"
if grep -q 'level=error\|Forbidden' "$work/hub.log"; then
    fail "errors in the hub log: $(grep -m3 'level=error\|Forbidden' "$work/hub.log")"
fi
hub_stop
echo "PASS"
