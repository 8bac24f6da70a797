#!/usr/bin/env bash
# Differential test: the same requests to kubesim and to a real
# kube-apiserver v1.28.7 on etcd ($GF_SHARED/realk8s), with the answers
# normalized (no uids, resourceVersions, timestamps or managedFields) and
# compared, for three behaviours kubesim emulates:
#
#   CEL      the Kueue CRDs' and the QuotaLease CRD's x-kubernetes-
#            validations: immutable fields (PUT and patch), ClusterQueue
#            flavors against coveredResources, two rules failing at once,
#            an evaluation error, a root rule on /status, a list rule;
#   Jobs     a created Job with every API default, the generated selector
#            and labels; restartPolicy; the immutable completions and
#            template, and what a suspended, never-started Job may change;
#   --as     impersonation refused without the verb (user, service
#            account), and allowed for an admin, whose request then runs
#            as the impersonated user (kubectl's own error output
#            compared); groups without a user.
#
# Deliberate differences are normalized: for a changed Job template the
# real server prints the whole Go struct in the message, kubesim
# `core.PodTemplateSpec{...}`; kubesim's Job controller and Kueue-lite
# write status, the bare real server has none (status is not compared
# after a create). Kueue's webhook (the suspend a queued Job
# gets on create) needs Kueue, which the real server lacks: it is checked
# on kubesim alone, against Kueue's documented behaviour.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server; `make deps`),
# kubectl and python3. Fails, never skips, when one is missing. Every
# process and server started here is stopped on any exit.
set -euo pipefail

SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
RK=$SHARED/realk8s
. "$(dirname "$0")/lib/kubesim.sh"
command -v etcd >/dev/null ||
    fail "etcd not found: this test needs a real kube-apiserver on etcd" \
        "(Debian package etcd-server; make deps installs it)"
command -v kubectl >/dev/null || fail "kubectl not found (make deps)"
[ -x "$RK/kube-apiserver" ] || fail "no kube-apiserver in $RK"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

sim_scratch
sim_on_exit() { [ -d "$work/real" ] && "$RK/down.sh" "$work/real" >/dev/null 2>&1 || true; }

t0=$SECONDS
step "a real API server and kubesim, with the same CRDs"
"$RK/up.sh" "$work/real" >"$work/real.out" 2>&1 || {
    cat "$work/real.out"
    fail "up.sh"
}
sim_start "$work/sim" --clusters east --seed 3
R=$work/real/kubeconfig-admin.yaml
S=$work/sim/east/kubeconfig-admin.yaml
for cfg in "$R" "$S"; do
    for f in "$SHARED"/kueue/crds/*.yaml; do
        # The Workload CRD uses a 1.30 field: the real server's README says
        # to install its copy without it (the same rules).
        case $f in */kueue.x-k8s.io_workloads.yaml) f=$RK/kueue-workloads-crd-k128.yaml ;; esac
        kubectl --kubeconfig "$cfg" apply --server-side -f "$f" >/dev/null
    done
    kubectl --kubeconfig "$cfg" apply -f "$ROOT/manifests/hub/crd-quotalease.yaml" >/dev/null
    kubectl --kubeconfig "$cfg" wait --for=condition=Established --timeout=30s crd --all >/dev/null
done
grep -q 'crd rule not evaluated' "$work/sim.log" &&
    fail "kubesim could not evaluate a rule: $(grep 'crd rule not evaluated' "$work/sim.log" | head -3)"

step "the same requests to both, answers compared"
python3 - "$R" "$S" <<'PYEOF'
import json, re, ssl, sys, urllib.request, urllib.error
import yaml

def server_of(path):
    cfg = yaml.safe_load(open(path))
    cl = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    ctx = ssl.create_default_context(cafile=cl["certificate-authority"]) \
        if "certificate-authority" in cl else ssl.create_default_context()
    if "certificate-authority-data" in cl:
        import base64
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cl["certificate-authority-data"]).decode())
    return {"url": cl["server"], "token": user["token"], "ctx": ctx}

servers = {"real": server_of(sys.argv[1]), "kubesim": server_of(sys.argv[2])}

def call(srv, method, path, body=None, ctype="application/json",
         headers=None):
    data = None if body is None else (
        body if isinstance(body, str) else json.dumps(body)).encode()
    req = urllib.request.Request(srv["url"] + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + srv["token"])
    if data is not None:
        req.add_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, context=srv["ctx"], timeout=10) as r:
            code, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read().decode()
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text

GO_DUMP = re.compile(r"core\.PodTemplateSpec\{.*?\}: field is immutable")

def norm(method, code, doc):
    """What must match: the code and the answer without server noise."""
    if isinstance(doc, str):
        return code, doc.strip()
    doc = json.loads(json.dumps(doc))
    if doc.get("kind") == "Status":
        def msg(m):
            return GO_DUMP.sub("core.PodTemplateSpec{...}: field is immutable",
                               m or "")
        out = {k: doc.get(k) for k in ("status", "reason", "code")}
        out["message"] = msg(doc.get("message"))
        d = doc.get("details") or {}
        out["details"] = {k: d.get(k) for k in ("name", "group", "kind")}
        out["causes"] = sorted(
            json.dumps(dict(c, message=msg(c.get("message"))), sort_keys=True)
            for c in d.get("causes") or [])
        return code, out
    if method in ("PATCH", "PUT"):
        # kubesim runs the Job controller and Kueue-lite, which write
        # status; the real server here has no controller at all.
        doc.pop("status", None)
    md = doc.get("metadata", {})
    uid = md.get("uid")
    for k in ("uid", "resourceVersion", "creationTimestamp",
              "managedFields"):
        md.pop(k, None)
    text = json.dumps(doc, sort_keys=True)
    if uid:
        text = text.replace(uid, "<uid>")
    return code, json.loads(text)

failures = []
def same(name, method, path, body=None, ctype="application/json",
         want=None, prep=None, headers=None, compare_body=True):
    got = {}
    for s, srv in servers.items():
        b = prep(srv) if prep else body
        got[s] = norm(method, *call(srv, method, path, b, ctype, headers))
        if not compare_body:
            got[s] = (got[s][0], None)
    if got["real"] != got["kubesim"]:
        failures.append(name)
        print("DIFF", name)
        for s in got:
            print("  %-8s %s" % (s, json.dumps(got[s], sort_keys=True)[:1500]))
    elif want is not None and got["real"][0] != want:
        failures.append(name)
        print("BOTH WRONG", name, got["real"][0], "want", want)
    else:
        print("ok  ", name, got["real"][0])

MERGE = "application/merge-patch+json"
KQ = "/apis/kueue.x-k8s.io/v1beta2"
LQ = KQ + "/namespaces/default/localqueues"

# --- CEL -----------------------------------------------------------------
same("LocalQueue created", "POST", LQ,
     {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
      "metadata": {"name": "lq"}, "spec": {"clusterQueue": "cq1"}}, want=201)
same("LocalQueue.spec.clusterQueue immutable (patch)", "PATCH", LQ + "/lq",
     {"spec": {"clusterQueue": "cq2"}}, MERGE, want=422)
def lq_put(srv):
    _, cur = call(srv, "GET", LQ + "/lq")
    cur["spec"]["clusterQueue"] = "cq2"
    return cur
same("LocalQueue.spec.clusterQueue immutable (PUT)", "PUT", LQ + "/lq",
     prep=lq_put, want=422)
same("LocalQueue other fields mutable", "PATCH", LQ + "/lq",
     {"spec": {"clusterQueue": "cq1", "stopPolicy": "Hold"}}, MERGE, want=200)

def cq(name, groups, **spec):
    s = {"namespaceSelector": {}, "resourceGroups": groups}
    s.update(spec)
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
            "metadata": {"name": name}, "spec": s}
def group(covered, *flavors):
    return {"coveredResources": covered,
            "flavors": [{"name": f, "resources": r} for f, r in flavors]}
gpu = {"name": "nvidia.com/gpu", "nominalQuota": "8"}
same("ClusterQueue flavors vs coveredResources", "POST", KQ + "/clusterqueues",
     cq("cq-bad", [group(["cpu", "nvidia.com/gpu"], ("a100", [gpu]))]),
     want=422)
same("ClusterQueue two rules failing", "POST", KQ + "/clusterqueues",
     cq("cq-bad2", [group(["nvidia.com/gpu"],
                          ("a100", [dict(gpu, borrowingLimit="2")])),
                    group(["cpu", "memory"],
                          ("x", [{"name": "cpu", "nominalQuota": "1"}]))]),
     want=422)
same("ClusterQueue valid", "POST", KQ + "/clusterqueues",
     cq("cq-gpu", [group(["nvidia.com/gpu"], ("a100", [gpu]))],
        cohortName="ml", preemption={"reclaimWithinCohort": "Any"}),
     want=201)
same("ClusterQueue preemption rule", "PATCH", KQ + "/clusterqueues/cq-gpu",
     {"spec": {"preemption": {"reclaimWithinCohort": "Never",
                              "borrowWithinCohort": {"policy":
                                                     "LowerPriority"}}}},
     MERGE, want=422)
same("ResourceFlavor rule that cannot be evaluated", "POST",
     KQ + "/resourceflavors",
     {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
      "metadata": {"name": "rf"}, "spec": {"topologyName": "t"}}, want=422)
same("ResourceFlavor tolerations (a list rule)", "POST",
     KQ + "/resourceflavors",
     {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
      "metadata": {"name": "rf"},
      "spec": {"tolerations": [{"key": "nvidia.com/gpu",
                                "operator": "Exists", "effect": "Bad"}]}},
     want=422)
WL = "/apis/kueue.x-k8s.io/v1beta1/namespaces/default/workloads"
same("Workload created", "POST", WL,
     {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "Workload",
      "metadata": {"name": "w"},
      "spec": {"queueName": "lq", "podSets": [
          {"name": "main", "count": 1, "template": {"spec": {"containers": [
              {"name": "c", "image": "x"}]}}}]}}, want=201,
     # The real server does not apply this CRD's default '' for
     # priorityClassSource (outside its enum); kubesim's schema does.
     compare_body=False)
same("Workload root rule on /status", "PATCH", WL + "/w/status",
     {"status": {"conditions": [
         {"type": "QuotaReserved", "status": "True", "reason": "x",
          "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
         "admission": {"clusterQueue": "cq", "podSetAssignments": []}}},
     MERGE, want=422)
QL = "/apis/gpufed.io/v1alpha1/namespaces/default/quotaleases"
same("QuotaLease created", "POST", QL,
     {"apiVersion": "gpufed.io/v1alpha1", "kind": "QuotaLease",
      "metadata": {"name": "l1"},
      "spec": {"group": "ml", "mode": "Redirect", "epoch": 1,
               "origin": {"member": "east", "namespace": "ml",
                          "name": "j", "uid": "u"},
               "lender": {"member": "west", "clusterQueue": "cq",
                          "flavor": "a100"},
               "resource": "nvidia.com/gpu", "gpus": 4}}, want=201)
same("QuotaLease spec immutable", "PATCH", QL + "/l1",
     {"spec": {"gpus": 8}}, MERGE, want=422)

# --- Jobs ----------------------------------------------------------------
JOBS = "/apis/batch/v1/namespaces/default/jobs"
def job(name, **tspec):
    spec = {"containers": [{"name": "c", "image": "busybox",
                            "resources": {"limits": {"nvidia.com/gpu": "1"}}},
                           ]}
    spec.update(tspec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name},
            "spec": {"template": {"spec": spec}}}
same("Job created with the API defaults", "POST", JOBS,
     job("j1", restartPolicy="Never"), want=201)
j2 = job("j2", restartPolicy="OnFailure",
         containers=[{"name": "c", "image": "busybox:1.36"}])
j2["spec"]["parallelism"] = 2
same("Job with a tagged image, parallelism only", "POST", JOBS, j2, want=201)
same("Job without restartPolicy", "POST", JOBS, job("j3"), want=422)
same("Job with restartPolicy Always", "POST", JOBS,
     job("j3", restartPolicy="Always"), want=422)
same("Job completions immutable", "PATCH", JOBS + "/j1",
     {"spec": {"completions": 2}}, MERGE, want=422)
same("Job template immutable while running", "PATCH", JOBS + "/j1",
     {"spec": {"template": {"spec": {"nodeSelector": {"gpu": "a100"}}}}},
     MERGE, want=422)
same("Job suspended", "PATCH", JOBS + "/j1", {"spec": {"suspend": True}},
     MERGE, want=200)
same("suspended, never started: scheduling directives change", "PATCH",
     JOBS + "/j1",
     {"spec": {"template": {"metadata": {"labels": {"x": "y"}},
                            "spec": {"nodeSelector": {"gpu": "a100"},
                                     "tolerations": [
                                         {"key": "nvidia.com/gpu",
                                          "operator": "Exists"}]}}}},
     MERGE, want=200)
same("suspended: containers still immutable", "PATCH", JOBS + "/j1",
     {"spec": {"template": {"spec": {"containers": [
         {"name": "c", "image": "busybox:2"}]}}}}, MERGE, want=422)

# --- impersonation without kubectl: groups alone -------------------------
same("Impersonate-Group without a user", "GET",
     "/api/v1/namespaces/default/configmaps",
     headers={"Impersonate-Group": "devs"}, want=500)

if failures:
    print("%d of the cases differ: %s" % (len(failures), ", ".join(failures)))
    sys.exit(1)
PYEOF

step "kubectl --as on both: the same errors"
RA=$work/real/kubeconfig-member-agent.yaml
SA=$work/sim/east/kubeconfig-member-agent.yaml
as_case() { # NAME ARGS...: kubectl's stderr and exit status on both
    local name=$1 r s rc_r=0 rc_s=0
    shift
    r=$(kubectl --kubeconfig "${KC_R}" --request-timeout=10s "$@" 2>&1) || rc_r=$?
    s=$(kubectl --kubeconfig "${KC_S}" --request-timeout=10s "$@" 2>&1) || rc_s=$?
    if [ "$r" != "$s" ] || [ $rc_r != $rc_s ]; then
        echo "  real ($rc_r): $r" >&2
        echo "  kubesim ($rc_s): $s" >&2
        fail "kubectl $name differs"
    fi
    echo "ok   kubectl $name (exit $rc_r)"
}
KC_R=$RA KC_S=$SA
as_case "--as a user, no impersonate verb" get configmaps -n default --as alice
as_case "--as a service account, no impersonate verb" get configmaps -n default \
    --as system:serviceaccount:default:robot
KC_R=$R KC_S=$S
as_case "--as alice (admin may): alice's RBAC decides" get configmaps -n default --as alice
as_case "--as alice --as-group devs" get configmaps -n default --as alice --as-group devs
as_case "--as alice: auth can-i" auth can-i list configmaps -n default --as alice

step "kubesim alone: Kueue's webhook suspends a queued Job in the create answer"
out=$(kubectl --kubeconfig "$S" create -o jsonpath='{.spec.suspend}' -f - <<'EOF'
apiVersion: batch/v1
kind: Job
metadata:
  name: queued
  namespace: default
  labels: {kueue.x-k8s.io/queue-name: lq}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, resources: {limits: {nvidia.com/gpu: "1"}}}]
EOF
)
[ "$out" = true ] || fail "the create answer of a queued Job shows suspend=$out"
echo "PASS test_realk8s_kubesim_diff_cel_jobs ($((SECONDS - t0)) s)"
