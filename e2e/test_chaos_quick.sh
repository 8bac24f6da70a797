#!/usr/bin/env bash
# The chaos suite, short (docs/chaos.md): one fixed seed, 16 fault events
# and 20 GPU Jobs over 30 s against a hub and three members, then the
# invariant checker. About 1.5 minutes.
#
# The safety invariants (S1 at most once, S2 conservation, S3 nothing
# lost, S4) and L2 (the ledger converges within two heartbeat periods of
# the final heal) fail the test. L1 is an approximation (docs/chaos.md)
# and is printed here; `make chaos` enforces everything.
#
# Seed 1 draws clock-drift faults (hub replicas restarted with clock rates
# within rho; an agent too once agents run).
#
# The group runs in mode both, as `make chaos` does: loans first (S2 is
# also checked on quota, at every sample of the grants and holds), then
# redirects, with the lenders' waves reclaiming both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CHAOS_MODE=${CHAOS_MODE:-both} CHAOS_ENFORCE=${CHAOS_ENFORCE:-S1,S2,S3,S4,L2} \
    exec bash "$here/chaos/run.sh" --seed "${CHAOS_SEED:-1}" --events 16 \
    --window 30 --drain 90
