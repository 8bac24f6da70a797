/*
 * Tests for kubesim's watch streams: initial events, live events in
 * resourceVersion order, resuming from a resourceVersion, bookmarks on the
 * manual clock, timeoutSeconds (with the last bookmark before the end),
 * 410 Expired as an ERROR event when the watch cache was compacted or
 * dropped by a restart, selector transitions, Table events, a client that
 * goes away, and cancellation without callbacks.
 */
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
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

#define CM_PATH "/api/v1/namespaces/default/configmaps"

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}
/* A macro, so gf_json_str's literal-only check reaches every call. */
#define str(j, path) or_null(gf_json_str(j, path))

static void mk(struct ks_apitk_cluster *k, const char *name, const char *app)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"app\":\"%s\"}}}",
             name, app);
    int code;
    cJSON_Delete(ks_apitk_json(k, "POST", CM_PATH, NULL, body, &code));
    assert_int_equal(code, 201);
}

static void relabel(struct ks_apitk_cluster *k, const char *name,
                    const char *app)
{
    char target[256], body[128];
    snprintf(target, sizeof(target), CM_PATH "/%s", name);
    snprintf(body, sizeof(body), "{\"metadata\":{\"labels\":{\"app\":\"%s\"}}}",
             app);
    int code;
    cJSON_Delete(ks_apitk_json(k, "PATCH", target,
                               "application/merge-patch+json", body, &code));
    assert_int_equal(code, 200);
}

/* Asserts event n has this type and object name (NULL: no name check). */
static void assert_event(const struct ks_apitk_resp *r, size_t n,
                         const char *type, const char *name)
{
    cJSON *e = ks_apitk_event(r, n);
    if (e == NULL)
        fail_msg("no event %zu in %s", n, gf_buf_cstr(&r->body));
    assert_string_equal(str(e, "type"), type);
    if (name != NULL)
        assert_string_equal(str(e, "object.metadata.name"), name);
    cJSON_Delete(e);
}

static void test_watch_initial_and_live(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    assert_int_equal(
        ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=true", NULL, NULL, NULL),
        200);
    assert_true(r.streaming);
    assert_non_null(r.call);
    assert_string_equal(r.ctype, "application/json");
    assert_int_equal(gf_ks_api_calls(k.api), 1);
    assert_int_equal(ks_apitk_events(&r), 1);
    assert_event(&r, 0, "ADDED", "a");
    mk(&k, "b", "y");
    relabel(&k, "a", "z");
    int code;
    cJSON_Delete(ks_apitk_json(&k, "DELETE", CM_PATH "/b", NULL, NULL, &code));
    assert_int_equal(ks_apitk_events(&r), 4);
    assert_event(&r, 1, "ADDED", "b");
    assert_event(&r, 2, "MODIFIED", "a");
    assert_event(&r, 3, "DELETED", "b");
    /* Events in other namespaces are not on this stream. */
    cJSON_Delete(ks_apitk_json(&k, "POST",
                               "/api/v1/namespaces/kube-system/configmaps",
                               NULL, "{\"metadata\":{\"name\":\"o\"}}", &code));
    assert_int_equal(code, 201);
    assert_int_equal(ks_apitk_events(&r), 4);
    /* Each event is one chunk. */
    assert_int_equal(r.chunks, 4);
    ks_apitk_resp_free(&r);
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    ks_apitk_stop(&k);
}

static void test_watch_from_rv(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    int code;
    cJSON *l = ks_apitk_json(&k, "GET", CM_PATH, NULL, NULL, &code);
    char target[256];
    snprintf(target, sizeof(target), CM_PATH "?watch=1&resourceVersion=%s",
             str(l, "metadata.resourceVersion"));
    cJSON_Delete(l);
    mk(&k, "b", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    /* watch=True is how the Python client spells it (Go's ParseBool). */
    char *w = strstr(target, "watch=1");
    assert_non_null(w);
    memmove(w + 10, w + 7, strlen(w + 7) + 1);
    memcpy(w, "watch=True", 10);
    ks_apitk_do(&k, &r, "GET", target, NULL, NULL, NULL);
    assert_true(r.streaming);
    /* Only what happened after the list: b, replayed from the cache. */
    assert_int_equal(ks_apitk_events(&r), 1);
    assert_event(&r, 0, "ADDED", "b");
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

/* The watch-list protocol: current state, then the initial-events-end
 * bookmark, then live events. */
static void test_watch_send_initial_events(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    mk(&k, "b", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET",
                CM_PATH "?watch=1&sendInitialEvents=true&allowWatchBookmarks="
                        "true&resourceVersionMatch=NotOlderThan&"
                        "resourceVersion=1",
                NULL, NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 3);
    assert_event(&r, 0, "ADDED", "a");
    assert_event(&r, 1, "ADDED", "b");
    cJSON *e = ks_apitk_event(&r, 2);
    assert_string_equal(str(e, "type"), "BOOKMARK");
    assert_string_equal(gf_json_annotation(gf_json_path(e, "object"),
                                           "k8s.io/initial-events-end"),
                        "true");
    cJSON_Delete(e);
    mk(&k, "c", "x");
    assert_event(&r, 3, "ADDED", "c");
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

/* A client that is behind holds the watch back; what it misses comes
 * from the watch cache, in order, once it has caught up. */
static void test_watch_paced_by_a_slow_client(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    int code;
    cJSON *l = ks_apitk_json(&k, "GET", CM_PATH, NULL, NULL, &code);
    char target[256];
    snprintf(target, sizeof(target), CM_PATH "?watch=1&resourceVersion=%s",
             str(l, "metadata.resourceVersion"));
    cJSON_Delete(l);
    mk(&k, "a", "x");
    mk(&k, "b", "x");
    mk(&k, "c", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    r.behind_at = 2;
    ks_apitk_do(&k, &r, "GET", target, NULL, NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 2);
    mk(&k, "d", "x");
    assert_int_equal(ks_apitk_events(&r), 2);
    r.behind_at = 4;
    gf_ks_api_call_writable(r.call);
    /* c and d, then behind again at the fourth chunk. */
    assert_int_equal(ks_apitk_events(&r), 4);
    mk(&k, "e", "x");
    assert_int_equal(ks_apitk_events(&r), 4);
    r.behind_at = 0;
    gf_ks_api_call_writable(r.call);
    mk(&k, "f", "x");
    const char *names[] = {"a", "b", "c", "d", "e", "f"};
    assert_int_equal(ks_apitk_events(&r), 6);
    for (size_t i = 0; i < 6; i++)
        assert_event(&r, i, "ADDED", names[i]);
    /* A writable call that is not behind is harmless. */
    gf_ks_api_call_writable(r.call);
    assert_int_equal(ks_apitk_events(&r), 6);
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

/* The BOOKMARK before a timeout carries what a slow client was sent, not
 * the store's head: resuming from it loses nothing. */
static void test_watch_timeout_bookmark_of_a_slow_client(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    int code;
    cJSON *l = ks_apitk_json(&k, "GET", CM_PATH, NULL, NULL, &code);
    char target[256];
    snprintf(target, sizeof(target),
             CM_PATH "?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&"
                     "resourceVersion=%s",
             str(l, "metadata.resourceVersion"));
    cJSON_Delete(l);
    mk(&k, "a", "x");
    mk(&k, "b", "x");
    mk(&k, "c", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    r.behind_at = 1;
    ks_apitk_do(&k, &r, "GET", target, NULL, NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 1);
    cJSON *a = ks_apitk_event(&r, 0);
    char arv[32];
    snprintf(arv, sizeof(arv), "%s", str(a, "object.metadata.resourceVersion"));
    cJSON_Delete(a);
    gf_clock_advance(&k.clock, 5000);
    assert_true(r.ended);
    assert_int_equal(ks_apitk_events(&r), 2);
    cJSON *bm = ks_apitk_event(&r, 1);
    assert_string_equal(str(bm, "type"), "BOOKMARK");
    assert_string_equal(str(bm, "object.metadata.resourceVersion"), arv);
    cJSON_Delete(bm);
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

/* sendInitialEvents to a slow client: the initial-events-end bookmark
 * still comes right after the initial state, before later changes. */
static void test_watch_initial_events_paced(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    mk(&k, "b", "x");
    mk(&k, "c", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    r.behind_at = 1;
    ks_apitk_do(&k, &r, "GET",
                CM_PATH "?watch=1&sendInitialEvents=true&allowWatchBookmarks="
                        "true&resourceVersionMatch=NotOlderThan&"
                        "resourceVersion=1",
                NULL, NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 1);
    mk(&k, "d", "x");
    r.behind_at = 0;
    gf_ks_api_call_writable(r.call);
    assert_int_equal(ks_apitk_events(&r), 5);
    assert_event(&r, 0, "ADDED", "a");
    assert_event(&r, 1, "ADDED", "b");
    assert_event(&r, 2, "ADDED", "c");
    cJSON *e = ks_apitk_event(&r, 3);
    assert_string_equal(str(e, "type"), "BOOKMARK");
    assert_string_equal(gf_json_annotation(gf_json_path(e, "object"),
                                           "k8s.io/initial-events-end"),
                        "true");
    cJSON_Delete(e);
    assert_event(&r, 4, "ADDED", "d");
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

static void test_watch_bookmarks_and_timeout(void **state)
{
    (void)state;
    struct gf_ks_api_opts o = {.bookmark_s = 10, .max_watch_s = 100};
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, &o);
    mk(&k, "a", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET",
                CM_PATH "?watch=1&allowWatchBookmarks=true&timeoutSeconds=35",
                NULL, NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 1);
    /* The type has not changed since the watch began: no bookmark, as
     * the API server's watch cache sends none (1.28: none in 200 s). */
    gf_clock_advance(&k.clock, 10000);
    assert_int_equal(ks_apitk_events(&r), 1);
    mk(&k, "b", "x");
    assert_int_equal(ks_apitk_events(&r), 2);
    gf_clock_advance(&k.clock, 9999);
    assert_int_equal(ks_apitk_events(&r), 2);
    gf_clock_advance(&k.clock, 1);
    assert_int_equal(ks_apitk_events(&r), 3);
    cJSON *e = ks_apitk_event(&r, 2);
    assert_string_equal(str(e, "type"), "BOOKMARK");
    assert_string_equal(str(e, "object.kind"), "ConfigMap");
    assert_string_equal(str(e, "object.apiVersion"), "v1");
    char rv[24];
    snprintf(rv, sizeof(rv), "%s", str(e, "object.metadata.resourceVersion"));
    cJSON_Delete(e);
    mk(&k, "c", "x");
    gf_clock_advance(&k.clock, 10000);
    assert_int_equal(ks_apitk_events(&r), 5);
    e = ks_apitk_event(&r, 4);
    assert_string_equal(str(e, "type"), "BOOKMARK");
    /* The bookmark moved on with the write. */
    assert_string_not_equal(str(e, "object.metadata.resourceVersion"), rv);
    cJSON_Delete(e);
    assert_false(r.ended);
    /* timeoutSeconds=35: a last bookmark, then the end of the stream. */
    gf_clock_advance(&k.clock, 5000);
    assert_true(r.ended);
    assert_int_equal(ks_apitk_events(&r), 6);
    assert_event(&r, 5, "BOOKMARK", NULL);
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    ks_apitk_resp_free(&r);
    /* Without allowWatchBookmarks there are none, and the timeout is
     * capped by max_watch_s. */
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1&timeoutSeconds=100000", NULL,
                NULL, NULL);
    gf_clock_advance(&k.clock, 99999);
    assert_int_equal(ks_apitk_events(&r), 3);
    assert_false(r.ended);
    gf_clock_advance(&k.clock, 1);
    assert_true(r.ended);
    assert_int_equal(ks_apitk_events(&r), 3);
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

static void test_watch_expired(void **state)
{
    (void)state;
    struct gf_ks_api_opts o = {.watch_cache = 4};
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, &o);
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        mk(&k, name, "x");
    }
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1&resourceVersion=2", NULL, NULL,
                NULL);
    /* As the watch cache answers: 200, one ERROR event with 410 Expired. */
    assert_int_equal(r.code, 200);
    assert_int_equal(ks_apitk_events(&r), 1);
    cJSON *e = ks_apitk_event(&r, 0);
    assert_string_equal(str(e, "type"), "ERROR");
    assert_string_equal(str(e, "object.kind"), "Status");
    assert_string_equal(str(e, "object.reason"), "Expired");
    int64_t code = 0;
    assert_int_equal(gf_json_int(e, "object.code", &code), 0);
    assert_int_equal(code, 410);
    assert_non_null(strstr(str(e, "object.message"), "too old resource"));
    cJSON_Delete(e);
    /* The end follows on the loop, not inside the handler. */
    assert_false(r.ended);
    assert_non_null(r.call);
    gf_clock_advance(&k.clock, 0);
    assert_true(r.ended);
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

static void test_watch_restart(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1", NULL, NULL, NULL);
    cJSON *e = ks_apitk_event(&r, 0);
    char target[256];
    snprintf(target, sizeof(target), CM_PATH "?watch=1&resourceVersion=%s",
             str(e, "object.metadata.resourceVersion"));
    cJSON_Delete(e);
    mk(&k, "b", "x");
    gf_ks_api_restart(k.api);
    assert_true(r.ended);
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    ks_apitk_resp_free(&r);
    /* The watch cache is gone: resuming from before the restart is 410,
     * data is kept. */
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", target, NULL, NULL, NULL);
    e = ks_apitk_event(&r, 0);
    assert_string_equal(str(e, "type"), "ERROR");
    assert_string_equal(str(e, "object.reason"), "Expired");
    cJSON_Delete(e);
    gf_clock_advance(&k.clock, 0);
    ks_apitk_resp_free(&r);
    int code;
    cJSON *l = ks_apitk_json(&k, "GET", CM_PATH, NULL, NULL, &code);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(l, "items")), 2);
    cJSON_Delete(l);
    ks_apitk_stop(&k);
}

static void test_watch_selector_transitions(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    mk(&k, "b", "y");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1&labelSelector=app%3Dx", NULL,
                NULL, NULL);
    assert_int_equal(ks_apitk_events(&r), 1);
    assert_event(&r, 0, "ADDED", "a");
    relabel(&k, "a", "q"); /* leaves the selection */
    relabel(&k, "b", "x"); /* enters it */
    relabel(&k, "b", "x"); /* no change, no event */
    assert_int_equal(ks_apitk_events(&r), 3);
    assert_event(&r, 1, "DELETED", "a");
    assert_event(&r, 2, "ADDED", "b");
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

static void test_watch_client_gone_and_cancel(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    r.fail_writes = 2;
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1", NULL, NULL, NULL);
    mk(&k, "b", "x");
    assert_false(r.ended);
    /* The third write fails: the API layer stops and ends the stream. */
    mk(&k, "c", "x");
    assert_true(r.ended);
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    assert_int_equal(gf_ks_store_watches(gf_ks_api_store(k.api)), 0);
    ks_apitk_resp_free(&r);
    /* A failure during the initial events ends the stream on the loop. */
    ks_apitk_resp_init(&r);
    r.fail_writes = 1;
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1", NULL, NULL, NULL);
    assert_non_null(r.call);
    assert_false(r.ended);
    gf_clock_advance(&k.clock, 0);
    assert_true(r.ended);
    assert_int_equal(gf_ks_store_watches(gf_ks_api_store(k.api)), 0);
    ks_apitk_resp_free(&r);
    /* Cancel: no more callbacks, nothing left behind. */
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET",
                CM_PATH "?watch=1&allowWatchBookmarks=true&timeoutSeconds=5",
                NULL, NULL, NULL);
    gf_ks_api_call_cancel(r.call);
    r.call = NULL;
    size_t before = r.body.len;
    mk(&k, "d", "x");
    gf_clock_advance(&k.clock, 60000);
    assert_int_equal(r.body.len, before);
    assert_false(r.ended);
    assert_int_equal(gf_ks_api_calls(k.api), 0);
    ks_apitk_resp_free(&r);
    /* Freeing the API with open watches calls nobody back. */
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1", NULL, NULL, NULL);
    r.call = NULL;        /* owned by the API until it is freed */
    gf_buf_free(&r.body); /* a late write would allocate again: a leak */
    ks_apitk_stop(&k);
    assert_false(r.ended);
}

static void test_watch_table(void **state)
{
    (void)state;
    struct ks_apitk_cluster k;
    ks_apitk_start(&k, NULL);
    mk(&k, "a", "x");
    struct ks_apitk_resp r;
    ks_apitk_resp_init(&r);
    ks_apitk_do(&k, &r, "GET", CM_PATH "?watch=1", NULL,
                "application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json",
                NULL);
    cJSON *e = ks_apitk_event(&r, 0);
    assert_string_equal(str(e, "type"), "ADDED");
    assert_string_equal(str(e, "object.kind"), "Table");
    const cJSON *row = cJSON_GetArrayItem(gf_json_path(e, "object.rows"), 0);
    assert_string_equal(
        cJSON_GetArrayItem(gf_json_path(row, "cells"), 0)->valuestring, "a");
    assert_string_equal(str(row, "object.kind"), "PartialObjectMetadata");
    cJSON_Delete(e);
    ks_apitk_resp_free(&r);
    ks_apitk_stop(&k);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_initial_and_live),
        cmocka_unit_test(test_watch_from_rv),
        cmocka_unit_test(test_watch_send_initial_events),
        cmocka_unit_test(test_watch_paced_by_a_slow_client),
        cmocka_unit_test(test_watch_initial_events_paced),
        cmocka_unit_test(test_watch_timeout_bookmark_of_a_slow_client),
        cmocka_unit_test(test_watch_bookmarks_and_timeout),
        cmocka_unit_test(test_watch_expired),
        cmocka_unit_test(test_watch_restart),
        cmocka_unit_test(test_watch_selector_transitions),
        cmocka_unit_test(test_watch_client_gone_and_cancel),
        cmocka_unit_test(test_watch_table),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
