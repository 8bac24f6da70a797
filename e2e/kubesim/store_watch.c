/*
 * store_watch: events of the object store. Every change is recorded in its
 * type's watch cache (a ring) and queued; dispatch delivers the queue to
 * observers and watches in resourceVersion order, and a watch that was
 * held back (paused, or still sending its initial events) catches up from
 * the watch cache.
 */
#include "e2e/kubesim/store.h"

#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/select.h"
#include "e2e/kubesim/store_internal.h"

/* ---- events ---------------------------------------------------------- */

/* Doubles the ring (up to ring_max), unrolling it to start at 0. */
static void ring_grow(struct gf__ks_st_table *tab)
{
    size_t cap = tab->ring_cap * 2;
    if (cap > tab->ring_max)
        cap = tab->ring_max;
    struct gf__ks_st_cached_ev *r = gf_calloc(cap, sizeof(*r));
    for (size_t i = 0; i < tab->ring_len; i++)
        r[i] = tab->ring[(tab->ring_head + i) % tab->ring_cap];
    gf_free(tab->ring);
    tab->ring = r;
    tab->ring_cap = cap;
    tab->ring_head = 0;
}

static void ring_push(struct gf__ks_st_table *tab, enum gf_ks_ev_type type,
                      struct gf_ks_obj *obj, struct gf_ks_obj *old)
{
    if (tab->ring_cap == 0)
        return;
    if (tab->ring_len == tab->ring_cap && tab->ring_cap < tab->ring_max)
        ring_grow(tab);
    if (tab->ring_len == tab->ring_cap) {
        struct gf__ks_st_cached_ev *c = &tab->ring[tab->ring_head];
        tab->compacted_rv = c->obj->rv;
        gf_ks_obj_unref(c->obj);
        gf_ks_obj_unref(c->old);
        tab->ring_head = (tab->ring_head + 1) % tab->ring_cap;
        tab->ring_len--;
    }
    struct gf__ks_st_cached_ev *c =
        &tab->ring[(tab->ring_head + tab->ring_len) % tab->ring_cap];
    c->type = type;
    c->obj = gf_ks_obj_ref(obj);
    c->old = old != NULL ? gf_ks_obj_ref(old) : NULL;
    tab->ring_len++;
}

void gf__ks_st_ring_clear(struct gf__ks_st_table *tab, uint64_t rv)
{
    for (size_t i = 0; i < tab->ring_len; i++) {
        struct gf__ks_st_cached_ev *c =
            &tab->ring[(tab->ring_head + i) % tab->ring_cap];
        gf_ks_obj_unref(c->obj);
        gf_ks_obj_unref(c->old);
    }
    tab->ring_len = 0;
    tab->ring_head = 0;
    tab->compacted_rv = rv;
}

/* Records one change: watch cache now, delivery when dispatch runs. */
void gf__ks_st_emit(struct gf_ks_store *st, struct gf__ks_st_table *tab,
                    enum gf_ks_ev_type type, struct gf_ks_obj *obj,
                    struct gf_ks_obj *old)
{
    ring_push(tab, type, obj, old);
    tab->write_rv = obj->rv;
    struct gf__ks_st_pending *p = gf_malloc(sizeof(*p));
    p->next = NULL;
    p->type = type;
    p->tab = tab;
    p->obj = gf_ks_obj_ref(obj);
    p->old = old != NULL ? gf_ks_obj_ref(old) : NULL;
    if (st->pq_tail != NULL)
        st->pq_tail->next = p;
    else
        st->pq_head = p;
    st->pq_tail = p;
}

static bool sel_match(const struct gf_ks_watch *w, const cJSON *j)
{
    return gf_ks_selector_match(w->label, j) &&
           gf_ks_selector_match(w->field, j);
}

/*
 * Sends one change to one watch, translating it by the watch's selectors
 * the way the watch cache does. json/old_json may be NULL (parsed here if
 * a selector needs them).
 */
static void watch_deliver(struct gf_ks_watch *w, enum gf_ks_ev_type type,
                          struct gf_ks_obj *obj, struct gf_ks_obj *old,
                          const cJSON *json, const cJSON *old_json)
{
    if (w->dead || obj->rv <= w->last_rv)
        return;
    w->last_rv = obj->rv;
    if (w->ns != NULL && strcmp(w->ns, obj->ns) != 0)
        return;
    if (w->label == NULL && w->field == NULL) {
        w->cb(w->data, type, obj, obj->rv, 0);
        return;
    }
    cJSON *pj = NULL, *po = NULL;
    if (json == NULL)
        json = pj = gf_ks_obj_parse(obj);
    bool now = sel_match(w, json), before = false;
    if (type == GF_KS_EV_MODIFIED && old != NULL) {
        if (old_json == NULL)
            old_json = po = gf_ks_obj_parse(old);
        before = sel_match(w, old_json);
    }
    cJSON_Delete(pj);
    cJSON_Delete(po);
    if (type == GF_KS_EV_MODIFIED) {
        if (now && !before)
            type = GF_KS_EV_ADDED;
        else if (!now && before)
            type = GF_KS_EV_DELETED;
        else if (!now)
            return;
    } else if (!now) {
        return;
    }
    w->cb(w->data, type, obj, obj->rv, 0);
}

/* A live change: delivered now, unless the watch is held back (then it
 * is read from the watch cache when the watch resumes). */
static void watch_send(struct gf_ks_watch *w, enum gf_ks_ev_type type,
                       struct gf_ks_obj *obj, struct gf_ks_obj *old,
                       const cJSON *json, const cJSON *old_json)
{
    if (w->dead || obj->rv <= w->last_rv)
        return;
    if (w->paused || w->behind || w->init_pending) {
        w->behind = true;
        return;
    }
    watch_deliver(w, type, obj, old, json, old_json);
}

static bool needs_json(const struct gf_ks_store *st,
                       const struct gf__ks_st_table *tab)
{
    for (const struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        if (!o->dead && (o->tab == NULL || o->tab == tab))
            return true;
    for (const struct gf_ks_watch *w = tab->watches; w != NULL; w = w->next)
        if (w->label != NULL || w->field != NULL)
            return true;
    return false;
}

static void deliver(struct gf_ks_store *st, struct gf__ks_st_pending *p)
{
    cJSON *json = NULL, *old_json = NULL;
    if (needs_json(st, p->tab)) {
        json = gf_ks_obj_parse(p->obj);
        if (p->old != NULL)
            old_json = gf_ks_obj_parse(p->old);
    }
    struct gf_ks_event ev = {
        .type = p->type,
        .rtype = p->tab->t,
        .obj = p->obj,
        .old = p->old,
        .obj_json = json,
        .old_json = old_json,
        .rv = p->obj->rv,
    };
    for (struct gf_ks_observer *o = st->observers; o != NULL; o = o->next)
        if (!o->dead && (o->tab == NULL || o->tab == p->tab) &&
            p->obj->rv > o->from_rv)
            o->fn(o->data, &ev);
    for (struct gf_ks_watch *w = p->tab->watches; w != NULL; w = w->next)
        watch_send(w, p->type, p->obj, p->old, json, old_json);
    st->delivered_rv = p->obj->rv;
    cJSON_Delete(json);
    cJSON_Delete(old_json);
}

void gf__ks_st_watch_free(struct gf_ks_store *st, struct gf_ks_watch *w)
{
    if (w->init_pending)
        gf_ks_list_free(&w->init);
    gf_free(w->ns);
    gf_ks_selector_free(w->label);
    gf_ks_selector_free(w->field);
    gf_free(w);
    st->nwatches--;
}

/* Frees what callbacks marked dead, once nothing is being delivered. */
void gf__ks_st_sweep(struct gf_ks_store *st)
{
    for (struct gf_ks_observer **pp = &st->observers; *pp != NULL;) {
        struct gf_ks_observer *o = *pp;
        if (o->dead) {
            *pp = o->next;
            gf_free(o);
        } else {
            pp = &o->next;
        }
    }
    for (struct gf__ks_st_table *tab = st->tables; tab != NULL;
         tab = tab->next) {
        for (struct gf_ks_watch **pp = &tab->watches; *pp != NULL;) {
            struct gf_ks_watch *w = *pp;
            if (w->dead) {
                *pp = w->next;
                gf__ks_st_watch_free(st, w);
            } else {
                pp = &w->next;
            }
        }
    }
    while (st->dead_tables != NULL) {
        struct gf__ks_st_table *tab = st->dead_tables;
        st->dead_tables = tab->next;
        gf__ks_st_table_free(st, tab);
    }
}

void gf__ks_st_dispatch(struct gf_ks_store *st)
{
    if (st->dispatching || st->depth > 0)
        return;
    st->dispatching = true;
    for (;;) {
        if (st->pq_head != NULL) {
            struct gf__ks_st_pending *p = st->pq_head;
            st->pq_head = p->next;
            if (st->pq_head == NULL)
                st->pq_tail = NULL;
            deliver(st, p);
            gf_ks_obj_unref(p->obj);
            gf_ks_obj_unref(p->old);
            gf_free(p);
            continue;
        }
        if (st->gc_head != NULL) {
            struct gf__ks_st_gcwork *g = st->gc_head;
            st->gc_head = g->next;
            if (st->gc_head == NULL)
                st->gc_tail = NULL;
            gf__ks_st_gc_run(st, g);
            gf_free(g->arg);
            gf_free(g);
            continue;
        }
        break;
    }
    st->delivered_rv = st->rv;
    st->dispatching = false;
    gf__ks_st_maybe_sweep(st);
}

/* Frees what was marked dead, unless a walk of the lists is under way. */
void gf__ks_st_maybe_sweep(struct gf_ks_store *st)
{
    if (!st->dispatching && st->busy == 0)
        gf__ks_st_sweep(st);
}

/*
 * Ends every watch of a table with CLOSED (err). A callback may stop
 * other watches: they are only marked, and freed after the walk.
 */
void gf__ks_st_close_watches(struct gf_ks_store *st,
                             struct gf__ks_st_table *tab, int err)
{
    st->busy++;
    for (struct gf_ks_watch *w = tab->watches; w != NULL; w = w->next) {
        if (w->dead)
            continue;
        w->dead = true;
        w->cb(w->data, GF_KS_EV_CLOSED, NULL, 0, err);
    }
    st->busy--;
}

/* ---- observers and watches ------------------------------------------- */

struct gf_ks_observer *gf_ks_store_observe(struct gf_ks_store *st,
                                           const struct gf_ks_rtype *t,
                                           gf_ks_observer_fn fn, void *data)
{
    struct gf_ks_observer *o = gf_calloc(1, sizeof(*o));
    o->tab = t != NULL ? gf__ks_st_table_of(st, t) : NULL;
    GF_BUG_ON(t != NULL && o->tab == NULL);
    o->fn = fn;
    o->data = data;
    /*
     * Everything written so far is the state the observer starts from
     * (it reads it with get/list); queued events of those writes are not
     * delivered to it twice.
     */
    o->from_rv = st->rv;
    struct gf_ks_observer **pp = &st->observers;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = o;
    return o;
}

void gf_ks_store_unobserve(struct gf_ks_store *st, struct gf_ks_observer *o)
{
    if (o == NULL)
        return;
    o->dead = true;
    gf__ks_st_maybe_sweep(st);
}

const char *gf_ks_ev_name(enum gf_ks_ev_type t)
{
    switch (t) {
    case GF_KS_EV_ADDED:
        return "ADDED";
    case GF_KS_EV_MODIFIED:
        return "MODIFIED";
    case GF_KS_EV_DELETED:
        return "DELETED";
    case GF_KS_EV_BOOKMARK:
        return "BOOKMARK";
    case GF_KS_EV_CLOSED:
        break;
    }
    return "ERROR";
}

/* The first index in the watch cache of a change after rv. */
static size_t ring_after(const struct gf__ks_st_table *tab, uint64_t rv)
{
    size_t lo = 0, hi = tab->ring_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct gf__ks_st_cached_ev *c =
            &tab->ring[(tab->ring_head + mid) % tab->ring_cap];
        if (c->obj->rv <= rv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The next initial ADDED event, if the watch's selectors take it. */
static void send_initial(struct gf_ks_watch *w)
{
    struct gf_ks_obj *o = w->init.items[w->init_pos++];
    bool ok = true;
    if (w->label != NULL || w->field != NULL) {
        cJSON *j = gf_ks_obj_parse(o);
        ok = sel_match(w, j);
        cJSON_Delete(j);
    }
    if (ok)
        w->cb(w->data, GF_KS_EV_ADDED, o, o->rv, 0);
}

/*
 * Sends the changes a held-back watch missed, from the watch cache. If
 * they have left it, the watch ends with CLOSED (GF_EGONE): the API
 * server, too, closes a watcher that cannot keep up, and the client
 * resumes from its last version or relists.
 */
static void catch_up(struct gf_ks_watch *w)
{
    const struct gf__ks_st_table *tab = w->tab;
    /* The position is found again for every event: a callback that
     * writes to the store may compact the ring under us. */
    while (!w->dead && !w->paused) {
        if (w->last_rv < tab->compacted_rv) {
            w->dead = true;
            w->cb(w->data, GF_KS_EV_CLOSED, NULL, 0, GF_EGONE);
            return;
        }
        size_t i = ring_after(tab, w->last_rv);
        if (i == tab->ring_len) {
            w->behind = false;
            return;
        }
        const struct gf__ks_st_cached_ev *c =
            &tab->ring[(tab->ring_head + i) % tab->ring_cap];
        watch_deliver(w, c->type, c->obj, c->old, NULL, NULL);
    }
}

/*
 * Sends what the watch has not had yet, until it is paused or has caught
 * up: the rest of its initial events, then the watch cache after the last
 * version it saw. Live changes go straight to it again from then on.
 */
static void pump(struct gf_ks_store *st, struct gf_ks_watch *w)
{
    st->busy++;
    w->pumping = true;
    while (!w->dead && !w->paused && w->init_pos < w->init.n)
        send_initial(w);
    if (!w->dead && !w->paused && w->init_pending) {
        gf_ks_list_free(&w->init);
        w->init_pending = false;
        w->last_rv = w->init_rv;
        w->behind = true;
        if (w->init_bookmark)
            w->cb(w->data, GF_KS_EV_BOOKMARK, NULL, w->init_rv, 0);
    }
    if (!w->dead && !w->paused && w->behind)
        catch_up(w);
    w->pumping = false;
    st->busy--;
    gf__ks_st_maybe_sweep(st);
}

int gf_ks_watch_start(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      const struct gf_ks_watch_opts *o, gf_ks_watch_cb cb,
                      void *data, struct gf_ks_watch **out,
                      struct gf_ks_status *err)
{
    struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    bool initial = o->rv == NULL || o->rv[0] == '\0' || strcmp(o->rv, "0") == 0;
    int64_t from = 0;
    if (!initial) {
        if (gf_parse_i64(o->rv, &from) != 0 || from < 0)
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "invalid resource version: %s", o->rv);
        if ((uint64_t)from > st->rv) {
            /*
             * What the server answers once its wait for a future version
             * times out; clients relist on it.
             */
            int rc = gf_ks_status_set(
                err, 504, "Timeout",
                "Timeout: Too large resource version: %lld, current: %llu",
                (long long)from, (unsigned long long)st->rv);
            gf_ks_status_cause(err, "ResourceVersionTooLarge",
                               "Too large resource version", NULL);
            if (err != NULL)
                err->retry_after = 1;
            return rc;
        }
        if ((uint64_t)from < tab->compacted_rv) {
            int rc = gf_ks_status_set(
                err, 410, "Expired", "too old resource version: %lld (%llu)",
                (long long)from, (unsigned long long)tab->compacted_rv + 1);
            return rc;
        }
    }
    struct gf_ks_watch *w = gf_calloc(1, sizeof(*w));
    w->st = st;
    w->tab = tab;
    w->ns = o->ns != NULL && o->ns[0] != '\0' ? gf_strdup(o->ns) : NULL;
    w->label = gf_ks_selector_dup(o->label);
    w->field = gf_ks_selector_dup(o->field);
    w->cb = cb;
    w->data = data;
    w->next = tab->watches;
    tab->watches = w;
    st->nwatches++;
    *out = w;
    /*
     * The callback may stop this watch (or others): they are only marked
     * until the events below have been sent, then freed.
     */
    if (initial) {
        /* Synthetic ADDED events for the current state. */
        struct gf_ks_list_opts lo = {.ns = w->ns};
        gf_ks_store_list(st, tab->t, &lo, &w->init, NULL);
        w->init_rv = w->start_rv = st->rv;
        w->init_pending = true;
        w->init_bookmark = o->initial_end_bookmark;
    } else {
        /* Every cached change after version from, in order. */
        w->last_rv = w->start_rv = (uint64_t)from;
        w->behind = true;
    }
    pump(st, w);
    return 0;
}

void gf_ks_watch_bookmark(struct gf_ks_watch *w)
{
    /* Mid-way through the initial events no version is safe to resume
     * from. */
    if (w == NULL || w->dead || w->init_pending)
        return;
    struct gf_ks_store *st = w->st;
    uint64_t rv = st->pq_head != NULL ? st->delivered_rv : st->rv;
    /* Held back, it has seen everything up to its own last version. */
    if (rv < w->last_rv || w->paused || w->behind)
        rv = w->last_rv;
    w->cb(w->data, GF_KS_EV_BOOKMARK, NULL, rv, 0);
}

void gf_ks_watch_bookmark_periodic(struct gf_ks_watch *w)
{
    /*
     * The API server's watch cache sends a bookmark only when the type's
     * version has moved past where the watch began: a watch on a type
     * that has not changed since gets none (measured on 1.28: no
     * bookmark in 200 s), and clients must live with that silence.
     */
    if (w != NULL && !w->dead && w->tab->write_rv > w->start_rv)
        gf_ks_watch_bookmark(w);
}

void gf_ks_watch_pause(struct gf_ks_watch *w)
{
    if (w != NULL)
        w->paused = true;
}

void gf_ks_watch_resume(struct gf_ks_watch *w)
{
    if (w == NULL || w->dead || !w->paused)
        return;
    w->paused = false;
    /* From inside its own callback, the running pump goes on. */
    if (!w->pumping)
        pump(w->st, w);
}

bool gf_ks_watch_initial_done(const struct gf_ks_watch *w)
{
    return w != NULL && !w->init_pending;
}

void gf_ks_watch_stop(struct gf_ks_watch *w)
{
    if (w == NULL || w->dead)
        return;
    w->dead = true;
    gf__ks_st_maybe_sweep(w->st);
}
