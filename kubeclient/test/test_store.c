/*
 * Tests for kubeclient/store: only projected fields are kept, entries are
 * immutable and refcounted (a held ref survives an update and a delete),
 * handlers see every change once, an unchanged RV is a no-op, and a
 * replace deletes exactly the keys that vanished.
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
#include "common/err.h"
#include "common/json.h"
#include "kubeclient/store.h"

static int64_t baseline;

/* The projection a Workload consumer might use: queue name and GPUs. */
struct proj {
    char queue[64];
    int64_t gpus;
};

static int project(void *data, const cJSON *obj, void **out)
{
    int *calls = data;
    (*calls)++;
    const char *q = gf_json_str(obj, "spec.queueName");
    if (q == NULL)
        return 1; /* not one of ours: skip */
    if (strcmp(q, "bad") == 0)
        return -EINVAL;
    struct proj *p = gf_calloc(1, sizeof(*p));
    snprintf(p->queue, sizeof(p->queue), "%s", q);
    gf_json_int(obj, "spec.gpus", &p->gpus);
    *out = p;
    return 0;
}

static void free_proj(void *p)
{
    gf_free(p);
}

struct seen {
    int adds, updates, deletes;
    char last[128];
};

static void on_add(void *data, const struct gf_store_entry *e)
{
    struct seen *s = data;
    s->adds++;
    snprintf(s->last, sizeof(s->last), "add %s", e->key);
}

static void on_update(void *data, const struct gf_store_entry *old,
                      const struct gf_store_entry *cur)
{
    struct seen *s = data;
    s->updates++;
    snprintf(s->last, sizeof(s->last), "update %s %s->%s", cur->key, old->rv,
             cur->rv);
}

static void on_delete(void *data, const struct gf_store_entry *old)
{
    struct seen *s = data;
    s->deletes++;
    snprintf(s->last, sizeof(s->last), "delete %s", old->key);
}

static cJSON *obj(const char *ns, const char *name, const char *rv,
                  const char *queue, int gpus)
{
    char buf[512];
    if (queue != NULL)
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\","
                 "\"resourceVersion\":\"%s\",\"uid\":\"u-%s\"},"
                 "\"spec\":{\"queueName\":\"%s\",\"gpus\":%d},"
                 "\"status\":{\"big\":\"lots of data we never keep\"}}",
                 ns, name, rv, name, queue, gpus);
    else
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\","
                 "\"resourceVersion\":\"%s\"}}",
                 ns, name, rv);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static int apply(struct gf_store *s, const char *ns, const char *name,
                 const char *rv, const char *queue, int gpus)
{
    cJSON *j = obj(ns, name, rv, queue, gpus);
    int rc = gf_store_upsert(s, j);
    cJSON_Delete(j);
    return rc;
}

static void test_projection_handlers_and_refs(void **state)
{
    (void)state;
    int calls = 0;
    struct seen seen = {0};
    struct gf_store_handlers h = {on_add, on_update, on_delete, &seen};
    struct gf_store_opts o = {project, free_proj, &calls, &h};
    struct gf_store *s = gf_store_new(&o);

    assert_int_equal(apply(s, "team-a", "w1", "10", "gpu-q", 4), 0);
    assert_int_equal(seen.adds, 1);
    const struct gf_store_entry *e = gf_store_get(s, "team-a/w1");
    assert_non_null(e);
    assert_string_equal(e->ns, "team-a");
    assert_string_equal(e->name, "w1");
    assert_string_equal(e->rv, "10");
    assert_string_equal(e->uid, "u-w1");
    const struct proj *p = e->proj;
    assert_string_equal(p->queue, "gpu-q");
    assert_int_equal(p->gpus, 4);

    /* Same RV again (a relist of an unchanged object): no projection, no
     * handler. */
    assert_int_equal(apply(s, "team-a", "w1", "10", "gpu-q", 4), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(seen.updates, 0);

    /* A reader holds the old entry across an update: it must not change
     * under it, and must stay valid until unref. */
    const struct gf_store_entry *held = gf_store_entry_ref(e);
    assert_int_equal(apply(s, "team-a", "w1", "11", "gpu-q", 8), 0);
    assert_int_equal(seen.updates, 1);
    assert_string_equal(seen.last, "update team-a/w1 10->11");
    const struct gf_store_entry *cur = gf_store_get(s, "team-a/w1");
    assert_ptr_not_equal(cur, held);
    assert_int_equal(((const struct proj *)cur->proj)->gpus, 8);
    assert_int_equal(((const struct proj *)held->proj)->gpus, 4);
    assert_string_equal(held->rv, "10");

    /* Delete while held: the handler sees it, the ref keeps it alive. */
    const struct gf_store_entry *held2 = gf_store_entry_ref(cur);
    cJSON *j = obj("team-a", "w1", "12", "gpu-q", 8);
    assert_int_equal(gf_store_remove(s, j), 0);
    cJSON_Delete(j);
    assert_int_equal(seen.deletes, 1);
    assert_null(gf_store_get(s, "team-a/w1"));
    assert_string_equal(held2->key, "team-a/w1");
    gf_store_entry_unref(held);
    gf_store_entry_unref(held2);

    /* Skipped and failing projections leave nothing behind. */
    assert_int_equal(apply(s, "team-a", "other", "1", NULL, 0), 0);
    assert_null(gf_store_get(s, "team-a/other"));
    assert_int_equal(apply(s, "team-a", "w2", "1", "gpu-q", 1), 0);
    assert_int_equal(apply(s, "team-a", "w2", "2", "bad", 1), -EINVAL);
    assert_null(gf_store_get(s, "team-a/w2"));
    struct gf_store_stats st;
    gf_store_stats(s, &st);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.proj_errors, 1);
    assert_int_equal(seen.deletes, 2); /* w2 removed when it went bad */

    /* An object without a name is refused. */
    cJSON *noname = cJSON_Parse("{\"metadata\":{}}");
    assert_int_equal(gf_store_upsert(s, noname), -EINVAL);
    cJSON_Delete(noname);
    gf_store_free(s);
    assert_int_equal(gf_alloc_live(), baseline);
}

static int count_entry(void *data, const struct gf_store_entry *e)
{
    (void)e;
    (*(int *)data)++;
    return 0;
}

static int stop_at_three(void *data, const struct gf_store_entry *e)
{
    (void)e;
    return ++*(int *)data == 3 ? 7 : 0;
}

static void test_replace_deletes_vanished_and_syncs(void **state)
{
    (void)state;
    int calls = 0;
    struct seen seen = {0};
    struct gf_store_handlers h = {on_add, on_update, on_delete, &seen};
    struct gf_store_opts o = {project, free_proj, &calls, &h};
    struct gf_store *s = gf_store_new(&o);
    assert_false(gf_store_has_synced(s));

    /* Enough keys to make the table grow several times. */
    const int n = 1000;
    gf_store_replace_begin(s);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%d", i);
        cJSON *j = obj("ns", name, "1", "q", i);
        assert_int_equal(gf_store_replace_add(s, j), 0);
        cJSON_Delete(j);
    }
    gf_store_replace_end(s);
    assert_true(gf_store_has_synced(s));
    assert_int_equal(gf_store_len(s), (size_t)n);
    assert_int_equal(seen.adds, n);

    /* The second list lacks every odd key and changed w0. */
    gf_store_replace_begin(s);
    for (int i = 0; i < n; i += 2) {
        char name[32];
        snprintf(name, sizeof(name), "w%d", i);
        cJSON *j = obj("ns", name, i == 0 ? "2" : "1", "q", i);
        assert_int_equal(gf_store_replace_add(s, j), 0);
        cJSON_Delete(j);
    }
    gf_store_replace_end(s);
    assert_int_equal(gf_store_len(s), (size_t)n / 2);
    assert_int_equal(seen.deletes, n / 2);
    assert_int_equal(seen.updates, 1);
    /* The sweep deletes while it walks the map: no key may be skipped
     * (a survivor of a vanished one) or visited twice (a double delete). */
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "ns/w%d", i);
        if (i % 2 == 1)
            assert_null(gf_store_get(s, key));
        else
            assert_non_null(gf_store_get(s, key));
    }

    /* Cluster-scoped objects are keyed by name alone. */
    cJSON *cq = cJSON_Parse("{\"metadata\":{\"name\":\"cq-a\","
                            "\"resourceVersion\":\"5\"},"
                            "\"spec\":{\"queueName\":\"x\"}}");
    assert_int_equal(gf_store_upsert(s, cq), 0);
    cJSON_Delete(cq);
    assert_non_null(gf_store_get(s, "cq-a"));

    int count = 0;
    assert_int_equal(gf_store_foreach(s, count_entry, &count), 0);
    assert_int_equal(count, n / 2 + 1);
    count = 0;
    assert_int_equal(gf_store_foreach(s, stop_at_three, &count), 7);
    assert_int_equal(count, 3);
    gf_store_free(s);
    assert_int_equal(gf_alloc_live(), baseline);
}

static int write_through(struct gf_store *s, const char *name, const char *rv,
                         int gpus)
{
    cJSON *j = obj("ns", name, rv, "q", gpus);
    int rc = gf_store_write_through(s, j);
    cJSON_Delete(j);
    return rc;
}

static int64_t gpus_of(const struct gf_store *s, const char *key)
{
    const struct gf_store_entry *e = gf_store_get(s, key);
    assert_non_null(e);
    return ((const struct proj *)e->proj)->gpus;
}

/* A write's answer goes in at once when it is newer than what the watch
 * has brought, and the cache never goes back: not to the watch's own
 * event for it, nor to an older event still on its way. */
static void test_write_through_only_moves_forward(void **state)
{
    (void)state;
    int calls = 0;
    struct seen seen = {0};
    struct gf_store_handlers h = {on_add, on_update, on_delete, &seen};
    struct gf_store_opts o = {project, free_proj, &calls, &h};
    struct gf_store *s = gf_store_new(&o);
    gf_store_replace_begin(s);
    cJSON *j = obj("ns", "w", "10", "q", 1);
    assert_int_equal(gf_store_replace_add(s, j), 0);
    cJSON_Delete(j);
    gf_store_replace_end(s);

    /* Our patch answered at 12; the watch is at 10. */
    assert_int_equal(write_through(s, "w", "12", 2), 0);
    assert_int_equal(seen.updates, 1);
    assert_string_equal(seen.last, "update ns/w 10->12");
    assert_int_equal(gpus_of(s, "ns/w"), 2);
    /* Someone else's change at 11, still on its way: not applied. */
    assert_int_equal(apply(s, "ns", "w", "11", "q", 7), 0);
    assert_int_equal(gpus_of(s, "ns/w"), 2);
    assert_int_equal(seen.updates, 1);
    /* The watch's event for our own version: a no-op. */
    assert_int_equal(apply(s, "ns", "w", "12", "q", 2), 0);
    assert_int_equal(seen.updates, 1);
    /* Later changes pass as ever. */
    assert_int_equal(apply(s, "ns", "w", "13", "q", 3), 0);
    assert_int_equal(gpus_of(s, "ns/w"), 3);
    assert_int_equal(seen.updates, 2);

    /* An answer the watch has already gone past (13 seen): nothing. */
    assert_int_equal(write_through(s, "w", "13", 9), 1);
    assert_int_equal(write_through(s, "w", "12", 9), 1);
    assert_int_equal(gpus_of(s, "ns/w"), 3);
    /* Nor for an object the watch has created and deleted since (its
     * delete event at 15 came first): not brought back. */
    assert_int_equal(apply(s, "ns", "v", "14", "q", 1), 0);
    cJSON *d = obj("ns", "v", "15", "q", 1);
    assert_int_equal(gf_store_remove(s, d), 0);
    cJSON_Delete(d);
    assert_int_equal(write_through(s, "v", "14", 1), 1);
    assert_null(gf_store_get(s, "ns/v"));
    /* A create's answer: added, with the handler, before its event. */
    assert_int_equal(write_through(s, "c", "20", 4), 0);
    assert_string_equal(seen.last, "add ns/c");
    assert_int_equal(apply(s, "ns", "c", "20", "q", 4), 0);
    assert_int_equal(seen.adds, 3);
    /* A resourceVersion that is not a number is never compared. */
    assert_int_equal(write_through(s, "w", "x7", 5), 1);
    struct gf_store_stats st;
    gf_store_stats(s, &st);
    assert_int_equal(st.written, 2);
    gf_store_free(s);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    gf_alloc_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_projection_handlers_and_refs),
        cmocka_unit_test(test_replace_deletes_vanished_and_syncs),
        cmocka_unit_test(test_write_through_only_moves_forward),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
