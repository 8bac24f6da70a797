/*
 * policy_file: the policy in force, reloaded from its file with
 * keep-last-good (see policy_file.h for the contract).
 *
 * One poll is one uv_queue_work: the pool thread stats the path, and when
 * the identity differs from the one last examined reads the bytes,
 * compares them with those of the policy in force and of the last refused
 * version, and parses only what is new. The loop thread then applies the
 * outcome: swap in the new policy, or report the refusal once. The pool
 * thread reads f->path, f->good and f->bad, which the loop changes only in
 * after_poll(), that is never while the request is in flight.
 */
#include "controller/policy_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/log.h"

/* What identifies one version of the file without reading it. */
struct gf_policy_file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_s, mtime_ns;
};

/* A policy and the number of its holders (the holder itself while it is
 * in force, plus every gf_policy_file_ref). */
struct gf_policy_file_held {
    struct gf_policy *p;
    unsigned refs;
    struct gf_policy_file_held *next; /* on f->retired */
};

/* A version's bytes, kept to tell a rewrite from a change. */
struct gf_policy_file_bytes {
    char *data;
    size_t len;
};

/* What one poll found, from the pool thread to the loop. */
enum gf_policy_file_outcome {
    GF_PF_SAME_ID,    /* identity unchanged: nothing read */
    GF_PF_SAME_GOOD,  /* the bytes of the policy in force */
    GF_PF_SAME_BAD,   /* the bytes of the version last refused */
    GF_PF_NEW_GOOD,   /* new bytes, a valid policy */
    GF_PF_NEW_BAD,    /* new bytes, refused: diag holds why */
    GF_PF_UNREADABLE, /* stat or read failed: err */
};

struct gf_policy_file_poll {
    uv_work_t req;
    /* Out, written by the pool thread. */
    enum gf_policy_file_outcome outcome;
    int err;
    struct gf_policy_file_id id;
    struct gf_policy_file_bytes bytes; /* owned when NEW_* */
    struct gf_policy *p;               /* owned when NEW_GOOD */
    struct gf_policy_diag diag;        /* NEW_BAD */
};

struct gf_policy_file {
    uv_loop_t *loop;
    struct gf_clock *clk;
    char *path;
    uint64_t poll_ms;
    gf_policy_file_cb cb;
    void *data;
    struct gf_log_ctx lc;
    struct gf_timer timer;

    struct gf_policy_file_held *cur;     /* in force */
    struct gf_policy_file_held *retired; /* replaced, still referenced */
    uint64_t generation;
    struct gf_policy_file_bytes good; /* the bytes of cur */

    /* The version last examined; a poll reads only when it changes. */
    struct gf_policy_file_id seen;
    bool have_seen;
    /* The refusal last reported, so that it is reported once: the bytes
     * of a refused version, or the error of an unreadable file. */
    struct gf_policy_file_bytes bad;
    int unreadable; /* 0, or the error reported */

    struct gf_policy_file_poll poll;
    bool busy;     /* poll in flight */
    bool applying; /* in after_poll, where the callback may close */
    bool closing;
    uv_idle_t closer; /* only to reach the loop once more when closing */
    void (*close_cb)(void *data);
    void *close_data;
};

static bool id_equal(const struct gf_policy_file_id *a,
                     const struct gf_policy_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns;
}

static bool bytes_equal(const struct gf_policy_file_bytes *b, const char *data,
                        size_t len)
{
    return b->data != NULL && b->len == len && memcmp(b->data, data, len) == 0;
}

static void bytes_free(struct gf_policy_file_bytes *b)
{
    GF_FREE(b->data);
    b->len = 0;
}

/*
 * stat() follows the symlinks (policy.yaml -> ..data/policy.yaml ->
 * ..TIMESTAMP/policy.yaml), so the identity is that of the file a reader
 * opens. A size over the cap is refused here, before anything is read.
 */
static int stat_id(const char *path, struct gf_policy_file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((uint64_t)st.st_size > GF_POLICY_MAX_BYTES)
        return GF_E2BIG;
    memset(id, 0, sizeof(*id));
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime_s = (int64_t)st.st_mtim.tv_sec;
    id->mtime_ns = (int64_t)st.st_mtim.tv_nsec;
    return 0;
}

/*
 * Pool thread. The file may be swapped between the stat and the read; the
 * bytes read are then newer than the identity kept, and the next poll
 * sees a new identity, reads again and finds the same bytes: one read too
 * many, never a change missed.
 */
static void work_poll(uv_work_t *req)
{
    struct gf_policy_file *f = req->data;
    struct gf_policy_file_poll *w = &f->poll;
    w->err = stat_id(f->path, &w->id);
    if (w->err != 0) {
        w->outcome = GF_PF_UNREADABLE;
        return;
    }
    if (f->have_seen && id_equal(&w->id, &f->seen)) {
        w->outcome = GF_PF_SAME_ID;
        return;
    }
    w->err = gf_file_read(f->path, GF_POLICY_MAX_BYTES, &w->bytes.data,
                          &w->bytes.len);
    if (w->err != 0) {
        w->outcome = GF_PF_UNREADABLE;
        return;
    }
    if (bytes_equal(&f->good, w->bytes.data, w->bytes.len)) {
        w->outcome = GF_PF_SAME_GOOD;
        return;
    }
    if (bytes_equal(&f->bad, w->bytes.data, w->bytes.len)) {
        w->outcome = GF_PF_SAME_BAD;
        return;
    }
    int rc = gf_policy_parse(w->bytes.data, w->bytes.len, &w->p, &w->diag);
    w->outcome = rc == 0 ? GF_PF_NEW_GOOD : GF_PF_NEW_BAD;
}

static void poll_reset(struct gf_policy_file_poll *w)
{
    bytes_free(&w->bytes);
    gf_policy_free(w->p);
    w->p = NULL;
    gf_policy_diag_free(&w->diag);
}

static void held_release(struct gf_policy_file *f,
                         struct gf_policy_file_held *h)
{
    GF_BUG_ON(h->refs == 0);
    if (--h->refs > 0)
        return;
    for (struct gf_policy_file_held **pp = &f->retired; *pp != NULL;
         pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    gf_policy_free(h->p);
    gf_free(h);
}

/* One log line per error, as `gpufedctl policy check` prints them. */
static void log_refusal(struct gf_policy_file *f,
                        const struct gf_policy_diag *d)
{
    GF_LOG(&f->lc, GF_LOG_ERROR, "policy file refused; last good policy stays",
           "path=%s generation=%llu errors=%zu", f->path,
           (unsigned long long)f->generation, d->n + d->dropped);
    for (size_t i = 0; i < d->n; i++) {
        const struct gf_policy_error *e = &d->errs[i];
        char at[64];
        snprintf(at, sizeof(at), "%d:%d", e->line, e->col);
        GF_LOG(&f->lc, GF_LOG_ERROR, "policy error",
               "path=%s at=%s field=%s error=%s", f->path, at, e->path, e->msg);
    }
    if (d->dropped > 0)
        GF_LOG(&f->lc, GF_LOG_ERROR, "policy errors not shown",
               "path=%s count=%zu", f->path, d->dropped);
}

static void report(struct gf_policy_file *f, const struct gf_policy_diag *d)
{
    if (f->cb != NULL)
        f->cb(f->data, f->cur->p, d);
}

static void on_new_good(struct gf_policy_file *f, struct gf_policy_file_poll *w)
{
    struct gf_policy_file_held *h = gf_calloc(1, sizeof(*h));
    h->p = w->p;
    h->refs = 1;
    w->p = NULL;
    struct gf_policy_file_held *old = f->cur;
    f->cur = h;
    bytes_free(&f->good);
    f->good = w->bytes;
    w->bytes.data = NULL;
    w->bytes.len = 0;
    bytes_free(&f->bad);
    f->unreadable = 0;
    f->generation++;
    GF_LOG(&f->lc, GF_LOG_INFO, "policy reloaded",
           "path=%s generation=%llu name=%s members=%zu groups=%zu", f->path,
           (unsigned long long)f->generation, h->p->name, h->p->n_members,
           h->p->n_groups);
    /* The old policy goes after the callback, so a caller that kept it
     * from gf_policy_file_get() may still compare the two in there. */
    old->next = f->retired;
    f->retired = old;
    report(f, NULL);
    held_release(f, old);
}

static void on_new_bad(struct gf_policy_file *f, struct gf_policy_file_poll *w)
{
    bytes_free(&f->bad);
    f->bad = w->bytes;
    w->bytes.data = NULL;
    w->bytes.len = 0;
    f->unreadable = 0;
    log_refusal(f, &w->diag);
    report(f, &w->diag);
}

/* The file is back to the policy in force: clear a refusal, if any. */
static void on_same_good(struct gf_policy_file *f)
{
    bool was_refused = f->bad.data != NULL || f->unreadable != 0;
    bytes_free(&f->bad);
    f->unreadable = 0;
    if (!was_refused)
        return;
    GF_LOG(&f->lc, GF_LOG_INFO, "policy file back to the policy in force",
           "path=%s generation=%llu", f->path,
           (unsigned long long)f->generation);
    report(f, NULL);
}

static void on_unreadable(struct gf_policy_file *f, int err)
{
    /* Unknown until it can be read again: whatever comes back is read. */
    f->have_seen = false;
    if (f->unreadable == err)
        return;
    f->unreadable = err;
    bytes_free(&f->bad);
    char msg[128];
    snprintf(msg, sizeof(msg), "cannot read the policy file: %s",
             err == GF_E2BIG ? "larger than 1 MiB" : gf_strerror(err));
    struct gf_policy_error e = {.line = 0, .col = 0, .path = "", .msg = msg};
    struct gf_policy_diag d = {.errs = &e, .n = 1, .cap = 1};
    log_refusal(f, &d);
    report(f, &d);
}

static void finish_close(struct gf_policy_file *f);

static void arm(struct gf_policy_file *f);

static void after_poll(uv_work_t *req, int status)
{
    struct gf_policy_file *f = req->data;
    struct gf_policy_file_poll *w = &f->poll;
    f->busy = false;
    if (f->closing || status != 0) {
        /* Cancelled by close, or (never in practice) failed to run. */
        poll_reset(w);
        if (f->closing)
            finish_close(f);
        else
            arm(f);
        return;
    }
    if (w->outcome != GF_PF_UNREADABLE) {
        f->seen = w->id;
        f->have_seen = true;
    }
    f->applying = true;
    switch (w->outcome) {
    case GF_PF_SAME_ID:
    case GF_PF_SAME_BAD:
        break;
    case GF_PF_SAME_GOOD:
        on_same_good(f);
        break;
    case GF_PF_NEW_GOOD:
        on_new_good(f, w);
        break;
    case GF_PF_NEW_BAD:
        on_new_bad(f, w);
        break;
    case GF_PF_UNREADABLE:
        on_unreadable(f, w->err);
        break;
    }
    f->applying = false;
    poll_reset(w);
    /* The callback may have closed the holder: the close was deferred to
     * here, where nothing of the holder is in use any more. */
    if (f->closing)
        finish_close(f);
    else
        arm(f);
}

static void on_timer(struct gf_timer *t)
{
    struct gf_policy_file *f = t->data;
    if (f->busy || f->closing)
        return;
    memset(&f->poll, 0, sizeof(f->poll));
    gf_policy_diag_init(&f->poll.diag);
    f->poll.req.data = f;
    int rc = uv_queue_work(f->loop, &f->poll.req, work_poll, after_poll);
    if (rc != 0) {
        GF_LOG(&f->lc, GF_LOG_WARN, "policy poll not queued",
               "path=%s error=%s", f->path, uv_strerror(rc));
        arm(f);
        return;
    }
    f->busy = true;
}

static void arm(struct gf_policy_file *f)
{
    gf_timer_start(&f->timer, f->poll_ms, on_timer);
}

/* The synchronous first load of gf_policy_file_open. */
static int load_first(struct gf_policy_file *f, struct gf_policy_diag *diag)
{
    int rc = stat_id(f->path, &f->seen);
    if (rc != 0)
        return rc;
    rc =
        gf_file_read(f->path, GF_POLICY_MAX_BYTES, &f->good.data, &f->good.len);
    if (rc != 0)
        return rc;
    struct gf_policy *p = NULL;
    rc = gf_policy_parse(f->good.data, f->good.len, &p, diag);
    if (rc != 0)
        return rc;
    f->cur = gf_calloc(1, sizeof(*f->cur));
    f->cur->p = p;
    f->cur->refs = 1;
    f->have_seen = true;
    f->generation = 1;
    return 0;
}

int gf_policy_file_open(const struct gf_policy_file_opts *o,
                        struct gf_policy_file **out,
                        struct gf_policy_diag *diag)
{
    *out = NULL;
    struct gf_policy_file *f = gf_calloc(1, sizeof(*f));
    f->loop = o->loop;
    f->clk = o->clk;
    f->path = gf_strdup(o->path);
    f->poll_ms = o->poll_ms != 0 ? o->poll_ms : GF_POLICY_FILE_POLL_MS;
    f->cb = o->cb;
    f->data = o->data;
    f->lc.comp = "policy";
    int rc = load_first(f, diag);
    if (rc != 0) {
        bytes_free(&f->good);
        gf_free(f->path);
        gf_free(f);
        return rc;
    }
    GF_LOG(&f->lc, GF_LOG_INFO, "policy loaded",
           "path=%s generation=%llu name=%s members=%zu groups=%zu", f->path,
           (unsigned long long)f->generation, f->cur->p->name,
           f->cur->p->n_members, f->cur->p->n_groups);
    gf_timer_init(f->clk, &f->timer);
    f->timer.data = f;
    arm(f);
    *out = f;
    return 0;
}

const struct gf_policy *gf_policy_file_get(const struct gf_policy_file *f)
{
    return f->cur->p;
}

const struct gf_policy *gf_policy_file_ref(struct gf_policy_file *f)
{
    f->cur->refs++;
    return f->cur->p;
}

void gf_policy_file_unref(struct gf_policy_file *f, const struct gf_policy *p)
{
    if (p == NULL)
        return;
    struct gf_policy_file_held *h = f->cur->p == p ? f->cur : NULL;
    for (struct gf_policy_file_held *r = f->retired; h == NULL && r != NULL;
         r = r->next) {
        if (r->p == p)
            h = r;
    }
    /* A policy this holder never handed out, or one already returned. */
    GF_BUG_ON(h == NULL);
    /* The holder's own ref on the policy in force is not the caller's. */
    GF_BUG_ON(h == f->cur && h->refs < 2);
    held_release(f, h);
}

uint64_t gf_policy_file_generation(const struct gf_policy_file *f)
{
    return f->generation;
}

static void on_closer_closed(uv_handle_t *h)
{
    struct gf_policy_file *f = h->data;
    void (*cb)(void *data) = f->close_cb;
    void *data = f->close_data;
    gf_free(f);
    if (cb != NULL)
        cb(data);
}

/*
 * Frees everything but the struct itself, then lets the loop turn once
 * more (a never-started idle handle closes on the next iteration) before
 * the close callback, which gf_policy_file_close promises runs later.
 */
static void finish_close(struct gf_policy_file *f)
{
    /* Refs outstanding at close are a caller's bug: the policy they point
     * to is about to be freed. */
    GF_BUG_ON(f->retired != NULL || f->cur->refs != 1);
    gf_policy_free(f->cur->p);
    GF_FREE(f->cur);
    bytes_free(&f->good);
    bytes_free(&f->bad);
    GF_FREE(f->path);
    /* uv_idle_init only fills the struct in; it cannot fail. */
    (void)uv_idle_init(f->loop, &f->closer);
    f->closer.data = f;
    uv_close((uv_handle_t *)&f->closer, on_closer_closed);
}

void gf_policy_file_close(struct gf_policy_file *f, void (*cb)(void *data),
                          void *data)
{
    if (f == NULL)
        return;
    GF_BUG_ON(f->closing);
    f->closing = true;
    f->close_cb = cb;
    f->close_data = data;
    gf_timer_stop(&f->timer);
    if (f->applying)
        return; /* after_poll() finishes the close */
    if (f->busy) {
        /* A poll still queued is dropped; one already running finishes
         * and after_poll() completes the close. */
        uv_cancel((uv_req_t *)&f->poll.req);
        return;
    }
    finish_close(f);
}
