/*
 * policy_file: the policy holder of `gpufed hub`: the FederationPolicy in
 * force, reloaded when its file changes, with keep-last-good.
 *
 * The policy comes from a file, in production a ConfigMap mounted into the
 * Pod. The kubelet updates such a mount without ever writing a file in
 * place: it writes the new keys into a fresh timestamped directory
 * (..2026_12_06_10_05_00.222), points a new symlink at it and renames that
 * over ..data, so policy.yaml -> ..data/policy.yaml resolves to a new inode
 * in one atomic step, and then removes the old directory.
 *
 * Change detection. Every poll_ms on the clock the file is stat()ed
 * (following symlinks) and its identity (dev, ino, size, mtime with
 * nanoseconds) compared with the one last examined. Only when it differs
 * is the file read (at most GF_POLICY_MAX_BYTES) and its bytes compared
 * with those of the policy in force: an identical file (a kubelet resync,
 * a touch, a rewrite of the same text) is not a change. Different bytes
 * are parsed and validated; a good policy replaces the one in force, a bad
 * one is refused and the last good policy stays. Polling is the source of
 * truth: an inotify watch on the file follows the old inode that the swap
 * leaves behind, and one on the directory sees ..data renamed, never
 * policy.yaml; a stat() of the path sees what a reader would open.
 *
 * Off the loop. The stat, read and parse of a poll run on libuv's thread
 * pool (uv_queue_work), so a slow volume or a policy of 1 MiB never blocks
 * the loop; at most one poll is in flight, and the next one is timed from
 * its end.
 *
 * Reporting. Each accepted change is logged at info (comp=policy,
 * generation, path) and reported through the callback with diag NULL. Each
 * refusal is logged at error, one line per error with the file, LINE:COL,
 * the field path and the message (never the file's contents), and
 * reported with the diagnostics so the hub can show an Event or a
 * condition. A file that vanishes or cannot be read keeps the last good
 * policy and is reported once, with one file-level error (0:0), not at
 * every poll; a refused text is reported once, however often it is
 * written again. When the file comes back to the bytes of the policy in
 * force after a refusal, the callback runs with diag NULL and the
 * generation unchanged, so that a refusal the hub shows can be cleared.
 *
 * Lifetime of a policy. Policies are immutable and refcounted: a decision
 * pass takes a ref on the policy it starts with and keeps using it across
 * a reload; the old policy is freed after its last user.
 *
 * Time comes from a struct gf_clock (tests drive the manual clock and run
 * the loop until the pool work completes; nothing sleeps). Loop thread
 * only; the pool work touches nothing but its own request and data the
 * loop does not change while the request is in flight.
 */
#ifndef GF_CONTROLLER_POLICY_FILE_H
#define GF_CONTROLLER_POLICY_FILE_H

#include <stdint.h>
#include <uv.h>

#include "common/clock.h"
#include "policy/config.h"

struct gf_policy_file;

/* The default poll period. */
#define GF_POLICY_FILE_POLL_MS 2000

/*
 * The policy changed (a new good policy is in force: diag NULL), or a
 * reload was refused (diag non-NULL, the last good policy stays: now is
 * it). Both borrowed for the call. diag NULL with an unchanged generation
 * means the file is back to the policy in force after a refusal. The
 * callback runs on the loop thread and may call any function of this
 * module, gf_policy_file_close included.
 */
typedef void (*gf_policy_file_cb)(void *data, const struct gf_policy *now,
                                  const struct gf_policy_diag *diag);

struct gf_policy_file_opts {
    uv_loop_t *loop;      /* for uv_queue_work; must outlive the holder */
    struct gf_clock *clk; /* polling timer; must outlive the holder */
    const char *path;     /* copied */
    uint64_t poll_ms;     /* 0: GF_POLICY_FILE_POLL_MS */
    gf_policy_file_cb cb; /* may be NULL */
    void *data;
};

/*
 * Loads the file once, synchronously (at start-up the hub cannot run
 * without a policy), and starts polling. Returns 0 with *out
 * (returned-owned, gf_policy_file_close), generation 1. Otherwise *out is
 * NULL and it returns GF_ECONFIG (the policy is invalid; its errors are
 * appended to diag, which must be initialised and which the caller frees
 * with gf_policy_diag_free), GF_E2BIG (larger than GF_POLICY_MAX_BYTES),
 * -EINVAL (not a regular file) or -errno when the file cannot be read.
 */
int gf_policy_file_open(const struct gf_policy_file_opts *o,
                        struct gf_policy_file **out,
                        struct gf_policy_diag *diag);

/*
 * Returned-borrowed: the policy in force. Valid until the next loop turn
 * in which the callback reports a change; a caller that needs it longer
 * takes a ref.
 */
const struct gf_policy *gf_policy_file_get(const struct gf_policy_file *f);

/*
 * Takes a ref on the policy in force and returns it; it stays valid, even
 * after a reload replaces it, until the matching gf_policy_file_unref.
 * Every ref must be returned before gf_policy_file_close.
 */
const struct gf_policy *gf_policy_file_ref(struct gf_policy_file *f);
/* Returns a ref from gf_policy_file_ref; p NULL does nothing. */
void gf_policy_file_unref(struct gf_policy_file *f, const struct gf_policy *p);

/* 1 after open; bumps on each accepted change. */
uint64_t gf_policy_file_generation(const struct gf_policy_file *f);

/*
 * Stops polling, cancels a poll in flight, and frees the holder and the
 * policy in force. cb (may be NULL) runs later from the loop, never before
 * this returns; the policy callback does not run again. The clock may be
 * closed once this returns; the loop must run until cb has run. f NULL
 * does nothing.
 */
void gf_policy_file_close(struct gf_policy_file *f, void (*cb)(void *data),
                          void *data);

#endif
