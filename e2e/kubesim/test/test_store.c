/*
 * Tests for kubesim/store: the registry rules every write follows
 * (resourceVersion, uid, generation, status subresource, optimistic
 * concurrency, finalizers, garbage collection), event ordering for
 * observers and watches, and the bounded watch cache.
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

static int64_t baseline;

/* ---- fixture ----------------------------------------------------------- */

struct fx {
    struct gf_clock clock;
    struct gf_ks_store *st;
    const struct gf_ks_rtype *ns, *cm, *wl, *job, *pod, *cq;
};

static struct gf_ks_rtype *mk_type(const char *group, const char *resource,
                                   const char *kind, bool namespaced,
                                   bool has_status)
{
    struct gf_ks_rtype *t = gf_calloc(1, sizeof(*t));
    t->group = gf_strdup(group);
    t->resource = gf_strdup(resource);
    t->kind = gf_strdup(kind);
    t->versions = gf_calloc(1, sizeof(*t->versions));
    t->versions[0].name = gf_strdup(group[0] ? "v1beta1" : "v1");
    t->versions[0].served = t->versions[0].storage = true;
    t->n_versions = 1;
    t->namespaced = namespaced;
    t->has_status = has_status;
    return t;
}

static void fx_init(struct fx *f, size_t watch_cache)
{
    gf_clock_init_manual(&f->clock, 1000, 1795000000000LL);
    struct gf_ks_store_opts o = {
        .clock = &f->clock,
        .cluster = "east",
        .watch_cache = watch_cache,
        .uid_seed = 42,
    };
    f->st = gf_ks_store_new(&o);
    struct gf_ks_rtype *job = mk_type("batch", "jobs", "Job", true, true);
    job->default_orphan = true;
    assert_int_equal(gf_ks_store_register(
                         f->st, mk_type("", "namespaces", "Namespace", false,
                                        true)),
                     0);
    assert_int_equal(gf_ks_store_register(
                         f->st, mk_type("", "configmaps", "ConfigMap", true,
                                        false)),
                     0);
    assert_int_equal(gf_ks_store_register(f->st, mk_type("kueue.x-k8s.io",
                                                         "workloads",
                                                         "Workload", true,
                                                         true)),
                     0);
    assert_int_equal(gf_ks_store_register(f->st, job), 0);
    assert_int_equal(
        gf_ks_store_register(f->st, mk_type("", "pods", "Pod", true, true)), 0);
    assert_int_equal(gf_ks_store_register(f->st, mk_type("kueue.x-k8s.io",
                                                         "clusterqueues",
                                                         "ClusterQueue", false,
                                                         true)),
                     0);
    f->ns = gf_ks_store_type(f->st, "", "namespaces");
    f->cm = gf_ks_store_type(f->st, "", "configmaps");
    f->wl = gf_ks_store_type(f->st, "kueue.x-k8s.io", "workloads");
    f->job = gf_ks_store_type(f->st, "batch", "jobs");
    f->pod = gf_ks_store_type(f->st, "", "pods");
    f->cq = gf_ks_store_type(f->st, "kueue.x-k8s.io", "clusterqueues");
    assert_non_null(f->ns);
    assert_non_null(f->cq);
}

static void fx_done(struct fx *f)
{
    gf_ks_store_free(f->st);
    gf_clock_close(&f->clock);
    assert_int_equal(gf_alloc_live(), baseline);
}

static cJSON *js(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

/* Creates from JSON text; asserts success; returns the stored object. */
static struct gf_ks_obj *mk(struct fx *f, const struct gf_ks_rtype *t,
                            const char *ns, const char *json)
{
    cJSON *j = js(json);
    struct gf_ks_obj *o = NULL;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_store_create(f->st, t, ns, j, GF_KS_MAIN, &o, &err);
    if (rc != 0)
        fail_msg("create %s: %d %s", json, err.code, err.message);
    cJSON_Delete(j);
    gf_ks_status_clear(&err);
    return o;
}

static void mk_ns(struct fx *f, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\"}}", name);
    mk(f, f->ns, NULL, buf);
}

/* A string field of a stored object, copied into a static buffer. */
static const char *field(const struct gf_ks_obj *o, const char *path)
{
    static char buf[4][256];
    static int slot;
    char *out = buf[slot++ % 4];
    cJSON *j = gf_ks_obj_parse(o);
    const char *s = gf_json_str(j, path);
    snprintf(out, 256, "%s", s != NULL ? s : "<none>");
    cJSON_Delete(j);
    return out;
}

static int64_t ifield(const struct gf_ks_obj *o, const char *path)
{
    cJSON *j = gf_ks_obj_parse(o);
    int64_t v = -1;
    gf_json_int(j, path, &v);
    cJSON_Delete(j);
    return v;
}

static bool has(const struct gf_ks_obj *o, const char *path)
{
    cJSON *j = gf_ks_obj_parse(o);
    bool r = gf_json_path(j, path) != NULL;
    cJSON_Delete(j);
    return r;
}

/* A recorder for watch callbacks: "ADDED ns/name rv" lines. */
struct rec {
    char lines[64][96];
    int n;
    int closed, close_err;
};

static void rec_cb(void *data, enum gf_ks_ev_type type,
                   const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct rec *r = data;
    if (type == GF_KS_EV_CLOSED) {
        r->closed++;
        r->close_err = err;
        return;
    }
    assert_true(r->n < 64);
    if (obj == NULL)
        snprintf(r->lines[r->n++], 96, "%s %llu", gf_ks_ev_name(type),
                 (unsigned long long)rv);
    else
        snprintf(r->lines[r->n++], 96, "%s %s/%s %llu", gf_ks_ev_name(type),
                 obj->ns, obj->name, (unsigned long long)rv);
}

/* ---- tests ------------------------------------------------------------- */

static void test_crud_and_watch(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "team-a");
    uint64_t rv0 = gf_ks_store_rv(f.st);

    struct rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {.ns = "team-a"};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &w, NULL),
                     0);
    assert_int_equal(r.n, 0);

    struct gf_ks_obj *o =
        mk(&f, f.cm, "team-a",
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
           "\"metadata\":{\"name\":\"c1\"},\"data\":{\"k\":\"v\"}}");
    assert_int_equal(o->rv, rv0 + 1);
    assert_string_equal(o->ns, "team-a");
    assert_string_equal(o->name, "c1");
    assert_string_equal(field(o, "metadata.namespace"), "team-a");
    assert_string_equal(field(o, "metadata.resourceVersion"), "2");
    assert_ptr_equal(gf_ks_store_get(f.st, f.cm, "team-a", "c1"), o);
    assert_null(gf_ks_store_get(f.st, f.cm, "team-b", "c1"));

    cJSON *u = js("{\"metadata\":{\"name\":\"c1\"},\"data\":{\"k\":\"w\"}}");
    struct gf_ks_obj *o2 = NULL;
    assert_int_equal(gf_ks_store_update(f.st, f.cm, "team-a", "c1", u,
                                        GF_KS_MAIN, &o2, NULL),
                     0);
    cJSON_Delete(u);
    assert_int_equal(o2->rv, rv0 + 2);
    assert_string_equal(field(o2, "data.k"), "w");

    bool gone = false;
    struct gf_ks_obj *last = NULL;
    assert_int_equal(gf_ks_store_delete(f.st, f.cm, "team-a", "c1", NULL,
                                        &last, &gone, NULL),
                     0);
    assert_true(gone);
    assert_int_equal(last->rv, rv0 + 3);
    assert_null(gf_ks_store_get(f.st, f.cm, "team-a", "c1"));
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);

    assert_int_equal(r.n, 3);
    assert_string_equal(r.lines[0], "ADDED team-a/c1 2");
    assert_string_equal(r.lines[1], "MODIFIED team-a/c1 3");
    assert_string_equal(r.lines[2], "DELETED team-a/c1 4");
    gf_ks_watch_stop(w);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    fx_done(&f);
}


static void test_create_metadata_and_generation(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "team-a");
    struct gf_ks_obj *o =
        mk(&f, f.wl, "team-a",
           "{\"metadata\":{\"generateName\":\"job-x-\",\"uid\":\"forged\","
           "\"resourceVersion\":\"77\",\"generation\":9},"
           "\"spec\":{\"queueName\":\"q\"},\"status\":{\"x\":1}}");
    assert_int_equal(strncmp(o->name, "job-x-", 6), 0);
    assert_int_equal(strlen(o->name), 11);
    assert_string_not_equal(field(o, "metadata.uid"), "forged");
    assert_int_equal(strlen(field(o, "metadata.uid")), 36);
    assert_string_equal(field(o, "metadata.creationTimestamp"),
                        "2026-11-18T11:06:40Z");
    assert_int_equal(ifield(o, "metadata.generation"), 1);
    /* status is dropped on a main-resource create for a status type. */
    assert_false(has(o, "status"));
    char name[64];
    snprintf(name, sizeof(name), "%s", o->name);

    /* A metadata-only change keeps the generation; a spec change bumps. */
    cJSON *u = js("{\"metadata\":{\"labels\":{\"a\":\"b\"}},"
                  "\"spec\":{\"queueName\":\"q\"}}");
    struct gf_ks_obj *o2 = NULL;
    assert_int_equal(gf_ks_store_update(f.st, f.wl, "team-a", name, u,
                                        GF_KS_MAIN, &o2, NULL),
                     0);
    cJSON_Delete(u);
    assert_int_equal(ifield(o2, "metadata.generation"), 1);
    u = js("{\"metadata\":{},\"spec\":{\"queueName\":\"r\"}}");
    assert_int_equal(gf_ks_store_update(f.st, f.wl, "team-a", name, u,
                                        GF_KS_MAIN, &o2, NULL),
                     0);
    cJSON_Delete(u);
    assert_int_equal(ifield(o2, "metadata.generation"), 2);
    fx_done(&f);
}

int main(void)
{
    gf_alloc_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud_and_watch),
        cmocka_unit_test(test_create_metadata_and_generation),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_alloc_global_cleanup();
    return rc;
}
