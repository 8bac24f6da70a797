/*
 * store_testkit: the fixture and helpers of the store tests
 * (store_testkit.h).
 */
#include "e2e/kubesim/test/store_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"

struct gf_ks_rtype *ks_sttk_mk_type(const char *group, const char *resource,
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

void ks_sttk_init(struct ks_sttk_fx *f, size_t watch_cache)
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
    struct gf_ks_rtype *job =
        ks_sttk_mk_type("batch", "jobs", "Job", true, true);
    job->default_orphan = true;
    assert_int_equal(
        gf_ks_store_register(
            f->st, ks_sttk_mk_type("", "namespaces", "Namespace", false, true)),
        0);
    assert_int_equal(
        gf_ks_store_register(
            f->st, ks_sttk_mk_type("", "configmaps", "ConfigMap", true, false)),
        0);
    assert_int_equal(gf_ks_store_register(
                         f->st, ks_sttk_mk_type("kueue.x-k8s.io", "workloads",
                                                "Workload", true, true)),
                     0);
    assert_int_equal(gf_ks_store_register(f->st, job), 0);
    assert_int_equal(gf_ks_store_register(
                         f->st, ks_sttk_mk_type("", "pods", "Pod", true, true)),
                     0);
    assert_int_equal(
        gf_ks_store_register(f->st,
                             ks_sttk_mk_type("kueue.x-k8s.io", "clusterqueues",
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

void ks_sttk_done(struct ks_sttk_fx *f)
{
    gf_ks_store_free(f->st);
    gf_clock_close(&f->clock);
    assert_int_equal(gf_alloc_live(), f->base);
}

cJSON *ks_sttk_js(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

/* Creates from JSON text; asserts success; returns the stored object. */
struct gf_ks_obj *ks_sttk_mk(struct ks_sttk_fx *f, const struct gf_ks_rtype *t,
                             const char *ns, const char *json)
{
    cJSON *j = ks_sttk_js(json);
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

void ks_sttk_mk_ns(struct ks_sttk_fx *f, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\"}}", name);
    ks_sttk_mk(f, f->ns, NULL, buf);
}

/* A string field of a stored object, copied into a static buffer. */
/*
 * field/ifield/has read a literal dotted path of an object: they are
 * macros so that gf_json_path's literal-only check reaches the call site.
 * Keys from data (label names) go through ks_sttk_label(), key by key.
 */
const char *ks_sttk_field_str(const struct gf_ks_obj *o, const char *path)
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

int64_t ks_sttk_field_int(const struct gf_ks_obj *o, const char *path)
{
    cJSON *j = gf_ks_obj_parse(o);
    int64_t v = -1;
    gf_json_as_int(gf__json_path(j, path), &v);
    cJSON_Delete(j);
    return v;
}

bool ks_sttk_field_has(const struct gf_ks_obj *o, const char *path)
{
    cJSON *j = gf_ks_obj_parse(o);
    bool r = gf__json_path(j, path) != NULL;
    cJSON_Delete(j);
    return r;
}

/* metadata.labels[key], or "<none>"; the key is taken whole. */
const char *ks_sttk_label(const struct gf_ks_obj *o, const char *key)
{
    static char buf[256];
    cJSON *j = gf_ks_obj_parse(o);
    const char *s = gf_json_as_str(GF_JSON_AT(j, "metadata", "labels", key));
    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "<none>");
    cJSON_Delete(j);
    return buf;
}

void ks_sttk_rec_cb(void *data, enum gf_ks_ev_type type,
                    const struct gf_ks_obj *obj, uint64_t rv, int err)
{
    struct ks_sttk_rec *r = data;
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

void ks_sttk_olog_add(struct ks_sttk_olog *l, const char *tag,
                      const struct gf_ks_event *ev)
{
    assert_true(l->n < 64);
    snprintf(l->lines[l->n++], 128, "%s %s %s %s/%s", tag,
             gf_ks_ev_name(ev->type), ev->rtype->kind, ev->obj->ns,
             ev->obj->name);
}

void ks_sttk_obs_cb(void *data, const struct gf_ks_event *ev)
{
    struct ks_sttk_obs *o = data;
    o->depth++;
    if (o->depth > o->max_depth)
        o->max_depth = o->depth;
    /* Every event carries the parsed trees; rv matches the blob. */
    assert_non_null(ev->obj_json);
    assert_int_equal(ev->rv, ev->obj->rv);
    assert_true((ev->old == NULL) == (ev->type == GF_KS_EV_ADDED));
    ks_sttk_olog_add(o->log, o->tag, ev);
    o->depth--;
}

int ks_sttk_olog_find(const struct ks_sttk_olog *l, const char *line)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->lines[i], line) == 0)
            return i;
    return -1;
}

void ks_sttk_olog_dump(const struct ks_sttk_olog *l)
{
    for (int i = 0; i < l->n; i++)
        print_message("  %s\n", l->lines[i]);
}

/* Asserts that line a comes before line b in the log. */
void ks_sttk_before(const struct ks_sttk_olog *l, const char *a, const char *b)
{
    int ia = ks_sttk_olog_find(l, a), ib = ks_sttk_olog_find(l, b);
    if (ia < 0 || ib < 0 || ia >= ib) {
        ks_sttk_olog_dump(l);
        fail_msg("expected \"%s\" (%d) before \"%s\" (%d)", a, ia, b, ib);
    }
}

int ks_sttk_upd(struct ks_sttk_fx *f, const struct gf_ks_rtype *t,
                const char *ns, const char *name, const char *json,
                enum gf_ks_subres sub, struct gf_ks_obj **out,
                struct gf_ks_status *err)
{
    cJSON *j = ks_sttk_js(json);
    int rc = gf_ks_store_update(f->st, t, ns, name, j, sub, out, err);
    cJSON_Delete(j);
    return rc;
}

int ks_sttk_del(struct ks_sttk_fx *f, const struct gf_ks_rtype *t,
                const char *ns, const char *name, enum gf_ks_propagation prop,
                bool *gone)
{
    struct gf_ks_delete_opts o = {.propagation = prop};
    return gf_ks_store_delete(f->st, t, ns, name, &o, NULL, gone, NULL);
}

/* An ownerReferences entry naming o. */
void ks_sttk_owner_ref(char *out, size_t cap, const char *kind,
                       const struct gf_ks_obj *o)
{
    snprintf(out, cap,
             "{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"name\":\"%s\","
             "\"uid\":\"%s\",\"blockOwnerDeletion\":true}",
             kind, o->name, ks_sttk_field(o, "metadata.uid"));
}

/* Creates a ConfigMap in "a" owned by the given refs (JSON array body). */
struct gf_ks_obj *ks_sttk_mk_owned(struct ks_sttk_fx *f, const char *name,
                                   const char *refs)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"ownerReferences\":[%s]}}", name,
             refs);
    return ks_sttk_mk(f, f->cm, "a", buf);
}
