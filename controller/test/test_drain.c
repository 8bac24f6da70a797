/*
 * Tests for controller/drain: the ConfigMap gpufed-drain as the API
 * server serves it (kubectl's and gpufedctl's shapes), read into the
 * drained set, and the bodies gpufedctl writes read back by the same
 * parser (what `drain` writes drains, what `uncordon` writes undrains).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "controller/drain.h"

static int64_t live_at_start;

static int setup(void **state)
{
    (void)state;
    live_at_start = gf_alloc_live();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), live_at_start);
    return 0;
}

/* A ConfigMap as `kubectl get cm gpufed-drain -o json` shows it. */
static const char served[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
    "\"name\":\"gpufed-drain\",\"namespace\":\"gpufed-system\","
    "\"resourceVersion\":\"812\",\"uid\":\"6f1c\"},"
    "\"data\":{\"west\":\"2026-12-06T08:00:00Z\","
    "\"east\":\"2026-12-06T09:30:00.250Z\",\"north\":\"by hand\"}}";

static void test_served_configmap_drains_each_key(void **state)
{
    (void)state;
    cJSON *cm = cJSON_Parse(served);
    struct gf_drain_set s;
    assert_int_equal(gf_drain_parse(cm, &s), 0);
    assert_int_equal(s.n, 3);
    const struct gf_drain_entry *w = gf_drain_find(&s, "west");
    assert_non_null(w);
    int64_t t;
    assert_int_equal(gf_time_parse_rfc3339("2026-12-06T08:00:00Z", &t), 0);
    assert_int_equal(w->since_ms, t);
    const struct gf_drain_entry *e = gf_drain_find(&s, "east");
    assert_non_null(e);
    assert_int_equal(e->since_ms, t + (int64_t)90 * 60 * 1000 + 250);
    /* A value that is no time still drains: the key is the admin's
     * word, the time only informs. */
    const struct gf_drain_entry *n = gf_drain_find(&s, "north");
    assert_non_null(n);
    assert_int_equal(n->since_ms, 0);
    assert_null(gf_drain_find(&s, "south"));
    assert_null(gf_drain_find(&s, "wes"));
    assert_null(gf_drain_find(NULL, "west"));
    gf_drain_set_free(&s);
    gf_drain_set_free(&s); /* idempotent */
    cJSON_Delete(cm);
}

static void test_no_data_drains_nothing(void **state)
{
    (void)state;
    static const char *const empty[] = {
        "{\"metadata\":{\"name\":\"gpufed-drain\"}}",
        "{\"metadata\":{\"name\":\"gpufed-drain\"},\"data\":null}",
        "{\"metadata\":{\"name\":\"gpufed-drain\"},\"data\":{}}",
    };
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        cJSON *cm = cJSON_Parse(empty[i]);
        struct gf_drain_set s;
        assert_int_equal(gf_drain_parse(cm, &s), 0);
        assert_int_equal(s.n, 0);
        assert_null(gf_drain_find(&s, "west"));
        gf_drain_set_free(&s);
        cJSON_Delete(cm);
    }
}

static void test_malformed_is_refused_or_skipped(void **state)
{
    (void)state;
    struct gf_drain_set s;
    cJSON *arr = cJSON_Parse("[]");
    assert_int_equal(gf_drain_parse(arr, &s), -EINVAL);
    assert_int_equal(s.n, 0);
    cJSON_Delete(arr);
    cJSON *bad = cJSON_Parse("{\"data\":[\"west\"]}");
    assert_int_equal(gf_drain_parse(bad, &s), -EINVAL);
    assert_int_equal(s.n, 0);
    cJSON_Delete(bad);
    /* Keys that cannot be members, values that are not strings. */
    char long_key[GF_DRAIN_NAME_MAX + 2];
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    cJSON *odd = cJSON_CreateObject();
    cJSON *data = cJSON_AddObjectToObject(odd, "data");
    cJSON_AddStringToObject(data, "", "2026-12-06T08:00:00Z");
    cJSON_AddStringToObject(data, long_key, "2026-12-06T08:00:00Z");
    cJSON_AddNumberToObject(data, "east", 1);
    cJSON_AddStringToObject(data, "west", "2026-12-06T08:00:00Z");
    assert_int_equal(gf_drain_parse(odd, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.e[0].member, "west");
    gf_drain_set_free(&s);
    cJSON_Delete(odd);
}

/* Applies a merge patch's `data` to a ConfigMap's, as the API server
 * does for one level: null deletes, a string sets. */
static void merge_data(cJSON *cm, const cJSON *patch)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(patch, "data"))
    {
        cJSON_DeleteItemFromObjectCaseSensitive(data, kv->string);
        if (!cJSON_IsNull(kv))
            cJSON_AddItemToObject(data, kv->string, cJSON_Duplicate(kv, 1));
    }
}

static void test_written_bodies_read_back(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(gf_time_parse_rfc3339("2026-12-06T08:00:00Z", &t), 0);
    struct gf_buf b = GF_BUF_INIT(4096);
    assert_int_equal(gf_drain_create_body(&b, "gpufed-system", "west", t), 0);
    cJSON *cm = cJSON_Parse(gf_buf_cstr(&b));
    assert_non_null(cm);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cm, "metadata"), "name")
            ->valuestring,
        GF_DRAIN_CONFIGMAP);
    struct gf_drain_set s;
    assert_int_equal(gf_drain_parse(cm, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(gf_drain_find(&s, "west")->since_ms, t);
    gf_drain_set_free(&s);

    /* drain east: a merge patch of its key only; west stays. */
    gf_buf_reset(&b);
    assert_int_equal(gf_drain_patch_body(&b, "east", true, t + 1000), 0);
    cJSON *p = cJSON_Parse(gf_buf_cstr(&b));
    assert_int_equal(cJSON_GetArraySize(p), 1);
    merge_data(cm, p);
    cJSON_Delete(p);
    assert_int_equal(gf_drain_parse(cm, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(gf_drain_find(&s, "east")->since_ms, t + 1000);
    assert_non_null(gf_drain_find(&s, "west"));
    gf_drain_set_free(&s);

    /* uncordon west: its key is removed with a null. */
    gf_buf_reset(&b);
    assert_int_equal(gf_drain_patch_body(&b, "west", false, 0), 0);
    assert_string_equal(gf_buf_cstr(&b), "{\"data\":{\"west\":null}}");
    p = cJSON_Parse(gf_buf_cstr(&b));
    merge_data(cm, p);
    cJSON_Delete(p);
    assert_int_equal(gf_drain_parse(cm, &s), 0);
    assert_int_equal(s.n, 1);
    assert_null(gf_drain_find(&s, "west"));
    assert_non_null(gf_drain_find(&s, "east"));
    gf_drain_set_free(&s);
    cJSON_Delete(cm);

    gf_buf_reset(&b);
    assert_int_equal(gf_drain_patch_body(&b, "", true, t), -EINVAL);
    assert_int_equal(gf_drain_create_body(&b, "gpufed-system", NULL, t),
                     -EINVAL);
    assert_int_equal(b.len, 0);
    gf_buf_free(&b);
}

int main(void)
{
    gf_alloc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_served_configmap_drains_each_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_data_drains_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_is_refused_or_skipped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_bodies_read_back, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
