/*
 * Tests for kubesim/store's reads (store_read.c): list paging with
 * continue tokens, label and field selectors, and lists served at an
 * exact resourceVersion from the watch cache.
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

static void test_list_paging_and_selectors(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 0);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk_ns(&f, "b");
    const char *names[] = {"e", "a", "d", "c", "b"};
    for (int i = 0; i < 5; i++) {
        char buf[160];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"i\":\"%d\"}}}",
                 names[i], i % 2);
        ks_sttk_mk(&f, f.cm, "a", buf);
        ks_sttk_mk(&f, f.cm, "b", buf);
    }
    struct gf_ks_list l;
    struct gf_ks_list_opts lo = {.limit = 4};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[0]->name, "a");
    assert_string_equal(l.items[3]->name, "d");
    assert_int_equal(l.remaining, 6);
    assert_non_null(l.cont);
    assert_int_equal(l.rv, gf_ks_store_rv(f.st));
    /* Objects added behind the cursor do not shift the next page. */
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"aa\"}}");
    char *cont = gf_strdup(l.cont);
    gf_ks_list_free(&l);
    lo.cont = cont;
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[0]->ns, "a");
    assert_string_equal(l.items[0]->name, "e");
    assert_string_equal(l.items[1]->ns, "b");
    assert_string_equal(l.items[1]->name, "a");
    gf_ks_list_free(&l);
    gf_free(cont);
    /* Namespace and label selector. */
    struct gf_ks_selector *sel = NULL;
    assert_int_equal(gf_ks_selector_parse("i=0", false, &sel, NULL), 0);
    lo = (struct gf_ks_list_opts){.ns = "b", .label = sel};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_int_equal(l.n, 3);
    assert_null(l.cont);
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.items[i]->ns, "b");
    gf_ks_list_free(&l);
    gf_ks_selector_free(sel);
    /* Garbage continue tokens are 400. */
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    static const char *const bad[] = {"%%%", "abc", "e30=", "bm90IGpzb24="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lo = (struct gf_ks_list_opts){.cont = bad[i]};
        assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, &err),
                         GF_EINVALID);
        assert_int_equal(err.code, 400);
        gf_ks_list_free(&l);
    }
    gf_ks_status_clear(&err);
    ks_sttk_done(&f);
}

/* The names of a list, comma separated, into a static buffer. */
static const char *names_of(const struct gf_ks_list *l)
{
    static char out[256];
    out[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
                 i ? "," : "", l->items[i]->name);
    return out;
}

static void test_list_at_version(void **state)
{
    (void)state;
    struct ks_sttk_fx f;
    ks_sttk_init(&f, 8);
    ks_sttk_mk_ns(&f, "a");
    ks_sttk_mk(&f, f.cm, "a",
               "{\"metadata\":{\"name\":\"x\"},\"data\":"
               "{\"v\":\"1\"}}");
    uint64_t rv_x = gf_ks_store_rv(f.st);
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"y\"}}");
    uint64_t rv_y = gf_ks_store_rv(f.st);
    /* Changes after rv_y: a modification, a deletion, an addition. */
    assert_int_equal(ks_sttk_upd(&f, f.cm, "a", "x",
                                 "{\"metadata\":{\"name\":\"x\"},\"data\":"
                                 "{\"v\":\"2\"}}",
                                 GF_KS_MAIN, NULL, NULL),
                     0);
    assert_int_equal(ks_sttk_del(&f, f.cm, "a", "y", GF_KS_PROP_DEFAULT, NULL),
                     0);
    ks_sttk_mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"z\"}}");
    struct gf_ks_list l;
    struct gf_ks_list_opts lo = {.at_rv = rv_y};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_string_equal(names_of(&l), "x,y");
    assert_int_equal(l.rv, rv_y);
    assert_string_equal(ks_sttk_field_str(l.items[0], "data.v"), "1");
    gf_ks_list_free(&l);
    lo = (struct gf_ks_list_opts){.at_rv = rv_x, .limit = 1};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_string_equal(names_of(&l), "x");
    assert_null(l.cont);
    gf_ks_list_free(&l);
    /* A page of an old list: the next page keeps its version. */
    lo = (struct gf_ks_list_opts){.at_rv = rv_y, .limit = 1};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    char *cont = gf_strdup(l.cont);
    gf_ks_list_free(&l);
    lo = (struct gf_ks_list_opts){.cont = cont, .limit = 5};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_string_equal(names_of(&l), "y");
    assert_int_equal(l.rv, rv_y);
    gf_ks_list_free(&l);
    /* The current state, and the future. */
    lo = (struct gf_ks_list_opts){.at_rv = gf_ks_store_rv(f.st)};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, NULL), 0);
    assert_string_equal(names_of(&l), "x,z");
    gf_ks_list_free(&l);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    lo = (struct gf_ks_list_opts){.at_rv = gf_ks_store_rv(f.st) + 5};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, &err), GF_ESERVER);
    assert_int_equal(err.code, 504);
    gf_ks_list_free(&l);
    /* Once the watch cache (8 events) has moved past: 410 Expired. */
    for (int i = 0; i < 10; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"n%d\"}}", i);
        ks_sttk_mk(&f, f.cm, "a", buf);
    }
    lo = (struct gf_ks_list_opts){.at_rv = rv_y, .limit = 1};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, &err), GF_EGONE);
    assert_int_equal(err.code, 410);
    assert_string_equal(err.reason, "Expired");
    gf_ks_list_free(&l);
    lo = (struct gf_ks_list_opts){.cont = cont, .limit = 5};
    assert_int_equal(gf_ks_store_list(f.st, f.cm, &lo, &l, &err), GF_EGONE);
    assert_non_null(strstr(err.message, "continue parameter is too old"));
    gf_ks_list_free(&l);
    gf_free(cont);
    gf_ks_status_clear(&err);
    ks_sttk_done(&f);
}

int main(void)
{
    gf_kube_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_paging_and_selectors),
        cmocka_unit_test(test_list_at_version),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
