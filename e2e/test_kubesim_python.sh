#!/usr/bin/env bash
# Conformance of kubesim with the official Python client (Debian
# python3-kubernetes): lists with paging and selectors, a watch with
# bookmarks, a 410 after compaction and after an API server restart that
# the client survives by relisting, 409 on a stale resourceVersion, and
# faults (429 with Retry-After, watch drops) as the client sees them.
#
# Needs GF_BIN. Every process started here is stopped on any exit.
set -euo pipefail

BIN=${GF_BIN:?GF_BIN must name the directory with kubesim}
PY=/usr/bin/python3
. "$(dirname "$0")/lib/kubesim.sh"

sim_scratch

# A small watch cache makes compaction (and so 410) easy to reach; short
# bookmarks make them observable within the test.
sim_start "$work/sim" --clusters hub --seed 3 --watch-cache 16 \
    --bookmark-seconds 1

KUBESIM="$BIN/kubesim" SIM_DIR="$work/sim" timeout 50 "$PY" - <<'EOF'
import os
import subprocess
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

SIM = os.environ["SIM_DIR"]
NS = "default"


def api(identity="admin"):
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=f"{SIM}/hub/kubeconfig-{identity}.yaml",
        client_configuration=cfg)
    # Faults must show up as errors, not be hidden by urllib3's retries.
    cfg.retries = False
    return client.CoreV1Api(client.ApiClient(cfg))


def fault(*args):
    subprocess.run([os.environ["KUBESIM"], "fault", *args, "--dir", SIM],
                   check=True, stdout=subprocess.DEVNULL)


def step(msg):
    print("--", msg, flush=True)


def expect_status(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ApiException as e:
        assert e.status == code, f"expected {code}, got {e.status}: {e.body}"
        return e
    raise AssertionError(f"expected {code}, call succeeded")


v1 = api()

step("create and list with label selector, limit and continue")
for i in range(7):
    v1.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=f"cm{i}",
                                     labels={"parity": str(i % 2)}),
        data={"i": str(i)}))
odd = v1.list_namespaced_config_map(NS, label_selector="parity=1")
assert sorted(c.metadata.name for c in odd.items) == ["cm1", "cm3", "cm5"]
names, cont = [], None
while True:
    page = v1.list_namespaced_config_map(NS, limit=3, _continue=cont)
    names += [c.metadata.name for c in page.items]
    cont = page.metadata._continue
    if not cont:
        break
assert names == [f"cm{i}" for i in range(7)], names
field = v1.list_namespaced_config_map(NS, field_selector="metadata.name=cm4")
assert [c.metadata.name for c in field.items] == ["cm4"]

step("watch with bookmarks from a list's resourceVersion")
rv = v1.list_namespaced_config_map(NS).metadata.resource_version
v1.patch_namespaced_config_map("cm0", NS, {"data": {"i": "changed"}})
w = watch.Watch()
seen, bookmarks = [], 0
for ev in w.stream(v1.list_namespaced_config_map, NS, resource_version=rv,
                   allow_watch_bookmarks=True, timeout_seconds=4):
    if ev["type"] == "BOOKMARK":
        bookmarks += 1
        assert ev["raw_object"]["metadata"]["resourceVersion"]
        w.stop()
    else:
        seen.append((ev["type"], ev["object"].metadata.name))
assert ("MODIFIED", "cm0") in seen, seen
assert bookmarks >= 1, "no bookmark within 4 s"

step("410 after compaction, survived by relisting")
old_rv = rv
for i in range(40):  # more writes than the watch cache holds
    v1.patch_namespaced_config_map("cm1", NS, {"data": {"n": str(i)}})


def watch_from(rv):
    got = []
    for ev in watch.Watch().stream(v1.list_namespaced_config_map, NS,
                                   resource_version=rv, timeout_seconds=1):
        got.append(ev)
    return got


e = expect_status(410, watch_from, old_rv)
relist = v1.list_namespaced_config_map(NS)
events = watch_from(relist.metadata.resource_version)
assert all(ev["type"] != "ERROR" for ev in events)

step("API server restart: watch cache lost, data kept, relist works")
rv_before = v1.list_namespaced_config_map(NS).metadata.resource_version
v1.patch_namespaced_config_map("cm2", NS, {"data": {"x": "1"}})
fault("hub", "restart", "--for", "1s")
try:
    api().list_namespaced_config_map(NS)
    raise AssertionError("a restarting API server answered")
except AssertionError:
    raise
except Exception as e:  # refused while it is down
    assert "refused" in str(e), e
time.sleep(1.2)
v1 = api()
expect_status(410, watch_from, rv_before)
after = v1.list_namespaced_config_map(NS)
assert len(after.items) == 7
assert v1.read_namespaced_config_map("cm2", NS).data["x"] == "1"

step("409 on a stale resourceVersion (replace and patch)")
cur = v1.read_namespaced_config_map("cm3", NS)
stale = cur.metadata.resource_version
v1.patch_namespaced_config_map("cm3", NS, {"data": {"v": "2"}})
cur.data = {"v": "3"}
e = expect_status(409, v1.replace_namespaced_config_map, "cm3", NS, cur)
assert '"reason":"Conflict"' in e.body.replace(" ", ""), e.body
expect_status(409, v1.patch_namespaced_config_map, "cm3", NS,
              {"metadata": {"resourceVersion": stale}, "data": {"v": "4"}})
assert v1.read_namespaced_config_map("cm3", NS).data["v"] == "2"

step("404 and 403 decode as Status")
expect_status(404, v1.read_namespaced_config_map, "nope", NS)
e = expect_status(403, api("member-agent").list_namespaced_config_map, NS)
assert "cannot list resource" in e.body

step("429 with Retry-After, for one identity only")
fault("hub", "429", "--identity", "admin", "--retry-after", "7", "--for", "30s")
e = expect_status(429, v1.list_namespaced_config_map, NS)
assert e.headers.get("Retry-After") == "7", e.headers
api("gpufed-hub")  # other identities are unaffected (403 from RBAC, not 429)
expect_status(403, api("gpufed-hub").list_namespaced_config_map, NS)
fault("clear")

step("5xx burst of two requests")
fault("hub", "5xx", "--count", "2")
expect_status(503, v1.list_namespaced_config_map, NS)
expect_status(503, v1.list_namespaced_config_map, NS)
v1.list_namespaced_config_map(NS)

step("connection reset")
fault("hub", "reset", "--for", "30s")
try:
    api().list_namespaced_config_map(NS)
    raise AssertionError("reset fault not seen")
except AssertionError:
    raise
except Exception as e:  # urllib3 wraps the ECONNRESET
    assert "reset by peer" in str(e) or "Connection aborted" in str(e), e
fault("clear")
v1 = api()
v1.list_namespaced_config_map(NS)

step("watch drop cuts the stream")
fault("hub", "watch-drop", "--for", "30s")
try:
    list(watch.Watch().stream(v1.list_namespaced_config_map, NS,
                              timeout_seconds=3))
    raise AssertionError("watch was not cut")
except AssertionError:
    raise
except Exception:
    pass
fault("clear")
print("python client conformance ok")
EOF

sim_stop
[ "$STOP_RC" = 0 ] || { echo "FAIL: kubesim exited with $STOP_RC on SIGTERM"; exit 1; }
echo "PASS test_kubesim_python"
