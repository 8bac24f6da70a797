/*
 * Tests for common/htab: lookups with the keys the project really uses
 * (dotted resource names, NUL-separated composites), collisions and the
 * backward shift that replaces tombstones (including a cluster that wraps
 * past the end of the slot array), deletion of any entry while an
 * iteration is live, borrowed keys, the stable hash, and a long random
 * churn checked against a plain array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/htab.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

/* Distinct tags for values: the table stores pointers it never follows. */
static int vals[4096];
#define V(i) ((void *)&vals[(i)])

static void test_put_get_replace_del(void **state)
{
    (void)state;
    struct gf_htab t = {0};
    assert_null(gf_htab_get_str(&t, "nvidia.com/gpu"));
    assert_null(gf_htab_del_str(&t, "nvidia.com/gpu"));
    assert_null(gf_htab_put_str(&t, "nvidia.com/gpu", V(1)));
    assert_null(gf_htab_put_str(&t, "kueue.x-k8s.io/queue-name", V(2)));
    /* A composite key with NULs inside is its own key, not a prefix. */
    const char comp[] = "eu-1\0team-a\0nvidia.com/gpu";
    assert_null(gf_htab_put(&t, comp, sizeof(comp) - 1, V(3)));
    assert_null(gf_htab_get_str(&t, "eu-1"));
    assert_ptr_equal(gf_htab_get(&t, comp, sizeof(comp) - 1), V(3));
    assert_ptr_equal(gf_htab_get_str(&t, "nvidia.com/gpu"), V(1));
    assert_int_equal(gf_htab_len(&t), 3);
    /* Replacing returns the old value and keeps one entry. */
    assert_ptr_equal(gf_htab_put_str(&t, "nvidia.com/gpu", V(4)), V(1));
    assert_int_equal(gf_htab_len(&t), 3);
    assert_ptr_equal(gf_htab_del_str(&t, "nvidia.com/gpu"), V(4));
    assert_null(gf_htab_get_str(&t, "nvidia.com/gpu"));
    assert_ptr_equal(gf_htab_get_str(&t, "kueue.x-k8s.io/queue-name"), V(2));
    assert_int_equal(gf_htab_len(&t), 2);
    /* Owned keys are copies, terminated for use as C strings. */
    struct gf_htab_iter it;
    const char *k;
    size_t kl;
    gf_htab_iter_init(&it, &t);
    while (gf_htab_next(&it, &k, &kl, NULL))
        assert_int_equal(k[kl], '\0');
    gf_htab_free(&t);
    assert_int_equal(gf_htab_len(&t), 0);
}

/*
 * The hash is documented as stable: these values are part of the contract
 * (figures and iteration orders are reproducible from run to run).
 */
static void test_hash_is_stable(void **state)
{
    (void)state;
    assert_true(gf_hash("", 0) == 0xefd01f60ba992926ull);
    assert_true(gf_hash("nvidia.com/gpu", 14) == 0x73cb18fff6ba8010ull);
    assert_true(gf_hash("default/job-a", 13) != gf_hash("default/job-b", 13));
}

/* Keys k<i> whose home slot in a 16-slot table is home. */
static int colliding(int home, char out[][16], int want)
{
    int n = 0;
    for (int i = 0; n < want && i < 100000; i++) {
        char k[16];
        int kl = snprintf(k, sizeof(k), "k%d", i);
        if ((gf_hash(k, (size_t)kl) & 15) == (uint64_t)home)
            memcpy(out[n++], k, (size_t)kl + 1);
    }
    return n;
}

static size_t slot_of(const struct gf_htab *t, const char *key)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].key != NULL && strcmp(t->slots[i].key, key) == 0)
            return i;
    return SIZE_MAX;
}

static void check_shift(int home)
{
    char k[3][16];
    assert_int_equal(colliding(home, k, 3), 3);
    struct gf_htab t = {0};
    for (int i = 0; i < 3; i++)
        gf_htab_put_str(&t, k[i], V(i));
    assert_int_equal(t.cap, 16);
    /* One cluster from home on: home, home+1, home+2 (mod 16). */
    for (int i = 0; i < 3; i++)
        assert_int_equal(slot_of(&t, k[i]), (size_t)(home + i) & 15);
    /* Deleting the head pulls the others back: no tombstone is left, and
     * the slot after the cluster is empty again. */
    assert_ptr_equal(gf_htab_del_str(&t, k[0]), V(0));
    assert_int_equal(slot_of(&t, k[1]), (size_t)home);
    assert_int_equal(slot_of(&t, k[2]), (size_t)(home + 1) & 15);
    assert_null(t.slots[(home + 2) & 15].key);
    assert_ptr_equal(gf_htab_get_str(&t, k[1]), V(1));
    assert_ptr_equal(gf_htab_get_str(&t, k[2]), V(2));
    assert_null(gf_htab_get_str(&t, k[0]));
    gf_htab_free(&t);
}

static void test_collisions_shift_back(void **state)
{
    (void)state;
    check_shift(3);
    /* home 15: the cluster wraps to slots 0 and 1. */
    check_shift(15);
}

/* An entry whose home is later than the hole must not move before it. */
static void test_shift_keeps_entries_at_home(void **state)
{
    (void)state;
    char a[1][16], b[1][16];
    assert_int_equal(colliding(4, a, 1), 1);
    assert_int_equal(colliding(5, b, 1), 1);
    struct gf_htab t = {0};
    gf_htab_put_str(&t, a[0], V(1));
    gf_htab_put_str(&t, b[0], V(2));
    assert_ptr_equal(gf_htab_del_str(&t, a[0]), V(1));
    assert_int_equal(slot_of(&t, b[0]), 5);
    assert_ptr_equal(gf_htab_get_str(&t, b[0]), V(2));
    gf_htab_free(&t);
}

static void fill(struct gf_htab *t, int n)
{
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "default/job-%d", i);
        assert_null(gf_htab_put_str(t, k, V(i)));
    }
}

static int index_of(const void *v)
{
    return (int)((const int *)v - vals);
}

/* Deleting the entry just returned, at every step: each entry is seen once
 * and the table ends empty, without holes. */
static void test_delete_current_while_iterating(void **state)
{
    (void)state;
    struct gf_htab t = {0};
    fill(&t, 1000);
    char seen[1000] = {0};
    struct gf_htab_iter it;
    const char *k;
    void *v;
    gf_htab_iter_init(&it, &t);
    while (gf_htab_next(&it, &k, NULL, &v)) {
        assert_int_equal(seen[index_of(v)]++, 0);
        assert_ptr_equal(gf_htab_del_str(&t, k), v);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(gf_htab_len(&t), 0);
    assert_int_equal(t.holes, 0);
    assert_int_equal(t.iters, 0);
    gf_htab_free(&t);
}

/* Deleting other entries (as an observer does when a write inside a scan
 * deletes an object): deleted ones are never visited, every other entry is
 * visited exactly once, and lookups work during and after. */
static void test_delete_others_while_iterating(void **state)
{
    (void)state;
    struct gf_htab t = {0};
    fill(&t, 1000);
    char seen[1000] = {0};
    char gone[1000] = {0};
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &t);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        int i = index_of(v);
        assert_false(gone[i]);
        assert_int_equal(seen[i]++, 0);
        /* Delete the entry with the next number, whether or not the scan
         * has passed it already. */
        char k[32];
        snprintf(k, sizeof(k), "default/job-%d", (i + 1) % 1000);
        if (gf_htab_del_str(&t, k) != NULL)
            gone[(i + 1) % 1000] = 1;
        snprintf(k, sizeof(k), "default/job-%d", (i + 7) % 1000);
        if (!gone[(i + 7) % 1000])
            assert_ptr_equal(gf_htab_get_str(&t, k), V((i + 7) % 1000));
    }
    size_t left = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(seen[i] + gone[i] >= 1);
        char k[32];
        snprintf(k, sizeof(k), "default/job-%d", i);
        if (gone[i]) {
            assert_null(gf_htab_get_str(&t, k));
        } else {
            assert_ptr_equal(gf_htab_get_str(&t, k), V(i));
            left++;
        }
    }
    assert_int_equal(gf_htab_len(&t), left);
    assert_int_equal(t.holes, 0);
    gf_htab_free(&t);
}

/* A loop that stops early ends its iteration; the holes are then closed and
 * the table accepts inserts again. Nested iterations close them only when
 * the outer one ends. */
static void test_early_end_and_nesting(void **state)
{
    (void)state;
    struct gf_htab t = {0};
    fill(&t, 100);
    struct gf_htab_iter outer, inner;
    const char *k;
    gf_htab_iter_init(&outer, &t);
    assert_true(gf_htab_next(&outer, &k, NULL, NULL));
    gf_htab_iter_init(&inner, &t);
    int n = 0;
    while (gf_htab_next(&inner, &k, NULL, NULL))
        n++;
    assert_int_equal(n, 100);
    assert_non_null(gf_htab_del_str(&t, "default/job-5"));
    assert_int_equal(t.holes, 1);
    gf_htab_iter_end(&outer);
    gf_htab_iter_end(&outer); /* harmless twice */
    assert_int_equal(t.holes, 0);
    assert_int_equal(t.iters, 0);
    assert_null(gf_htab_get_str(&t, "default/job-5"));
    fill(&t, 0);
    assert_null(gf_htab_put_str(&t, "default/job-5", V(5)));
    assert_int_equal(gf_htab_len(&t), 100);
    gf_htab_free(&t);
}

struct obj {
    int n;
    char key[32]; /* the table borrows it */
};

static void free_obj(void *p)
{
    gf_free(p);
}

/* A borrowing table allocates nothing per key, and a replacement takes the
 * key pointer of the new value (the old value may then be freed). */
static void test_borrowed_keys(void **state)
{
    (void)state;
    struct gf_htab t;
    gf_htab_init(&t, GF_HTAB_BORROW_KEYS);
    struct obj *a = gf_malloc(sizeof(*a));
    snprintf(a->key, sizeof(a->key), "kube-system/coredns");
    a->n = 1;
    gf_htab_put_str(&t, a->key, a);
    int64_t live = gf_alloc_live();
    struct obj *b = gf_malloc(sizeof(*b));
    snprintf(b->key, sizeof(b->key), "kube-system/coredns");
    b->n = 2;
    assert_ptr_equal(gf_htab_put_str(&t, b->key, b), a);
    gf_free(a);
    assert_int_equal(gf_alloc_live(), live);
    struct gf_htab_iter it;
    const char *k;
    gf_htab_iter_init(&it, &t);
    assert_true(gf_htab_next(&it, &k, NULL, NULL));
    assert_ptr_equal(k, b->key);
    assert_false(gf_htab_next(&it, &k, NULL, NULL));
    assert_ptr_equal(gf_htab_get_str(&t, "kube-system/coredns"), b);
    gf_htab_free_all(&t, free_obj);
}

/* Random puts and deletes against a plain array: the backward shift must
 * never lose an entry or leave a stale one. */
static void test_random_churn_matches_reference(void **state)
{
    (void)state;
    enum { N = 4096, OPS = 200000 };
    static char in[N];
    memset(in, 0, sizeof(in));
    struct gf_htab t = {0};
    uint64_t x = 88172645463325252ull;
    size_t len = 0;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % N);
        char k[32];
        snprintf(k, sizeof(k), "ns-%d/wl-%d", i % 7, i);
        if ((x >> 20) % 3 != 0) {
            void *old = gf_htab_put_str(&t, k, V(i));
            assert_ptr_equal(old, in[i] ? V(i) : NULL);
            len += !in[i];
            in[i] = 1;
        } else {
            void *old = gf_htab_del_str(&t, k);
            assert_ptr_equal(old, in[i] ? V(i) : NULL);
            len -= in[i];
            in[i] = 0;
        }
        assert_int_equal(gf_htab_len(&t), len);
    }
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof(k), "ns-%d/wl-%d", i % 7, i);
        assert_ptr_equal(gf_htab_get_str(&t, k), in[i] ? V(i) : NULL);
    }
    assert_true(t.len * 2 <= t.cap);
    gf_htab_free(&t);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_put_get_replace_del, teardown),
        cmocka_unit_test_teardown(test_hash_is_stable, teardown),
        cmocka_unit_test_teardown(test_collisions_shift_back, teardown),
        cmocka_unit_test_teardown(test_shift_keeps_entries_at_home, teardown),
        cmocka_unit_test_teardown(test_delete_current_while_iterating,
                                  teardown),
        cmocka_unit_test_teardown(test_delete_others_while_iterating, teardown),
        cmocka_unit_test_teardown(test_early_end_and_nesting, teardown),
        cmocka_unit_test_teardown(test_borrowed_keys, teardown),
        cmocka_unit_test_teardown(test_random_churn_matches_reference,
                                  teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
