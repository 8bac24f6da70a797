"""Watch ingest with the official Kubernetes Python client, for bench_ingest.

usage: ingest_python.py KUBECONFIG NAMESPACE RESOURCE_VERSION N

Watches kueue.x-k8s.io/v1beta2 Workloads in NAMESPACE from
RESOURCE_VERSION (the events replay from the API server's watch cache)
until N events have been decoded, and prints one JSON line:
{"events": N, "seconds": wall, "cpu": cpu_seconds, "first_event_s": t}.
Run with Debian's /usr/bin/python3 (python3-kubernetes).
"""
import json
import sys
import time

from kubernetes import client, config, watch


def main():
    kubeconfig, ns, rv, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    config.load_kube_config(config_file=kubeconfig)
    api = client.CustomObjectsApi()
    w = watch.Watch()
    t0 = time.monotonic()
    c0 = time.process_time()
    first = None
    seen = 0
    for _ in w.stream(api.list_namespaced_custom_object, "kueue.x-k8s.io",
                      "v1beta2", ns, "workloads", resource_version=rv,
                      _request_timeout=600):
        if first is None:
            first = time.monotonic() - t0
        seen += 1
        if seen >= n:
            break
    w.stop()
    print(json.dumps({"events": seen, "seconds": time.monotonic() - t0,
                      "cpu": time.process_time() - c0,
                      "first_event_s": first}))


if __name__ == "__main__":
    main()
