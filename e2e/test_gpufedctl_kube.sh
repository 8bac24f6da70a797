#!/usr/bin/env bash
# gpufedctl kube against kubesim, checked against kubectl's answers: get
# of one object, of a list (across pages), with a label selector and in
# every namespace, -o name and -o json, resource names from discovery
# (the CRDs' short names, singulars, kinds, resource.version.group; `wl`
# is no name), NotFound and an unknown resource (exit 1), get NAME -A and
# --help; a watch that prints creates, updates and deletes, and keeps
# going across a watch drop and an API server restart; SIGINT ends it
# with status 0.
#
# Needs GF_BIN and GF_SHARED. Every process started here is stopped on
# any exit.
set -euo pipefail

SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
. "$(dirname "$0")/lib/kubesim.sh"

sim_scratch
watch_pids=()
sim_on_exit() {
    local p
    for p in "${watch_pids[@]}"; do kill "$p" 2>/dev/null || true; done
}

sim_start "$work/sim" --clusters east --crds "$SHARED/kueue/crds" --seed 5 \
    --no-kueue
KC="$work/sim/east/kubeconfig-admin.yaml"
k() { kubectl --kubeconfig "$KC" "$@"; }
g() { "$GF_BIN/gpufedctl" kube "$1" "${@:2}" --kubeconfig "$KC"; }
fault() { KUBESIM_DIR="$work/sim" "$GF_BIN/kubesim" fault "$@" >/dev/null; }

step "get: one object, lists, selectors, namespaces"
k apply -f "$SHARED/kueue/samples/single-cluster/single-clusterqueue-setup.yaml" >/dev/null
k create namespace team-a >/dev/null
for i in $(seq 1 1203); do echo "---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-$i, namespace: team-a, labels: {parity: p$((i % 2))}}"; done |
    k apply -f - >/dev/null
[ "$(g get clusterqueues.kueue.x-k8s.io cluster-queue)" = \
    "clusterqueue.kueue.x-k8s.io/cluster-queue" ] || fail "get one"
diff <(g get configmaps -n team-a | sort) \
    <(k get configmaps -n team-a -o name | sort) >/dev/null ||
    fail "list across pages differs from kubectl"
[ "$(g get cm -n team-a | wc -l)" -eq 1203 ] || fail "1203 configmaps"
diff <(g get cm -n team-a -l parity=p1 | sort) \
    <(k get cm -n team-a -l parity=p1 -o name | sort) >/dev/null ||
    fail "selector"
g get lq -A | grep -x 'localqueue.kueue.x-k8s.io/user-queue' >/dev/null ||
    fail "all namespaces"
[ "$(g get cm cm-7 -n team-a -o json | jq -r .metadata.labels.parity)" = p1 ] ||
    fail "-o json object"
[ "$(g get cm -n team-a -l parity=p0 -o json | jq '.items | length')" -eq 601 ] ||
    fail "-o json list"

step "names from discovery, as kubectl reads them"
k apply -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: gpu-local}
provisioner: kubernetes.io/no-provisioner
EOF
k apply -f "$SHARED/kueue/samples/cohort-borrowing/07-workload-priority-classes.yaml" >/dev/null
for r in cq kwl lq rf wpc clusterqueue ClusterQueue storageclasses.v1.storage.k8s.io \
    storageclass StorageClass sc workloads.v1beta2.kueue.x-k8s.io; do
    diff <(g get "$r" -A | sort) <(k get "$r" -A -o name | sort) ||
        fail "get $r differs from kubectl"
done
[ "$(g get sc gpu-local)" = storageclass.storage.k8s.io/gpu-local ] ||
    fail "a cluster-scoped resource by name"
set +e
out=$(g get wl 2>&1); rc=$?
set -e
[ $rc -eq 1 ] && [ "$out" = 'error: the server doesn'"'"'t have a resource type "wl"' ] ||
    fail "wl: $rc $out"
set +e
out=$(g get cm cm-7 -A 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && [ "$out" = "error: a resource cannot be retrieved by name across all namespaces" ] ||
    fail "get NAME -A: $rc $out"
[ "$(g get cq cluster-queue -A)" = clusterqueue.kueue.x-k8s.io/cluster-queue ] ||
    fail "get NAME -A of a cluster-scoped resource"
for v in get watch; do
    grep -q '^usage: gpufedctl kube get' < <("$GF_BIN/gpufedctl" kube $v --help) ||
        fail "kube $v --help"
done

step "-o json as kubectl prints it (list items with apiVersion and kind)"
diff <(g get cq -o json | jq -S .) <(k get cq -o json | jq -S .) ||
    fail "get cq -o json differs from kubectl"
diff <(g get lq -A -o json | jq -S .) <(k get lq -A -o json | jq -S .) ||
    fail "get lq -A -o json differs from kubectl"
diff <(g get cq cluster-queue -o json | jq -S .) \
    <(k get cq cluster-queue -o json | jq -S .) || fail "get cq NAME -o json"

step "errors: NotFound and an unknown resource exit 1, a bad kubeconfig 2"
set +e
out=$(g get workloads.kueue.x-k8s.io nope 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "NotFound exit $rc"
echo "$out" | grep -q 'Error from server (NotFound): workloads.kueue.x-k8s.io "nope" not found' ||
    fail "NotFound message: $out"
set +e
g get widgets.example.com >/dev/null 2>&1; rc1=$?
"$GF_BIN/gpufedctl" kube get pods --kubeconfig "$work/missing.yaml" >/dev/null 2>&1; rc2=$?
printf 'clusters: [\n' >"$work/bad.yaml"
out=$("$GF_BIN/gpufedctl" kube get pods --kubeconfig "$work/bad.yaml" 2>&1); rc3=$?
set -e
[ $rc1 -eq 1 ] && [ $rc2 -eq 2 ] && [ $rc3 -eq 2 ] || fail "exit codes $rc1 $rc2 $rc3"
echo "$out" | grep -q "bad.yaml:[0-9]*:[0-9]*:" || fail "kubeconfig error position: $out"

step "watch: events in order, across a watch drop and a restart"
# Started directly (not through a function's subshell) so that the
# signals below reach gpufedctl itself.
"$GF_BIN/gpufedctl" kube watch configmaps -n default --kubeconfig "$KC" \
    >"$work/w-name.out" 2>"$work/w-name.err" &
watch_pids+=($!)
"$GF_BIN/gpufedctl" kube watch cm -A -o json --kubeconfig "$KC" \
    >"$work/w-json.out" 2>"$work/w-json.err" &
watch_pids+=($!)
# The watches print every existing object first: wait for them.
for _ in $(seq 1 100); do
    [ "$(wc -l <"$work/w-json.out")" -ge 1203 ] && break
    sleep 0.1
done
k create cm w1 -n default --from-literal=a=1 >/dev/null
k patch cm w1 -n default -p '{"data":{"a":"2"}}' >/dev/null
fault east watch-drop --for 1s
fault east restart
k create cm w2 -n default >/dev/null
k delete cm w1 -n default >/dev/null
# Both watches reconnect (and the restart's lost cache makes them
# relist) with a backoff step: poll until both saw the last change.
for _ in $(seq 1 150); do
    grep -q '^DELETED  *configmap/w1$' "$work/w-name.out" &&
        grep -q '^ADDED  *configmap/w2$' "$work/w-name.out" &&
        jq -e -s 'any(.type == "DELETED" and .object.metadata.name == "w1")' \
            "$work/w-json.out" >/dev/null 2>&1 && break
    sleep 0.1
done
for p in "${watch_pids[@]}"; do kill -INT "$p"; done
# (a background job of a script starts with SIGINT ignored; gpufedctl
# installs its own handler, which this checks)
for p in "${watch_pids[@]}"; do wait "$p" || fail "watch exited with $? on SIGINT"; done
watch_pids=()
grep -v 'kube-root-ca' "$work/w-name.out" >"$work/w-name.got" || true
printf '%s\n' "ADDED     configmap/w1" "MODIFIED  configmap/w1" \
    "ADDED     configmap/w2" "DELETED   configmap/w1" >"$work/w-name.want"
diff "$work/w-name.want" "$work/w-name.got" || fail "watch -o name events"
jq -e -s 'map(select(.object.metadata.name == "w1") | .type) ==
    ["ADDED","MODIFIED","DELETED"]' "$work/w-json.out" >/dev/null ||
    fail "watch -o json events: $(jq -c -s 'map(select(.object.metadata.name == "w1") | .type)' "$work/w-json.out")"
echo "PASS test_gpufedctl_kube"
