#!/usr/bin/env bash
# The shipped manifests (manifests/hub, manifests/member) as an admin
# installs them and as gpufed's identities then meet them:
#   - both kustomizations render with kubectl's built-in kustomize, with
#     exactly the objects docs/operations.md lists, no ClusterRole in the
#     hub, no wildcard anywhere, and a member overlay that names the agent;
#   - on kubesim (a hub and a member, east, with the Kueue CRDs; kubesim
#     enforces RBAC from the applied roles), `kubectl apply -k` of both
#     works, the policy ConfigMap passes `gpufedctl policy check`, and
#     with the hub's and the agent's own kubeconfigs every permission the
#     protocol needs works and a list of others is 403;
#   - on the real kube-apiserver in $GF_SHARED/realk8s, both apply (its
#     strict field validation accepts the Deployments), `kubectl auth
#     can-i --list` as each identity is exactly the documented set, a list
#     of denials holds, and the heartbeat rule is limited to its name.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server), kubectl and
# python3 with PyYAML. A missing one fails the test: this is never a
# silent pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/kubesim.sh"
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
REALK8S="$SHARED/realk8s"
for c in etcd kubectl python3; do
    command -v $c >/dev/null ||
        fail "'$c' not found: this test needs kubectl and a real kube-apiserver on etcd (make deps)"
done
[ -x "$REALK8S/kube-apiserver" ] || fail "no kube-apiserver in $REALK8S"
python3 -c 'import yaml' 2>/dev/null || fail "python3 has no yaml module (make deps)"

HUB_USER=system:serviceaccount:gpufed-system:gpufed-hub
AGENT_USER=system:serviceaccount:gpufed-system:gpufed-agent

sim_scratch
sim_on_exit() { # rc
    if [ "$1" -ne 0 ] && [ -f "$work/srv/kube-apiserver.log" ]; then
        tail -20 "$work/srv/kube-apiserver.log" >&2
    fi
    "$REALK8S/down.sh" "$work/srv" >/dev/null 2>&1 || true
}

# ok DESC CMD...: CMD must succeed.
ok() {
    local what=$1
    shift
    "$@" >"$work/out" 2>"$work/err" || fail "$what: $(cat "$work/err")"
}
# denied DESC CMD...: CMD must be refused with 403 Forbidden.
denied() {
    local what=$1
    shift
    if "$@" >"$work/out" 2>"$work/err"; then
        fail "$what: allowed"
    fi
    grep -q 'is forbidden: User "system:serviceaccount:' "$work/err" || fail "$what: $(cat "$work/err")"
}

# cannot DESC CMD...: CMD, a `kubectl auth can-i`, must answer no (exit
# status 1). kubesim adds the denial's reason after "no - "; the real
# server's RBAC authorizer gives none.
cannot() {
    local what=$1 rc=0
    shift
    "$@" >"$work/out" 2>"$work/err" || rc=$?
    if [ $rc -ne 1 ] || ! [[ $(cat "$work/out") =~ ^no($|\ -\ ) ]]; then
        fail "$what: $(cat "$work/out" "$work/err")"
    fi
}

# The member overlay an admin writes: the agent learns its member's name.
mkdir -p "$work/east-overlay"
cat >"$work/east-overlay/kustomization.yaml" <<EOF
resources:
- $(realpath --relative-to="$work/east-overlay" "$root/manifests/member")
configMapGenerator:
- name: gpufed-member
  namespace: gpufed-system
  behavior: merge
  literals: [member=east]
EOF

# objects FILE: KIND/NAMESPACE/NAME of every object, sorted; fails on a
# wildcard in any RBAC rule.
objects() {
    python3 - "$1" <<'EOF'
import sys, yaml
out = []
for o in yaml.safe_load_all(open(sys.argv[1])):
    m = o["metadata"]
    out.append("%s/%s/%s" % (o["kind"], m.get("namespace", "-"), m["name"]))
    for r in o.get("rules", []):
        for k in ("verbs", "resources", "apiGroups"):
            if "*" in r.get(k, []):
                sys.exit("%s %s: wildcard in %s" % (o["kind"], m["name"], k))
print("\n".join(sorted(out)))
EOF
}

step "render: kubectl kustomize, the objects docs/operations.md lists"
kubectl kustomize "$root/manifests/hub" >"$work/hub.yaml"
kubectl kustomize "$work/east-overlay" >"$work/member.yaml"
diff <(objects "$work/hub.yaml") - <<'EOF' || fail "manifests/hub objects"
ConfigMap/gpufed-system/gpufed-policy
CustomResourceDefinition/-/quotaleases.gpufed.io
Deployment/gpufed-system/gpufed-hub
Namespace/-/gpufed-system
PodDisruptionBudget/gpufed-system/gpufed-hub
Role/gpufed-system/gpufed-hub
RoleBinding/gpufed-system/gpufed-hub
Service/gpufed-system/gpufed-hub
ServiceAccount/gpufed-system/gpufed-hub
EOF
member_cm=$(objects "$work/member.yaml" | sed -n 's|^ConfigMap/gpufed-system/||p')
diff <(objects "$work/member.yaml") - <<EOF || fail "manifests/member objects"
ClusterRole/-/gpufed-agent
ClusterRole/-/gpufed-hub-member
ClusterRoleBinding/-/gpufed-agent
ClusterRoleBinding/-/gpufed-hub-member
ConfigMap/gpufed-system/$member_cm
Deployment/gpufed-system/gpufed-agent
Namespace/-/gpufed-system
Role/gpufed-system/gpufed-agent
Role/gpufed-system/gpufed-hub-member
RoleBinding/gpufed-system/gpufed-agent
RoleBinding/gpufed-system/gpufed-hub-member
ServiceAccount/gpufed-system/gpufed-agent
ServiceAccount/gpufed-system/gpufed-hub
EOF
# The overlay's name reaches the agent through the hashed ConfigMap.
python3 - "$work/member.yaml" "$member_cm" <<'EOF' || fail "agent's member name"
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
cm = [o for o in docs if o["kind"] == "ConfigMap"][0]
assert cm["data"] == {"member": "east"}, cm["data"]
dep = [o for o in docs if o["kind"] == "Deployment"][0]
c = dep["spec"]["template"]["spec"]["containers"][0]
ref = c["env"][0]["valueFrom"]["configMapKeyRef"]
assert ref == {"name": sys.argv[2], "key": "member"}, ref
assert c["command"][:4] == ["gpufed", "agent", "--member", "$(MEMBER_NAME)"]
EOF

# ---------------------------------------------------------------- kubesim
step "kubesim: apply -k manifests/hub into hub, the member overlay into east"
sim_start "$work/sim" --clusters hub,east --crds "$SHARED/kueue/crds"
D=$work/sim
# Every identity gets its own discovery cache, as separate processes would.
kc() { kubectl --kubeconfig "$D/$1/kubeconfig-$2.yaml" --cache-dir "$work/kc-$1-$2" "${@:3}"; }
ha() { kc hub admin "$@"; }
hh() { kc hub gpufed-hub "$@"; }
ea() { kc east admin "$@"; }
eh() { kc east gpufed-hub "$@"; }
eg() { kc east member-agent "$@"; }
ok "apply hub" ha apply -k "$root/manifests/hub"
ok "apply member" ea apply -k "$work/east-overlay"
ok "crd established" ha wait --for condition=established \
    crd/quotaleases.gpufed.io --timeout 30s
# What the admin does next (docs/operations.md, "Deploy").
ok "member secret" ha -n gpufed-system create secret generic east-kubeconfig \
    --from-file=kubeconfig="$D/east/kubeconfig-gpufed-hub.yaml"

step "kubesim hub: the hub's identity reads its policy and Secrets"
ok "get policy" hh -n gpufed-system get configmap gpufed-policy \
    -o jsonpath='{.data.policy\.yaml}'
cp "$work/out" "$work/policy.yaml"
"$GF_BIN/gpufedctl" policy check "$work/policy.yaml" >/dev/null ||
    fail "the shipped policy is invalid"
ok "list secrets" hh -n gpufed-system get secrets -o name
grep -qx secret/east-kubeconfig "$work/out" || fail "secrets: $(cat "$work/out")"
ok "get secret" hh -n gpufed-system get secret east-kubeconfig \
    -o jsonpath='{.data.kubeconfig}'
ok "watch secrets" hh get --raw \
    '/api/v1/namespaces/gpufed-system/secrets?watch=1&timeoutSeconds=1'

step "kubesim hub: QuotaLeases, their status, leader election, Events"
QL=east-ml-train-1-e1
ok "create ql" hh create -f "$root/e2e/testdata/quotalease-sample.yaml"
ok "list ql" hh -n gpufed-system get quotaleases -o name
ok "patch ql" hh -n gpufed-system patch ql $QL --type=merge \
    -p '{"metadata":{"annotations":{"gpufed.io/placement":"west"}}}'
ok "patch status" hh -n gpufed-system patch ql $QL --subresource=status \
    --type=merge -p '{"status":{"phase":"Pending","reason":"Recorded"}}'
ok "get ql" hh -n gpufed-system get ql $QL -o json
cp "$work/out" "$work/obj.json"
ok "update ql" hh replace -f "$work/obj.json"
ok "get status" hh -n gpufed-system get ql $QL --subresource=status -o json
cp "$work/out" "$work/obj.json"
ok "update status" hh replace --subresource=status -f "$work/obj.json"
lease() { # NAME NAMESPACE HOLDER
    cat <<EOF
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: $1, namespace: $2}
spec:
  holderIdentity: $3
  leaseDurationSeconds: 15
  renewTime: "2026-12-06T03:00:00.000000Z"
EOF
}
event() { # NAMESPACE OBJECT-KIND OBJECT-NAME
    cat <<EOF
apiVersion: v1
kind: Event
metadata: {name: gpufed-test-$RANDOM, namespace: $1}
involvedObject: {kind: $2, name: $3, namespace: $1}
reason: Redirected
message: test
type: Normal
EOF
}
ok "create lease" hh create -f - < <(lease gpufed-hub gpufed-system hub-0)
ok "patch lease" hh -n gpufed-system patch lease gpufed-hub --type=merge \
    -p '{"spec":{"holderIdentity":"hub-1"}}'
ok "create event" hh create -f - < <(event gpufed-system QuotaLease $QL)
ok "delete ql" hh -n gpufed-system delete ql $QL

step "kubesim hub: everything else is 403"
ok "scratch namespace" ha create namespace scratch
denied "secrets elsewhere" hh -n default get secrets
denied "create secret" hh -n gpufed-system create secret generic x \
    --from-literal=a=b
denied "edit policy" hh -n gpufed-system patch configmap gpufed-policy \
    --type=merge -p '{"data":{"x":"y"}}'
ok "watch drain by name" hh -n gpufed-system get configmaps \
    --field-selector metadata.name=gpufed-drain -o name
denied "every ConfigMap" hh -n gpufed-system get configmaps
denied "write drain" hh -n gpufed-system create configmap gpufed-drain \
    --from-literal=east=2026-12-06T08:00:00Z
denied "quotaleases cluster-wide" hh get quotaleases -A
denied "jobs in the hub" hh -n default get jobs
denied "delete a namespace" hh delete namespace scratch
denied "create a ClusterRole" hh create clusterrole x --verb=get \
    --resource=pods
denied "bind a Role" hh -n gpufed-system create rolebinding x \
    --role=gpufed-hub --user=x
denied "pods" hh -n gpufed-system get pods
cannot "exec" hh -n gpufed-system auth can-i create pods --subresource=exec

step "kubesim east: queues, Workloads, Jobs and the heartbeat as the hub"
ea apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: research
  labels: {gpufed.io/accept-overflow: "true"}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: a100}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: research-gpu}
spec:
  cohortName: research
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: a100
      resources: [{name: nvidia.com/gpu, nominalQuota: 8}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: research, namespace: research}
spec: {clusterQueue: research-gpu}
EOF
ok "lease of another" ea create -f - < <(lease other gpufed-system x)
ok "read queues" eh get clusterqueues.kueue.x-k8s.io,localqueues.kueue.x-k8s.io,resourceflavors.kueue.x-k8s.io,cohorts.kueue.x-k8s.io,workloads.kueue.x-k8s.io -A
ok "namespaces" eh get namespaces -l gpufed.io/accept-overflow=true -o name
grep -qx namespace/research "$work/out" || fail "namespaces: $(cat "$work/out")"
ok "create overflow CQ" eh create -f - <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata:
  name: gpufed-overflow-research
  labels: {app.kubernetes.io/managed-by: gpufed}
spec:
  cohortName: research
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: a100
      resources: [{name: nvidia.com/gpu, nominalQuota: 0}]
EOF
ok "create overflow LQ" eh create -f - <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata:
  name: gpufed-overflow
  namespace: research
  labels: {app.kubernetes.io/managed-by: gpufed}
spec: {clusterQueue: gpufed-overflow-research}
EOF
ok "patch CQ" eh patch clusterqueue.kueue.x-k8s.io gpufed-overflow-research \
    --type=merge -p '{"spec":{"stopPolicy":"None"}}'
ok "create copy" eh create -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata:
  name: train-1-copy-e1
  namespace: research
  labels:
    kueue.x-k8s.io/queue-name: gpufed-overflow
    gpufed.io/lease: east-ml-train-1-e1
    gpufed.io/origin-cluster: west
    gpufed.io/origin-uid: 0b5c6e2a-1111-2222-3333-444455556666
    gpufed.io/epoch: "1"
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: train
        image: busybox
        resources:
          limits: {nvidia.com/gpu: 1}
EOF
ok "annotate Job" eh -n research annotate job train-1-copy-e1 \
    gpufed.io/placement=west
uid=$(ea -n research get job train-1-copy-e1 -o jsonpath='{.metadata.uid}')
wl=""
for _ in $(seq 1 100); do
    wl=$(ea -n research get workloads.kueue.x-k8s.io \
        -l "kueue.x-k8s.io/job-uid=$uid" -o name)
    [ -n "$wl" ] && break
    sleep 0.1
done
[ -n "$wl" ] || fail "no Workload for the copy"
ok "hold Workload" eh -n research patch "$wl" --type=merge -p \
    '{"metadata":{"annotations":{"gpufed.io/lease":"east-ml-train-1-e1"}},"spec":{"active":false}}'
ok "get Workload" eh -n research get "$wl" -o json
cp "$work/out" "$work/obj.json"
ok "update Workload" eh replace -f "$work/obj.json"
ok "heartbeat" eh create -f - < <(lease gpufed-heartbeat gpufed-system hub-0)
ok "renew heartbeat" eh -n gpufed-system patch lease gpufed-heartbeat \
    --type=merge -p '{"spec":{"renewTime":"2026-12-06T03:00:10.000000Z"}}'
ok "event in east" eh create -f - < <(event research Job train-1-copy-e1)

step "kubesim east: the agent reads the heartbeat and fences a copy"
ok "agent heartbeat" eg -n gpufed-system get lease gpufed-heartbeat
ok "agent jobs" eg get jobs -A -l gpufed.io/lease
ok "agent fences" eg -n research patch "$wl" --type=merge \
    -p '{"spec":{"active":false}}'
ok "agent event" eg create -f - < <(event research Job train-1-copy-e1)

step "kubesim east: everything else is 403"
denied "hub: secrets in east" eh -n gpufed-system get secrets
denied "hub: secrets anywhere" eh get secrets -A
denied "hub: delete a namespace" eh delete namespace research
denied "hub: ClusterRole" eh create clusterrole x --verb=get --resource=pods
denied "hub: ResourceFlavor" eh create -f - <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: stolen}
EOF
denied "hub: lease elsewhere" eh create -f - < <(lease gpufed-heartbeat default h)
denied "hub: another lease" eh -n gpufed-system patch lease other \
    --type=merge -p '{"spec":{"holderIdentity":"hub"}}'
denied "hub: pods" eh -n research get pods
denied "hub: label a namespace" eh label namespace research x=y
cannot "hub: exec in east" eh -n research auth can-i create pods \
    --subresource=exec
denied "agent: create Job" eg -n research create job x --image=busybox
denied "agent: delete Workload" eg -n research delete "$wl"
denied "agent: renew heartbeat" eg -n gpufed-system patch lease \
    gpufed-heartbeat --type=merge -p '{"spec":{"holderIdentity":"agent"}}'
denied "agent: leases elsewhere" eg -n default get leases
denied "agent: secrets" eg -n gpufed-system get secrets
# Loans: the agent lists ClusterQueues and patches gpufed's loan ones to
# nominal 0 when it fences; it may not create, delete or watch them.
ok "agent: list queues" eg get clusterqueues.kueue.x-k8s.io
denied "agent: delete a queue" eg delete clusterqueue.kueue.x-k8s.io \
    gpufed-overflow-research --wait=false
cannot "agent: watch queues" eg auth can-i watch clusterqueues.kueue.x-k8s.io
denied "agent: namespaces" eg get namespaces
ok "hub: delete copy" eh -n research delete job train-1-copy-e1 --wait=false
ok "hub: delete LQ" eh -n research delete localqueue.kueue.x-k8s.io \
    gpufed-overflow
ok "hub: delete CQ" eh delete clusterqueue.kueue.x-k8s.io \
    gpufed-overflow-research
sim_stop

# ---------------------------------------------------- real kube-apiserver
step "real kube-apiserver: Kueue CRDs, then both kustomizations"
"$REALK8S/up.sh" "$work/srv" >/dev/null || fail "kube-apiserver did not start"
R=$work/srv
ra() { kubectl --kubeconfig "$R/kubeconfig-admin.yaml" --cache-dir "$work/kc-real" "$@"; }
rh() { kubectl --kubeconfig "$R/kubeconfig-gpufed-hub.yaml" --cache-dir "$work/kc-real-hub" "$@"; }
crds=()
for f in "$SHARED"/kueue/crds/*.yaml; do
    # The Workload CRD uses selectableFields (1.30): the server's copy
    # leaves them out.
    case $f in *_workloads.yaml) f="$REALK8S/kueue-workloads-crd-k128.yaml" ;; esac
    crds+=(-f "$f")
done
ok "kueue crds" ra apply --server-side "${crds[@]}"
# A server-side dry run creates nothing, so the namespace must exist for
# the namespaced objects to be checked.
ok "namespace" ra apply -f "$root/manifests/hub/namespace.yaml"
ok "dry-run hub" ra apply --dry-run=server -k "$root/manifests/hub"
ok "apply hub" ra apply -k "$root/manifests/hub"
ok "crds established" ra wait --for condition=established crd --all \
    --timeout 30s
# The server stored the security settings as written (strict field
# validation refused nothing, and nothing was dropped).
ok "hub deployment" ra -n gpufed-system get deployment gpufed-hub -o \
    jsonpath='{.spec.replicas} {.spec.template.spec.securityContext.runAsUser} {.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.template.spec.containers[0].securityContext.capabilities.drop} {.spec.template.spec.serviceAccountName} {.spec.template.spec.containers[0].readinessProbe.httpGet.path}'
[ "$(cat "$work/out")" = '2 65532 true ["ALL"] gpufed-hub /readyz' ] ||
    fail "hub deployment: $(cat "$work/out")"

# can_list NS USER: the rules USER has in NS, as `kubectl auth can-i
# --list` shows them to the admin impersonating the service account (with
# its groups), without the rules every authenticated user has (discovery,
# self reviews).
can_list() {
    ra auth can-i --list -n "$1" --as "$2" --as-group system:serviceaccounts \
        --as-group system:serviceaccounts:gpufed-system |
        awk 'NR > 1 && $0 !~ /^ / && $1 !~ /^selfsubject/ {
                 $2 = ""; print }' | tr -s ' ' | sort
}
# can USER NS VERB RESOURCE [ARGS]: yes or no; NS "-" for a
# cluster-scoped resource (kubectl's warning that the context's namespace
# does not apply to it is dropped; any error leaves the answer empty).
can() {
    local ns=(-n "$2")
    [ "$2" = - ] && ns=()
    ra auth can-i "$3" "$4" "${ns[@]}" --as "$1" \
        --as-group system:serviceaccounts \
        --as-group system:serviceaccounts:gpufed-system "${@:5}" 2>/dev/null ||
        true
}

step "real kube-apiserver: the hub's exact rights in the hub cluster"
HUB_RULES='configmaps [gpufed-drain] [get list watch]
configmaps [gpufed-policy] [get list watch]
events [] [create patch]
events.events.k8s.io [] [create patch]
leases.coordination.k8s.io [] [get list watch create update patch]
quotaleases.gpufed.io [] [get list watch create patch update delete]
quotaleases.gpufed.io/status [] [get patch update]
secrets [] [get list watch]'
diff <(can_list gpufed-system $HUB_USER) <(echo "$HUB_RULES") >&2 ||
    fail "hub rights in gpufed-system"
diff <(can_list default $HUB_USER) /dev/null >&2 ||
    fail "hub rights outside gpufed-system"
diff <(can_list gpufed-system $AGENT_USER) /dev/null >&2 ||
    fail "agent rights in the hub cluster"

step "real kube-apiserver: the hub's identity at work, and refused"
ok "create ql" rh create -f "$root/e2e/testdata/quotalease-sample.yaml"
ok "patch status" rh -n gpufed-system patch ql $QL --subresource=status \
    --type=merge -p '{"status":{"phase":"Pending","reason":"Recorded"}}'
ok "list secrets" rh -n gpufed-system get secrets
ok "leader lease" rh create -f - < <(lease gpufed-hub gpufed-system hub-0)
denied "real: secrets elsewhere" rh -n default get secrets
# A list by name is authorized for that name (resourceNames), a list of
# every ConfigMap is not: the hub's watch of gpufed-drain works.
ok "real: drain by name" rh -n gpufed-system get configmaps \
    --field-selector metadata.name=gpufed-drain -o name
denied "real: every ConfigMap" rh -n gpufed-system get configmaps
denied "real: quotaleases cluster-wide" rh get quotaleases -A

step "real kube-apiserver: the member kustomization alone"
# The hub Role grants every Lease in gpufed-system; without it the member
# roles can be seen alone (hub and member are one server here).
ok "drop hub RBAC" ra -n gpufed-system delete role/gpufed-hub \
    rolebinding/gpufed-hub
ok "dry-run member" ra apply --dry-run=server -k "$work/east-overlay"
ok "apply member" ra apply -k "$work/east-overlay"
ok "agent deployment" ra -n gpufed-system get deployment gpufed-agent -o \
    jsonpath='{.spec.replicas} {.spec.template.spec.serviceAccountName} {.spec.template.spec.containers[0].command}'
# shellcheck disable=SC2016 # $(MEMBER_NAME) is for the kubelet to expand
[ "$(cat "$work/out")" = \
    '1 gpufed-agent ["gpufed","agent","--member","$(MEMBER_NAME)","--listen",":8081"]' ] ||
    fail "agent deployment: $(cat "$work/out")"

MEMBER_RULES='clusterqueues.kueue.x-k8s.io [] [get list watch create patch update delete]
cohorts.kueue.x-k8s.io [] [get list watch]
events [] [create patch]
events.events.k8s.io [] [create patch]
jobs.batch [] [get list watch create patch delete]
localqueues.kueue.x-k8s.io [] [get list watch create patch update delete]
namespaces [] [get list watch]
resourceflavors.kueue.x-k8s.io [] [get list watch]
workloads.kueue.x-k8s.io [] [get list watch patch update]'
diff <(can_list research $HUB_USER) <(echo "$MEMBER_RULES") >&2 ||
    fail "hub rights in a member namespace"
diff <(can_list gpufed-system $HUB_USER) <(
    {
        # Loans: the hub creates and deletes its hold Workloads here only.
        sed 's/^\(workloads.kueue.x-k8s.io \[\] \[get list watch patch update\)\]$/\1 create delete]/' <<<"$MEMBER_RULES"
        echo 'leases.coordination.k8s.io [] [get list watch create]'
        echo 'leases.coordination.k8s.io [gpufed-heartbeat] [update patch]'
    } | sort
) >&2 || fail "hub rights in a member's gpufed-system"
AGENT_RULES='clusterqueues.kueue.x-k8s.io [] [list patch]
events [] [create patch]
events.events.k8s.io [] [create patch]
jobs.batch [] [get list watch]
workloads.kueue.x-k8s.io [] [get list watch patch]'
diff <(can_list research $AGENT_USER) <(echo "$AGENT_RULES") >&2 ||
    fail "agent rights in a member namespace"
diff <(can_list gpufed-system $AGENT_USER) <(
    {
        echo "$AGENT_RULES"
        echo 'leases.coordination.k8s.io [] [get list watch]'
    } | sort
) >&2 || fail "agent rights in gpufed-system"

step "real kube-apiserver: the heartbeat rule holds for its name only"
ok "heartbeat" rh create -f - < <(lease gpufed-heartbeat gpufed-system hub-0)
ok "renew" rh -n gpufed-system patch lease gpufed-heartbeat --type=merge \
    -p '{"spec":{"renewTime":"2026-12-06T03:00:10.000000Z"}}'
denied "real: another lease" rh -n gpufed-system patch lease gpufed-hub \
    --type=merge -p '{"spec":{"holderIdentity":"hub-1"}}'

step "real kube-apiserver: hub and member side by side"
ok "apply hub again" ra apply -k "$root/manifests/hub"
ok "leader lease again" rh -n gpufed-system patch lease gpufed-hub \
    --type=merge -p '{"spec":{"holderIdentity":"hub-1"}}'
step "real kube-apiserver: denials, with both installed"
# A few yeses first, so that a broken question cannot pass as a no.
while read -r want user ns verb res extra; do
    # shellcheck disable=SC2086
    [ "$(can "$user" "$ns" "$verb" "$res" $extra)" = "$want" ] ||
        fail "$user $verb $res $extra in $ns: expected $want"
done <<EOF
yes $HUB_USER gpufed-system patch quotaleases.gpufed.io --subresource=status
yes $HUB_USER research create jobs.batch
yes $HUB_USER - list namespaces
yes $AGENT_USER research patch workloads.kueue.x-k8s.io
no $HUB_USER research get secrets
no $HUB_USER gpufed-system create secrets
no $HUB_USER gpufed-system create pods --subresource=exec
no $HUB_USER research create pods
no $HUB_USER research update jobs.batch
no $HUB_USER research delete workloads.kueue.x-k8s.io
no $HUB_USER research update workloads.kueue.x-k8s.io --subresource=status
no $HUB_USER - create resourceflavors.kueue.x-k8s.io
no $HUB_USER research create leases.coordination.k8s.io
no $HUB_USER gpufed-system delete leases.coordination.k8s.io
no $HUB_USER - delete namespaces
no $HUB_USER - create clusterroles.rbac.authorization.k8s.io
no $HUB_USER gpufed-system create rolebindings.rbac.authorization.k8s.io
no $HUB_USER gpufed-system update configmaps
no $AGENT_USER research create jobs.batch
no $AGENT_USER research delete workloads.kueue.x-k8s.io
no $AGENT_USER gpufed-system patch leases.coordination.k8s.io
no $AGENT_USER - delete clusterqueues.kueue.x-k8s.io
no $AGENT_USER - watch clusterqueues.kueue.x-k8s.io
no $AGENT_USER gpufed-system get secrets
no $AGENT_USER - list namespaces
EOF

echo "PASS test_manifests"
