#!/usr/bin/env bash
# The end-to-end demo: a hub and three simulated member clusters (kubesim
# with Kueue-lite), gpufed, a stream of GPU jobs, the ledger and leases
# shown live, a partition injected and healed, and a summary.
#
# The controller that this demo shows is not built yet. Until it is, this
# script says so and exits with a failure rather than pretending.
set -euo pipefail
cat <<'TXT'
gpufed demo: not available yet.

When complete, `make demo` will:
  1. start kubesim with four clusters (hub, east, west, north), each with
     Kueue-lite, GPU nodes and the upstream Kueue CRDs;
  2. start gpufed in the hub with the example FederationPolicy;
  3. submit a stream of GPU jobs that overflow east's queues;
  4. show the ledger and the leases live as jobs are redirected to idle quota;
  5. partition one member, show its leases go Suspect then Fenced, heal it;
  6. end with a summary: jobs run, jobs redirected, queue wait, and the
     invariant checks (no job ran twice, no quota lost).

What exists today: the foundation libraries (common/, kubeclient/, policy/)
and kubesim; see README.md and `make test`.
TXT
exit 1
