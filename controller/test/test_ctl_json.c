/*
 * Tests for controller/ctl_json: -o json prints what the server sent.
 * Integers past 2^53 (cJSON's doubles would round them), exponents and
 * literals keep their text; strings keep escapes' meaning; list items
 * get kubectl's apiVersion/kind; anything that is not one JSON document
 * is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controller/ctl_json.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

static void assert_prints(const char *in, const char *want)
{
    cJSON *j = NULL;
    assert_int_equal(gf_ctl_json_parse(in, strlen(in), &j), 0);
    char *s = cJSON_PrintUnformatted(j);
    if (strcmp(s, want) != 0)
        fail_msg("%s\n  printed %s\n  want    %s", in, s, want);
    cJSON_free(s);
    cJSON_Delete(j);
}

static void test_numbers_keep_their_text(void **state)
{
    (void)state;
    /* A ClusterQueue's status.fairSharing.weightedShare is an int64. */
    assert_prints("{\"status\":{\"fairSharing\":{\"weightedShare\":"
                  "9007199254740993}}}",
                  "{\"status\":{\"fairSharing\":{\"weightedShare\":"
                  "9007199254740993}}}");
    assert_prints("[9223372036854775807,-9223372036854775808,1.5e3,0.1,-0,"
                  "true,false,null]",
                  "[9223372036854775807,-9223372036854775808,1.5e3,0.1,-0,"
                  "true,false,null]");
    /* Strings: escapes decoded and written back; keys with dots kept. */
    assert_prints("{\"metadata\":{\"labels\":{\"kueue.x-k8s.io/queue-name\":"
                  "\"a\\\"b\\u00e9\\/\"}},\"n\":\"1\"}",
                  "{\"metadata\":{\"labels\":{\"kueue.x-k8s.io/queue-name\":"
                  "\"a\\\"b\xc3\xa9/\"}},\"n\":\"1\"}");
    assert_prints(" {\n\"a\" : [ ] , \"b\":{}}\n", "{\"a\":[],\"b\":{}}");
    assert_prints("42", "42");
}

static void test_not_one_json_document(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "{\"a\":",
        "{\"a\":1}{\"b\":2}",
        "{\"a\":x1}",
        "{\"a\":&x 1}",
        "[1,2",
        "{\"a\":1}\n---\n{}",
        "{[1]:2}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *j = (cJSON *)1;
        int rc = gf_ctl_json_parse(bad[i], strlen(bad[i]), &j);
        if (rc != GF_EPARSE || j != NULL)
            fail_msg("accepted: %s", bad[i]);
    }
    /* Too deep to be an API object: refused, not a stack overflow. */
    char deep[4000];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    cJSON *j = NULL;
    assert_int_equal(gf_ctl_json_parse(deep, strlen(deep), &j), GF_EPARSE);
}

static void test_list_items_get_type_meta(void **state)
{
    (void)state;
    cJSON *j = NULL;
    const char *item = "{\"metadata\":{\"name\":\"cq\"},\"spec\":{}}";
    assert_int_equal(gf_ctl_json_parse(item, strlen(item), &j), 0);
    gf_ctl_json_type_meta(j, "kueue.x-k8s.io/v1beta2", "ClusterQueue");
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\","
                           "\"kind\":\"ClusterQueue\",\"metadata\":"
                           "{\"name\":\"cq\"},\"spec\":{}}");
    cJSON_free(s);
    /* Already there: kept, not doubled. */
    gf_ctl_json_type_meta(j, "v1", "Other");
    s = cJSON_PrintUnformatted(j);
    assert_string_equal(s, "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\","
                           "\"kind\":\"ClusterQueue\",\"metadata\":"
                           "{\"name\":\"cq\"},\"spec\":{}}");
    cJSON_free(s);
    gf_ctl_json_strip_managed(j); /* none: nothing changes */
    cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(j, "metadata"),
                          "managedFields", cJSON_CreateArray());
    gf_ctl_json_strip_managed(j);
    s = cJSON_PrintUnformatted(j);
    assert_null(strstr(s, "managedFields"));
    cJSON_free(s);
    cJSON_Delete(j);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_numbers_keep_their_text, teardown),
        cmocka_unit_test_teardown(test_not_one_json_document, teardown),
        cmocka_unit_test_teardown(test_list_items_get_type_meta, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
