/*
 * Tests for common/ytree: every node's line:column, Kubernetes' dotted
 * keys as ordinary map keys, "billion laughs" refused (and, where aliases
 * are allowed, resolved by sharing in linear memory), alias cycles, the
 * depth, node and anchor caps (an alias may not carry a path past the
 * depth cap), one document or the first, NUL bytes and nulls in scalars.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/ytree.h"

static int64_t baseline;

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

static struct gf_ynode *load_ok(const char *yaml,
                                const struct gf_yaml_opts *opts)
{
    struct gf_ynode *root = NULL;
    struct gf_yaml_error err = {0};
    int rc = gf_yaml_load(yaml, strlen(yaml), opts, &root, &err);
    if (rc != 0)
        fail_msg("load: rc=%d %d:%d %s", rc, err.line, err.col, err.msg);
    return root;
}

/* Loads yaml expecting a refusal with rc at line:col and msg in the text. */
static void load_fails(const char *yaml, const struct gf_yaml_opts *opts,
                       int rc, int line, int col, const char *msg)
{
    struct gf_ynode *root = (struct gf_ynode *)&root; /* poison */
    struct gf_yaml_error err = {0};
    int got = gf_yaml_load(yaml, strlen(yaml), opts, &root, &err);
    if (got != rc || err.line != line || err.col != col ||
        strstr(err.msg, msg) == NULL)
        fail_msg("got rc=%d %d:%d \"%s\", want rc=%d %d:%d \"%s\"", got,
                 err.line, err.col, err.msg, rc, line, col, msg);
    assert_null(root);
}

static void assert_at(const struct gf_ynode *n, enum gf_ykind kind, int line,
                      int col)
{
    assert_non_null(n);
    assert_int_equal(n->kind, kind);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static const char *const cq_yaml =
    "apiVersion: kueue.x-k8s.io/v1beta2\n"
    "kind: ClusterQueue\n"
    "metadata:\n"
    "  name: team-a\n"
    "  labels: {kueue.x-k8s.io/queue-name: \"lq\", gpufed.io/epoch: '3'}\n"
    "spec:\n"
    "  resourceGroups:\n"
    "  - coveredResources: [\"cpu\", nvidia.com/gpu]\n"
    "    flavors:\n"
    "    - name: a100\n"
    "      resources:\n"
    "      - name: nvidia.com/gpu\n"
    "        nominalQuota: 8\n";

static void test_positions_and_dotted_keys(void **state)
{
    (void)state;
    struct gf_ynode *root = load_ok(cq_yaml, NULL);
    assert_at(root, GF_Y_MAP, 1, 1);
    assert_int_equal(root->n, 8); /* four key,value pairs */
    assert_at(root->kids[0], GF_Y_SCALAR, 1, 1);
    assert_at(root->kids[1], GF_Y_SCALAR, 1, 13);
    assert_string_equal(root->kids[1]->str, "kueue.x-k8s.io/v1beta2");

    const struct gf_ynode *labels =
        gf_ymap_get(gf_ymap_get(root, "metadata"), "labels");
    assert_at(labels, GF_Y_MAP, 5, 11);
    /* Dotted keys are keys, not paths. */
    const struct gf_ynode *q = gf_ymap_get(labels, "kueue.x-k8s.io/queue-name");
    assert_at(q, GF_Y_SCALAR, 5, 39);
    assert_string_equal(q->str, "lq");
    assert_false(q->plain);
    assert_null(gf_ymap_get(labels, "kueue"));
    assert_null(gf_ymap_get(labels, "kueue.x-k8s.io"));
    const struct gf_ynode *e = gf_ymap_get(labels, "gpufed.io/epoch");
    assert_at(e, GF_Y_SCALAR, 5, 62);
    assert_string_equal(e->str, "3");
    assert_false(e->plain);

    const struct gf_ynode *rg =
        gf_ymap_get(gf_ymap_get(root, "spec"), "resourceGroups");
    assert_at(rg, GF_Y_SEQ, 8, 3);
    const struct gf_ynode *cov = gf_ymap_get(rg->kids[0], "coveredResources");
    assert_at(cov, GF_Y_SEQ, 8, 23);
    assert_at(cov->kids[1], GF_Y_SCALAR, 8, 31);
    assert_string_equal(cov->kids[1]->str, "nvidia.com/gpu");
    assert_true(cov->kids[1]->plain);
    const struct gf_ynode *res =
        gf_ymap_get(gf_ymap_get(rg->kids[0], "flavors")->kids[0], "resources");
    const struct gf_ynode *gpu = res->kids[0];
    assert_string_equal(gf_ymap_get(gpu, "name")->str, "nvidia.com/gpu");
    assert_at(gf_ymap_get(gpu, "nominalQuota"), GF_Y_SCALAR, 13, 23);
    /* Lookups on what is not a mapping find nothing. */
    assert_null(gf_ymap_get(cov, "nvidia.com/gpu"));
    assert_null(gf_ymap_get(NULL, "spec"));
    gf_ynode_free(root);
}

/* The classic: nine levels of ten aliases each, 10^9 "lol"s if copied. */
static char *laughs(void)
{
    struct gf_buf b = GF_BUF_INIT(4096);
    assert_int_equal(gf_buf_puts(&b, "lol0: &lol0 lol\n"), 0);
    for (int i = 1; i <= 9; i++) {
        assert_int_equal(gf_buf_printf(&b, "lol%d: &lol%d [", i, i), 0);
        for (int k = 0; k < 10; k++)
            assert_int_equal(
                gf_buf_printf(&b, "%s*lol%d", k ? ", " : "", i - 1), 0);
        assert_int_equal(gf_buf_puts(&b, "]\n"), 0);
    }
    return gf_buf_steal(&b);
}

static void test_billion_laughs(void **state)
{
    (void)state;
    char *yaml = laughs();
    /* By default the first alias is refused, where it stands. */
    load_fails(yaml, NULL, GF_EPARSE, 2, 14, "aliases are not supported");

    /* Allowed, aliases share the anchored node: the tree holds the 10
     * names, 10 values and 90 alias edges, not 10^9 copies. */
    struct gf_yaml_opts opts = {.aliases = true};
    int64_t before = gf_alloc_live();
    struct gf_ynode *root = load_ok(yaml, &opts);
    assert_true(gf_alloc_live() - before < (int64_t)64 * 1024);
    const struct gf_ynode *l8 = gf_ymap_get(root, "lol8");
    const struct gf_ynode *l9 = gf_ymap_get(root, "lol9");
    assert_int_equal(l9->n, 10);
    for (size_t k = 0; k < 10; k++)
        assert_ptr_equal(l9->kids[k], l8);
    assert_int_equal(l8->refs, 11); /* its key's value, and 10 aliases */
    gf_ynode_free(root);
    gf_free(yaml);

    /* The node cap counts every alias as a node: the mapping, lol0 and
     * its value, then 12 per level make 99 up to lol8, so lol9's
     * sequence is the 101st. */
    opts.max_nodes = 100;
    yaml = laughs();
    load_fails(yaml, &opts, GF_E2BIG, 10, 7, "too many YAML nodes");
    gf_free(yaml);
}

static void test_alias_rules(void **state)
{
    (void)state;
    struct gf_yaml_opts opts = {.aliases = true};
    load_fails("a: &x [1, *x]\n", &opts, GF_EPARSE, 1, 11,
               "recursive YAML alias");
    load_fails("a: *nowhere\n", &opts, GF_EPARSE, 1, 4, "unknown YAML alias");
    /* The latest definition of an anchor wins. */
    struct gf_ynode *root = load_ok("a: &x 1\nb: &x 2\nc: *x\n", &opts);
    assert_string_equal(gf_ymap_get(root, "c")->str, "2");
    gf_ynode_free(root);

    /* 1024 anchors are fine, the 1025th is refused. */
    struct gf_buf b = GF_BUF_INIT(SIZE_MAX / 2);
    for (int i = 0; i <= GF_Y_MAX_ANCHORS; i++)
        assert_int_equal(gf_buf_printf(&b, "- &a%d x\n", i), 0);
    load_fails(gf_buf_cstr(&b), &opts, GF_E2BIG, GF_Y_MAX_ANCHORS + 1, 3,
               "too many YAML anchors");
    gf_buf_free(&b);
}

/* n nested flow sequences after "a: ", as "a: [[...]]". */
static char *nested(unsigned n, const char *tail)
{
    struct gf_buf b = GF_BUF_INIT(SIZE_MAX / 2);
    assert_int_equal(gf_buf_puts(&b, "a: &deep "), 0);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(gf_buf_putc(&b, '['), 0);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(gf_buf_putc(&b, ']'), 0);
    assert_int_equal(gf_buf_printf(&b, "\n%s", tail), 0);
    return gf_buf_steal(&b);
}

static void test_depth_cap(void **state)
{
    (void)state;
    /* The root mapping is level 1, so 63 sequences reach the cap. */
    char *yaml = nested(GF_Y_MAX_DEPTH - 1, "");
    gf_ynode_free(load_ok(yaml, NULL));
    gf_free(yaml);
    yaml = nested(GF_Y_MAX_DEPTH, "");
    load_fails(yaml, NULL, GF_E2BIG, 1, 10 + GF_Y_MAX_DEPTH - 1,
               "nested deeper than 64");
    gf_free(yaml);

    /* A caller may lower the cap. */
    struct gf_yaml_opts opts = {.max_depth = 8, .aliases = true};
    yaml = nested(8, "");
    load_fails(yaml, &opts, GF_E2BIG, 1, 17, "nested deeper than 8");
    gf_free(yaml);

    /* An alias may not carry a path past the cap: a's path has 1 + 7
     * levels, and *deep inside b's sequence would make one of 9. */
    yaml = nested(7, "b: [*deep]\n");
    load_fails(yaml, &opts, GF_E2BIG, 2, 5, "nested deeper than 8");
    gf_free(yaml);
    yaml = nested(7, "b: *deep\n");
    struct gf_ynode *root = load_ok(yaml, &opts);
    assert_ptr_equal(gf_ymap_get(root, "a"), gf_ymap_get(root, "b"));
    gf_ynode_free(root);
    gf_free(yaml);
}

static void test_node_cap(void **state)
{
    (void)state;
    struct gf_yaml_opts opts = {.max_nodes = 5};
    /* map, a, 1, b, 2: five nodes. */
    gf_ynode_free(load_ok("a: 1\nb: 2\n", &opts));
    load_fails("a: 1\nb: 2\nc: 3\n", &opts, GF_E2BIG, 3, 1,
               "too many YAML nodes (more than 5)");
}

static void test_documents(void **state)
{
    (void)state;
    static const char two[] = "a: 1\n---\nb: 2\n";
    load_fails(two, NULL, GF_EPARSE, 2, 1, "exactly one YAML document");
    struct gf_yaml_opts first = {.first_document = true};
    struct gf_ynode *root = load_ok(two, &first);
    assert_non_null(gf_ymap_get(root, "a"));
    assert_null(gf_ymap_get(root, "b"));
    gf_ynode_free(root);
    /* What follows the first document is not even parsed. */
    root = load_ok("a: 1\n---\n[unclosed\n", &first);
    gf_ynode_free(root);

    /* Empty streams load as no tree at all. */
    assert_null(load_ok("", NULL));
    assert_null(load_ok("# only a comment\n", NULL));

    load_fails("spec: [1, 2\n", NULL, GF_EPARSE, 2, 1, "invalid YAML");
    load_fails("a: b\n  c: d\n", NULL, GF_EPARSE, 2, 4,
               "mapping values are not allowed");
    /* err may be NULL when the caller wants only the code. */
    struct gf_ynode *out = NULL;
    assert_int_equal(gf_yaml_load("[", 1, NULL, &out, NULL), GF_EPARSE);
    assert_null(out);
}

static void test_scalars(void **state)
{
    (void)state;
    struct gf_ynode *root = load_ok("a: \"x\\0y\"\n"
                                    "\"gpu\\0x\": 1\n"
                                    "n1: ~\n"
                                    "n2:\n"
                                    "n3: NULL\n"
                                    "s1: \"null\"\n"
                                    "s2: nil\n",
                                    NULL);
    /* A NUL byte is kept, and len tells: callers refuse such strings. */
    const struct gf_ynode *a = gf_ymap_get(root, "a");
    assert_int_equal(a->len, 3);
    assert_int_equal(strlen(a->str), 1);
    assert_memory_equal(a->str, "x\0y", 4);
    /* Keys compare over their whole length. */
    assert_null(gf_ymap_get(root, "gpu"));
    assert_true(gf_ynode_is_null(gf_ymap_get(root, "n1")));
    assert_true(gf_ynode_is_null(gf_ymap_get(root, "n2")));
    assert_true(gf_ynode_is_null(gf_ymap_get(root, "n3")));
    assert_false(gf_ynode_is_null(gf_ymap_get(root, "s1")));
    assert_false(gf_ynode_is_null(gf_ymap_get(root, "s2")));
    assert_false(gf_ynode_is_null(root));
    assert_false(gf_ynode_is_null(NULL));
    gf_ynode_free(root);
    gf_ynode_free(NULL);
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_positions_and_dotted_keys, teardown),
        cmocka_unit_test_teardown(test_billion_laughs, teardown),
        cmocka_unit_test_teardown(test_alias_rules, teardown),
        cmocka_unit_test_teardown(test_depth_cap, teardown),
        cmocka_unit_test_teardown(test_node_cap, teardown),
        cmocka_unit_test_teardown(test_documents, teardown),
        cmocka_unit_test_teardown(test_scalars, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
