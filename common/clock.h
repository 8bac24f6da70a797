/*
 * clock: injectable time (now and timers) so that no test ever sleeps.
 *
 * Every component that reads the time or waits for it takes a
 * struct gf_clock. Production uses the libuv-backed clock
 * (kubeclient/uvclock.h); tests use the manual clock and move time forward
 * with gf_clock_advance(), which fires due timers in order (client-go's
 * fake clock idea).
 *
 * Both kinds keep their timers in one binary min-heap; a backend (the
 * libuv clock) is told only the earliest deadline and calls
 * gf_clock_backend_fire() when it is reached, so it needs one wake-up
 * source whatever the number of timers. common/ stays free of libuv: the
 * backend is a table of functions. Timers are plain structs owned by
 * their user (no uv handle inside), so they may be freed any time after
 * gf_timer_stop().
 *
 * Two time bases: monotonic milliseconds (now_ms) for durations and
 * deadlines, and wall-clock milliseconds since the epoch (wall_ms) only for
 * timestamps written into API objects. The manual clock moves both.
 *
 * Loop thread only.
 */
#ifndef GF_CLOCK_H
#define GF_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gf_timer;
typedef void (*gf_timer_cb)(struct gf_timer *t);

struct gf_timer {
    void *data;           /* user data */
    struct gf_clock *clk; /* set by gf_timer_init */
    gf_timer_cb cb;
    uint64_t due_ms; /* monotonic deadline while active */
    uint64_t seq;    /* FIFO tie-break among equal deadlines */
    size_t heap_idx; /* SIZE_MAX when not active */
};

/*
 * A clock backend: where now comes from and how the earliest deadline is
 * waited for. Called on the loop thread only.
 */
struct gf_clock_ops {
    uint64_t (*now_ms)(const struct gf_clock *clk);
    int64_t (*wall_ms)(const struct gf_clock *clk);
    /* Wake up at monotonic due_ms (re-arming any earlier request) and call
     * gf_clock_backend_fire(); UINT64_MAX cancels the wake-up. */
    void (*arm)(struct gf_clock *clk, uint64_t due_ms);
    /* Releases the backend; called once by gf_clock_close(). */
    void (*close)(struct gf_clock *clk);
};

struct gf_clock {
    const struct gf_clock_ops *ops; /* NULL for the manual clock */
    void *backend;                  /* borrowed (the libuv clock: its loop) */
    void *backend_state;            /* the backend's own, freed by close */
    bool closed;
    uint64_t manual_now_ms;
    int64_t manual_wall_offset_ms; /* wall = offset + now (manual clock) */
    struct gf_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t next_seq;
    bool firing;
};

/* Backend clock: ops and backend are borrowed and must outlive it. */
void gf_clock_init_backend(struct gf_clock *clk, const struct gf_clock_ops *ops,
                           void *backend);
/*
 * For backends, when the armed deadline is reached: fires every timer due
 * at now_ms that was started before this call (a timer re-armed with a zero
 * timeout from its own callback waits for the next call, so it cannot
 * starve I/O), then arms the next deadline. Returns the number fired.
 */
size_t gf_clock_backend_fire(struct gf_clock *clk, uint64_t now_ms);
/*
 * Manual clock for tests, starting at start_ms monotonic and
 * wall_start_ms wall time.
 */
void gf_clock_init_manual(struct gf_clock *clk, uint64_t start_ms,
                          int64_t wall_start_ms);
/*
 * Releases the heap and the backend (see the backend's header for what
 * that implies, e.g. the libuv clock's timer closes on the next loop
 * turn). All timers must be stopped first.
 */
void gf_clock_close(struct gf_clock *clk);

uint64_t gf_clock_now_ms(const struct gf_clock *clk);
int64_t gf_clock_wall_ms(const struct gf_clock *clk);
/* Number of active timers (tests use it to see that nothing is pending). */
size_t gf_clock_active_timers(const struct gf_clock *clk);
/* Monotonic deadline of the earliest timer, or UINT64_MAX when none. */
uint64_t gf_clock_next_due(const struct gf_clock *clk);

/*
 * Manual clock only: moves time forward by ms, firing every timer whose
 * deadline is reached, in deadline order, with now() equal to each timer's
 * deadline while its callback runs. Returns the number of timers fired.
 */
size_t gf_clock_advance(struct gf_clock *clk, uint64_t ms);

void gf_timer_init(struct gf_clock *clk, struct gf_timer *t);
/* (Re)arms the timer to fire once after timeout_ms. */
void gf_timer_start(struct gf_timer *t, uint64_t timeout_ms, gf_timer_cb cb);
/* Idempotent. */
void gf_timer_stop(struct gf_timer *t);
bool gf_timer_active(const struct gf_timer *t);

/* Formats wall-clock ms as RFC 3339 UTC with seconds ("...T..:..:..Z"). */
void gf_time_rfc3339(int64_t wall_ms, char out[32]);
/* Parses RFC 3339 ("2026-11-24T10:00:00Z", optional fraction/offset). */
int gf_time_parse_rfc3339(const char *s, int64_t *wall_ms);

#endif
