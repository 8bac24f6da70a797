#!/usr/bin/env bash
# The QuotaLease CRD (manifests/hub/crd-quotalease.yaml) as users and the
# hub meet it: it installs, a lease is created and read back with its
# printer columns and short name, its status is written through the
# status subresource, a JSON patch carrying a stale resourceVersion is a
# 409 Conflict (how kubeclient writes preconditions), a phase outside the
# enum is refused, the lease gpufed's writer builds and its status patches
# (Active, then Reclaiming with its millisecond instants;
# controller/test/testdata, pinned to gf_obs_lease_to_json and
# gf_obs_lease_status_patch by controller/test/test_observe.c) are
# accepted, and its spec is immutable (a CEL rule, with the server's
# message on both).
# Runs on kubesim and on the real server in $GF_SHARED/realk8s.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server) and kubectl. A
# missing one fails the test: this is never a silent pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/kubesim.sh"
SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
REALK8S="$SHARED/realk8s"
for c in etcd kubectl; do
    command -v $c >/dev/null ||
        fail "'$c' not found: this test needs a real kube-apiserver on etcd (make deps)"
done

sim_scratch
sim_on_exit() { "$REALK8S/down.sh" "$work/srv" >/dev/null 2>&1 || true; }

CRD="$root/manifests/hub/crd-quotalease.yaml"
SAMPLE="$root/e2e/testdata/quotalease-sample.yaml"
BUILT="$root/controller/test/testdata/quotalease-built.json"
BUILT_PATCH="$root/controller/test/testdata/quotalease-status-patch.json"
RECLAIM_PATCH="$root/controller/test/testdata/quotalease-reclaim-patch.json"
NAME=east-ml-train-1-e1

# check KUBECONFIG STRICT: the checks on one server; STRICT=1 where the
# server enforces value validations (minimum), which kubesim does not yet
# (docs/internals/kubesim-api.md, "Known differences").
check() {
    local kc=$1 strict=$2
    k() { kubectl --kubeconfig "$kc" --cache-dir "$work/kcache-$strict" "$@"; }
    k apply --server-side -f "$CRD" >/dev/null
    k wait --for condition=established crd/quotaleases.gpufed.io \
        --timeout 30s >/dev/null
    k create namespace gpufed-system >/dev/null
    k apply -f "$SAMPLE" >/dev/null

    step "status through the status subresource; spec there is ignored"
    k -n gpufed-system patch ql $NAME --subresource=status --type=merge -p \
        '{"spec":{"gpus":99},"status":{"phase":"Active","reason":"",
          "expiresAt":"2030-01-01T00:00:00Z",
          "transitions":[{"phase":"Pending","epoch":1,"time":"2026-12-06T03:00:00Z"},
                         {"phase":"Active","reason":"CopyAdmitted","epoch":1,"time":"2026-12-06T03:00:02Z"}]}}' \
        >/dev/null
    [ "$(k -n gpufed-system get ql $NAME -o jsonpath='{.spec.gpus}')" = 4 ] ||
        fail "a status write changed spec"

    step "printer columns and the short name"
    out=$(k get ql -A --no-headers)
    read -r ns name phase origin wl lender gpus _ <<<"$out"
    [ "$ns/$name/$phase/$origin/$wl/$lender/$gpus" = \
        "gpufed-system/$NAME/Active/east/job-train-1-abcde/west/4" ] ||
        fail "columns: $out"
    hdr=$(k get ql -A)
    hdr=${hdr%%$'\n'*}
    [[ $hdr =~ PHASE\ +ORIGIN\ +WORKLOAD\ +LENDER\ +GPUS\ +EXPIRES\ +AGE ]] ||
        fail "headers: $hdr"

    step "a JSON patch that writes a stale resourceVersion is 409 (the client's precondition)"
    if k -n gpufed-system patch ql $NAME --subresource=status --type=json -p \
        '[{"op":"replace","path":"/metadata/resourceVersion","value":"1"},
          {"op":"replace","path":"/status/reason","value":"x"}]' 2>"$work/err"; then
        fail "stale resourceVersion accepted"
    fi
    grep -q 'Operation cannot be fulfilled' "$work/err" || fail "$(cat "$work/err")"

    step "the lease gpufed builds, and its status patch, pass the CRD"
    k create -f "$BUILT" >/dev/null
    k -n gpufed-system patch ql east-train-resnet-2 --subresource=status \
        --type=merge --patch-file "$BUILT_PATCH" >/dev/null
    out=$(k -n gpufed-system get ql east-train-resnet-2 -o \
        jsonpath='{.spec.resource}/{.spec.origin.jobName}/{.status.phase}/{.status.transitions[1].reason}')
    [ "$out" = "nvidia.com/gpu/train-resnet/Active/CopyAdmitted" ] ||
        fail "built lease read back as $out"
    k -n gpufed-system patch ql east-train-resnet-2 --subresource=status \
        --type=merge --patch-file "$RECLAIM_PATCH" >/dev/null
    out=$(k -n gpufed-system get ql east-train-resnet-2 -o \
        jsonpath='{.status.phase}/{.status.reclaimStarted}/{.status.reclaimDeadline}')
    [ "$out" = "Reclaiming/2026-12-06T03:00:05.125Z/2026-12-06T03:00:35.250Z" ] ||
        fail "reclaim status read back as $out"

    step "a phase outside the enum is refused"
    if k -n gpufed-system patch ql $NAME --subresource=status --type=merge \
        -p '{"status":{"phase":"Bogus"}}' 2>"$work/err"; then
        fail "phase Bogus accepted"
    fi
    grep -q 'Unsupported value: "Bogus"' "$work/err" || fail "$(cat "$work/err")"

    if [ "$strict" = 1 ]; then
        step "gpus must be at least 1 (value validation)"
        sed 's/gpus: 4/gpus: 0/; s/name: '$NAME'/name: zero-gpus/' "$SAMPLE" |
            k apply -f - 2>"$work/err" && fail "gpus: 0 accepted"
        grep -q 'spec.gpus' "$work/err" || fail "$(cat "$work/err")"
    fi

    step "spec is immutable (CEL)"
    if k -n gpufed-system patch ql $NAME --type=merge \
        -p '{"spec":{"gpus":8}}' 2>"$work/err"; then
        fail "spec changed"
    fi
    grep -qF "\"$NAME\" is invalid: spec: Invalid value: \"object\": spec is immutable" \
        "$work/err" || fail "$(cat "$work/err")"
}

step "kubesim"
sim_start "$work/sim" --clusters hub --no-kueue
check "$work/sim/hub/kubeconfig-admin.yaml" 0
sim_stop

step "real kube-apiserver"
"$REALK8S/up.sh" "$work/srv" >/dev/null || fail "kube-apiserver did not start"
check "$work/srv/kubeconfig-admin.yaml" 1
echo "PASS"
