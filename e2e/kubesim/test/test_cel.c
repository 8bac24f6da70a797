/*
 * Tests for kubesim's CEL subset: a table of rules evaluated on JSON
 * values (the shapes of the Kueue CRDs' rules), CEL's error absorption in
 * && / || and in all() / exists(), transition rules with oldSelf, the
 * errors the API server words ("no such key: x"), and what fails to
 * compile: syntax errors (-EINVAL) and CEL outside the subset (-ENOTSUP).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "e2e/kubesim/cel.h"

struct tcase {
    const char *rule, *self, *old;
    int want;        /* 1 true, 0 false, -EINVAL an evaluation error */
    const char *why; /* the error's text, when want < 0 */
};

static const struct tcase cases[] = {
    /* LocalQueue.spec.clusterQueue: self == oldSelf */
    {"self == oldSelf", "\"cq1\"", "\"cq1\"", 1, NULL},
    {"self == oldSelf", "\"cq2\"", "\"cq1\"", 0, NULL},
    {"self == oldSelf", "[{\"a\":1},2]", "[{\"a\":1},2]", 1, NULL},
    {"self == oldSelf", "{\"a\":[1,2]}", "{\"a\":[1,3]}", 0, NULL},
    /* ClusterQueue.spec.resourceGroups[]: flavors as many as covered */
    {"self.flavors.all(x, size(x.resources) == size(self.coveredResources))",
     "{\"coveredResources\":[\"cpu\",\"nvidia.com/gpu\"],\"flavors\":[{"
     "\"name\":\"a\",\"resources\":[{\"name\":\"cpu\"},{\"name\":"
     "\"nvidia.com/gpu\"}]}]}",
     NULL, 1, NULL},
    {"self.flavors.all(x, size(x.resources) == size(self.coveredResources))",
     "{\"coveredResources\":[\"cpu\",\"nvidia.com/gpu\"],\"flavors\":[{"
     "\"name\":\"a\",\"resources\":[{\"name\":\"cpu\"}]}]}",
     NULL, 0, NULL},
    /* ternary, has, nested all */
    {"!has(self.cohort) && has(self.resourceGroups) ? self.resourceGroups."
     "all(rg, rg.flavors.all(f, f.resources.all(r, !has(r.borrowingLimit))))"
     " : true",
     "{\"resourceGroups\":[{\"flavors\":[{\"resources\":[{\"name\":\"cpu\","
     "\"borrowingLimit\":1}]}]}]}",
     NULL, 0, NULL},
    {"!has(self.cohort) && has(self.resourceGroups) ? self.resourceGroups."
     "all(rg, rg.flavors.all(f, f.resources.all(r, !has(r.borrowingLimit))))"
     " : true",
     "{\"cohort\":\"c\",\"resourceGroups\":[{\"flavors\":[{\"resources\":[{"
     "\"name\":\"cpu\",\"borrowingLimit\":1}]}]}]}",
     NULL, 1, NULL},
    /* in with a list literal */
    {"self.all(x, x.effect in ['NoSchedule', 'PreferNoSchedule', "
     "'NoExecute'])",
     "[{\"effect\":\"NoSchedule\"},{\"effect\":\"NoExecute\"}]", NULL, 1, NULL},
    {"self.all(x, x.effect in ['NoSchedule', 'PreferNoSchedule', "
     "'NoExecute'])",
     "[{\"effect\":\"Bad\"}]", NULL, 0, NULL},
    /* method size, comparison, a missing field is an error */
    {"!has(self.topologyName) || self.nodeLabels.size() >= 1",
     "{\"topologyName\":\"t\",\"nodeLabels\":{\"a\":\"b\"}}", NULL, 1, NULL},
    {"!has(self.topologyName) || self.nodeLabels.size() >= 1",
     "{\"topologyName\":\"t\"}", NULL, -EINVAL, "no such key: nodeLabels"},
    {"!has(self.topologyName) || self.nodeLabels.size() >= 1", "{}", NULL, 1,
     NULL},
    /* error absorption: false && error, true || error, both orders */
    {"self.missing == 1 && false", "{}", NULL, 0, NULL},
    {"false && self.missing == 1", "{}", NULL, 0, NULL},
    {"self.missing == 1 || true", "{}", NULL, 1, NULL},
    {"self.missing == 1 || false", "{}", NULL, -EINVAL, "no such key: missing"},
    {"self.all(x, x.a == 1)", "[{\"b\":1},{\"a\":2}]", NULL, 0, NULL},
    {"self.exists(x, x.a == 1)", "[{\"b\":1},{\"a\":1}]", NULL, 1, NULL},
    {"self.exists(x, x.a == 1)", "[{\"b\":1},{\"a\":2}]", NULL, -EINVAL,
     "no such key: a"},
    /* filter, nested comprehensions, exists_one, map */
    {"size(self.filter(i, size(self.filter(j, j == i)) > 1)) == 0",
     "[\"a\",\"b\",\"c\"]", NULL, 1, NULL},
    {"size(self.filter(i, size(self.filter(j, j == i)) > 1)) == 0",
     "[{\"n\":\"a\"},{\"n\":\"b\"},{\"n\":\"a\"}]", NULL, 0, NULL},
    {"[has(self.kubeConfig),has(self.clusterProfileRef)].filter(x,x==true)."
     "size() == 1",
     "{\"kubeConfig\":{}}", NULL, 1, NULL},
    {"[has(self.kubeConfig),has(self.clusterProfileRef)].filter(x,x==true)."
     "size() == 1",
     "{\"kubeConfig\":{},\"clusterProfileRef\":{}}", NULL, 0, NULL},
    {"self.exists_one(x, x > 2)", "[1,3,2]", NULL, 1, NULL},
    {"self.map(x, x * 2) == [2, 4]", "[1,2]", NULL, 1, NULL},
    {"self.all(k, k.startsWith('a'))", "{\"ab\":1,\"ac\":2}", NULL, 1, NULL},
    /* indexing, arithmetic, ternaries inside comparisons */
    {"self[size(self) - 1].nodeLabel == 'kubernetes.io/hostname'",
     "[{\"nodeLabel\":\"rack\"},{\"nodeLabel\":\"kubernetes.io/hostname\"}]",
     NULL, 1, NULL},
    {"self[5] == 1", "[1]", NULL, -EINVAL, "index out of bounds: 5"},
    {"(has(oldSelf.m)?oldSelf.m:0) == (has(self.m)?self.m:0)", "{}",
     "{\"m\":0}", 1, NULL},
    {"(has(oldSelf.m)?oldSelf.m:0) == (has(self.m)?self.m:0)", "{\"m\":3}",
     "{}", 0, NULL},
    {"has(self.minCount) ? self.minCount <= self.count : true",
     "{\"minCount\":3,\"count\":2}", NULL, 0, NULL},
    {"self.a / self.b == 2", "{\"a\":4,\"b\":0}", NULL, -EINVAL,
     "division by zero"},
    {"self.s + '-x' == 'a-x' && 'x' in self.m && !('y' in self.m)",
     "{\"s\":\"a\",\"m\":{\"x\":1}}", NULL, 1, NULL},
    {"size(self) == 3", "\"h\xc3\xa9y\"", NULL, 1, NULL},
    {"self > 1.5 && self < 2", "1.75", NULL, 1, NULL},
    {"has(self.universal) != has(self.individual)", "{\"universal\":1}", NULL,
     1, NULL},
    /* not bool: an error, as the server reports it */
    {"self", "\"x\"", NULL, -EINVAL, "no such overload"},
    {"self.a == 1 ? 'x' : 2", "{\"a\":1}", NULL, -EINVAL, "no such overload"},
};

static void test_eval_table(void **state)
{
    (void)state;
    int64_t base = gf_alloc_live();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tcase *t = &cases[i];
        struct gf_ks_cel *c = NULL;
        char why[256];
        int rc = gf_ks_cel_compile(t->rule, &c, why, sizeof(why));
        if (rc != 0)
            fail_msg("case %zu: compile %s: %s", i, t->rule, why);
        cJSON *self = cJSON_Parse(t->self);
        cJSON *old = t->old != NULL ? cJSON_Parse(t->old) : NULL;
        assert_non_null(self);
        rc = gf_ks_cel_eval(c, self, old, why, sizeof(why));
        if (rc != t->want)
            fail_msg("case %zu: %s on %s: %d (%s), want %d", i, t->rule,
                     t->self, rc, why, t->want);
        if (t->why != NULL)
            assert_string_equal(why, t->why);
        assert_int_equal(gf_ks_cel_uses_old_self(c),
                         strstr(t->rule, "oldSelf") != NULL);
        cJSON_Delete(self);
        cJSON_Delete(old);
        gf_ks_cel_free(c);
    }
    assert_int_equal(gf_alloc_live(), base);
}

static void test_old_self_absent(void **state)
{
    (void)state;
    struct gf_ks_cel *c = NULL;
    char why[128];
    assert_int_equal(gf_ks_cel_compile("self == oldSelf", &c, why, 128), 0);
    cJSON *self = cJSON_CreateString("x");
    assert_int_equal(gf_ks_cel_eval(c, self, NULL, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "undeclared reference to 'oldSelf'");
    cJSON_Delete(self);
    gf_ks_cel_free(c);
}

static void test_compile_errors(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        int want;
    } bad[] = {
        {"self.a ==", -EINVAL},
        {"(self.a", -EINVAL},
        {"self.a == 'x", -EINVAL},
        {"has(self)", -EINVAL},
        {"self.all(1, true)", -EINVAL},
        {"self.a b", -EINVAL},
        {"self.a == 1 ? 2", -EINVAL},
        {"#", -EINVAL},
        {"self.matches('^a$')", -ENOTSUP},
        {"quantity(self.q).isLessThan(quantity('1'))", -ENOTSUP},
        {"self == {'a': 1}", -ENOTSUP},
        {"self.x == 1u", -ENOTSUP},
        {"self.s == 'a\\x41'", -ENOTSUP},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gf_ks_cel *c = (struct gf_ks_cel *)&c;
        char why[128];
        int rc = gf_ks_cel_compile(bad[i].rule, &c, why, sizeof(why));
        if (rc != bad[i].want)
            fail_msg("%s: %d (%s), want %d", bad[i].rule, rc, why, bad[i].want);
        assert_null(c);
        assert_true(why[0] != '\0');
    }
    /* Nesting beyond the cap is a syntax error, not a stack overflow. */
    char deep[4 * GF_KS_CEL_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < 2 * GF_KS_CEL_MAX_DEPTH; i++)
        deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 2 * GF_KS_CEL_MAX_DEPTH; i++)
        deep[n++] = ')';
    deep[n] = '\0';
    struct gf_ks_cel *c = NULL;
    char why[128];
    assert_int_equal(gf_ks_cel_compile(deep, &c, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "expression nested too deeply");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_old_self_absent),
        cmocka_unit_test(test_compile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
