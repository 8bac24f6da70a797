#!/usr/bin/env bash
# Kueue-lite and the job runner as kubectl sees them: the upstream
# single-cluster samples are applied, the sample Job gets a Workload that
# is admitted, runs its Pods and completes (`kubectl wait` on the
# conditions Kueue and the Job controller write); a second Job that does
# not fit waits suspended until quota frees; a ClusterQueue with
# nvidia.com/gpu nominal 8 runs only two 4-GPU Jobs at once and reports 8
# GPUs in status.flavorsUsage; the execution log records every Pod start
# and stop.
#
# Needs GF_BIN (the programs) and GF_SHARED (the shared folder with
# kueue/). Every process started here is stopped on any exit.
set -euo pipefail

SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
SAMPLES=$SHARED/kueue/samples/single-cluster
CRDS=$SHARED/kueue/crds

. "$(dirname "$0")/lib/kubesim.sh"

sim_scratch

# Simulated time runs 20x: the default 60 s job takes 3 s.
sim_start "$work/sim" --clusters east --crds "$CRDS" --seed 3 \
    --time-scale 20 --job-duration 60s --nodes 2 --gpus-per-node 4
k() { kubectl --kubeconfig "$work/sim/east/kubeconfig-admin.yaml" "$@"; }

# The Workload of a Job, once Kueue-lite has created it (it may not exist
# yet right after the Job is created, and `kubectl wait -l` fails at once
# when nothing matches).
workload_of() {
    local uid wl
    uid=$(k get "$1" -o jsonpath='{.metadata.uid}')
    for _ in $(seq 1 200); do
        wl=$(k get workloads -l "kueue.x-k8s.io/job-uid=$uid" -o name)
        [ -n "$wl" ] && { echo "$wl"; return 0; }
        sleep 0.1
    done
    fail "no Workload for $1"
}

step "upstream samples: queues, then the sample Job"
k apply -f "$SAMPLES/single-clusterqueue-setup.yaml" >/dev/null
job=$(k create -f "$SAMPLES/sample-job.yaml" -o name)
k wait --for=condition=Admitted "$(workload_of "$job")" --timeout=20s >/dev/null
[ "$(k get "$job" -o jsonpath='{.spec.suspend}')" = "false" ] ||
    fail "admitted job still suspended"
[ "$(k get pods --no-headers | wc -l)" -eq 3 ] || fail "expected 3 pods"
k wait --for=condition=Complete "$job" --timeout=30s >/dev/null
k wait --for=condition=Finished workloads --all --timeout=20s >/dev/null
[ "$(k get "$job" -o jsonpath='{.status.succeeded}')" = "3" ] ||
    fail "succeeded count"

step "a Job over quota waits suspended, then runs when quota frees"
big=$(sed -e 's/parallelism: 3/parallelism: 7/' -e 's/completions: 3/completions: 7/' \
    "$SAMPLES/sample-job.yaml" | k create -f - -o name)
small=$(k create -f "$SAMPLES/sample-job.yaml" -o name)
k wait --for=condition=Admitted "$(workload_of "$big")" --timeout=20s >/dev/null
[ "$(k get "$small" -o jsonpath='{.spec.suspend}')" = "true" ] ||
    fail "job over quota is not suspended"
wl=$(workload_of "$small")
k get "$wl" -o jsonpath='{.status.conditions[?(@.type=="QuotaReserved")].message}' |
    grep -q "insufficient unused quota for cpu" || fail "pending message"
k wait --for=condition=Complete "$small" --timeout=60s >/dev/null

step "spec.active=false evicts the Workload and suspends its Job"
k delete "$big" "$small" --wait=false >/dev/null
third=$(k create -f "$SAMPLES/sample-job.yaml" -o name)
wl=$(workload_of "$third")
k wait --for=condition=Admitted "$wl" --timeout=20s >/dev/null
k patch "$wl" --type merge -p '{"spec":{"active":false}}' >/dev/null
k wait --for=condition=Evicted "$wl" --timeout=20s >/dev/null
[ "$(k get "$wl" -o jsonpath='{.status.conditions[?(@.type=="Evicted")].reason}')" = \
    "Deactivated" ] || fail "eviction reason"
for _ in $(seq 1 50); do
    [ "$(k get "$third" -o jsonpath='{.spec.suspend}')" = "true" ] && break
    sleep 0.1
done
[ "$(k get "$third" -o jsonpath='{.spec.suspend}')" = "true" ] ||
    fail "deactivated job not suspended"

step "kueue-frozen: nothing is admitted until the fault ends"
KUBESIM_DIR="$work/sim" "$GF_BIN/kubesim" fault east kueue-frozen >/dev/null
frozen=$(k create -f "$SAMPLES/sample-job.yaml" -o name)
fuid=$(k get "$frozen" -o jsonpath='{.metadata.uid}')
# One simulated minute (3 s here) watched: a frozen Kueue-lite neither
# creates nor admits a Workload, and the Job stays suspended.
for _ in $(seq 1 30); do
    [ -z "$(k get workloads -l "kueue.x-k8s.io/job-uid=$fuid" \
        -o jsonpath='{.items[*].status.admission}')" ] ||
        fail "admitted while kueue is frozen"
    [ "$(k get "$frozen" -o jsonpath='{.spec.suspend}')" = "true" ] ||
        fail "job started while kueue is frozen"
    sleep 0.1
done
KUBESIM_DIR="$work/sim" "$GF_BIN/kubesim" fault clear east >/dev/null
k wait --for=condition=Admitted "$(workload_of "$frozen")" \
    --timeout=20s >/dev/null || fail "not admitted after the fault ended"

step "nvidia.com/gpu quota: nominal 8 runs two 4-GPU Jobs at once"
k apply -f - >/dev/null <<'YAML'
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gpu-flavor}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: gpu-cq}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: gpu-flavor
      resources:
      - {name: nvidia.com/gpu, nominalQuota: 8}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: gpu-queue, namespace: default}
spec: {clusterQueue: gpu-cq}
YAML
gpu_job() {
    k create -o name -f - <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: default
  labels: {kueue.x-k8s.io/queue-name: gpu-queue}
  annotations: {kubesim.gpufed.io/duration: 120s}
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: train
        image: busybox
        resources: {limits: {nvidia.com/gpu: 4}}
YAML
}
g1=$(gpu_job gpu-1)
g2=$(gpu_job gpu-2)
g3=$(gpu_job gpu-3)
for j in "$g1" "$g2" "$g3"; do workload_of "$j" >/dev/null; done
# Two of the three are admitted; wait for both before looking at usage.
for _ in $(seq 1 100); do
    n=$(k get workloads -o jsonpath='{range .items[?(@.spec.queueName=="gpu-queue")]}{.status.admission.clusterQueue}{"\n"}{end}' |
        grep -c gpu-cq || true)
    [ "$n" -ge 2 ] && break
    sleep 0.1
done
[ "$n" -eq 2 ] || fail "expected 2 GPU Jobs admitted, got $n"
used=$(k get clusterqueue gpu-cq \
    -o jsonpath='{.status.flavorsUsage[0].resources[?(@.name=="nvidia.com/gpu")].total}')
[ "$used" = "8" ] || fail "flavorsUsage shows $used GPUs, want 8"
suspended=0
for j in "$g1" "$g2" "$g3"; do
    [ "$(k get "$j" -o jsonpath='{.spec.suspend}')" = "true" ] &&
        suspended=$((suspended + 1))
done
[ "$suspended" -eq 1 ] || fail "expected 1 suspended GPU Job, got $suspended"
# A label key with dots, as kubectl custom-columns address it.
# (Read whole first: `grep -q` would stop reading early and, under
# pipefail, kubectl's SIGPIPE would fail the pipeline at random.)
cols=$(k get jobs -o custom-columns='N:.metadata.name,Q:.metadata.labels.kueue\.x-k8s\.io/queue-name' \
    --no-headers)
grep -q '^gpu-1 *gpu-queue$' <<<"$cols" || fail "custom-columns queue-name: $cols"
k delete "$g1" "$g2" "$g3" --wait=false >/dev/null

step "execution log: one JSON line per pod start and stop"
log="$work/sim/exec.log"
python3 - "$log" <<'PY'
import json, sys
starts, stops = 0, 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    for f in ("ts", "cluster", "namespace", "job", "job_uid", "pod", "gpus"):
        assert f in e, (f, e)
    starts += e["event"] == "start"
    stops += e["event"] == "stop"
assert starts >= 9 and stops >= 9, (starts, stops)
PY
echo "PASS test_kubesim_kueue"
