#!/usr/bin/env bash
# The chaos suite's invariant checker, on small hand-made runs: a clean
# run passes; an overlap, a double completion, a lost job, an orphan, a
# GPU over capacity, a ledger that disagrees and an idle lender left unused
# each fail; loan grants within the reserved holds pass S2 (and let the
# borrower run beyond its nominal), grants beyond them fail it at each
# sample; a reclaim whose copy stops by its deadline + termination +
# slack passes S4, a late one (or a copy still running, a deadline past
# gracePeriod, a missing deadline) fails it; each fault that the protocol
# says delays the stop (a hub failover, a hub<->lender partition, a frozen
# Kueue, an API server fault on the lender) extends the bound to its own
# bound and no further (e2e/chaos/test_check.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/chaos/test_check.py" -v
