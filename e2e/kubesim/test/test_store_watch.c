/*
 * Tests for kubesim/store's events (store_watch.c): event ordering for
 * observers and watches, the bounded watch cache (replay, growth,
 * compaction and 410), selectors translating events, callbacks that stop
 * themselves, and flow control of paused watches.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/select.h"
#include "e2e/kubesim/store.h"
#include "e2e/kubesim/test/store_testkit.h"
#include "kubeclient/global.h"

/* An observer that writes from inside its callback. */
struct writer {
    struct ks_sttk_fx *f;
    struct ks_sttk_olog *log;
    int depth, max_depth;
    int writes;
};

static void writer_cb(void *data, const struct gf_ks_event *ev)
{
    struct writer *w = data;
    w->depth++;
    if (w->depth > w->max_depth)
        w->max_depth = w->depth;
    ks_sttk_olog_add(w->log, "w", ev);
    if (ev->type == GF_KS_EV_ADDED && strncmp(ev->obj->name, "x", 1) == 0 &&
        w->writes < 3) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"y%d\"}}",
                 w->writes++);
        struct gf_ks_obj *o = ks_sttk_mk(w->f, w->f->cm, "a", buf);
        /* The write is stored now; its event comes later. */
        assert_non_null(gf_ks_store_get(w->f->st, w->f->cm, "a", o->name));
    }
    w->depth--;
}

static struct gf_ks_observer *late_obs;
static struct ks_sttk_obs late;

static void registrar_cb(void *data, const struct gf_ks_event *ev)
{
    struct ks_sttk_fx *f = data;
    if (late_obs == NULL && ev->type == GF_KS_EV_ADDED)
        late_obs = gf_ks_store_observe(f->st, f->cm, ks_sttk_obs_cb, &late);
}

static void test_observer_order_and_reentrancy(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct ks_sttk_olog log = {0};
    struct writer w = {.f = &f, .log = &log};
    struct ks_sttk_obs second = {.log = &log, .tag = "s"};
    gf_ks_store_observe(f.st, f.cm, writer_cb, &w);
    gf_ks_store_observe(f.st, f.cm, ks_sttk_obs_cb, &second);
    late_obs = NULL;
    late = (struct ks_sttk_obs){.log = &log, .tag = "late"};
    gf_ks_store_observe(f.st, f.cm, registrar_cb, &f);
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"x1\"}}");
    /* Never re-entered: writes inside a callback are delivered after. */
    assert_int_equal(w.max_depth, 1);
    assert_int_equal(second.max_depth, 1);
    assert_int_equal(w.writes, 1);
    assert_string_equal(log.lines[0], "w ADDED ConfigMap a/x1");
    assert_string_equal(log.lines[1], "s ADDED ConfigMap a/x1");
    assert_string_equal(log.lines[2], "w ADDED ConfigMap a/y0");
    assert_string_equal(log.lines[3], "s ADDED ConfigMap a/y0");
    /*
     * An observer added during delivery sees only writes made after it
     * was added: y0 was already stored (it can read it).
     */
    assert_int_equal(log.n, 4);
    assert_non_null(late_obs);
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"z\"}}");
    assert_int_equal(log.n, 7);
    assert_string_equal(log.lines[6], "late ADDED ConfigMap a/z");
    gf_ks_store_unobserve(f.st, late_obs);
    ks_sttk_done(&f);
}

static void test_watch_cache_replay_and_410(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 4);
    ks_sttk_mk_ns(&f, "a");
    uint64_t first = 0;
    for (int i = 0; i < 6; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        struct gf_ks_obj *o = ks_sttk_mk(&f, f.cm, "a", buf);
        if (i == 0)
            first = o->rv;
    }
    /* Six events in a ring of four: c0 and c1 are compacted. */
    struct ks_sttk_rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    char rv[24];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first);
    struct gf_ks_watch_opts wo = {.rv = rv};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &w, &err),
        GF_EGONE);
    assert_int_equal(err.code, 410);
    assert_string_equal(err.reason, "Expired");
    assert_int_equal(r.n, 0);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    /* From c1's version: c2..c5 are in the cache and replay in order. */
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 1);
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &w, &err), 0);
    assert_int_equal(r.n, 4);
    char want[64];
    snprintf(want, sizeof(want), "ADDED a/c2 %llu",
             (unsigned long long)first + 2);
    assert_string_equal(r.lines[0], want);
    snprintf(want, sizeof(want), "ADDED a/c5 %llu",
             (unsigned long long)first + 5);
    assert_string_equal(r.lines[3], want);
    /* Bookmarks report the current version. */
    gf_ks_watch_bookmark(w);
    snprintf(want, sizeof(want), "BOOKMARK %llu",
             (unsigned long long)gf_ks_store_rv(f.st));
    assert_string_equal(r.lines[4], want);
    /* A version the store has not reached: 504 ResourceVersionTooLarge. */
    snprintf(rv, sizeof(rv), "%llu",
             (unsigned long long)gf_ks_store_rv(f.st) + 5);
    struct gf_ks_watch *wf = NULL;
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &wf, &err),
        GF_ESERVER);
    assert_int_equal(err.code, 504);
    assert_string_equal(
        gf_json_str(cJSON_GetArrayItem(err.causes, 0), "reason"),
        "ResourceVersionTooLarge");
    assert_int_equal(err.retry_after, 1);
    /* Bad versions are 400. */
    wo.rv = "12abc";
    struct gf_ks_watch *w2 = NULL;
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &w2, &err),
        GF_EINVALID);
    assert_int_equal(err.code, 400);
    /* rv "0" starts with the current state as ADDED events. */
    struct ks_sttk_rec r0 = {0};
    wo.rv = "0";
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r0, &w2, &err), 0);
    assert_int_equal(r0.n, 6);
    assert_int_equal(gf_ks_store_watches(f.st), 2);
    /* Restart: watches close, the cache empties, data stays. */
    gf_ks_store_restart(f.st);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, GF_ECANCELED);
    assert_int_equal(r0.closed, 1);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 6);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 4);
    wo.rv = rv;
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r0, &w2, &err),
        GF_EGONE);
    /* From the current version the new watch works. */
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)gf_ks_store_rv(f.st));
    struct ks_sttk_rec r1 = {0};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r1, &w2, &err), 0);
    assert_int_equal(r1.n, 0);
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"after\"}}");
    assert_int_equal(r1.n, 1);
    gf_ks_status_clear(&err);
    ks_sttk_done(&f);
    assert_int_equal(r1.closed, 1);
}

static void test_watch_selectors_translate_events(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk_ns(&f, "b");
    struct gf_ks_selector *sel = NULL;
    assert_int_equal(gf_ks_selector_parse("team in (x,y)", false, &sel, NULL),
                     0);
    ks_sttk_mk(&f, f.cm, "a",
               "{\"metadata\":{\"name\":\"pre\",\"labels\":{\"team\":\"x\"}}}");
    ks_sttk_mk(
        &f, f.cm, "a",
        "{\"metadata\":{\"name\":\"other\",\"labels\":{\"team\":\"z\"}}}");
    struct ks_sttk_rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {.ns = "a", .label = sel};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &w, NULL), 0);
    gf_ks_selector_free(sel); /* the watch keeps its own copy */
    assert_int_equal(r.n, 1);
    assert_int_equal(strncmp(r.lines[0], "ADDED a/pre ", 12), 0);
    /* Starts matching: ADDED; stops: DELETED; other namespace: nothing. */
    ks_sttk_upd(&f, f.cm, "a", "other",
                "{\"metadata\":{\"labels\":{\"team\":\"y\"}}}", GF_KS_MAIN,
                NULL, NULL);
    ks_sttk_upd(&f, f.cm, "a", "pre",
                "{\"metadata\":{\"labels\":{\"team\":\"q\"}}}", GF_KS_MAIN,
                NULL, NULL);
    ks_sttk_upd(&f, f.cm, "a", "pre",
                "{\"metadata\":{\"labels\":{\"t\":\"q\"}}}", GF_KS_MAIN, NULL,
                NULL);
    ks_sttk_mk(
        &f, f.cm, "b",
        "{\"metadata\":{\"name\":\"elsewhere\",\"labels\":{\"team\":\"x\"}}}");
    assert_int_equal(r.n, 3);
    assert_int_equal(strncmp(r.lines[1], "ADDED a/other ", 14), 0);
    assert_int_equal(strncmp(r.lines[2], "DELETED a/pre ", 14), 0);
    /* Field selectors work the same way. */
    struct gf_ks_selector *fs = NULL;
    assert_int_equal(
        gf_ks_selector_parse("metadata.name=elsewhere", true, &fs, NULL), 0);
    struct ks_sttk_rec rf = {0};
    struct gf_ks_watch_opts fo = {.field = fs};
    struct gf_ks_watch *wf = NULL;
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &fo, ks_sttk_rec_cb, &rf, &wf, NULL), 0);
    gf_ks_selector_free(fs);
    assert_int_equal(rf.n, 1);
    assert_int_equal(strncmp(rf.lines[0], "ADDED b/elsewhere ", 18), 0);
    gf_ks_watch_stop(w);
    gf_ks_watch_stop(wf);
    ks_sttk_done(&f);
}

/* A watch callback that stops its own watch on the second event. */
struct self_stop {
    struct gf_ks_watch *w;
    int seen;
};

static void self_stop_cb(void *data, enum gf_ks_ev_type type,
                         const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)obj;
    (void)rv;
    (void)err;
    struct self_stop *s = data;
    assert_int_not_equal(type, GF_KS_EV_CLOSED);
    if (++s->seen == 2)
        gf_ks_watch_stop(s->w);
}

struct self_unobserve {
    struct gf_ks_store *st;
    struct gf_ks_observer *o;
    int seen;
};

static void self_unobserve_cb(void *data, const struct gf_ks_event *ev)
{
    (void)ev;
    struct self_unobserve *s = data;
    if (++s->seen == 1)
        gf_ks_store_unobserve(s->st, s->o);
}

static bool stop_after_two(void *data, struct gf_ks_obj *o)
{
    (void)o;
    return ++*(int *)data < 2;
}

static void type_names(void *data, const struct gf_ks_rtype *t)
{
    char *out = data;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s%s", n ? "," : "", t->resource);
}

static void test_callbacks_may_stop_themselves(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    struct self_stop ss = {0};
    struct gf_ks_watch_opts wo = {0};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, self_stop_cb, &ss, &ss.w, NULL), 0);
    struct self_unobserve su = {.st = f.st};
    su.o = gf_ks_store_observe(f.st, f.cm, self_unobserve_cb, &su);
    for (int i = 0; i < 4; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        ks_sttk_mk(&f, f.cm, "a", buf);
    }
    assert_int_equal(ss.seen, 2);
    assert_int_equal(su.seen, 1);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    /* foreach stops when asked; counts are per type. */
    int n = 0;
    gf_ks_store_foreach(f.st, f.cm, NULL, stop_after_two, &n);
    assert_int_equal(n, 2);
    n = 0;
    gf_ks_store_foreach(f.st, f.cm, "b", stop_after_two, &n);
    assert_int_equal(n, 0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 4);
    assert_int_equal(gf_ks_store_count(f.st, f.wl), 0);
    char names[256] = "";
    gf_ks_store_types(f.st, type_names, names);
    assert_string_equal(names, "namespaces,configmaps,workloads,jobs,pods,"
                               "clusterqueues");
    /* Re-registering a type (a CRD update) keeps its objects. */
    struct gf_ks_rtype *again =
        ks_sttk_mk_type("", "configmaps", "ConfigMap", true, true);
    assert_int_equal(gf_ks_store_register(f.st, again), 0);
    assert_ptr_equal(gf_ks_store_type(f.st, "", "configmaps"), f.cm);
    assert_true(f.cm->has_status);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 4);
    assert_string_equal(f.cm->list_kind, "ConfigMapList");
    assert_string_equal(f.cm->singular, "configmap");
    /* A type without versions is refused (and freed). */
    struct gf_ks_rtype *bad = gf_calloc(1, sizeof(*bad));
    bad->group = gf_strdup("x");
    bad->resource = gf_strdup("ys");
    bad->kind = gf_strdup("Y");
    assert_int_equal(gf_ks_store_register(f.st, bad), -EINVAL);
    ks_sttk_done(&f);
}

/* Stops another watch (or itself) from a callback outside dispatch. */
struct stopper {
    struct gf_ks_watch *victim;
    int calls, closed;
};

static void stopper_cb(void *data, enum gf_ks_ev_type type,
                       const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)obj;
    (void)rv;
    (void)err;
    struct stopper *s = data;
    s->calls++;
    if (type == GF_KS_EV_CLOSED)
        s->closed++;
    gf_ks_watch_stop(s->victim);
    s->victim = NULL;
}

static void test_stop_from_start_and_close_callbacks(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c1\"}}");
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c2\"}}");
    /* A CLOSED callback stopping a watch that comes later in the list. */
    struct stopper a = {0}, b = {0};
    struct gf_ks_watch *wa = NULL, *wb = NULL;
    struct gf_ks_watch_opts wo = {.rv = "1"};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, stopper_cb, &b, &wb, NULL), 0);
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, stopper_cb, &a, &wa, NULL), 0);
    a.calls = b.calls = 0;
    a.victim = wb; /* wa is first in the list: it closes, then stops wb */
    gf_ks_store_restart(f.st);
    assert_int_equal(a.closed, 1);
    assert_int_equal(b.closed, 0); /* stopped: no CLOSED, as documented */
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    (void)wa;
    ks_sttk_done(&f);
}

/* Stops the watch named in data on its first event (inside start). */
static void stop_self_cb(void *data, enum gf_ks_ev_type type,
                         const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)type;
    (void)obj;
    (void)rv;
    (void)err;
    struct gf_ks_watch **w = data;
    gf_ks_watch_stop(*w);
}

static void test_stop_self_inside_start(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c1\"}}");
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c2\"}}");
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {0};
    /* *out is set before the first callback, so the callback can stop. */
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, stop_self_cb, &w, &w, NULL), 0);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c3\"}}");
    ks_sttk_done(&f);
}

/* Counts events and checks they arrive in rv order. */
struct seq {
    uint64_t last;
    int n;
};

static void seq_cb(void *data, enum gf_ks_ev_type type,
                   const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)obj;
    (void)err;
    struct seq *q = data;
    if (type == GF_KS_EV_CLOSED)
        return;
    assert_true(rv > q->last);
    q->last = rv;
    q->n++;
}

static void test_watch_cache_grows_then_compacts(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 40);
    ks_sttk_mk_ns(&f, "a");
    uint64_t first = gf_ks_store_rv(f.st) + 1;
    for (int i = 0; i < 50; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        ks_sttk_mk(&f, f.cm, "a", buf);
    }
    /* 50 events, 40 kept: the first 10 are compacted. */
    char rv[24];
    struct gf_ks_watch *w = NULL;
    struct seq q = {0};
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 8);
    struct gf_ks_watch_opts wo = {.rv = rv};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, seq_cb, &q, &w, NULL),
                     GF_EGONE);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 9);
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, seq_cb, &q, &w, NULL),
                     0);
    assert_int_equal(q.n, 40);
    assert_int_equal(q.last, gf_ks_store_rv(f.st));
    ks_sttk_done(&f);
}

/* Replay from the cache applies the watch's selectors to old events. */
static void test_replay_with_selectors(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    uint64_t from = gf_ks_store_rv(f.st);
    ks_sttk_mk(&f, f.cm, "a",
               "{\"metadata\":{\"name\":\"x\",\"labels\":{\"k\":\"1\"}}}");
    ks_sttk_mk(&f, f.cm, "a",
               "{\"metadata\":{\"name\":\"y\",\"labels\":{\"k\":\"2\"}}}");
    ks_sttk_upd(&f, f.cm, "a", "x", "{\"metadata\":{\"labels\":{\"k\":\"2\"}}}",
                GF_KS_MAIN, NULL, NULL);
    ks_sttk_del(&f, f.cm, "a", "y", GF_KS_PROP_DEFAULT, NULL);
    struct gf_ks_selector *sel = NULL;
    assert_int_equal(gf_ks_selector_parse("k=1", false, &sel, NULL), 0);
    char rv[24];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)from);
    struct ks_sttk_rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {.rv = rv, .label = sel};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, ks_sttk_rec_cb, &r, &w, NULL), 0);
    gf_ks_selector_free(sel);
    /* x was added matching, then stopped matching; y never matched. */
    assert_int_equal(r.n, 2);
    assert_int_equal(strncmp(r.lines[0], "ADDED a/x ", 10), 0);
    assert_int_equal(strncmp(r.lines[1], "DELETED a/x ", 12), 0);
    gf_ks_watch_stop(w);
    ks_sttk_done(&f);
}

/* A recorder that pauses its watch when it has recorded pause_at lines. */
struct prec {
    struct ks_sttk_rec r;
    int pause_at;
    struct gf_ks_watch *w;
};

static void prec_cb(void *data, enum gf_ks_ev_type type,
                    const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct prec *p = data;
    ks_sttk_rec_cb(&p->r, type, obj, rv, err);
    if (type != GF_KS_EV_CLOSED && p->r.n == p->pause_at)
        gf_ks_watch_pause(p->w);
}

static uint64_t mk_cm(struct ks_sttk_fx *f, int i)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
    return ks_sttk_mk(f, f->cm, "a", buf)->rv;
}

static void assert_line(const struct ks_sttk_rec *r, int i, const char *what,
                        uint64_t rv)
{
    char want[96];
    snprintf(want, sizeof(want), "%s %llu", what, (unsigned long long)rv);
    assert_string_equal(r->lines[i], want);
}

static void test_paused_watch_resumes_from_the_cache(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 64);
    ks_sttk_mk_ns(&f, "a");
    uint64_t from = gf_ks_store_rv(f.st), rv[8];
    for (int i = 0; i < 5; i++)
        rv[i] = mk_cm(&f, i);
    struct prec p = {.pause_at = 2};
    struct gf_ks_watch_opts wo = {.rv = NULL};
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)from);
    wo.rv = rvs;
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    /* Paused inside its second event: the replay stops there. */
    assert_int_equal(p.r.n, 2);
    /* A change while paused is not sent now... */
    rv[5] = mk_cm(&f, 5);
    assert_int_equal(p.r.n, 2);
    /* ...and a bookmark says only what the watch has seen. */
    gf_ks_watch_bookmark(p.w);
    assert_int_equal(p.r.n, 3);
    assert_line(&p.r, 2, "BOOKMARK", rv[1]);
    /* Resumed: the rest from the cache, in order, then live again. */
    p.pause_at = 0;
    gf_ks_watch_resume(p.w);
    rv[6] = mk_cm(&f, 6);
    assert_int_equal(p.r.n, 8);
    const int idx[] = {0, 1, -1, 2, 3, 4, 5, 6};
    for (int i = 0; i < 8; i++) {
        if (idx[i] < 0)
            continue;
        char what[32];
        snprintf(what, sizeof(what), "ADDED a/c%d", idx[i]);
        assert_line(&p.r, i, what, rv[idx[i]]);
    }
    assert_int_equal(p.r.closed, 0);
    gf_ks_watch_stop(p.w);
    ks_sttk_done(&f);
}

static void test_paused_watch_out_of_the_cache_is_closed(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 4);
    ks_sttk_mk_ns(&f, "a");
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu",
             (unsigned long long)gf_ks_store_rv(f.st));
    mk_cm(&f, 0);
    struct prec p = {.pause_at = 1};
    struct gf_ks_watch_opts wo = {.rv = rvs};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    assert_int_equal(p.r.n, 1);
    /* Five more changes in a cache of four: c1 leaves it unsent. */
    for (int i = 1; i < 6; i++)
        mk_cm(&f, i);
    assert_int_equal(p.r.n, 1);
    p.pause_at = 0;
    gf_ks_watch_resume(p.w);
    /* The API server closes a watcher that fell this far behind. */
    assert_int_equal(p.r.closed, 1);
    assert_int_equal(p.r.close_err, GF_EGONE);
    assert_int_equal(p.r.n, 1);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    ks_sttk_done(&f);
}

static void test_initial_events_paced_then_bookmark(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 64);
    ks_sttk_mk_ns(&f, "a");
    uint64_t rv[8];
    for (int i = 0; i < 4; i++)
        rv[i] = mk_cm(&f, i);
    uint64_t snap = gf_ks_store_rv(f.st);
    struct prec p = {.pause_at = 2};
    struct gf_ks_watch_opts wo = {.ns = "a", .initial_end_bookmark = true};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    assert_int_equal(p.r.n, 2);
    assert_false(gf_ks_watch_initial_done(p.w));
    /* Mid-way through the initial state no version is safe to resume
     * from: no bookmark. */
    gf_ks_watch_bookmark(p.w);
    assert_int_equal(p.r.n, 2);
    rv[4] = mk_cm(&f, 4);
    p.pause_at = 0;
    gf_ks_watch_resume(p.w);
    assert_true(gf_ks_watch_initial_done(p.w));
    /* The rest of the snapshot, its bookmark, then the change made
     * meanwhile, from the cache. */
    assert_int_equal(p.r.n, 6);
    assert_line(&p.r, 2, "ADDED a/c2", rv[2]);
    assert_line(&p.r, 3, "ADDED a/c3", rv[3]);
    assert_line(&p.r, 4, "BOOKMARK", snap);
    assert_line(&p.r, 5, "ADDED a/c4", rv[4]);
    gf_ks_watch_stop(p.w);
    ks_sttk_done(&f);
}

/* A callback that writes to the store while a watch catches up: the ring
 * moves under the replay, and nothing is skipped. */
struct writing_rec {
    struct ks_sttk_rec r;
    struct ks_sttk_fx *f;
};

static void writing_cb(void *data, enum gf_ks_ev_type type,
                       const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct writing_rec *w = data;
    ks_sttk_rec_cb(&w->r, type, obj, rv, err);
    if (w->r.n == 1)
        mk_cm(w->f, 99);
}

static void test_catch_up_survives_writes_from_callbacks(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 4);
    ks_sttk_mk_ns(&f, "a");
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu",
             (unsigned long long)gf_ks_store_rv(f.st));
    for (int i = 0; i < 4; i++)
        mk_cm(&f, i);
    struct writing_rec w = {.f = &f};
    struct gf_ks_watch *wt = NULL;
    struct gf_ks_watch_opts wo = {.rv = rvs};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, writing_cb, &w, &wt, NULL), 0);
    /* c99 pushed c0 out of the cache of four after c0 was sent. */
    assert_int_equal(w.r.n, 5);
    for (int i = 0; i < 4; i++) {
        char want[32];
        snprintf(want, sizeof(want), "ADDED a/c%d ", i);
        assert_int_equal(strncmp(w.r.lines[i], want, strlen(want)), 0);
    }
    assert_int_equal(strncmp(w.r.lines[4], "ADDED a/c99 ", 12), 0);
    assert_int_equal(w.r.closed, 0);
    gf_ks_watch_stop(wt);
    ks_sttk_done(&f);
}

/* Stopping a paused watch frees its held snapshot. */
static void test_stop_paused_initial_watch(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 64);
    ks_sttk_mk_ns(&f, "a");
    for (int i = 0; i < 4; i++)
        mk_cm(&f, i);
    struct prec p = {.pause_at = 1};
    struct gf_ks_watch_opts wo = {.ns = "a"};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    assert_int_equal(p.r.n, 1);
    gf_ks_watch_stop(p.w);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    ks_sttk_done(&f); /* asserts that every allocation came back */
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observer_order_and_reentrancy),
        cmocka_unit_test(test_watch_cache_replay_and_410),
        cmocka_unit_test(test_watch_cache_grows_then_compacts),
        cmocka_unit_test(test_watch_selectors_translate_events),
        cmocka_unit_test(test_callbacks_may_stop_themselves),
        cmocka_unit_test(test_stop_from_start_and_close_callbacks),
        cmocka_unit_test(test_stop_self_inside_start),
        cmocka_unit_test(test_replay_with_selectors),
        cmocka_unit_test(test_paused_watch_resumes_from_the_cache),
        cmocka_unit_test(test_paused_watch_out_of_the_cache_is_closed),
        cmocka_unit_test(test_initial_events_paced_then_bookmark),
        cmocka_unit_test(test_stop_paused_initial_watch),
        cmocka_unit_test(test_catch_up_survives_writes_from_callbacks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
