#!/usr/bin/env bash
# kubeclient against a real kube-apiserver v1.28.7 on etcd
# ($GF_SHARED/realk8s), driven through gpufedctl kube. Two servers run
# side by side, so that the long quiet-watch check on A shares its wait
# with everything that restarts B:
#
#   A  a watch on a resource that does not change sits for longer than the
#      old 150 s client idle limit: it is still the same stream (no second
#      LIST or WATCH on the server, nothing logged) and delivers the next
#      event. A list refused with 403 (the gpufed-hub identity) ends
#      gpufedctl with the server's message.
#   B  a watch refused with 403 after its list was allowed (a Role with
#      list only) ends gpufedctl with the server's message instead of
#      retrying forever; a restart (kill -9, up.sh again): the watch from the old RV gets
#      410 and the client lists the current state, sees every object
#      written after the restart within seconds, with a handful of LISTs
#      (the old client sent thousands); a restart with etcd compacting
#      every second while the watcher is stopped (its RV compacted away);
#      a list of 90 ConfigMaps of 900 KB (over the 64 MiB body cap at
#      limit=500) read whole by get and by watch.
#
# Needs GF_BIN, GF_SHARED, etcd (Debian: etcd-server; `make deps`) and
# kubectl. Fails, never skips, when one is missing. Every process and
# server started here is stopped on any exit.
set -euo pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "-- $*"; }

SHARED=${GF_SHARED:?GF_SHARED must name the shared folder}
RK=$SHARED/realk8s
command -v etcd >/dev/null ||
    fail "etcd not found: this test needs a real kube-apiserver on etcd" \
        "(Debian package etcd-server; make deps installs it)"
command -v kubectl >/dev/null || fail "kubectl not found (make deps)"
[ -x "$RK/kube-apiserver" ] || fail "no kube-apiserver in $RK"

work=$(mktemp -d)
pids=()
cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do
        kill -CONT "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done
    for s in a b; do
        [ -d "$work/$s" ] && "$RK/down.sh" "$work/$s" >/dev/null 2>&1 || true
    done
    if [ $rc -ne 0 ]; then
        for f in "$work"/*.err; do
            [ -s "$f" ] && { echo "== $f"; tail -5 "$f"; }
        done
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

G=$GF_BIN/gpufedctl
ka() { kubectl --kubeconfig "$work/a/kubeconfig-admin.yaml" "$@"; }
kb() { kubectl --kubeconfig "$work/b/kubeconfig-admin.yaml" "$@"; }
# metric SERVER NAME VERB RESOURCE: the sum of a request metric's series.
metric() {
    kubectl --kubeconfig "$work/$1/kubeconfig-admin.yaml" get --raw /metrics |
        awk -v n="$2{" -v v="verb=\"$3\"" -v r="resource=\"$4\"" \
            'index($0, n) == 1 && index($0, v) && index($0, r) { s += $NF }
             END { print s + 0 }'
}
# until SECONDS CMD...: true once CMD succeeds, polled every 0.2 s.
until_ok() {
    local end=$((SECONDS + $1))
    shift
    while ! "$@" 2>/dev/null; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}
seen() { [ "$(grep -c "$2" "$1")" -ge "$3" ]; }
up() { "$RK/up.sh" "$work/$1" >"$work/up-$1.log" 2>&1; }
# Kills B's API server (as a crash) and waits until it is gone: up.sh
# takes a live pid file to mean "already running".
kill_b() {
    local pid
    pid=$(cat "$work/b/kube-apiserver.pid")
    kill -9 "$pid"
    until_ok 10 gone "$pid" || fail "kube-apiserver $pid survived kill -9"
}
gone() { [ ! -r "/proc/$1/stat" ] || awk '{exit $3 != "Z"}' "/proc/$1/stat"; }

step "two real API servers"
up a &
ua=$!
up b &
ub=$!
wait $ua || fail "server A did not start: $(tail -3 "$work/up-a.log")"
wait $ub || fail "server B did not start: $(tail -3 "$work/up-b.log")"

step "A: a quiet watch (started now, checked at the end)"
ka create namespace quiet >/dev/null
ka -n quiet create configmap q0 >/dev/null
"$G" kube watch configmaps -n quiet \
    --kubeconfig "$work/a/kubeconfig-admin.yaml" >"$work/quiet.out" \
    2>"$work/quiet.err" &
pids+=($!)
until_ok 20 seen "$work/quiet.out" "ADDED *configmap/q0" 1 ||
    fail "quiet watch did not list"
quiet_t0=$SECONDS
# The API server's own informers (kube-system ConfigMaps) count too: the
# quiet watch is judged by what changes from here.
base_list=$(metric a apiserver_request_total LIST configmaps)
base_watch=$(metric a apiserver_request_total WATCH configmaps)
base_open=$(metric a apiserver_longrunning_requests WATCH configmaps)

step "A: 403 ends the command with the server's message"
hub=$work/a/kubeconfig-gpufed-hub.yaml
set +e
timeout 20 "$G" kube watch secrets -A --kubeconfig "$hub" >/dev/null \
    2>"$work/forbid-list.err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "watch secrets as gpufed-hub: status $rc, want 2"
grep -q 'Error from server (Forbidden): .*cannot list resource "secrets"' \
    "$work/forbid-list.err" || fail "403 on list: no server message"

kb create namespace r >/dev/null
kb -n r create configmap r0 >/dev/null

step "B: a 403 on the watch itself (gpufed-hub may list, not watch)"
# An identity that may list but not watch: the 403 comes on the WATCH.
kb create role cm-list-only -n r --verb=list --resource=configmaps \
    >/dev/null
kb create rolebinding cm-list-only -n r --role=cm-list-only \
    --user=system:serviceaccount:gpufed-system:gpufed-hub >/dev/null
set +e
timeout 20 "$G" kube watch configmaps -n r \
    --kubeconfig "$work/b/kubeconfig-gpufed-hub.yaml" \
    >"$work/forbid-watch.out" 2>"$work/forbid-watch.err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "watch refused with 403: status $rc, want 2"
grep -q 'Error from server (Forbidden): .*cannot watch resource' \
    "$work/forbid-watch.err" || fail "403 on watch: no server message"
grep -q "ADDED *configmap/r0" "$work/forbid-watch.out" ||
    fail "the list before the refused watch was not printed"

step "B: API server restart; the watch resumes from the current state"
"$G" kube watch configmaps -n r --kubeconfig "$work/b/kubeconfig-admin.yaml" \
    >"$work/restart.out" 2>"$work/restart.err" &
wpid=$!
pids+=($wpid)
until_ok 20 seen "$work/restart.out" "ADDED *configmap/r0" 1 ||
    fail "restart watch did not list"
# Writes elsewhere move the RV past what the watcher has seen.
for i in 1 2 3; do kb -n default create configmap pre-$i >/dev/null; done
kill_b
up b || fail "server B did not restart: $(tail -3 "$work/up-b.log")"
t=$SECONDS
for i in $(seq 1 20); do kb -n r create configmap n-$i >/dev/null; done
until_ok 20 seen "$work/restart.out" "ADDED *configmap/n-" 20 ||
    fail "after the restart: $(grep -c 'configmap/n-' "$work/restart.out")" \
        "of 20 new objects seen"
lists=$(metric b apiserver_request_total LIST configmaps)
echo "   20 of 20 new objects $((SECONDS - t)) s after the restart; $lists LISTs"
[ "$lists" -le 5 ] || fail "$lists LISTs after one restart (relist loop)"

step "B: restart with etcd compacting past the stopped watcher's RV"
kill -STOP $wpid
kill_b
REALK8S_EXTRA_ARGS="--etcd-compaction-interval=1s" up b ||
    fail "server B did not restart with compaction: $(tail -3 "$work/up-b.log")"
rv_c1=$(kb -n r create configmap c-1 -o jsonpath='{.metadata.resourceVersion}')
for i in $(seq 2 5); do kb -n r create configmap c-$i >/dev/null; done
# The watcher's RV is older than c-1's: it is compacted away once a list
# at the RV just before c-1's is refused with 410 (Exact goes to etcd).
compacted() {
    local e
    e=$(kb get --raw "/api/v1/namespaces/r/configmaps?resourceVersion=$((rv_c1 - 1))&resourceVersionMatch=Exact" 2>&1 >/dev/null) &&
        return 1
    [[ $e == *"(Expired)"* ]]
}
until_ok 20 compacted || fail "RV $((rv_c1 - 1)) not compacted after 20 s"
# The server counts every LIST of ConfigMaps, the probes above too (one
# per poll until the compaction): only those after SIGCONT are the
# watcher's.
lists0=$(metric b apiserver_request_total LIST configmaps)
kill -CONT $wpid
t=$SECONDS
until_ok 20 seen "$work/restart.out" "ADDED *configmap/c-" 5 ||
    fail "after compaction: $(grep -c 'configmap/c-' "$work/restart.out")" \
        "of 5 new objects seen"
lists=$(($(metric b apiserver_request_total LIST configmaps) - lists0))
echo "   5 of 5 $((SECONDS - t)) s after SIGCONT; the watcher's LISTs: $lists"
# At most one relist (after a 410; the watch may also resume from its
# RV, with none): a relist loop would make many.
[ "$lists" -le 2 ] || fail "$lists LISTs after compaction (relist loop)"
kill $wpid
wait $wpid || fail "watch did not end with status 0 on SIGTERM"

step "B: 90 ConfigMaps of 900 KB (81 MB at limit=500, over the 64 MiB cap)"
# Without the 1 s compaction, which would expire continue tokens between
# the pages of a list this large.
kill_b
up b || fail "server B did not restart: $(tail -3 "$work/up-b.log")"
kb create namespace big >/dev/null
head -c 900000 /dev/zero | tr '\0' x >"$work/v900k"
for i in $(seq 1 90); do
    printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big-%s",' "$i"
    printf '"namespace":"big"},"data":{"v":"%s"}}\n' "$(cat "$work/v900k")"
done | kb create -f - >/dev/null
rm -f "$work/v900k"
n=$("$G" kube get configmaps -n big \
    --kubeconfig "$work/b/kubeconfig-admin.yaml" 2>"$work/big.err" | wc -l)
[ "$n" -eq 90 ] || fail "get -n big: $n of 90"
n=$("$G" kube get configmaps -A \
    --kubeconfig "$work/b/kubeconfig-admin.yaml" 2>>"$work/big.err" |
    grep -c '^configmap/big-')
[ "$n" -eq 90 ] || fail "get -A: $n of 90 big ones"
"$G" kube watch configmaps -n big \
    --kubeconfig "$work/b/kubeconfig-admin.yaml" >"$work/bigw.out" \
    2>>"$work/big.err" &
bpid=$!
pids+=($bpid)
until_ok 60 seen "$work/bigw.out" "ADDED *configmap/big-" 90 ||
    fail "watch -n big synced $(grep -c ADDED "$work/bigw.out") of 90"
kill $bpid
wait $bpid || true
[ ! -s "$work/big.err" ] || fail "big list: $(head -3 "$work/big.err")"

step "A: the quiet watch, after more than the old 150 s idle limit"
left=$((quiet_t0 + 155 - SECONDS))
# In the background, so that a SIGTERM (make e2e runs this script beside
# others and stops it when one fails) is handled at once.
if [ $left -gt 0 ]; then
    sleep $left &
    pids+=($!)
    wait $!
fi
[ ! -s "$work/quiet.err" ] || fail "quiet watch logged: $(cat "$work/quiet.err")"
# No LIST since, no WATCH ended (request_total counts a watch when it
# ends), as many open as then.
[ "$(metric a apiserver_request_total LIST configmaps)" -eq "$base_list" ] ||
    fail "the quiet watch listed again"
[ "$(metric a apiserver_request_total WATCH configmaps)" -eq "$base_watch" ] ||
    fail "the quiet watch was torn down and replaced"
[ "$(metric a apiserver_longrunning_requests WATCH configmaps)" -eq \
    "$base_open" ] || fail "the quiet watch is not open on the server"
ka -n quiet create configmap q1 >/dev/null
until_ok 10 seen "$work/quiet.out" "ADDED *configmap/q1" 1 ||
    fail "the quiet watch did not deliver the next event"
[ "$(metric a apiserver_request_total WATCH configmaps)" -eq "$base_watch" ] ||
    fail "the event came on a new watch"
echo "   one stream, quiet for $((SECONDS - quiet_t0)) s, then an event"

echo "PASS test_realk8s_kubeclient"
