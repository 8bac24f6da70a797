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
#include "kubeclient/global.h"

static int64_t baseline;

/* ---- fixture ----------------------------------------------------------- */

struct fx {
    int64_t base; /* live allocations when the test began */
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
    f->base = gf_alloc_live();
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
    assert_int_equal(
        gf_ks_store_register(
            f->st, mk_type("", "namespaces", "Namespace", false, true)),
        0);
    assert_int_equal(
        gf_ks_store_register(
            f->st, mk_type("", "configmaps", "ConfigMap", true, false)),
        0);
    assert_int_equal(
        gf_ks_store_register(f->st, mk_type("kueue.x-k8s.io", "workloads",
                                            "Workload", true, true)),
        0);
    assert_int_equal(gf_ks_store_register(f->st, job), 0);
    assert_int_equal(
        gf_ks_store_register(f->st, mk_type("", "pods", "Pod", true, true)), 0);
    assert_int_equal(
        gf_ks_store_register(f->st, mk_type("kueue.x-k8s.io", "clusterqueues",
                                            "ClusterQueue", false, true)),
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
    assert_int_equal(gf_alloc_live(), f->base);
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
/*
 * field/ifield/has read a literal dotted path of an object: they are
 * macros so that gf_json_path's literal-only check reaches the call site.
 * Keys from data (label names) go through label(), key by key.
 */
static const char *field_str(const struct gf_ks_obj *o, const char *path)
{
    static char buf[4][256];
    static int slot;
    char *out = buf[slot++ % 4];
    cJSON *j = gf_ks_obj_parse(o);
    const char *s = gf_json_as_str(gf__json_path(j, path));
    snprintf(out, 256, "%s", s != NULL ? s : "<none>");
    cJSON_Delete(j);
    return out;
}
#define field(o, path) field_str(o, "" path "")

static int64_t field_int(const struct gf_ks_obj *o, const char *path)
{
    cJSON *j = gf_ks_obj_parse(o);
    int64_t v = -1;
    gf_json_as_int(gf__json_path(j, path), &v);
    cJSON_Delete(j);
    return v;
}
#define ifield(o, path) field_int(o, "" path "")

static bool field_has(const struct gf_ks_obj *o, const char *path)
{
    cJSON *j = gf_ks_obj_parse(o);
    bool r = gf__json_path(j, path) != NULL;
    cJSON_Delete(j);
    return r;
}
#define has(o, path) field_has(o, "" path "")

/* metadata.labels[key], or "<none>"; the key is taken whole. */
static const char *label(const struct gf_ks_obj *o, const char *key)
{
    static char buf[256];
    cJSON *j = gf_ks_obj_parse(o);
    const char *s = gf_json_as_str(GF_JSON_AT(j, "metadata", "labels", key));
    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "<none>");
    cJSON_Delete(j);
    return buf;
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

/* An observer log shared by several observers: "tag TYPE Kind ns/name". */
struct olog {
    char lines[64][128];
    int n;
};

struct obs {
    struct olog *log;
    const char *tag;
    int depth, max_depth;
};

static void olog_add(struct olog *l, const char *tag,
                     const struct gf_ks_event *ev)
{
    assert_true(l->n < 64);
    snprintf(l->lines[l->n++], 128, "%s %s %s %s/%s", tag,
             gf_ks_ev_name(ev->type), ev->rtype->kind, ev->obj->ns,
             ev->obj->name);
}

static void obs_cb(void *data, const struct gf_ks_event *ev)
{
    struct obs *o = data;
    o->depth++;
    if (o->depth > o->max_depth)
        o->max_depth = o->depth;
    /* Every event carries the parsed trees; rv matches the blob. */
    assert_non_null(ev->obj_json);
    assert_int_equal(ev->rv, ev->obj->rv);
    assert_true((ev->old == NULL) == (ev->type == GF_KS_EV_ADDED));
    olog_add(o->log, o->tag, ev);
    o->depth--;
}

static int olog_find(const struct olog *l, const char *line)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->lines[i], line) == 0)
            return i;
    return -1;
}

static void olog_dump(const struct olog *l)
{
    for (int i = 0; i < l->n; i++)
        print_message("  %s\n", l->lines[i]);
}

/* Asserts that line a comes before line b in the log. */
static void before(const struct olog *l, const char *a, const char *b)
{
    int ia = olog_find(l, a), ib = olog_find(l, b);
    if (ia < 0 || ib < 0 || ia >= ib) {
        olog_dump(l);
        fail_msg("expected \"%s\" (%d) before \"%s\" (%d)", a, ia, b, ib);
    }
}

static int upd(struct fx *f, const struct gf_ks_rtype *t, const char *ns,
               const char *name, const char *json, enum gf_ks_subres sub,
               struct gf_ks_obj **out, struct gf_ks_status *err)
{
    cJSON *j = js(json);
    int rc = gf_ks_store_update(f->st, t, ns, name, j, sub, out, err);
    cJSON_Delete(j);
    return rc;
}

static int del(struct fx *f, const struct gf_ks_rtype *t, const char *ns,
               const char *name, enum gf_ks_propagation prop, bool *gone)
{
    struct gf_ks_delete_opts o = {.propagation = prop};
    return gf_ks_store_delete(f->st, t, ns, name, &o, NULL, gone, NULL);
}

/* An ownerReferences entry naming o. */
static void owner_ref(char *out, size_t cap, const char *kind,
                      const struct gf_ks_obj *o)
{
    snprintf(out, cap,
             "{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"name\":\"%s\","
             "\"uid\":\"%s\",\"blockOwnerDeletion\":true}",
             kind, o->name, field(o, "metadata.uid"));
}

/* Creates a ConfigMap in "a" owned by the given refs (JSON array body). */
static struct gf_ks_obj *mk_owned(struct fx *f, const char *name,
                                  const char *refs)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"ownerReferences\":[%s]}}", name,
             refs);
    return mk(f, f->cm, "a", buf);
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
    assert_int_equal(gf_ks_store_delete(f.st, f.cm, "team-a", "c1", NULL, &last,
                                        &gone, NULL),
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
static void test_rv_monotonic_across_types(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    uint64_t prev = gf_ks_store_rv(f.st);
    const struct gf_ks_rtype *types[] = {f.cm, f.wl, f.cq, f.job};
    for (int i = 0; i < 12; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"o%d\"}}", i);
        struct gf_ks_obj *o = mk(&f, types[i % 4], "a", buf);
        assert_int_equal(o->rv, prev + 1);
        assert_int_equal(gf_ks_store_rv(f.st), o->rv);
        char rvs[24];
        snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)o->rv);
        assert_string_equal(field(o, "metadata.resourceVersion"), rvs);
        prev = o->rv;
    }
    /* A failed write and a write that changes nothing leave rv alone. */
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    cJSON *dup = js("{\"metadata\":{\"name\":\"o0\"}}");
    assert_int_equal(
        gf_ks_store_create(f.st, f.cm, "a", dup, GF_KS_MAIN, NULL, &err),
        GF_EEXIST);
    cJSON_Delete(dup);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "AlreadyExists");
    assert_string_equal(err.message, "configmaps \"o0\" already exists");
    struct gf_ks_obj *same = NULL;
    assert_int_equal(upd(&f, f.cm, "a", "o0",
                         "{\"metadata\":{\"name\":\"o0\"}}", GF_KS_MAIN, &same,
                         &err),
                     0);
    assert_int_equal(gf_ks_store_rv(f.st), prev);
    assert_true(same->rv < prev);
    /* Cluster-scoped objects ignore the namespace. */
    assert_non_null(gf_ks_store_get(f.st, f.cq, NULL, "o2"));
    assert_string_equal(
        field(gf_ks_store_get(f.st, f.cq, "", "o2"), "metadata.namespace"),
        "<none>");
    gf_ks_status_clear(&err);
    fx_done(&f);
}

static void test_create_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    static const struct {
        const char *ns, *body;
        int rc, code;
        const char *reason, *cause_field;
    } cases[] = {
        {"a", "{\"metadata\":{}}", GF_EINVALID, 422, "Invalid",
         "metadata.name"},
        {"a", "{\"metadata\":{\"name\":\"Bad_Name\"}}", GF_EINVALID, 422,
         "Invalid", "metadata.name"},
        {"a", "{\"metadata\":{\"name\":\"x/y\"}}", GF_EINVALID, 422, "Invalid",
         "metadata.name"},
        {"a", "{\"metadata\":{\"name\":\"x\",\"namespace\":\"b\"}}",
         GF_EINVALID, 400, "BadRequest", NULL},
        {"nope", "{\"metadata\":{\"name\":\"x\"}}", GF_ENOTFOUND, 404,
         "NotFound", NULL},
        {"", "{\"metadata\":{\"name\":\"x\"}}", GF_EINVALID, 400, "BadRequest",
         NULL},
        {"a", "[1]", GF_EINVALID, 400, "BadRequest", NULL},
    };
    uint64_t rv = gf_ks_store_rv(f.st);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        cJSON *j = js(cases[i].body);
        int rc = gf_ks_store_create(f.st, f.cm, cases[i].ns, j, GF_KS_MAIN,
                                    NULL, &err);
        cJSON_Delete(j);
        print_message("case %zu: %d %s\n", i, err.code, err.message);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(err.code, cases[i].code);
        assert_string_equal(err.reason, cases[i].reason);
        if (cases[i].cause_field != NULL)
            assert_string_equal(
                gf_json_str(cJSON_GetArrayItem(err.causes, 0), "field"),
                cases[i].cause_field);
        gf_ks_status_clear(&err);
    }
    /* A name longer than any key buffer is refused, not truncated. */
    char big[700];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char body[800];
    snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"%s\"}}", big);
    cJSON *j = js(body);
    assert_int_equal(
        gf_ks_store_create(f.st, f.cm, "a", j, GF_KS_MAIN, NULL, NULL),
        GF_EINVALID);
    cJSON_Delete(j);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", big));
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    fx_done(&f);
}

static void test_status_subresource(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"q\":1}}");
    /* /status takes only status: the spec and label changes are ignored. */
    struct gf_ks_obj *o = NULL;
    assert_int_equal(upd(&f, f.wl, "a", "w",
                         "{\"metadata\":{\"labels\":{\"x\":\"y\"}},"
                         "\"spec\":{\"q\":2},\"status\":{\"phase\":\"Up\"}}",
                         GF_KS_STATUS, &o, NULL),
                     0);
    assert_string_equal(field(o, "status.phase"), "Up");
    assert_int_equal(ifield(o, "spec.q"), 1);
    assert_false(has(o, "metadata.labels"));
    assert_int_equal(ifield(o, "metadata.generation"), 1);
    /* The main resource keeps the stored status whatever the body says. */
    assert_int_equal(upd(&f, f.wl, "a", "w",
                         "{\"metadata\":{},\"spec\":{\"q\":3},"
                         "\"status\":{\"phase\":\"Down\"}}",
                         GF_KS_MAIN, &o, NULL),
                     0);
    assert_string_equal(field(o, "status.phase"), "Up");
    assert_int_equal(ifield(o, "spec.q"), 3);
    assert_int_equal(ifield(o, "metadata.generation"), 2);
    /* patch_status merges and leaves generation alone. */
    cJSON *st = js("{\"conditions\":[{\"type\":\"Admitted\"}]}");
    assert_int_equal(
        gf_ks_store_patch_status(f.st, f.wl, "a", "w", st, &o, NULL), 0);
    cJSON_Delete(st);
    assert_string_equal(field(o, "status.phase"), "Up");
    assert_true(has(o, "status.conditions"));
    assert_int_equal(ifield(o, "metadata.generation"), 2);
    /* A type without the subresource takes status from the main body. */
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    assert_int_equal(upd(&f, f.cm, "a", "c",
                         "{\"metadata\":{},\"status\":{\"s\":\"v\"}}",
                         GF_KS_MAIN, &o, NULL),
                     0);
    assert_string_equal(field(o, "status.s"), "v");
    /* Creating with GF_KS_STATUS keeps the status (controllers do). */
    cJSON *pod = js("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":"
                    "\"Running\"}}");
    assert_int_equal(
        gf_ks_store_create(f.st, f.pod, "a", pod, GF_KS_STATUS, &o, NULL), 0);
    cJSON_Delete(pod);
    assert_string_equal(field(o, "status.phase"), "Running");
    fx_done(&f);
}

static void test_conflicts_and_preconditions(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    struct gf_ks_obj *o =
        mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w\"},\"spec\":{\"q\":1}}");
    char stale[24], uid[40];
    snprintf(stale, sizeof(stale), "%llu", (unsigned long long)o->rv);
    snprintf(uid, sizeof(uid), "%s", field(o, "metadata.uid"));
    assert_int_equal(upd(&f, f.wl, "a", "w",
                         "{\"metadata\":{},\"spec\":{\"q\":2}}", GF_KS_MAIN, &o,
                         NULL),
                     0);
    uint64_t rv = gf_ks_store_rv(f.st);
    char body[256];
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    /* Stale resourceVersion: on the main resource and on /status. */
    for (int sub = 0; sub < 2; sub++) {
        snprintf(body, sizeof(body),
                 "{\"metadata\":{\"resourceVersion\":\"%s\"},"
                 "\"spec\":{\"q\":9},\"status\":{\"x\":1}}",
                 stale);
        assert_int_equal(
            upd(&f, f.wl, "a", "w", body, (enum gf_ks_subres)sub, NULL, &err),
            GF_ECONFLICT);
        assert_int_equal(err.code, 409);
        assert_string_equal(err.reason, "Conflict");
        assert_string_equal(
            err.message,
            "Operation cannot be fulfilled on workloads.kueue.x-k8s.io \"w\": "
            "the object has been modified; please apply your changes to the "
            "latest version and try again");
    }
    /* A conditional patch carries the resourceVersion it read. */
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"resourceVersion\":\"%s\"},\"spec\":{\"q\":9}}",
             stale);
    assert_int_equal(gf_ks_store_patch(f.st, f.wl, "a", "w", GF_KS_PATCH_MERGE,
                                       body, strlen(body), GF_KS_MAIN, NULL,
                                       &err),
                     GF_ECONFLICT);
    assert_int_equal(err.code, 409);
    /* A uid that is not the object's is a precondition failure. */
    assert_int_equal(upd(&f, f.wl, "a", "w",
                         "{\"metadata\":{\"uid\":\"other\"},\"spec\":{}}",
                         GF_KS_MAIN, NULL, &err),
                     GF_ECONFLICT);
    struct gf_ks_delete_opts dop = {.rv = stale};
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", &dop, NULL, NULL, &err),
        GF_ECONFLICT);
    dop = (struct gf_ks_delete_opts){.uid = "other"};
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", &dop, NULL, NULL, &err),
        GF_ECONFLICT);
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    /* Current resourceVersion and uid: accepted. */
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"resourceVersion\":\"%llu\",\"uid\":\"%s\"},"
             "\"spec\":{\"q\":4}}",
             (unsigned long long)rv, uid);
    assert_int_equal(upd(&f, f.wl, "a", "w", body, GF_KS_MAIN, &o, &err), 0);
    assert_int_equal(o->rv, rv + 1);
    /* Missing objects and names that disagree with the URL. */
    assert_int_equal(
        upd(&f, f.wl, "a", "zz", "{\"metadata\":{}}", GF_KS_MAIN, NULL, &err),
        GF_ENOTFOUND);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.message,
                        "workloads.kueue.x-k8s.io \"zz\" not found");
    assert_int_equal(upd(&f, f.wl, "a", "w", "{\"metadata\":{\"name\":\"v\"}}",
                         GF_KS_MAIN, NULL, &err),
                     GF_EINVALID);
    assert_int_equal(err.code, 400);
    gf_ks_status_clear(&err);
    fx_done(&f);
}

static void test_finalizers_and_deletion_timestamp(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    struct olog log = {0};
    struct obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, f.wl, obs_cb, &ob);
    mk(&f, f.wl, "a",
       "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"x/a\",\"x/b\"]},"
       "\"spec\":{\"q\":1}}");
    gf_clock_advance(&f.clock, 5000);
    bool gone = true;
    struct gf_ks_obj *o = NULL;
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", NULL, &o, &gone, NULL), 0);
    assert_false(gone);
    assert_string_equal(field(o, "metadata.deletionTimestamp"),
                        "2026-11-18T11:06:45Z");
    assert_int_equal(ifield(o, "metadata.deletionGracePeriodSeconds"), 0);
    /* Marking for deletion bumps the generation, as the registry does. */
    assert_int_equal(ifield(o, "metadata.generation"), 2);
    assert_non_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    /* Deleting again changes nothing. */
    uint64_t rv = gf_ks_store_rv(f.st);
    assert_int_equal(
        gf_ks_store_delete(f.st, f.wl, "a", "w", NULL, &o, &gone, NULL), 0);
    assert_false(gone);
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    /* No new finalizers once deleting; the timestamp cannot be cleared. */
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(upd(&f, f.wl, "a", "w",
                         "{\"metadata\":{\"finalizers\":[\"x/a\",\"x/b\","
                         "\"x/c\"]},\"spec\":{\"q\":1}}",
                         GF_KS_MAIN, NULL, &err),
                     GF_EINVALID);
    assert_int_equal(err.code, 422);
    assert_string_equal(gf_json_str(cJSON_GetArrayItem(err.causes, 0), "field"),
                        "metadata.finalizers");
    gf_ks_status_clear(&err);
    assert_int_equal(upd(&f, f.wl, "a", "w",
                         "{\"metadata\":{\"finalizers\":[\"x/b\"]},"
                         "\"spec\":{\"q\":1}}",
                         GF_KS_MAIN, &o, NULL),
                     0);
    assert_true(has(o, "metadata.deletionTimestamp"));
    /* A merge patch drops the last finalizer: the object goes. */
    const char *p = "{\"metadata\":{\"finalizers\":null}}";
    assert_int_equal(gf_ks_store_patch(f.st, f.wl, "a", "w", GF_KS_PATCH_MERGE,
                                       p, strlen(p), GF_KS_MAIN, &o, NULL),
                     0);
    assert_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    assert_int_equal(o->rv, gf_ks_store_rv(f.st));
    assert_string_equal(log.lines[log.n - 1], "o DELETED Workload a/w");
    assert_int_equal(log.n, 4); /* ADDED, 2 MODIFIED, DELETED */
    fx_done(&f);
}

static void test_gc_background_and_shared_owner(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    struct olog log = {0};
    struct obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, NULL, obs_cb, &ob);
    struct gf_ks_obj *a = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"a\"}}");
    char ra[256], rb[256], both[600];
    owner_ref(ra, sizeof(ra), "ConfigMap", a);
    struct gf_ks_obj *b = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"b\"}}");
    owner_ref(rb, sizeof(rb), "ConfigMap", b);
    snprintf(both, sizeof(both), "%s,%s", ra, rb);
    mk_owned(&f, "a1", ra);
    struct gf_ks_obj *a2 = mk_owned(&f, "a2", ra);
    char r2[256];
    owner_ref(r2, sizeof(r2), "ConfigMap", a2);
    mk_owned(&f, "a2x", r2); /* a chain: a -> a2 -> a2x */
    mk_owned(&f, "ab", both);
    int n = 0;
    bool gone = false;
    assert_int_equal(del(&f, f.cm, "a", "a", GF_KS_PROP_BACKGROUND, &gone), 0);
    assert_true(gone);
    (void)n;
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a1"));
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a2"));
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a2x"));
    /* ab has another live owner: only the reference to a goes. */
    struct gf_ks_obj *ab = gf_ks_store_get(f.st, f.cm, "a", "ab");
    assert_non_null(ab);
    cJSON *j = gf_ks_obj_parse(ab);
    const cJSON *refs = gf_json_path(j, "metadata.ownerReferences");
    assert_int_equal(cJSON_GetArraySize(refs), 1);
    assert_string_equal(gf_json_str(cJSON_GetArrayItem(refs, 0), "name"), "b");
    cJSON_Delete(j);
    before(&log, "o DELETED ConfigMap a/a", "o DELETED ConfigMap a/a1");
    before(&log, "o DELETED ConfigMap a/a2", "o DELETED ConfigMap a/a2x");
    before(&log, "o DELETED ConfigMap a/a", "o MODIFIED ConfigMap a/ab");
    /* Now b goes and takes ab with it. */
    assert_int_equal(del(&f, f.cm, "a", "b", GF_KS_PROP_DEFAULT, &gone), 0);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "ab"));
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);
    fx_done(&f);
}

static void test_gc_foreground_chain(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    struct olog log = {0};
    struct obs ob = {.log = &log, .tag = "o"};
    gf_ks_store_observe(f.st, NULL, obs_cb, &ob);
    char r[256];
    struct gf_ks_obj *a = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"a\"}}");
    owner_ref(r, sizeof(r), "ConfigMap", a);
    struct gf_ks_obj *b = mk_owned(&f, "b", r);
    owner_ref(r, sizeof(r), "ConfigMap", b);
    mk(&f, f.cm, "a",
       "{\"metadata\":{\"name\":\"c\",\"finalizers\":[\"x/hold\"],"
       "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
       "\"name\":\"b\",\"uid\":\"placeholder\"}]}}");
    /* Point c at b for real (an update relinks the owner index). */
    char body[600];
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"finalizers\":[\"x/hold\"],"
             "\"ownerReferences\":[%s]}}",
             r);
    assert_int_equal(upd(&f, f.cm, "a", "c", body, GF_KS_MAIN, NULL, NULL), 0);
    log.n = 0;
    bool gone = true;
    assert_int_equal(del(&f, f.cm, "a", "a", GF_KS_PROP_FOREGROUND, &gone), 0);
    assert_false(gone);
    /* a and b wait with foregroundDeletion; c waits on its finalizer. */
    struct gf_ks_obj *oa = gf_ks_store_get(f.st, f.cm, "a", "a");
    struct gf_ks_obj *ob2 = gf_ks_store_get(f.st, f.cm, "a", "b");
    struct gf_ks_obj *oc = gf_ks_store_get(f.st, f.cm, "a", "c");
    assert_non_null(oa);
    assert_non_null(ob2);
    assert_non_null(oc);
    cJSON *j = gf_ks_obj_parse(oa);
    const cJSON *fin = GF_JSON_AT(j, "metadata", "finalizers");
    assert_int_equal(cJSON_GetArraySize(fin), 1);
    assert_string_equal(gf_json_as_str(cJSON_GetArrayItem(fin, 0)),
                        "foregroundDeletion");
    cJSON_Delete(j);
    assert_true(has(ob2, "metadata.deletionTimestamp"));
    assert_true(has(oc, "metadata.deletionTimestamp"));
    /* Releasing c lets the chain finish, dependents first. */
    assert_int_equal(
        upd(&f, f.cm, "a", "c", "{\"metadata\":{}}", GF_KS_MAIN, NULL, NULL),
        0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);
    before(&log, "o MODIFIED ConfigMap a/a", "o MODIFIED ConfigMap a/b");
    before(&log, "o DELETED ConfigMap a/c", "o DELETED ConfigMap a/b");
    before(&log, "o DELETED ConfigMap a/b", "o DELETED ConfigMap a/a");
    fx_done(&f);
}

static bool count_cb(void *data, struct gf_ks_obj *o)
{
    (void)o;
    (*(int *)data)++;
    return true;
}

static void test_gc_orphan(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    /* A Job's default propagation is orphan (its legacy default). */
    struct gf_ks_obj *job =
        mk(&f, f.job, "a", "{\"metadata\":{\"name\":\"j\"},\"spec\":{}}");
    char r[256];
    owner_ref(r, sizeof(r), "Job", job);
    mk_owned(&f, "p1", r);
    bool gone = false;
    assert_int_equal(del(&f, f.job, "a", "j", GF_KS_PROP_DEFAULT, &gone), 0);
    assert_true(gone);
    struct gf_ks_obj *p1 = gf_ks_store_get(f.st, f.cm, "a", "p1");
    assert_non_null(p1);
    assert_false(has(p1, "metadata.ownerReferences"));
    /* Explicit orphan on a background type. */
    struct gf_ks_obj *c = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    owner_ref(r, sizeof(r), "ConfigMap", c);
    mk_owned(&f, "p2", r);
    assert_int_equal(del(&f, f.cm, "a", "c", GF_KS_PROP_ORPHAN, &gone), 0);
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "p2"));
    int count = 0;
    gf_ks_store_dependents(f.st, field(c, "metadata.uid"), count_cb, &count);
    assert_int_equal(count, 0);
    /* The index sees live dependents. */
    struct gf_ks_obj *d = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"d\"}}");
    owner_ref(r, sizeof(r), "ConfigMap", d);
    mk_owned(&f, "p3", r);
    mk_owned(&f, "p4", r);
    gf_ks_store_dependents(f.st, field(d, "metadata.uid"), count_cb, &count);
    assert_int_equal(count, 2);
    fx_done(&f);
}

/* An observer that writes from inside its callback. */
struct writer {
    struct fx *f;
    struct olog *log;
    int depth, max_depth;
    int writes;
};

static void writer_cb(void *data, const struct gf_ks_event *ev)
{
    struct writer *w = data;
    w->depth++;
    if (w->depth > w->max_depth)
        w->max_depth = w->depth;
    olog_add(w->log, "w", ev);
    if (ev->type == GF_KS_EV_ADDED && strncmp(ev->obj->name, "x", 1) == 0 &&
        w->writes < 3) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"y%d\"}}",
                 w->writes++);
        struct gf_ks_obj *o = mk(w->f, w->f->cm, "a", buf);
        /* The write is stored now; its event comes later. */
        assert_non_null(gf_ks_store_get(w->f->st, w->f->cm, "a", o->name));
    }
    w->depth--;
}

static struct gf_ks_observer *late_obs;
static struct obs late;

static void registrar_cb(void *data, const struct gf_ks_event *ev)
{
    struct fx *f = data;
    if (late_obs == NULL && ev->type == GF_KS_EV_ADDED)
        late_obs = gf_ks_store_observe(f->st, f->cm, obs_cb, &late);
}

static void test_observer_order_and_reentrancy(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    struct olog log = {0};
    struct writer w = {.f = &f, .log = &log};
    struct obs second = {.log = &log, .tag = "s"};
    gf_ks_store_observe(f.st, f.cm, writer_cb, &w);
    gf_ks_store_observe(f.st, f.cm, obs_cb, &second);
    late_obs = NULL;
    late = (struct obs){.log = &log, .tag = "late"};
    gf_ks_store_observe(f.st, f.cm, registrar_cb, &f);
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"x1\"}}");
    /* Never re-entered: writes inside a callback are delivered after. */
    assert_int_equal(w.max_depth, 1);
    assert_int_equal(second.max_depth, 1);
    assert_int_equal(w.writes, 1);
    assert_string_equal(log.lines[0], "w ADDED ConfigMap a/x1");
    assert_string_equal(log.lines[1], "s ADDED ConfigMap a/x1");
    assert_string_equal(log.lines[2], "w ADDED ConfigMap a/y0");
    assert_string_equal(log.lines[3], "s ADDED ConfigMap a/y0");
    /*
     * An observer added during delivery sees only writes made after it
     * was added: y0 was already stored (it can read it).
     */
    assert_int_equal(log.n, 4);
    assert_non_null(late_obs);
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"z\"}}");
    assert_int_equal(log.n, 7);
    assert_string_equal(log.lines[6], "late ADDED ConfigMap a/z");
    gf_ks_store_unobserve(f.st, late_obs);
    fx_done(&f);
}

static void test_watch_cache_replay_and_410(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 4);
    mk_ns(&f, "a");
    uint64_t first = 0;
    for (int i = 0; i < 6; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        struct gf_ks_obj *o = mk(&f, f.cm, "a", buf);
        if (i == 0)
            first = o->rv;
    }
    /* Six events in a ring of four: c0 and c1 are compacted. */
    struct rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    char rv[24];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first);
    struct gf_ks_watch_opts wo = {.rv = rv};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &w, &err),
                     GF_EGONE);
    assert_int_equal(err.code, 410);
    assert_string_equal(err.reason, "Expired");
    assert_int_equal(r.n, 0);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    /* From c1's version: c2..c5 are in the cache and replay in order. */
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 1);
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &w, &err),
                     0);
    assert_int_equal(r.n, 4);
    char want[64];
    snprintf(want, sizeof(want), "ADDED a/c2 %llu",
             (unsigned long long)first + 2);
    assert_string_equal(r.lines[0], want);
    snprintf(want, sizeof(want), "ADDED a/c5 %llu",
             (unsigned long long)first + 5);
    assert_string_equal(r.lines[3], want);
    /* Bookmarks report the current version. */
    gf_ks_watch_bookmark(w);
    snprintf(want, sizeof(want), "BOOKMARK %llu",
             (unsigned long long)gf_ks_store_rv(f.st));
    assert_string_equal(r.lines[4], want);
    /* A version the store has not reached: 504 ResourceVersionTooLarge. */
    snprintf(rv, sizeof(rv), "%llu",
             (unsigned long long)gf_ks_store_rv(f.st) + 5);
    struct gf_ks_watch *wf = NULL;
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &wf, &err),
                     GF_ESERVER);
    assert_int_equal(err.code, 504);
    assert_string_equal(
        gf_json_str(cJSON_GetArrayItem(err.causes, 0), "reason"),
        "ResourceVersionTooLarge");
    assert_int_equal(err.retry_after, 1);
    /* Bad versions are 400. */
    wo.rv = "12abc";
    struct gf_ks_watch *w2 = NULL;
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &w2, &err),
                     GF_EINVALID);
    assert_int_equal(err.code, 400);
    /* rv "0" starts with the current state as ADDED events. */
    struct rec r0 = {0};
    wo.rv = "0";
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r0, &w2, &err),
                     0);
    assert_int_equal(r0.n, 6);
    assert_int_equal(gf_ks_store_watches(f.st), 2);
    /* Restart: watches close, the cache empties, data stays. */
    gf_ks_store_restart(f.st);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, GF_ECANCELED);
    assert_int_equal(r0.closed, 1);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 6);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 4);
    wo.rv = rv;
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r0, &w2, &err),
                     GF_EGONE);
    /* From the current version the new watch works. */
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)gf_ks_store_rv(f.st));
    struct rec r1 = {0};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r1, &w2, &err),
                     0);
    assert_int_equal(r1.n, 0);
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"after\"}}");
    assert_int_equal(r1.n, 1);
    gf_ks_status_clear(&err);
    fx_done(&f);
    assert_int_equal(r1.closed, 1);
}

static void test_watch_selectors_translate_events(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk_ns(&f, "b");
    struct gf_ks_selector *sel = NULL;
    assert_int_equal(gf_ks_selector_parse("team in (x,y)", false, &sel, NULL),
                     0);
    mk(&f, f.cm, "a",
       "{\"metadata\":{\"name\":\"pre\",\"labels\":{\"team\":\"x\"}}}");
    mk(&f, f.cm, "a",
       "{\"metadata\":{\"name\":\"other\",\"labels\":{\"team\":\"z\"}}}");
    struct rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {.ns = "a", .label = sel};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &w, NULL),
                     0);
    gf_ks_selector_free(sel); /* the watch keeps its own copy */
    assert_int_equal(r.n, 1);
    assert_int_equal(strncmp(r.lines[0], "ADDED a/pre ", 12), 0);
    /* Starts matching: ADDED; stops: DELETED; other namespace: nothing. */
    upd(&f, f.cm, "a", "other", "{\"metadata\":{\"labels\":{\"team\":\"y\"}}}",
        GF_KS_MAIN, NULL, NULL);
    upd(&f, f.cm, "a", "pre", "{\"metadata\":{\"labels\":{\"team\":\"q\"}}}",
        GF_KS_MAIN, NULL, NULL);
    upd(&f, f.cm, "a", "pre", "{\"metadata\":{\"labels\":{\"t\":\"q\"}}}",
        GF_KS_MAIN, NULL, NULL);
    mk(&f, f.cm, "b",
       "{\"metadata\":{\"name\":\"elsewhere\",\"labels\":{\"team\":\"x\"}}}");
    assert_int_equal(r.n, 3);
    assert_int_equal(strncmp(r.lines[1], "ADDED a/other ", 14), 0);
    assert_int_equal(strncmp(r.lines[2], "DELETED a/pre ", 14), 0);
    /* Field selectors work the same way. */
    struct gf_ks_selector *fs = NULL;
    assert_int_equal(
        gf_ks_selector_parse("metadata.name=elsewhere", true, &fs, NULL), 0);
    struct rec rf = {0};
    struct gf_ks_watch_opts fo = {.field = fs};
    struct gf_ks_watch *wf = NULL;
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &fo, rec_cb, &rf, &wf, NULL),
                     0);
    gf_ks_selector_free(fs);
    assert_int_equal(rf.n, 1);
    assert_int_equal(strncmp(rf.lines[0], "ADDED b/elsewhere ", 18), 0);
    gf_ks_watch_stop(w);
    gf_ks_watch_stop(wf);
    fx_done(&f);
}

static void test_list_paging_and_selectors(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk_ns(&f, "b");
    const char *names[] = {"e", "a", "d", "c", "b"};
    for (int i = 0; i < 5; i++) {
        char buf[160];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"i\":\"%d\"}}}",
                 names[i], i % 2);
        mk(&f, f.cm, "a", buf);
        mk(&f, f.cm, "b", buf);
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
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"aa\"}}");
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
    fx_done(&f);
}

static void test_namespace_deletion(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk_ns(&f, "keep");
    struct gf_ks_obj *n = gf_ks_store_get(f.st, f.ns, NULL, "a");
    assert_string_equal(field(n, "status.phase"), "Active");
    /* The API server labels every namespace with its name. */
    assert_string_equal(label(n, "kubernetes.io/metadata.name"), "a");
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c\"}}");
    mk(&f, f.wl, "a",
       "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"x/hold\"]}}");
    mk(&f, f.cm, "keep", "{\"metadata\":{\"name\":\"c\"}}");
    bool gone = true;
    assert_int_equal(del(&f, f.ns, NULL, "a", GF_KS_PROP_DEFAULT, &gone), 0);
    assert_false(gone);
    n = gf_ks_store_get(f.st, f.ns, NULL, "a");
    assert_non_null(n);
    assert_string_equal(field(n, "status.phase"), "Terminating");
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "c"));
    assert_non_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    cJSON *j = js("{\"metadata\":{\"name\":\"late\"}}");
    assert_int_equal(
        gf_ks_store_create(f.st, f.cm, "a", j, GF_KS_MAIN, NULL, &err),
        GF_EFORBIDDEN);
    cJSON_Delete(j);
    assert_int_equal(err.code, 403);
    gf_ks_status_clear(&err);
    /* The last finalizer in the namespace goes: so does the namespace. */
    assert_int_equal(
        upd(&f, f.wl, "a", "w", "{\"metadata\":{}}", GF_KS_MAIN, NULL, NULL),
        0);
    assert_null(gf_ks_store_get(f.st, f.wl, "a", "w"));
    assert_null(gf_ks_store_get(f.st, f.ns, NULL, "a"));
    assert_non_null(gf_ks_store_get(f.st, f.cm, "keep", "c"));
    fx_done(&f);
}

static void test_unregister_closes_watches(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w\"}}");
    struct rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {0};
    assert_int_equal(gf_ks_watch_start(f.st, f.wl, &wo, rec_cb, &r, &w, NULL),
                     0);
    size_t bytes = gf_ks_store_bytes(f.st);
    assert_int_equal(
        gf_ks_store_unregister(f.st, "kueue.x-k8s.io", "workloads"), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(strncmp(r.lines[1], "DELETED a/w ", 12), 0);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, GF_ENOTFOUND);
    assert_null(gf_ks_store_type(f.st, "kueue.x-k8s.io", "workloads"));
    assert_true(gf_ks_store_bytes(f.st) < bytes);
    assert_int_equal(
        gf_ks_store_unregister(f.st, "kueue.x-k8s.io", "workloads"),
        GF_ENOTFOUND);
    fx_done(&f);
}

/*
 * A Workload as Kueue writes it for a GPU Job: owner reference, labels,
 * one pod set with a full container, admission and conditions. About
 * 2 KB of compact JSON.
 */
static void workload_json(char *out, size_t cap, int i)
{
    snprintf(
        out, cap,
        "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
        "\"metadata\":{\"name\":\"job-train-%05d-1a2b3\",\"labels\":{"
        "\"kueue.x-k8s.io/job-uid\":\"7f3c2a10-5b8e-4d21-9c44-%012d\","
        "\"team\":\"ml-research\"},\"annotations\":{"
        "\"gpufed.io/placement\":\"east\"},\"ownerReferences\":[{"
        "\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":"
        "\"train-%05d\",\"uid\":\"7f3c2a10-5b8e-4d21-9c44-%012d\","
        "\"controller\":true,\"blockOwnerDeletion\":true}],\"finalizers\":["
        "\"kueue.x-k8s.io/resource-in-use\"]},"
        "\"spec\":{\"active\":true,\"queueName\":\"team-queue\",\"priority\":"
        "100,\"priorityClassSource\":\"kueue.x-k8s.io/workloadpriorityclass\","
        "\"priorityClassName\":\"high\",\"podSets\":[{\"name\":\"main\","
        "\"count\":4,\"template\":{\"metadata\":{\"labels\":{\"app\":"
        "\"train\"}},\"spec\":{\"containers\":[{\"name\":\"trainer\","
        "\"image\":\"registry.example.com/ml/trainer:2026.11.1\",\"command\":"
        "[\"python\",\"-m\",\"train\"],\"args\":[\"--epochs=10\","
        "\"--batch-size=512\",\"--data=/data/set-a\"],\"env\":[{\"name\":"
        "\"NCCL_DEBUG\",\"value\":\"INFO\"},{\"name\":\"WORLD_SIZE\","
        "\"value\":\"4\"}],\"resources\":{\"requests\":{\"cpu\":\"8\","
        "\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"2\"},\"limits\":{"
        "\"nvidia.com/gpu\":\"2\"}},\"volumeMounts\":[{\"name\":\"data\","
        "\"mountPath\":\"/data\"}]}],\"volumes\":[{\"name\":\"data\","
        "\"persistentVolumeClaim\":{\"claimName\":\"datasets\"}}],"
        "\"restartPolicy\":\"Never\",\"nodeSelector\":{"
        "\"nvidia.com/gpu.product\":\"A100\"},\"tolerations\":[{\"key\":"
        "\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":"
        "\"NoSchedule\"}]}}}]},"
        "\"status\":{\"admission\":{\"clusterQueue\":\"team-cq\","
        "\"podSetAssignments\":[{\"name\":\"main\",\"flavors\":{\"cpu\":"
        "\"default\",\"memory\":\"default\",\"nvidia.com/gpu\":\"a100\"},"
        "\"resourceUsage\":{\"cpu\":\"32\",\"memory\":\"256Gi\","
        "\"nvidia.com/gpu\":\"8\"},\"count\":4}]},\"conditions\":[{\"type\":"
        "\"QuotaReserved\",\"status\":\"True\",\"reason\":\"QuotaReserved\","
        "\"message\":\"Quota reserved in ClusterQueue team-cq\","
        "\"lastTransitionTime\":\"2026-11-24T10:00:00Z\","
        "\"observedGeneration\":1},{\"type\":\"Admitted\",\"status\":"
        "\"True\",\"reason\":\"Admitted\",\"message\":\"The workload is "
        "admitted\",\"lastTransitionTime\":\"2026-11-24T10:00:00Z\","
        "\"observedGeneration\":1}]}}",
        i, i, i, i);
}

/*
 * Memory per stored Workload, for the "100 clusters x 1k Workloads in one
 * process" goal: every allocation goes through the counter, so the live
 * byte delta is the true cost (blob, index entry, uid index, owner index,
 * watch-cache reference).
 */
static void test_memory_per_workload(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct fx f;
    int64_t empty = gf_alloc_live_bytes();
    fx_init(&f, 0);
    empty = gf_alloc_live_bytes() - empty;
    mk_ns(&f, "a");
    char buf[4096];
    workload_json(buf, sizeof(buf), 0);
    /* What one parsed cJSON tree of the same object costs. */
    int64_t b0 = gf_alloc_live_bytes(), n0 = gf_alloc_live();
    cJSON *tree = cJSON_Parse(buf);
    int64_t tree_bytes = gf_alloc_live_bytes() - b0;
    int64_t tree_blocks = gf_alloc_live() - n0;
    cJSON_Delete(tree);
    int64_t before = gf_alloc_live_bytes();
    size_t json_len = 0;
    for (int i = 0; i < N; i++) {
        workload_json(buf, sizeof(buf), i);
        cJSON *j = js(buf);
        struct gf_ks_obj *o = NULL;
        assert_int_equal(
            gf_ks_store_create(f.st, f.wl, "a", j, GF_KS_STATUS, &o, NULL), 0);
        json_len += o->len;
        cJSON_Delete(j);
    }
    int64_t created = gf_alloc_live_bytes() - before;
    /* One status write each: the watch cache now holds old versions. */
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof(name), "job-train-%05d-1a2b3", i);
        cJSON *st =
            js("{\"reclaimablePods\":[{\"name\":\"main\",\"count\":1}]}");
        assert_int_equal(
            gf_ks_store_patch_status(f.st, f.wl, "a", name, st, NULL, NULL), 0);
        cJSON_Delete(st);
    }
    int64_t updated = gf_alloc_live_bytes() - before;
    print_message("empty store with %d types: %lld bytes\n", 6,
                  (long long)empty);
    print_message("workload: %zu bytes of compact JSON; cJSON tree %lld bytes "
                  "in %lld blocks\n",
                  json_len / N, (long long)tree_bytes, (long long)tree_blocks);
    print_message("stored: %lld bytes/object after create (store_bytes %zu), "
                  "%lld bytes/object after one update each (watch cache "
                  "holds %d old versions)\n",
                  (long long)(created / N), gf_ks_store_bytes(f.st) / N,
                  (long long)(updated / N), 1024);
    /* The blob dominates: overhead stays under half the JSON size. */
    assert_true(json_len / N > 1800);
    assert_true(created / N < (int64_t)(json_len / N) * 3 / 2);
    assert_true(tree_bytes > (int64_t)(json_len / N) * 3);
    /* A cluster's fixed cost stays small: rings grow on demand. */
    assert_true(empty < (int64_t)32 * 1024);
    fx_done(&f);
}

/* A watch callback that stops its own watch on the second event. */
struct self_stop {
    struct gf_ks_watch *w;
    int seen;
};

static void self_stop_cb(void *data, enum gf_ks_ev_type type,
                         const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)obj;
    (void)rv;
    (void)err;
    struct self_stop *s = data;
    assert_int_not_equal(type, GF_KS_EV_CLOSED);
    if (++s->seen == 2)
        gf_ks_watch_stop(s->w);
}

struct self_unobserve {
    struct gf_ks_store *st;
    struct gf_ks_observer *o;
    int seen;
};

static void self_unobserve_cb(void *data, const struct gf_ks_event *ev)
{
    (void)ev;
    struct self_unobserve *s = data;
    if (++s->seen == 1)
        gf_ks_store_unobserve(s->st, s->o);
}

static bool stop_after_two(void *data, struct gf_ks_obj *o)
{
    (void)o;
    return ++*(int *)data < 2;
}

static void type_names(void *data, const struct gf_ks_rtype *t)
{
    char *out = data;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s%s", n ? "," : "", t->resource);
}

static void test_callbacks_may_stop_themselves(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    struct self_stop ss = {0};
    struct gf_ks_watch_opts wo = {0};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, self_stop_cb, &ss, &ss.w, NULL), 0);
    struct self_unobserve su = {.st = f.st};
    su.o = gf_ks_store_observe(f.st, f.cm, self_unobserve_cb, &su);
    for (int i = 0; i < 4; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        mk(&f, f.cm, "a", buf);
    }
    assert_int_equal(ss.seen, 2);
    assert_int_equal(su.seen, 1);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    /* foreach stops when asked; counts are per type. */
    int n = 0;
    gf_ks_store_foreach(f.st, f.cm, NULL, stop_after_two, &n);
    assert_int_equal(n, 2);
    n = 0;
    gf_ks_store_foreach(f.st, f.cm, "b", stop_after_two, &n);
    assert_int_equal(n, 0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 4);
    assert_int_equal(gf_ks_store_count(f.st, f.wl), 0);
    char names[256] = "";
    gf_ks_store_types(f.st, type_names, names);
    assert_string_equal(names, "namespaces,configmaps,workloads,jobs,pods,"
                               "clusterqueues");
    /* Re-registering a type (a CRD update) keeps its objects. */
    struct gf_ks_rtype *again =
        mk_type("", "configmaps", "ConfigMap", true, true);
    assert_int_equal(gf_ks_store_register(f.st, again), 0);
    assert_ptr_equal(gf_ks_store_type(f.st, "", "configmaps"), f.cm);
    assert_true(f.cm->has_status);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 4);
    assert_string_equal(f.cm->list_kind, "ConfigMapList");
    assert_string_equal(f.cm->singular, "configmap");
    /* A type without versions is refused (and freed). */
    struct gf_ks_rtype *bad = gf_calloc(1, sizeof(*bad));
    bad->group = gf_strdup("x");
    bad->resource = gf_strdup("ys");
    bad->kind = gf_strdup("Y");
    assert_int_equal(gf_ks_store_register(f.st, bad), -EINVAL);
    fx_done(&f);
}

/* Stops another watch (or itself) from a callback outside dispatch. */
struct stopper {
    struct gf_ks_watch *victim;
    int calls, closed;
};

static void stopper_cb(void *data, enum gf_ks_ev_type type,
                       const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)obj;
    (void)rv;
    (void)err;
    struct stopper *s = data;
    s->calls++;
    if (type == GF_KS_EV_CLOSED)
        s->closed++;
    gf_ks_watch_stop(s->victim);
    s->victim = NULL;
}

static void test_stop_from_start_and_close_callbacks(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c1\"}}");
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c2\"}}");
    /* A CLOSED callback stopping a watch that comes later in the list. */
    struct stopper a = {0}, b = {0};
    struct gf_ks_watch *wa = NULL, *wb = NULL;
    struct gf_ks_watch_opts wo = {.rv = "1"};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, stopper_cb, &b, &wb, NULL), 0);
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, stopper_cb, &a, &wa, NULL), 0);
    a.calls = b.calls = 0;
    a.victim = wb; /* wa is first in the list: it closes, then stops wb */
    gf_ks_store_restart(f.st);
    assert_int_equal(a.closed, 1);
    assert_int_equal(b.closed, 0); /* stopped: no CLOSED, as documented */
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    (void)wa;
    fx_done(&f);
}

/* Stops the watch named in data on its first event (inside start). */
static void stop_self_cb(void *data, enum gf_ks_ev_type type,
                         const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)type;
    (void)obj;
    (void)rv;
    (void)err;
    struct gf_ks_watch **w = data;
    gf_ks_watch_stop(*w);
}

static void test_stop_self_inside_start(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c1\"}}");
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c2\"}}");
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {0};
    /* *out is set before the first callback, so the callback can stop. */
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, stop_self_cb, &w, &w, NULL), 0);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"c3\"}}");
    fx_done(&f);
}

/* Unregisters the workloads type when a ConfigMap "crd" is deleted. */
static void crd_observer_cb(void *data, const struct gf_ks_event *ev)
{
    struct fx *f = data;
    if (ev->type == GF_KS_EV_DELETED && strcmp(ev->obj->name, "crd") == 0)
        assert_int_equal(
            gf_ks_store_unregister(f->st, "kueue.x-k8s.io", "workloads"), 0);
}

static void test_unregister_from_an_observer(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"crd\"}}");
    mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w1\"}}");
    mk(&f, f.wl, "a", "{\"metadata\":{\"name\":\"w2\"}}");
    struct olog log = {0};
    struct obs all = {.log = &log, .tag = "all"};
    struct obs wl = {.log = &log, .tag = "wl"};
    gf_ks_store_observe(f.st, NULL, obs_cb, &all);
    gf_ks_store_observe(f.st, f.wl, obs_cb, &wl);
    gf_ks_store_observe(f.st, f.cm, crd_observer_cb, &f);
    struct rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {0};
    assert_int_equal(gf_ks_watch_start(f.st, f.wl, &wo, rec_cb, &r, &w, NULL),
                     0);
    bool gone = false;
    assert_int_equal(del(&f, f.cm, "a", "crd", GF_KS_PROP_DEFAULT, &gone), 0);
    assert_null(gf_ks_store_type(f.st, "kueue.x-k8s.io", "workloads"));
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.close_err, GF_ENOTFOUND);
    /* Every-type observers still see the objects go, after the CRD. */
    before(&log, "all DELETED ConfigMap a/crd", "all DELETED Workload a/w1");
    before(&log, "all DELETED ConfigMap a/crd", "all DELETED Workload a/w2");
    /* Writes go on afterwards. */
    mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"after\"}}");
    fx_done(&f);
}

/* Counts events and checks they arrive in rv order. */
struct seq {
    uint64_t last;
    int n;
};

static void seq_cb(void *data, enum gf_ks_ev_type type,
                   const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    (void)obj;
    (void)err;
    struct seq *q = data;
    if (type == GF_KS_EV_CLOSED)
        return;
    assert_true(rv > q->last);
    q->last = rv;
    q->n++;
}

static void test_watch_cache_grows_then_compacts(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 40);
    mk_ns(&f, "a");
    uint64_t first = gf_ks_store_rv(f.st) + 1;
    for (int i = 0; i < 50; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        mk(&f, f.cm, "a", buf);
    }
    /* 50 events, 40 kept: the first 10 are compacted. */
    char rv[24];
    struct gf_ks_watch *w = NULL;
    struct seq q = {0};
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 8);
    struct gf_ks_watch_opts wo = {.rv = rv};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, seq_cb, &q, &w, NULL),
                     GF_EGONE);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)first + 9);
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, seq_cb, &q, &w, NULL),
                     0);
    assert_int_equal(q.n, 40);
    assert_int_equal(q.last, gf_ks_store_rv(f.st));
    fx_done(&f);
}

/*
 * Foreground deletion ends when no dependent is left, however that
 * happens: a dependent with another live owner only loses the reference,
 * and a dependent may drop its ownerReferences itself.
 */
static void test_gc_foreground_without_deletions(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    char ra[256], rd[256], both[600];
    struct gf_ks_obj *a = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"a\"}}");
    owner_ref(ra, sizeof(ra), "ConfigMap", a);
    struct gf_ks_obj *d = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"d\"}}");
    owner_ref(rd, sizeof(rd), "ConfigMap", d);
    snprintf(both, sizeof(both), "%s,%s", ra, rd);
    mk_owned(&f, "shared", both);
    bool gone = true;
    assert_int_equal(del(&f, f.cm, "a", "a", GF_KS_PROP_FOREGROUND, &gone), 0);
    assert_false(gone);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "a"));
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "shared"));
    /* A dependent that releases its owner by an update. */
    struct gf_ks_obj *b = mk(&f, f.cm, "a", "{\"metadata\":{\"name\":\"b\"}}");
    char rb[256], body[600];
    owner_ref(rb, sizeof(rb), "ConfigMap", b);
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"held\",\"finalizers\":[\"x/h\"],"
             "\"ownerReferences\":[%s]}}",
             rb);
    mk(&f, f.cm, "a", body);
    assert_int_equal(del(&f, f.cm, "a", "b", GF_KS_PROP_FOREGROUND, &gone), 0);
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "b"));
    /* held is being deleted; dropping its reference frees b. */
    assert_int_equal(upd(&f, f.cm, "a", "held",
                         "{\"metadata\":{\"finalizers\":[\"x/h\"]}}",
                         GF_KS_MAIN, NULL, NULL),
                     0);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "b"));
    assert_non_null(gf_ks_store_get(f.st, f.cm, "a", "held"));
    fx_done(&f);
}

/* Paths the other tests leave out, each with the behaviour that matters. */
static void test_more_write_paths(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    /* Ten dependents (more than the GC's first batch) all go. */
    struct gf_ks_obj *job =
        mk(&f, f.job, "a", "{\"metadata\":{\"name\":\"j\"},\"spec\":{}}");
    char r[256];
    owner_ref(r, sizeof(r), "Job", job);
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof(name), "pod%d", i);
        mk_owned(&f, name, r);
    }
    bool gone = false;
    assert_int_equal(del(&f, f.job, "a", "j", GF_KS_PROP_BACKGROUND, &gone), 0);
    assert_int_equal(gf_ks_store_count(f.st, f.cm), 0);
    /* Foreground with a finalizer of its own: only foregroundDeletion goes
     * when the dependents are gone; the object waits for the other. */
    struct gf_ks_obj *o =
        mk(&f, f.cm, "a",
           "{\"metadata\":{\"name\":\"o\",\"finalizers\":[\"x/keep\"]}}");
    owner_ref(r, sizeof(r), "ConfigMap", o);
    mk_owned(&f, "dep", r);
    assert_int_equal(del(&f, f.cm, "a", "o", GF_KS_PROP_FOREGROUND, &gone), 0);
    o = gf_ks_store_get(f.st, f.cm, "a", "o");
    assert_non_null(o);
    assert_null(gf_ks_store_get(f.st, f.cm, "a", "dep"));
    cJSON *j = gf_ks_obj_parse(o);
    const cJSON *fins = gf_json_path(j, "metadata.finalizers");
    assert_int_equal(cJSON_GetArraySize(fins), 1);
    assert_string_equal(cJSON_GetArrayItem(fins, 0)->valuestring, "x/keep");
    cJSON_Delete(j);
    /* A patch that fails leaves the object and the version alone. */
    uint64_t rv = gf_ks_store_rv(f.st);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    const char *jp = "[{\"op\":\"test\",\"path\":\"/metadata/name\","
                     "\"value\":\"other\"},{\"op\":\"remove\",\"path\":"
                     "\"/metadata/finalizers\"}]";
    assert_int_equal(gf_ks_store_patch(f.st, f.cm, "a", "o", GF_KS_PATCH_JSON,
                                       jp, strlen(jp), GF_KS_MAIN, NULL, &err),
                     GF_EINVALID);
    assert_int_equal(err.code, 422);
    assert_int_equal(gf_ks_store_rv(f.st), rv);
    assert_ptr_equal(gf_ks_store_get(f.st, f.cm, "a", "o"), o);
    assert_int_equal(gf_ks_store_patch(f.st, f.cm, "a", "nope",
                                       GF_KS_PATCH_MERGE, "{}", 2, GF_KS_MAIN,
                                       NULL, &err),
                     GF_ENOTFOUND);
    gf_ks_status_clear(&err);
    /* A namespace's spec and status belong to the server. */
    struct gf_ks_obj *ns = NULL;
    assert_int_equal(upd(&f, f.ns, NULL, "a",
                         "{\"metadata\":{\"labels\":{\"x\":\"y\"}},\"spec\":{"
                         "\"finalizers\":[]},\"status\":{\"phase\":\"Gone\"}}",
                         GF_KS_MAIN, &ns, NULL),
                     0);
    assert_string_equal(field(ns, "status.phase"), "Active");
    assert_string_equal(field(ns, "metadata.labels.x"), "y");
    j = gf_ks_obj_parse(ns);
    assert_int_equal(cJSON_GetArraySize(gf_json_path(j, "spec.finalizers")), 1);
    cJSON_Delete(j);
    fx_done(&f);
}

/* Replay from the cache applies the watch's selectors to old events. */
static void test_replay_with_selectors(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 0);
    mk_ns(&f, "a");
    uint64_t from = gf_ks_store_rv(f.st);
    mk(&f, f.cm, "a",
       "{\"metadata\":{\"name\":\"x\",\"labels\":{\"k\":\"1\"}}}");
    mk(&f, f.cm, "a",
       "{\"metadata\":{\"name\":\"y\",\"labels\":{\"k\":\"2\"}}}");
    upd(&f, f.cm, "a", "x", "{\"metadata\":{\"labels\":{\"k\":\"2\"}}}",
        GF_KS_MAIN, NULL, NULL);
    del(&f, f.cm, "a", "y", GF_KS_PROP_DEFAULT, NULL);
    struct gf_ks_selector *sel = NULL;
    assert_int_equal(gf_ks_selector_parse("k=1", false, &sel, NULL), 0);
    char rv[24];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)from);
    struct rec r = {0};
    struct gf_ks_watch *w = NULL;
    struct gf_ks_watch_opts wo = {.rv = rv, .label = sel};
    assert_int_equal(gf_ks_watch_start(f.st, f.cm, &wo, rec_cb, &r, &w, NULL),
                     0);
    gf_ks_selector_free(sel);
    /* x was added matching, then stopped matching; y never matched. */
    assert_int_equal(r.n, 2);
    assert_int_equal(strncmp(r.lines[0], "ADDED a/x ", 10), 0);
    assert_int_equal(strncmp(r.lines[1], "DELETED a/x ", 12), 0);
    gf_ks_watch_stop(w);
    fx_done(&f);
}

/* ---- flow control -------------------------------------------------------- */

/* A recorder that pauses its watch when it has recorded pause_at lines. */
struct prec {
    struct rec r;
    int pause_at;
    struct gf_ks_watch *w;
};

static void prec_cb(void *data, enum gf_ks_ev_type type,
                    const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct prec *p = data;
    rec_cb(&p->r, type, obj, rv, err);
    if (type != GF_KS_EV_CLOSED && p->r.n == p->pause_at)
        gf_ks_watch_pause(p->w);
}

static uint64_t mk_cm(struct fx *f, int i)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
    return mk(f, f->cm, "a", buf)->rv;
}

static void assert_line(const struct rec *r, int i, const char *what,
                        uint64_t rv)
{
    char want[96];
    snprintf(want, sizeof(want), "%s %llu", what, (unsigned long long)rv);
    assert_string_equal(r->lines[i], want);
}

static void test_paused_watch_resumes_from_the_cache(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 64);
    mk_ns(&f, "a");
    uint64_t from = gf_ks_store_rv(f.st), rv[8];
    for (int i = 0; i < 5; i++)
        rv[i] = mk_cm(&f, i);
    struct prec p = {.pause_at = 2};
    struct gf_ks_watch_opts wo = {.rv = NULL};
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)from);
    wo.rv = rvs;
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    /* Paused inside its second event: the replay stops there. */
    assert_int_equal(p.r.n, 2);
    /* A change while paused is not sent now... */
    rv[5] = mk_cm(&f, 5);
    assert_int_equal(p.r.n, 2);
    /* ...and a bookmark says only what the watch has seen. */
    gf_ks_watch_bookmark(p.w);
    assert_int_equal(p.r.n, 3);
    assert_line(&p.r, 2, "BOOKMARK", rv[1]);
    /* Resumed: the rest from the cache, in order, then live again. */
    p.pause_at = 0;
    gf_ks_watch_resume(p.w);
    rv[6] = mk_cm(&f, 6);
    assert_int_equal(p.r.n, 8);
    const int idx[] = {0, 1, -1, 2, 3, 4, 5, 6};
    for (int i = 0; i < 8; i++) {
        if (idx[i] < 0)
            continue;
        char what[32];
        snprintf(what, sizeof(what), "ADDED a/c%d", idx[i]);
        assert_line(&p.r, i, what, rv[idx[i]]);
    }
    assert_int_equal(p.r.closed, 0);
    gf_ks_watch_stop(p.w);
    fx_done(&f);
}

static void test_paused_watch_out_of_the_cache_is_closed(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 4);
    mk_ns(&f, "a");
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu",
             (unsigned long long)gf_ks_store_rv(f.st));
    mk_cm(&f, 0);
    struct prec p = {.pause_at = 1};
    struct gf_ks_watch_opts wo = {.rv = rvs};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    assert_int_equal(p.r.n, 1);
    /* Five more changes in a cache of four: c1 leaves it unsent. */
    for (int i = 1; i < 6; i++)
        mk_cm(&f, i);
    assert_int_equal(p.r.n, 1);
    p.pause_at = 0;
    gf_ks_watch_resume(p.w);
    /* The API server closes a watcher that fell this far behind. */
    assert_int_equal(p.r.closed, 1);
    assert_int_equal(p.r.close_err, GF_EGONE);
    assert_int_equal(p.r.n, 1);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    fx_done(&f);
}

static void test_initial_events_paced_then_bookmark(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 64);
    mk_ns(&f, "a");
    uint64_t rv[8];
    for (int i = 0; i < 4; i++)
        rv[i] = mk_cm(&f, i);
    uint64_t snap = gf_ks_store_rv(f.st);
    struct prec p = {.pause_at = 2};
    struct gf_ks_watch_opts wo = {.ns = "a", .initial_end_bookmark = true};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    assert_int_equal(p.r.n, 2);
    assert_false(gf_ks_watch_initial_done(p.w));
    /* Mid-way through the initial state no version is safe to resume
     * from: no bookmark. */
    gf_ks_watch_bookmark(p.w);
    assert_int_equal(p.r.n, 2);
    rv[4] = mk_cm(&f, 4);
    p.pause_at = 0;
    gf_ks_watch_resume(p.w);
    assert_true(gf_ks_watch_initial_done(p.w));
    /* The rest of the snapshot, its bookmark, then the change made
     * meanwhile, from the cache. */
    assert_int_equal(p.r.n, 6);
    assert_line(&p.r, 2, "ADDED a/c2", rv[2]);
    assert_line(&p.r, 3, "ADDED a/c3", rv[3]);
    assert_line(&p.r, 4, "BOOKMARK", snap);
    assert_line(&p.r, 5, "ADDED a/c4", rv[4]);
    gf_ks_watch_stop(p.w);
    fx_done(&f);
}

/* A callback that writes to the store while a watch catches up: the ring
 * moves under the replay, and nothing is skipped. */
struct writing_rec {
    struct rec r;
    struct fx *f;
};

static void writing_cb(void *data, enum gf_ks_ev_type type,
                       const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct writing_rec *w = data;
    rec_cb(&w->r, type, obj, rv, err);
    if (w->r.n == 1)
        mk_cm(w->f, 99);
}

static void test_catch_up_survives_writes_from_callbacks(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 4);
    mk_ns(&f, "a");
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu",
             (unsigned long long)gf_ks_store_rv(f.st));
    for (int i = 0; i < 4; i++)
        mk_cm(&f, i);
    struct writing_rec w = {.f = &f};
    struct gf_ks_watch *wt = NULL;
    struct gf_ks_watch_opts wo = {.rv = rvs};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, writing_cb, &w, &wt, NULL), 0);
    /* c99 pushed c0 out of the cache of four after c0 was sent. */
    assert_int_equal(w.r.n, 5);
    for (int i = 0; i < 4; i++) {
        char want[32];
        snprintf(want, sizeof(want), "ADDED a/c%d ", i);
        assert_int_equal(strncmp(w.r.lines[i], want, strlen(want)), 0);
    }
    assert_int_equal(strncmp(w.r.lines[4], "ADDED a/c99 ", 12), 0);
    assert_int_equal(w.r.closed, 0);
    gf_ks_watch_stop(wt);
    fx_done(&f);
}

/* Stopping a paused watch frees its held snapshot. */
static void test_stop_paused_initial_watch(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, 64);
    mk_ns(&f, "a");
    for (int i = 0; i < 4; i++)
        mk_cm(&f, i);
    struct prec p = {.pause_at = 1};
    struct gf_ks_watch_opts wo = {.ns = "a"};
    assert_int_equal(
        gf_ks_watch_start(f.st, f.cm, &wo, prec_cb, &p, &p.w, NULL), 0);
    assert_int_equal(p.r.n, 1);
    gf_ks_watch_stop(p.w);
    assert_int_equal(gf_ks_store_watches(f.st), 0);
    fx_done(&f); /* asserts that every allocation came back */
}

int main(void)
{
    gf_kube_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud_and_watch),
        cmocka_unit_test(test_create_metadata_and_generation),
        cmocka_unit_test(test_rv_monotonic_across_types),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_status_subresource),
        cmocka_unit_test(test_conflicts_and_preconditions),
        cmocka_unit_test(test_finalizers_and_deletion_timestamp),
        cmocka_unit_test(test_gc_background_and_shared_owner),
        cmocka_unit_test(test_gc_foreground_chain),
        cmocka_unit_test(test_gc_orphan),
        cmocka_unit_test(test_gc_foreground_without_deletions),
        cmocka_unit_test(test_observer_order_and_reentrancy),
        cmocka_unit_test(test_watch_cache_replay_and_410),
        cmocka_unit_test(test_watch_cache_grows_then_compacts),
        cmocka_unit_test(test_watch_selectors_translate_events),
        cmocka_unit_test(test_list_paging_and_selectors),
        cmocka_unit_test(test_namespace_deletion),
        cmocka_unit_test(test_unregister_closes_watches),
        cmocka_unit_test(test_memory_per_workload),
        cmocka_unit_test(test_callbacks_may_stop_themselves),
        cmocka_unit_test(test_stop_from_start_and_close_callbacks),
        cmocka_unit_test(test_stop_self_inside_start),
        cmocka_unit_test(test_unregister_from_an_observer),
        cmocka_unit_test(test_more_write_paths),
        cmocka_unit_test(test_replay_with_selectors),
        cmocka_unit_test(test_paused_watch_resumes_from_the_cache),
        cmocka_unit_test(test_paused_watch_out_of_the_cache_is_closed),
        cmocka_unit_test(test_initial_events_paced_then_bookmark),
        cmocka_unit_test(test_stop_paused_initial_watch),
        cmocka_unit_test(test_catch_up_survives_writes_from_callbacks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
