/*
 * clock: injectable time (now and timers) so that no test ever sleeps.
 *
 * Every component that reads the time or waits for it takes a
 * struct gf_clock. Production uses the libuv-backed clock; tests use the
 * manual clock and move time forward with gf_clock_advance(), which fires
 * due timers in order (client-go's fake clock idea).
 *
 * Both kinds keep their timers in one binary min-heap; the libuv clock arms
 * a single uv_timer_t for the earliest deadline. Timers are plain structs
 * owned by their user (no uv handle inside), so they may be freed any time
 * after gf_timer_stop().
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
#include <uv.h>

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

struct gf_clock {
    bool manual;
    uint64_t manual_now_ms;
    int64_t manual_wall_offset_ms; /* wall = offset + now (manual clock) */
    uv_loop_t *loop;               /* NULL for the manual clock */
    uv_timer_t uv_timer;           /* libuv clock only */
    bool uv_timer_open;
    struct gf_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t next_seq;
    bool firing;
};

/* libuv-backed clock. Returns 0 or a negative uv error. */
int gf_clock_init_uv(struct gf_clock *clk, uv_loop_t *loop);
/*
 * Manual clock for tests, starting at start_ms monotonic and
 * wall_start_ms wall time.
 */
void gf_clock_init_manual(struct gf_clock *clk, uint64_t start_ms,
                          int64_t wall_start_ms);
/*
 * Releases the heap. For the libuv clock this uv_close()s its timer; the
 * struct must stay valid until the loop has run once more (uv_run after
 * close), as with any libuv handle. All timers must be stopped first.
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
