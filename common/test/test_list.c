/*
 * Tests for common/list: a zeroed head is an empty list, order of
 * push_front/push_back, removal from the front, middle and back (the cases
 * the hand-written unlinks each handled with their own if/else), removing
 * twice, and removing the current element while walking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/list.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

struct conn {
    int id;
    struct gf_list link;
};

/* The ids on h, front to back, as "1 2 3". */
static const char *ids(const struct gf_list *h)
{
    static char out[128];
    size_t n = 0;
    out[0] = '\0';
    for (struct gf_list *p = gf_list_first(h); p != NULL;
         p = gf_list_next(h, p)) {
        const struct conn *c = GF_LIST_ENTRY(p, struct conn, link);
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%d",
                              n > 0 ? " " : "", c->id);
    }
    return out;
}

static void test_zeroed_head_is_empty(void **state)
{
    (void)state;
    struct gf_list h = {0};
    assert_true(gf_list_empty(&h));
    assert_null(gf_list_first(&h));
    struct conn c = {.id = 1};
    assert_false(gf_list_linked(&c.link));
    gf_list_push_back(&h, &c.link);
    assert_false(gf_list_empty(&h));
    assert_true(gf_list_linked(&c.link));
    assert_string_equal(ids(&h), "1");
    gf_list_remove(&c.link);
    assert_true(gf_list_empty(&h));
    assert_null(gf_list_first(&h));
}

static void test_order_and_removal_anywhere(void **state)
{
    (void)state;
    struct gf_list h;
    gf_list_init(&h);
    struct conn c[5];
    for (int i = 0; i < 5; i++) {
        c[i].id = i;
        gf_list_push_back(&h, &c[i].link);
    }
    assert_string_equal(ids(&h), "0 1 2 3 4");
    gf_list_remove(&c[0].link); /* the head */
    assert_string_equal(ids(&h), "1 2 3 4");
    gf_list_remove(&c[2].link); /* the middle */
    assert_string_equal(ids(&h), "1 3 4");
    gf_list_remove(&c[4].link); /* the tail */
    assert_string_equal(ids(&h), "1 3");
    gf_list_remove(&c[4].link); /* twice: nothing happens */
    assert_string_equal(ids(&h), "1 3");
    assert_false(gf_list_linked(&c[4].link));
    gf_list_push_front(&h, &c[4].link);
    gf_list_push_front(&h, &c[0].link);
    assert_string_equal(ids(&h), "0 4 1 3");
}

/* Freeing each element as it is visited, as a server closing every
 * connection does: each is visited once and the list ends empty. */
static void test_remove_current_while_walking(void **state)
{
    (void)state;
    struct gf_list h = {0};
    for (int i = 0; i < 10; i++) {
        struct conn *c = gf_calloc(1, sizeof(*c));
        c->id = i;
        gf_list_push_back(&h, &c->link);
    }
    int seen = 0;
    struct gf_list *p, *tmp;
    GF_LIST_FOREACH_SAFE(p, tmp, &h)
    {
        struct conn *c = GF_LIST_ENTRY(p, struct conn, link);
        assert_int_equal(c->id, seen++);
        gf_list_remove(&c->link);
        gf_free(c);
    }
    assert_int_equal(seen, 10);
    assert_true(gf_list_empty(&h));
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_zeroed_head_is_empty, teardown),
        cmocka_unit_test_teardown(test_order_and_removal_anywhere, teardown),
        cmocka_unit_test_teardown(test_remove_current_while_walking, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
