/*
 * workqueue: one record per key holds all of its state (dirty, processing,
 * waiting, failures), in one hash map. client-go keeps four structures
 * (queue, dirty set, processing set, failures map) and a heap guarded by
 * locks; on a single loop one record per key is simpler and cannot let the
 * structures disagree.
 *
 * Invariants, checked by the tests:
 * - a record is in the ready FIFO iff dirty && !processing;
 * - a record is in the delay heap iff heap_idx != SIZE_MAX;
 * - a record exists iff one of dirty, processing, waiting, failures > 0
 *   holds; it is freed the moment none does (release()).
 */
#include "controller/workqueue.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/htab.h"

struct wq_item {
    char *key; /* owned; the map borrows it */
    size_t klen;
    unsigned failures;
    bool dirty;
    bool processing;
    bool dropped;    /* drop_prefix while processing: no requeue */
    size_t heap_idx; /* SIZE_MAX when not waiting */
    uint64_t ready_ms;
    uint64_t seq;         /* FIFO among equal ready times */
    struct wq_item *next; /* ready FIFO link */
};

struct gf_workqueue {
    struct gf_clock *clk;
    struct gf_wq_config cfg;
    gf_wq_process_cb cb;
    void *data;
    struct gf_htab items;        /* key -> struct wq_item, keys borrowed */
    struct wq_item *head, *tail; /* ready FIFO */
    size_t depth;
    struct wq_item **heap; /* delay min-heap on (ready_ms, seq) */
    size_t heap_len, heap_cap;
    uint64_t next_seq;
    struct gf_timer delay_timer; /* the heap's earliest ready time */
    struct gf_timer kick;        /* zero-delay dispatch */
    size_t inflight;
    double tokens; /* global bucket; may go negative (reservations) */
    uint64_t tokens_at_ms;
    bool shutting_down;
    bool dispatching; /* inside on_kick */
    struct gf_wq_stats st;
};

static void on_kick(struct gf_timer *t);
static void on_delay(struct gf_timer *t);

/* --- records --------------------------------------------------------- */

static struct wq_item *find(const struct gf_workqueue *wq, const char *key)
{
    return gf_htab_get_str(&wq->items, key);
}

static struct wq_item *find_or_make(struct gf_workqueue *wq, const char *key)
{
    struct wq_item *it = find(wq, key);
    if (it != NULL)
        return it;
    it = gf_calloc(1, sizeof(*it));
    it->klen = strlen(key);
    it->key = gf_strdup(key);
    it->heap_idx = SIZE_MAX;
    gf_htab_put(&wq->items, it->key, it->klen, it);
    return it;
}

/* Frees a record that no longer carries any state. */
static void release(struct gf_workqueue *wq, struct wq_item *it)
{
    if (it->dirty || it->processing || it->heap_idx != SIZE_MAX ||
        it->failures > 0)
        return;
    gf_htab_del(&wq->items, it->key, it->klen);
    gf_free(it->key);
    gf_free(it);
}

/* --- ready FIFO and dispatch ------------------------------------------ */

static void kick(struct gf_workqueue *wq)
{
    /* While a batch runs, on_kick decides at its end whether to re-arm. */
    if (!wq->dispatching && !gf_timer_active(&wq->kick) && wq->depth > 0 &&
        wq->inflight < wq->cfg.max_inflight)
        gf_timer_start(&wq->kick, 0, on_kick);
}

static void push_ready(struct gf_workqueue *wq, struct wq_item *it)
{
    it->next = NULL;
    if (wq->tail != NULL)
        wq->tail->next = it;
    else
        wq->head = it;
    wq->tail = it;
    wq->depth++;
    kick(wq);
}

static struct wq_item *pop_ready(struct gf_workqueue *wq)
{
    struct wq_item *it = wq->head;
    if (it == NULL)
        return NULL;
    wq->head = it->next;
    if (wq->head == NULL)
        wq->tail = NULL;
    it->next = NULL;
    wq->depth--;
    return it;
}

static void on_kick(struct gf_timer *t)
{
    struct gf_workqueue *wq = t->data;
    /* A bounded batch per loop turn: the rest waits for the next turn, so
     * the watches and writes sharing the loop are served in between. */
    wq->dispatching = true;
    for (unsigned n = 0; n < wq->cfg.batch; n++) {
        if (wq->inflight >= wq->cfg.max_inflight)
            break;
        struct wq_item *it = pop_ready(wq);
        if (it == NULL)
            break;
        it->dirty = false;
        it->processing = true;
        wq->inflight++;
        wq->st.processed++;
        wq->cb(wq, it->key, wq->data);
    }
    wq->dispatching = false;
    kick(wq);
}

/* --- delay heap ------------------------------------------------------- */

static bool heap_less(const struct wq_item *a, const struct wq_item *b)
{
    return a->ready_ms != b->ready_ms ? a->ready_ms < b->ready_ms
                                      : a->seq < b->seq;
}

static void heap_set(struct gf_workqueue *wq, size_t i, struct wq_item *it)
{
    wq->heap[i] = it;
    it->heap_idx = i;
}

static void heap_up(struct gf_workqueue *wq, size_t i)
{
    struct wq_item *it = wq->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(it, wq->heap[p]))
            break;
        heap_set(wq, i, wq->heap[p]);
        i = p;
    }
    heap_set(wq, i, it);
}

static void heap_down(struct gf_workqueue *wq, size_t i)
{
    struct wq_item *it = wq->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct wq_item *min = it;
        if (l < wq->heap_len && heap_less(wq->heap[l], min))
            m = l, min = wq->heap[l];
        if (l + 1 < wq->heap_len && heap_less(wq->heap[l + 1], min))
            m = l + 1;
        if (m == i)
            break;
        heap_set(wq, i, wq->heap[m]);
        i = m;
    }
    heap_set(wq, i, it);
}

static void heap_remove(struct gf_workqueue *wq, struct wq_item *it)
{
    size_t i = it->heap_idx;
    struct wq_item *last = wq->heap[--wq->heap_len];
    it->heap_idx = SIZE_MAX;
    if (last == it)
        return;
    heap_set(wq, i, last);
    heap_up(wq, i);
    heap_down(wq, last->heap_idx);
}

static void arm_delay(struct gf_workqueue *wq)
{
    if (wq->heap_len == 0) {
        gf_timer_stop(&wq->delay_timer);
        return;
    }
    uint64_t now = gf_clock_now_ms(wq->clk);
    uint64_t due = wq->heap[0]->ready_ms;
    gf_timer_start(&wq->delay_timer, due > now ? due - now : 0, on_delay);
}

static void make_ready(struct gf_workqueue *wq, struct wq_item *it)
{
    if (it->dirty)
        return;
    it->dirty = true;
    wq->st.adds++;
    if (!it->processing)
        push_ready(wq, it);
}

static void on_delay(struct gf_timer *t)
{
    struct gf_workqueue *wq = t->data;
    uint64_t now = gf_clock_now_ms(wq->clk);
    while (wq->heap_len > 0 && wq->heap[0]->ready_ms <= now) {
        struct wq_item *it = wq->heap[0];
        heap_remove(wq, it);
        make_ready(wq, it);
    }
    arm_delay(wq);
}

/* --- public ----------------------------------------------------------- */

struct gf_workqueue *gf_wq_new(struct gf_clock *clk,
                               const struct gf_wq_config *cfg,
                               gf_wq_process_cb cb, void *data)
{
    const struct gf_wq_config def = GF_WQ_CONFIG_DEFAULT;
    struct gf_workqueue *wq = gf_calloc(1, sizeof(*wq));
    wq->clk = clk;
    wq->cfg = cfg != NULL ? *cfg : def;
#define DEFAULT(f)                                                             \
    if (wq->cfg.f <= 0)                                                        \
    wq->cfg.f = def.f
    DEFAULT(base_delay_ms);
    DEFAULT(max_delay_ms);
    DEFAULT(qps);
    DEFAULT(burst);
    DEFAULT(max_inflight);
    DEFAULT(batch);
#undef DEFAULT
    wq->cb = cb;
    wq->data = data;
    gf_htab_init(&wq->items, GF_HTAB_BORROW_KEYS);
    gf_timer_init(clk, &wq->delay_timer);
    wq->delay_timer.data = wq;
    gf_timer_init(clk, &wq->kick);
    wq->kick.data = wq;
    wq->tokens = wq->cfg.burst;
    wq->tokens_at_ms = gf_clock_now_ms(clk);
    return wq;
}

static void free_item(void *v)
{
    struct wq_item *it = v;
    gf_free(it->key);
    gf_free(it);
}

void gf_wq_free(struct gf_workqueue *wq)
{
    if (wq == NULL)
        return;
    /* A reconcile still running would call gf_wq_done on freed memory. */
    GF_BUG_ON(wq->inflight > 0);
    gf_timer_stop(&wq->delay_timer);
    gf_timer_stop(&wq->kick);
    gf_htab_free_all(&wq->items, free_item);
    gf_free(wq->heap);
    gf_free(wq);
}

void gf_wq_add(struct gf_workqueue *wq, const char *key)
{
    if (wq->shutting_down)
        return;
    make_ready(wq, find_or_make(wq, key));
}

void gf_wq_add_after(struct gf_workqueue *wq, const char *key,
                     uint64_t delay_ms)
{
    if (wq->shutting_down)
        return;
    if (delay_ms == 0) {
        gf_wq_add(wq, key);
        return;
    }
    struct wq_item *it = find_or_make(wq, key);
    uint64_t now = gf_clock_now_ms(wq->clk);
    uint64_t ready = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
    if (it->heap_idx != SIZE_MAX) {
        /* Already waiting: only an earlier time moves it. */
        if (ready >= it->ready_ms)
            return;
        it->ready_ms = ready;
        heap_up(wq, it->heap_idx);
    } else {
        if (wq->heap_len == wq->heap_cap) {
            wq->heap_cap = wq->heap_cap ? wq->heap_cap * 2 : 16;
            wq->heap = gf_realloc(wq->heap, wq->heap_cap * sizeof(*wq->heap));
        }
        it->ready_ms = ready;
        it->seq = wq->next_seq++;
        heap_set(wq, wq->heap_len, it);
        wq->heap_len++;
        heap_up(wq, it->heap_idx);
    }
    if (wq->heap[0] == it)
        arm_delay(wq);
}

/*
 * The global bucket as a reservation (golang.org/x/time/rate): take a
 * token now even when none is left, and wait until it would have been
 * there. Tokens go negative, so a burst of failures spreads out at qps.
 */
static uint64_t bucket_delay(struct gf_workqueue *wq)
{
    uint64_t now = gf_clock_now_ms(wq->clk);
    double refill = (double)(now - wq->tokens_at_ms) * wq->cfg.qps / 1000.0;
    wq->tokens = fmin((double)wq->cfg.burst, wq->tokens + refill);
    wq->tokens_at_ms = now;
    wq->tokens -= 1.0;
    if (wq->tokens >= 0.0)
        return 0;
    return (uint64_t)ceil(-wq->tokens * 1000.0 / wq->cfg.qps);
}

static uint64_t backoff_delay(const struct gf_workqueue *wq, unsigned n)
{
    uint64_t d = wq->cfg.base_delay_ms;
    for (unsigned i = 0; i < n && d < wq->cfg.max_delay_ms; i++)
        d *= 2;
    return d < wq->cfg.max_delay_ms ? d : wq->cfg.max_delay_ms;
}

void gf_wq_add_rate_limited(struct gf_workqueue *wq, const char *key)
{
    if (wq->shutting_down)
        return;
    struct wq_item *it = find_or_make(wq, key);
    uint64_t per_key = backoff_delay(wq, it->failures);
    if (it->failures < UINT32_MAX)
        it->failures++;
    uint64_t global = bucket_delay(wq);
    wq->st.retries++;
    gf_wq_add_after(wq, key, per_key > global ? per_key : global);
}

void gf_wq_forget(struct gf_workqueue *wq, const char *key)
{
    struct wq_item *it = find(wq, key);
    if (it == NULL)
        return;
    it->failures = 0;
    release(wq, it);
}

unsigned gf_wq_num_requeues(const struct gf_workqueue *wq, const char *key)
{
    const struct wq_item *it = find(wq, key);
    return it != NULL ? it->failures : 0;
}

void gf_wq_done(struct gf_workqueue *wq, const char *key,
                enum gf_wq_result result, uint64_t after_ms)
{
    struct wq_item *it = find(wq, key);
    /* Done for a key that is not processing is a reconciler bug. */
    GF_BUG_ON(it == NULL || !it->processing);
    GF_BUG_ON((unsigned)result > GF_WQ_TERMINAL);
    wq->st.results[result]++;
    wq->inflight--;
    bool dropped = it->dropped;
    it->dropped = false;
    if (dropped || result != GF_WQ_ERROR)
        it->failures = 0;
    if (!dropped && !wq->shutting_down) {
        if (result == GF_WQ_ERROR)
            gf_wq_add_rate_limited(wq, key);
        else if (result == GF_WQ_REQUEUE_AFTER)
            gf_wq_add_after(wq, key, after_ms);
    }
    it->processing = false;
    if (it->dirty)
        push_ready(wq, it);
    else
        kick(wq); /* a worker slot is free */
    release(wq, it);
}

static void drop(struct gf_workqueue *wq, struct wq_item *it)
{
    if (it->heap_idx != SIZE_MAX)
        heap_remove(wq, it);
    it->dirty = false;
    it->failures = 0;
    if (it->processing)
        it->dropped = true;
}

/* Rebuilds the FIFO from the records that are still ready. */
static void refilter_ready(struct gf_workqueue *wq)
{
    struct wq_item *it = wq->head;
    wq->head = wq->tail = NULL;
    wq->depth = 0;
    while (it != NULL) {
        struct wq_item *next = it->next;
        if (it->dirty) {
            it->next = NULL;
            if (wq->tail != NULL)
                wq->tail->next = it;
            else
                wq->head = it;
            wq->tail = it;
            wq->depth++;
        }
        it = next;
    }
}

static bool has_prefix(const char *key, size_t klen, const char *prefix,
                       size_t plen)
{
    return klen >= plen && memcmp(key, prefix, plen) == 0;
}

void gf_wq_drop_prefix(struct gf_workqueue *wq, const char *prefix)
{
    size_t plen = strlen(prefix);
    struct gf_htab_iter iter;
    const char *key;
    size_t klen;
    void *v;
    /* Three passes: clear the state, rebuild the FIFO without the dropped
     * records (it links through them), then free what carries no state. */
    gf_htab_iter_init(&iter, &wq->items);
    while (gf_htab_next(&iter, &key, &klen, &v))
        if (has_prefix(key, klen, prefix, plen))
            drop(wq, v);
    refilter_ready(wq);
    gf_htab_iter_init(&iter, &wq->items);
    while (gf_htab_next(&iter, &key, &klen, &v))
        if (has_prefix(key, klen, prefix, plen))
            release(wq, v);
    arm_delay(wq);
}

void gf_wq_shutdown(struct gf_workqueue *wq)
{
    wq->shutting_down = true;
    gf_wq_drop_prefix(wq, "");
    gf_timer_stop(&wq->kick);
}

bool gf_wq_shutting_down(const struct gf_workqueue *wq)
{
    return wq->shutting_down;
}

void gf_wq_stats(const struct gf_workqueue *wq, struct gf_wq_stats *out)
{
    *out = wq->st;
    out->depth = wq->depth;
    out->waiting = wq->heap_len;
    out->inflight = wq->inflight;
    out->tracked = gf_htab_len(&wq->items);
}
