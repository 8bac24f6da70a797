#!/usr/bin/env bash
# Conformance of kubesim with kubectl, the client most people will point
# at it: CRDs and the upstream Kueue samples applied, gets (tables,
# jsonpath), patches of every kind kubectl sends, `kubectl wait`, watches,
# an RBAC denial seen with the member-agent identity, and faults as
# kubectl experiences them.
#
# Needs GF_BIN (the programs) and GF_SHARED (the shared folder with
# kueue/). Every process started here is stopped on any exit.
set -euo pipefail

BIN=${GF_BIN:?GF_BIN must name the directory with kubesim}
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
KUEUE=$SHARED/kueue
. "$(dirname "$0")/lib/kubesim.sh"

sim_scratch
watch_pid=""
patch_pid=""
sim_on_exit() {
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
    [ -n "$patch_pid" ] && kill "$patch_pid" 2>/dev/null || true
}

sim_start "$work/sim" --clusters hub,east --seed 7 --no-kueue
grep -q '^hub [0-9]' "$work/sim/ready" || fail "ready file lists no hub"
grep -q '^east [0-9]' "$work/sim/ready" || fail "ready file lists no east"
for f in "$work"/sim/*/kubeconfig-*.yaml; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not mode 0600"
done

k() { kubectl --kubeconfig "$work/sim/hub/kubeconfig-admin.yaml" \
    --request-timeout=10s "$@"; }
kagent() { kubectl --kubeconfig "$work/sim/hub/kubeconfig-member-agent.yaml" \
    --request-timeout=10s "$@"; }
fault() { KUBESIM_DIR="$work/sim" "$BIN/kubesim" fault "$@" >/dev/null; }

step "discovery and TLS verified against the generated CA"
k version -o json | grep '"serverVersion"' >/dev/null || fail "no server version"
k api-resources >/dev/null || fail "api-resources"
k get ns default -o name | grep -x 'namespace/default' >/dev/null || fail "get ns"

step "CRDs from the upstream Kueue YAML"
# create, not apply: the Workload CRD is larger than the 256 KiB that the
# last-applied annotation may hold, on a real cluster as well.
k create -f "$KUEUE/crds/" >/dev/null
k wait --for=condition=Established --timeout=20s crd --all >/dev/null
k api-resources --api-group=kueue.x-k8s.io -o name | grep '^workloads' >/dev/null ||
    fail "workloads not served after the CRDs"

step "upstream samples applied (twice: the second is a no-op patch)"
k apply -f "$KUEUE/samples/single-cluster/single-clusterqueue-setup.yaml" >/dev/null
k apply -f "$KUEUE/samples/single-cluster/single-clusterqueue-setup.yaml" |
    grep unchanged >/dev/null || fail "re-apply was not a no-op"
for f in "$KUEUE"/samples/cohort-borrowing/*.yaml; do
    case $f in */borrowing-limit-example.yaml) continue ;; esac
    k apply -f "$f" >/dev/null || fail "apply $f"
done
# This upstream sample breaks its own CRD's CEL rule (one resource for
# two covered ones): a real API server refuses both ClusterQueues in it
# with this message, and so must kubesim.
if out=$(k apply -f "$KUEUE/samples/cohort-borrowing/borrowing-limit-example.yaml" 2>&1); then
    fail "the invalid borrowing-limit sample was accepted"
fi
want='ClusterQueue.kueue.x-k8s.io "team-a-cq" is invalid: spec.resourceGroups[0]: Invalid value: "object": flavors must have the same number of resources as the coveredResources'
grep -qF "$want" <<<"$out" || fail "CEL rule message: $out"
k apply -f "$KUEUE/samples/gpu/sample-gpu-queues.yaml" >/dev/null
k get clusterqueues | grep '^cluster-queue' >/dev/null || fail "table output"
[ "$(k get clusterqueue cluster-queue -o jsonpath='{.spec.resourceGroups[0].flavors[0].resources[1].nominalQuota}')" = 36Gi ] ||
    fail "nominalQuota did not round-trip"
job=$(k create -f "$KUEUE/samples/single-cluster/sample-job.yaml" -o name)
case $job in job.batch/sample-job-*) ;; *) fail "generateName: $job" ;; esac
k get "$job" -o jsonpath='{.metadata.labels.kueue\.x-k8s\.io/queue-name}' |
    grep -x user-queue >/dev/null || fail "job labels"

step "schema validation: a 422 that names the field"
if out=$(k apply -f - 2>&1 <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: bad, namespace: default}
spec: {clusterQueue: 7}
EOF
); then fail "an invalid LocalQueue was accepted"; fi
echo "$out" | grep 'spec.clusterQueue' >/dev/null || fail "422 does not name the field: $out"

step "patches: merge, json, strategic (label/annotate), status"
k patch clusterqueue cluster-queue --type=merge \
    -p '{"spec":{"stopPolicy":"Hold"}}' >/dev/null
[ "$(k get clusterqueue cluster-queue -o jsonpath='{.spec.stopPolicy}')" = Hold ] ||
    fail "merge patch"
k patch localqueue user-queue -n default --type=json \
    -p '[{"op":"add","path":"/metadata/labels","value":{"team":"a"}}]' >/dev/null
k get localqueue user-queue -n default -o jsonpath='{.metadata.labels.team}' |
    grep -x a >/dev/null || fail "json patch"
k label ns default gpufed.io/test=yes >/dev/null
k annotate ns default gpufed.io/note=hello >/dev/null
k get ns default -o jsonpath='{.metadata.annotations.gpufed\.io/note}' |
    grep -x hello >/dev/null || fail "strategic merge (annotate)"
k create configmap cm1 -n default --from-literal=a=1 >/dev/null
k patch configmap cm1 -n default -p '{"data":{"b":"2"}}' >/dev/null
[ "$(k get cm cm1 -n default -o jsonpath='{.data.a}{.data.b}')" = 12 ] ||
    fail "strategic merge on a ConfigMap"

step "kubectl wait on a condition written through /status"
cat <<'EOF' | k create -f - >/dev/null
apiVersion: kueue.x-k8s.io/v1beta2
kind: Workload
metadata: {name: wl1, namespace: default}
spec:
  queueName: user-queue
  podSets:
  - name: main
    count: 1
    template:
      spec:
        restartPolicy: Never
        containers:
        - name: c
          image: busybox
          resources: {requests: {cpu: "1"}}
EOF
k wait --for=condition=QuotaReserved=false --timeout=1s workload/wl1 -n default \
    >/dev/null 2>&1 && fail "wait succeeded on a missing condition"
( sleep 1
  k patch workload wl1 -n default --subresource=status --type=merge -p \
    '{"status":{"conditions":[{"type":"QuotaReserved","status":"True","reason":"QuotaReserved","message":"test","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}' \
    >/dev/null ) &
patch_pid=$!
k wait --for=condition=QuotaReserved --timeout=20s workload/wl1 -n default \
    >/dev/null || fail "kubectl wait did not see the condition"
wait "$patch_pid"
patch_pid=""

step "watch: ADDED, MODIFIED, DELETED in order"
k get configmaps -n default -w --output-watch-events --no-headers \
    >"$work/watch.out" 2>&1 &
watch_pid=$!
sleep 1
k create configmap w1 -n default --from-literal=x=1 >/dev/null
k patch configmap w1 -n default -p '{"data":{"x":"2"}}' >/dev/null
k delete configmap w1 -n default >/dev/null
for _ in $(seq 1 50); do
    grep -q '^DELETED  *w1 ' "$work/watch.out" && break
    sleep 0.1
done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=""
awk '$2 == "w1" {print $1}' "$work/watch.out" | tr '\n' ' ' |
    grep 'ADDED MODIFIED DELETED' >/dev/null || fail "watch events: $(cat "$work/watch.out")"

step "RBAC: member-agent is denied, then granted by a RoleBinding"
if out=$(kagent get workloads -n default 2>&1); then
    fail "member-agent could list workloads without a grant"
fi
echo "$out" | grep 'workloads.kueue.x-k8s.io is forbidden: User "system:serviceaccount:gpufed-system:gpufed-agent" cannot list resource "workloads" in API group "kueue.x-k8s.io" in the namespace "default"' >/dev/null ||
    fail "403 message: $out"
kagent auth can-i list workloads.kueue.x-k8s.io -n default >/dev/null 2>&1 &&
    fail "auth can-i said yes before the grant"
k create clusterrole wl-reader --verb=get,list,watch \
    --resource=workloads.kueue.x-k8s.io >/dev/null
k create rolebinding agent-wl -n default --clusterrole=wl-reader \
    --serviceaccount=gpufed-system:gpufed-agent >/dev/null
kagent get workloads -n default -o name | grep -x 'workload.kueue.x-k8s.io/wl1' >/dev/null ||
    fail "member-agent still denied after the RoleBinding"
kagent auth can-i list workloads.kueue.x-k8s.io -n default | grep -x yes \
    >/dev/null || fail "auth can-i did not see the grant"
kagent get workloads -n kube-system >/dev/null 2>&1 &&
    fail "a RoleBinding granted outside its namespace"
kagent delete workload wl1 -n default >/dev/null 2>&1 &&
    fail "member-agent could delete"

step "faults as kubectl sees them"
fault hub 5xx --identity member-agent --code 500 --for 30s
if out=$(kagent get workloads -n default 2>&1); then fail "5xx fault not seen"; fi
echo "$out" | grep -i 'InternalError\|Internal error' >/dev/null || fail "5xx: $out"
k get ns default -o name >/dev/null || fail "a fault for member-agent hit admin"
fault clear hub
kagent get workloads -n default -o name >/dev/null || fail "fault not cleared"
# client-go retries a GET after a reset every second (and kubectl's
# discovery does so several times); the outer timeout bounds that.
fault hub reset --for 30s
timeout 3 kubectl --kubeconfig "$work/sim/hub/kubeconfig-admin.yaml" \
    --request-timeout=1s get ns default >/dev/null 2>&1 &&
    fail "reset fault not seen"
fault clear hub
k get ns default >/dev/null || fail "reset fault did not end"
fault hub latency --latency 1500ms --for 10s
t0=$(date +%s%N)
k get ns default >/dev/null
t1=$(date +%s%N)
[ $(( (t1 - t0) / 1000000 )) -ge 1400 ] || fail "latency fault not seen"
fault clear
k --request-timeout=1s get ns default >/dev/null || fail "clear"
fault hub blackhole --for 30s
timeout 3 kubectl --kubeconfig "$work/sim/hub/kubeconfig-admin.yaml" \
    --request-timeout=1s get ns default >/dev/null 2>&1 &&
    fail "blackhole answered"
fault clear
k get ns default >/dev/null || fail "blackhole did not heal"
fault east restart
k --kubeconfig "$work/sim/east/kubeconfig-admin.yaml" get ns default >/dev/null ||
    fail "east not serving after restart"

step "the data is per cluster"
kubectl --kubeconfig "$work/sim/east/kubeconfig-admin.yaml" get crd 2>/dev/null |
    grep workloads >/dev/null && fail "east sees hub's CRDs"

step "server-side apply, as Kueue's install instructions do it"
ke() { kubectl --kubeconfig "$work/sim/east/kubeconfig-admin.yaml" \
    --request-timeout=10s "$@"; }
ke apply --server-side -f "$KUEUE/crds/" >/dev/null
ke apply --server-side -f "$KUEUE/crds/" >/dev/null ||
    fail "a second server-side apply failed"
ke apply --server-side \
    -f "$KUEUE/samples/single-cluster/single-clusterqueue-setup.yaml" >/dev/null
[ "$(ke get localqueue user-queue -n default -o jsonpath='{.spec.clusterQueue}')" = cluster-queue ] ||
    fail "server-side apply of the samples"

sim_stop
[ "$STOP_RC" = 0 ] || { echo "FAIL: kubesim exited with $STOP_RC on SIGTERM"; exit 1; }
echo "PASS test_kubesim_kubectl"
