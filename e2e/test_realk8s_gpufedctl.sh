#!/usr/bin/env bash
# gpufedctl kube against a real kube-apiserver (v1.28.7 on etcd, from
# $GF_SHARED/realk8s) with the Kueue CRDs installed, every answer checked
# against kubectl's on the same server: the CRDs' short names (cq, kwl,
# lq, rf), a name no server defines (wl), a cluster-scoped built-in named
# as resource.version.group, singular and Kind, get NAME -A, -o json of
# an int64 past 2^53 (ClusterQueue status.fairSharing.weightedShare) and
# of list items, and --help.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server), kubectl and jq. A
# missing one fails the test: this is never a silent pass.
set -euo pipefail

SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
REALK8S="$SHARED/realk8s"
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "-- $*"; }
for c in etcd kubectl jq; do
    command -v $c >/dev/null ||
        fail "'$c' not found: this test needs a real kube-apiserver on etcd (make deps)"
done
[ -x "$REALK8S/kube-apiserver" ] || fail "no kube-apiserver in $REALK8S"

work=$(mktemp -d)
cleanup() {
    local rc=$?
    if [ $rc -ne 0 ] && [ -f "$work/srv/kube-apiserver.log" ]; then
        tail -20 "$work/srv/kube-apiserver.log" >&2
    fi
    "$REALK8S/down.sh" "$work/srv" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "start kube-apiserver, install the Kueue CRDs"
"$REALK8S/up.sh" "$work/srv" >/dev/null || fail "kube-apiserver did not start"
KC="$work/srv/kubeconfig-admin.yaml"
# A private discovery cache: kubectl must see the CRDs just installed.
k() { kubectl --kubeconfig "$KC" --cache-dir "$work/kcache" "$@"; }
g() { "$GF_BIN/gpufedctl" kube "$1" "${@:2}" --kubeconfig "$KC"; }
crds=()
for f in "$SHARED"/kueue/crds/*.yaml; do
    # The Workload CRD uses selectableFields (1.30): the server's copy
    # leaves them out.
    case $f in *_workloads.yaml) f="$REALK8S/kueue-workloads-crd-k128.yaml" ;; esac
    crds+=(-f "$f")
done
k apply --server-side "${crds[@]}" >/dev/null
k wait --for condition=established crd --all --timeout 30s >/dev/null
k apply -f "$SHARED/kueue/samples/single-cluster/single-clusterqueue-setup.yaml" >/dev/null
k apply -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gpu-local}
provisioner: kubernetes.io/no-provisioner
EOF

# same ARGS...: gpufedctl's stdout, stderr and exit status are kubectl's
# (kubectl with -o name; the exit status of a kubectl failure is 1).
same() {
    local grc=0 krc=0
    g get "$@" >"$work/g.out" 2>"$work/g.err" || grc=$?
    k get "$@" -o name >"$work/k.out" 2>"$work/k.err" || krc=$?
    [ $grc -eq $krc ] || fail "get $*: exit $grc, kubectl $krc"
    diff <(sort "$work/g.out") <(sort "$work/k.out") >&2 ||
        fail "get $*: output differs from kubectl"
    if [ $krc -ne 0 ]; then
        diff "$work/g.err" "$work/k.err" >&2 || fail "get $*: error differs"
    fi
}

step "names from discovery: cq kwl lq rf, not wl; storage classes"
for r in cq kwl lq rf storageclasses.v1.storage.k8s.io storageclass \
    StorageClass; do
    same "$r" -A
done
same wl
[ "$(g get storageclasses.v1.storage.k8s.io gpu-local)" = \
    "$(k get storageclasses.v1.storage.k8s.io gpu-local -o name)" ] ||
    fail "cluster-scoped object by resource.version.group"
same cq cluster-queue
same lq user-queue -n default

step "get NAME -A says what kubectl says"
# (fine for a cluster-scoped resource, an error for a namespaced one)
same cq cluster-queue -A
set +e
gout=$(g get lq user-queue -A 2>&1); grc=$?
kout=$(k get lq user-queue -A 2>&1)
set -e
[ "$gout" = "$kout" ] || fail "get NAME -A: '$gout', kubectl '$kout'"
[ $grc -eq 2 ] || fail "get NAME -A: exit $grc (usage: 2)"

step "-o json: an int64 past 2^53 stays exact; list items carry apiVersion and kind"
k patch cq cluster-queue --subresource=status --type=merge \
    -p '{"status":{"fairSharing":{"weightedShare":9007199254740993}}}' >/dev/null
# grep reads from a process substitution, not a pipe: `grep -q` stops
# at the first match, and under pipefail the writer's SIGPIPE would fail
# the pipeline at random.
grep -q '"weightedShare": 9007199254740993' < <(k get cq cluster-queue -o json) ||
    fail "kubectl does not show the value (test setup)"
grep -q '"weightedShare":.9007199254740993$' < <(g get cq cluster-queue -o json) ||
    fail "get NAME -o json rounded the int64"
grep -q '"weightedShare":.9007199254740993$' < <(g get cq -o json) ||
    fail "get -o json (a list) rounded the int64"
# jq reads numbers as doubles, the same on both sides.
diff <(g get cq -o json | jq -S .) <(k get cq -o json | jq -S .) >&2 ||
    fail "get cq -o json differs from kubectl"
diff <(g get lq -A -o json | jq -S .) <(k get lq -A -o json | jq -S .) >&2 ||
    fail "get lq -A -o json differs from kubectl"
diff <(g get cq cluster-queue -o json | jq -S .) \
    <(k get cq cluster-queue -o json | jq -S .) >&2 ||
    fail "get cq NAME -o json differs from kubectl"

step "--help"
for v in get watch; do
    "$GF_BIN/gpufedctl" kube $v --help >"$work/help" ||
        fail "kube $v --help: exit $?"
    grep -q '^usage: gpufedctl kube' "$work/help" || fail "kube $v --help"
done
echo "PASS test_realk8s_gpufedctl"
