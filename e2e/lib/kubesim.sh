# Shared by the e2e scripts that run kubesim: source it, then
#   sim_start DIR [kubesim flags...]   start kubesim serving into DIR and wait
#                                      until DIR/ready exists (10 s at most)
#   sim_stop                           SIGTERM, then SIGKILL after 5 s; leaves
#                                      kubesim's exit status in STOP_RC
#   fail MSG / step MSG                report
#   sim_scratch                        makes the scratch directory $work
#                                      and the EXIT trap (sim_exit)
# The caller's EXIT trap must call sim_cleanup, which stops kubesim and, on
# failure, prints the tail of its log (SIM_LOG); sim_exit does, after
# sim_on_exit RC when the script defines it (to stop what it started and
# show its logs), and then removes $work unless KEEP is set.
# Needs GF_BIN (the directory with kubesim).

SIM_BIN=${GF_BIN:?GF_BIN must name the directory with kubesim}
sim_pid=""
SIM_LOG=""
STOP_RC=""

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "-- [${SECONDS}s] $*"; }

sim_start() {
    local dir=$1
    shift
    mkdir -p "$(dirname "$dir")"
    SIM_LOG="$dir.log"
    "$SIM_BIN/kubesim" --dir "$dir" "$@" >"$SIM_LOG" 2>&1 &
    sim_pid=$!
    for _ in $(seq 1 100); do
        [ -f "$dir/ready" ] && return 0
        kill -0 "$sim_pid" 2>/dev/null || fail "kubesim exited at start"
        sleep 0.1
    done
    fail "kubesim not ready after 10 s"
}

sim_stop() {
    local pid=$sim_pid
    sim_pid=""
    STOP_RC=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || STOP_RC=$?
}

# For EXIT traps: $1 is the script's exit status.
sim_cleanup() {
    local rc=$1
    [ -n "$sim_pid" ] && sim_stop
    if [ "$rc" -ne 0 ] && [ -n "$SIM_LOG" ] && [ -f "$SIM_LOG" ]; then
        echo "--- kubesim log (last 30 lines)"
        tail -n 30 "$SIM_LOG"
    fi
}

sim_exit() {
    local rc=$?
    if declare -F sim_on_exit >/dev/null; then sim_on_exit $rc || true; fi
    sim_cleanup $rc
    [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
    exit $rc
}

sim_scratch() {
    work=$(mktemp -d)
    trap sim_exit EXIT
    trap 'exit 130' INT TERM
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.2 s until
# COMMAND succeeds; fails with DESCRIPTION after SECONDS.
wait_for() {
    local t=$1 what=$2
    shift 2
    local n=$((t * 5))
    for _ in $(seq 1 $n); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    fail "timed out after ${t}s: $what"
}
