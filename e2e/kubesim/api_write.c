/*
 * api_write: the writing verbs of the REST layer: create, update (PUT),
 * patch (merge, JSON, strategic merge, and server-side apply approximated
 * as create-or-merge), delete with DeleteOptions, deletecollection, and
 * dry runs. Request bodies are decoded here (JSON, YAML, or protobuf for
 * what kubectl's typed commands send), checked against the type (apiVersion,
 * kind, the CRD schema, CRD rules) and handed to the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_handlers.h"
#include "e2e/kubesim/managed.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/select.h"

/* ---- bodies ------------------------------------------------------------- */

static bool ctype_is(const char *ct, const char *want)
{
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return strlen(want) == n && strncmp(ct, want, n) == 0;
}

/*
 * Request bodies of create and update: JSON, or YAML as the server also
 * accepts, and protobuf for the kinds kubectl's typed commands send that
 * way (api_proto.c).
 */
int gf__ks_parse_body(const struct gf__ks_rreq *r, cJSON **out,
                      struct gf_ks_status *err)
{
    const struct gf_ks_api_req *q = r->req;
    const char *ct = q->content_type != NULL ? q->content_type : "";
    *out = NULL;
    if (q->body_len > GF__KS_BODY_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the request body is too large");
    if (q->body == NULL || q->body_len == 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the request body is empty");
    if (ctype_is(ct, "application/vnd.kubernetes.protobuf"))
        return gf__ks_proto_decode(q->body, q->body_len, out, err);
    bool yaml = ctype_is(ct, "application/yaml");
    if (!yaml && ct[0] != '\0' && !ctype_is(ct, "application/json"))
        return gf_ks_status_set(err, 415, "UnsupportedMediaType",
                                "the body of the request was in an unknown "
                                "format - accepted media types include: "
                                "application/json, application/yaml");
    cJSON *j = NULL;
    if (yaml) {
        int rc = gf__ks_yaml_doc(q->body, q->body_len, &j, err);
        if (rc < 0)
            return rc;
    } else {
        j = cJSON_ParseWithLength(q->body, q->body_len);
    }
    if (j == NULL)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request could not be "
                                "decoded as JSON");
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    }
    *out = j;
    return 0;
}

/*
 * A kind other than the URL's: the built-in decoder cannot convert it
 * (400); a custom resource fails validation of its kind (422).
 */
static int kind_mismatch(const struct gf_ks_rtype *t,
                         const struct gf_ks_version *ver, const char *kind,
                         const char *name, struct gf_ks_status *err)
{
    if (gf__ks_builtin(t)) {
        /* The internal package is the group's first label ("core"). */
        size_t n = strcspn(t->group, ".");
        return gf_ks_status_set(err, 400, "BadRequest",
                                "%s in version \"%s\" cannot be handled as "
                                "a %s: converting (%s.%s) to (%.*s.%s): "
                                "unknown conversion",
                                kind, ver->name, t->kind, ver->name, kind,
                                n > 0 ? (int)n : 4, n > 0 ? t->group : "core",
                                t->kind);
    }
    char msg[300];
    snprintf(msg, sizeof(msg), "Invalid value: \"%s\": must be %s", kind,
             t->kind);
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              "%s.%s \"%s\" is invalid: kind: %s", kind,
                              t->group, name != NULL ? name : "", msg);
    gf_ks_status_details(err, name, t->group, kind);
    gf_ks_status_cause(err, "FieldValueInvalid", msg, "kind");
    return rc;
}

/*
 * Checks apiVersion and kind of a written object against the type and
 * version of the URL, then sets them to the storage version.
 */
static int fix_type_meta(const struct gf_ks_rtype *t,
                         const struct gf_ks_version *ver, cJSON *obj,
                         const char *name, struct gf_ks_status *err)
{
    char want[256];
    gf__ks_gv(t->group, ver->name, want, sizeof(want));
    const char *av = gf_json_str(obj, "apiVersion");
    if (av != NULL && av[0] != '\0' && strcmp(av, want) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the API version in the data (%s) does not "
                                "match the expected API version (%s)",
                                av, want);
    const char *kind = gf_json_str(obj, "kind");
    if (kind != NULL && kind[0] != '\0' && strcmp(kind, t->kind) != 0)
        return kind_mismatch(t, ver, kind, name, err);
    char stor[256];
    gf__ks_gv(t->group, t->versions[t->storage].name, stor, sizeof(stor));
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
    /* First, in the server's order: serving then needs no rewrite. */
    gf__ks_put_first(obj, "apiVersion", stor);
    gf__ks_put_first(obj, "kind", t->kind);
    return 0;
}

/* Adds the path of each field of a that b lacks to the array out. */
static void pruned_fields(const cJSON *a, const cJSON *b, const char *path,
                          cJSON *out, int depth)
{
    if (depth > 64 || cJSON_GetArraySize(out) >= 32)
        return;
    char sub[512];
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a)
    {
        const cJSON *y;
        if (cJSON_IsObject(a)) {
            snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
                     x->string);
            y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        } else {
            snprintf(sub, sizeof(sub), "%s[%d]", path, i);
            y = cJSON_GetArrayItem(b, i);
        }
        i++;
        if (y == NULL && !cJSON_IsNull(x))
            cJSON_AddItemToArray(out, cJSON_CreateString(sub));
        else if (y != NULL && (cJSON_IsObject(x) || cJSON_IsArray(x)))
            pruned_fields(x, y, sub, out, depth + 1);
    }
}

/*
 * Structural validation of CRD types (built-ins have no schema here).
 * Unknown fields are pruned, or with fieldValidation=Strict refused as the
 * server's strict decoder refuses them (400).
 */
static int validate(struct gf_ks_api *api, const struct gf_ks_rtype *t,
                    const struct gf_ks_version *ver, cJSON *obj,
                    const char *name, bool strict, struct gf_ks_status *err)
{
    if (ver->schema == NULL)
        return 0;
    bool warn = !strict && api->warn_unknown;
    cJSON *before = strict || warn ? cJSON_Duplicate(obj, true) : NULL;
    int rc = gf_ks_schema_validate(ver->schema, obj, t->kind, t->group,
                                   name != NULL ? name : "", err);
    cJSON *pruned = cJSON_CreateArray();
    if (rc == 0 && before != NULL)
        pruned_fields(before, obj, "", pruned, 0);
    struct gf_buf b = GF_BUF_INIT(4096);
    const cJSON *p;
    cJSON_ArrayForEach(p, pruned)
    {
        gf_buf_reset(&b);
        gf_buf_printf(&b, "unknown field \"%s\"", p->valuestring);
        /* The server's default (Warn): one Warning per field, stored. */
        if (warn)
            gf__ks_warn(api, gf_buf_cstr(&b));
    }
    if (strict && cJSON_GetArraySize(pruned) > 0) {
        gf_buf_reset(&b);
        cJSON_ArrayForEach(p, pruned)
        {
            gf_buf_printf(&b, "%sunknown field \"%s\"", b.len > 0 ? ", " : "",
                          p->valuestring);
        }
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "%s in version \"%s\" cannot be handled as a "
                              "%s: strict decoding error: %s",
                              t->kind, ver->name, t->kind, gf_buf_cstr(&b));
    }
    gf_buf_free(&b);
    cJSON_Delete(pruned);
    cJSON_Delete(before);
    return rc;
}

/* fieldValidation=Strict (what kubectl sends when the server validates). */
static bool strict_of(const struct gf__ks_rreq *r)
{
    const char *v = gf__ks_param(r, "fieldValidation");
    return v != NULL && strcmp(v, "Strict") == 0;
}

static bool is_crd_type(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "apiextensions.k8s.io") == 0 &&
           strcmp(t->resource, "customresourcedefinitions") == 0;
}

/* Replaces (or removes) obj's key with a copy of from's. */
static void copy_over(cJSON *obj, const cJSON *from, const char *key)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
    if (v != NULL)
        cJSON_AddItemToObject(obj, key, cJSON_Duplicate(v, true));
}

/*
 * The CRD's validation rules (x-kubernetes-validations), run on the object
 * the store would keep: with a status subresource, a write of the main
 * resource keeps the stored status (a create has none) and a /status
 * write keeps everything else. old is the stored object on an update
 * (transition rules run only then), NULL on a create.
 */
static int check_rules(const struct gf_ks_rtype *t,
                       const struct gf_ks_version *ver, const cJSON *obj,
                       const cJSON *old, enum gf_ks_subres sub,
                       const char *name, struct gf_ks_status *err)
{
    const struct gf_ks_cel_rules *rules =
        ver->schema != NULL ? gf_ks_schema_rules(ver->schema) : NULL;
    if (rules == NULL)
        return 0;
    cJSON *eff = NULL;
    if (t->has_status && sub == GF_KS_STATUS && old != NULL) {
        eff = cJSON_Duplicate(old, true);
        copy_over(eff, obj, "status");
    } else if (t->has_status) {
        eff = cJSON_Duplicate(obj, true);
        copy_over(eff, old, "status");
    }
    int rc = gf_ks_cel_rules_validate(rules, eff != NULL ? eff : obj, old,
                                      t->kind, t->group, name, err);
    cJSON_Delete(eff);
    return rc;
}

/*
 * The stored object, parsed, when the checks of t need it (CRD rules or
 * the Job registry's update rules); NULL otherwise, so that other writes
 * pay no parse. Returned-owned.
 */
static cJSON *old_for_checks(const struct gf_ks_rtype *t,
                             const struct gf_ks_version *ver,
                             const struct gf_ks_obj *cur)
{
    bool rules = ver->schema != NULL && gf_ks_schema_rules(ver->schema);
    if (cur == NULL || (!rules && !gf__ks_is_job(t)))
        return NULL;
    return gf_ks_obj_parse(cur);
}

/*
 * What every write is checked against, in the server's order. old is the
 * stored object for an update or a patch, NULL for a create; patched: the
 * object is the result of a patch (some registry messages say so).
 */
static int check_write_patched(struct gf_ks_api *api,
                               const struct gf_ks_rtype *t,
                               const struct gf_ks_version *ver, cJSON *obj,
                               const cJSON *old, enum gf_ks_subres sub,
                               const char *name, bool strict, bool patched,
                               struct gf_ks_status *err)
{
    const char *nm = name != NULL ? name : "";
    int rc = fix_type_meta(t, ver, obj, nm, err);
    bool job = gf__ks_is_job(t) && sub == GF_KS_MAIN;
    if (rc == 0 && job)
        gf__ks_job_defaults(obj);
    if (rc == 0)
        rc = gf__ks_builtin_check(t, obj, nm, patched, err);
    if (rc == 0)
        rc = validate(api, t, ver, obj, nm, strict, err);
    if (rc == 0)
        rc = check_rules(t, ver, obj, old, sub, nm, err);
    if (rc == 0 && job)
        rc = gf__ks_job_validate(obj, old, nm, err);
    if (rc == 0 && is_crd_type(t))
        rc = gf__ks_crd_check(api, obj, err);
    return rc;
}

static int check_write(struct gf_ks_api *api, const struct gf_ks_rtype *t,
                       const struct gf_ks_version *ver, cJSON *obj,
                       const cJSON *old, enum gf_ks_subres sub,
                       const char *name, bool strict, struct gf_ks_status *err)
{
    return check_write_patched(api, t, ver, obj, old, sub, name, strict, false,
                               err);
}

/* Defaults the registries apply on create (only those clients notice). */
static void defaults(const struct gf_ks_rtype *t, cJSON *obj)
{
    if (t->group[0] == '\0' && strcmp(t->resource, "secrets") == 0) {
        const char *type = gf_json_str(obj, "type");
        if (type == NULL || type[0] == '\0') {
            cJSON_DeleteItemFromObjectCaseSensitive(obj, "type");
            cJSON_AddStringToObject(obj, "type", "Opaque");
        }
    }
}

int gf__ks_create(struct gf_ks_api *api, const struct gf_ks_rtype *t,
                  const struct gf_ks_version *ver, const char *ns, cJSON *obj,
                  bool strict, const struct gf_ks_managed_op *mf,
                  struct gf_ks_obj **out, struct gf_ks_status *err)
{
    const char *name = gf_json_str(obj, "metadata.name");
    char nm[254];
    snprintf(nm, sizeof(nm), "%s", name != NULL ? name : "");
    int rc = check_write(api, t, ver, obj, NULL, GF_KS_MAIN, nm, strict, err);
    const char *rv = gf_json_str(obj, "metadata.resourceVersion");
    /* The storage layer's refusal: a 500 without a reason. */
    if (rc == 0 && rv != NULL && rv[0] != '\0')
        rc = gf_ks_status_set(err, 500, NULL,
                              "resourceVersion should not be set on objects "
                              "to be created");
    enum gf_ks_subres sub = GF_KS_MAIN;
    if (rc == 0)
        defaults(t, obj);
    /* After API defaults, before the registry's own (as the server). */
    if (rc == 0 && mf != NULL)
        gf_ks_managed_update(mf, NULL, obj);
    if (rc == 0 && is_crd_type(t)) {
        /* Established from the start: no status write follows. */
        gf__ks_crd_initial_status(api, obj);
        sub = GF_KS_STATUS;
    }
    if (rc == 0)
        rc = gf_ks_store_create(api->store, t, ns, obj, sub, out, err);
    cJSON_Delete(obj);
    return rc;
}

/* ---- field managers ---------------------------------------------------- */

/*
 * The field manager of a write (managed.h) and what it needs, in *op;
 * name and gv are op's storage. A fieldManager over 128 bytes is the
 * server's 422 on the request's options.
 */
static int managed_op(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                      struct gf_ks_managed_op *op, char *name, size_t cap,
                      char *gv, size_t gv_cap, char now[32],
                      struct gf_ks_status *err)
{
    const char *fm = gf__ks_param(r, "fieldManager");
    const char *m = r->req->method;
    if (fm != NULL && strlen(fm) > GF_KS_MANAGER_MAX) {
        static const char msg[] = "Too long: must have at most 128 bytes";
        const char *kind = strcmp(m, "POST") == 0  ? "CreateOptions"
                           : strcmp(m, "PUT") == 0 ? "UpdateOptions"
                                                   : "PatchOptions";
        int rc = gf_ks_status_set(err, 422, "Invalid",
                                  "%s.meta.k8s.io \"\" is invalid: "
                                  "fieldManager: %s",
                                  kind, msg);
        gf_ks_status_details(err, "", "meta.k8s.io", kind);
        gf_ks_status_cause(err, "FieldValueTooLong", msg, "fieldManager");
        return rc;
    }
    gf_ks_managed_name(fm, r->req->user_agent, name, cap);
    gf__ks_gv(r->t->group, r->ver->name, gv, gv_cap);
    gf_time_rfc3339(gf_clock_wall_ms(api->clock), now);
    *op = (struct gf_ks_managed_op){
        .manager = name,
        .api_version = gv,
        .status = strcmp(r->sub, "status") == 0,
        .schema =
            r->ver->schema != NULL ? gf_ks_schema_root(r->ver->schema) : NULL,
        .has_status = r->t->has_status,
        .kind = r->t->kind,
        .now = now,
    };
    return 0;
}

/* Storage for managed_op's strings, one per request. */
struct mf_ctx {
    struct gf_ks_managed_op op;
    char name[GF_KS_MANAGER_MAX + 1];
    char gv[256];
    char now[32];
};

static int mf_init(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                   struct mf_ctx *c, struct gf_ks_status *err)
{
    return managed_op(api, r, &c->op, c->name, sizeof(c->name), c->gv,
                      sizeof(c->gv), c->now, err);
}

/* ---- dry run ------------------------------------------------------------ */

/*
 * dryRun=All is honoured: the request is checked as a real one would be
 * (type, schema, existence) and answered with the object it would have
 * written, but nothing is stored. Unknown dryRun values are a 400, as on
 * the server.
 */
static int dry_run(const struct gf__ks_rreq *r, bool *dry,
                   struct gf_ks_status *err)
{
    const char *d = gf__ks_param(r, "dryRun");
    *dry = false;
    if (d == NULL || d[0] == '\0')
        return 0;
    if (strcmp(d, "All") != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "Invalid dry run value: %s: valid values "
                                "are \"All\"",
                                d);
    *dry = true;
    return 0;
}

/* ---- create ------------------------------------------------------------- */

static void reply_cjson_obj(const struct gf__ks_rreq *r, int code, cJSON *obj)
{
    char gv[256];
    gf__ks_gv(r->t->group, r->ver->name, gv, sizeof(gv));
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_AddStringToObject(obj, "apiVersion", gv);
    gf__ks_reply_json(r->out, code, obj);
}

void gf__ks_do_create(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    cJSON *obj = NULL;
    bool dry = false;
    struct mf_ctx mf;
    int rc = dry_run(r, &dry, err);
    if (rc == 0)
        rc = mf_init(api, r, &mf, err);
    if (rc == 0)
        rc = gf__ks_parse_body(r, &obj, err);
    if (rc < 0)
        goto fail;
    if (dry) {
        const char *name = gf_json_str(obj, "metadata.name");
        rc = check_write(api, r->t, r->ver, obj, NULL, GF_KS_MAIN, name,
                         strict_of(r), err);
        if (rc < 0)
            goto fail;
        gf_ks_managed_update(&mf.op, NULL, obj);
        reply_cjson_obj(r, 201, obj);
        cJSON_Delete(obj);
        return;
    }
    struct gf_ks_obj *o = NULL;
    rc = gf__ks_create(api, r->t, r->ver, r->ns, obj, strict_of(r), &mf.op, &o,
                       err);
    obj = NULL;
    if (rc < 0)
        goto fail;
    gf__ks_reply_obj(r, 201, o);
    return;
fail:
    cJSON_Delete(obj);
    gf__ks_reply_status(r->out, err);
}

/* ---- update ------------------------------------------------------------- */

static enum gf_ks_subres subres(const struct gf__ks_rreq *r)
{
    return strcmp(r->sub, "status") == 0 ? GF_KS_STATUS : GF_KS_MAIN;
}

/* Leases and Events may be created by PUT, as their strategies allow. */
static bool create_on_update(const struct gf_ks_rtype *t)
{
    return (strcmp(t->group, "coordination.k8s.io") == 0 &&
            strcmp(t->resource, "leases") == 0) ||
           (t->group[0] == '\0' && strcmp(t->resource, "events") == 0);
}

/*
 * The end of an update or a patch: obj (checked, freed here) becomes the
 * stored object, or with dry run is only shown; the reply is 200 either
 * way, or the store's error.
 */
static void store_and_reply(struct gf_ks_api *api, struct gf__ks_rreq *r,
                            cJSON *obj, bool dry, struct gf_ks_status *err)
{
    if (dry) {
        reply_cjson_obj(r, 200, obj);
        cJSON_Delete(obj);
        return;
    }
    struct gf_ks_obj *o = NULL;
    int rc = gf_ks_store_update(api->store, r->t, r->ns, r->name, obj,
                                subres(r), &o, err);
    cJSON_Delete(obj);
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    else
        gf__ks_reply_obj(r, 200, o);
}

/*
 * A PUT of a type whose strategy does not allow unconditional updates
 * (custom resources, Leases, CRDs) must name the version it replaces.
 */
static int rv_required(const struct gf_ks_rtype *t, const char *name,
                       const cJSON *obj, struct gf_ks_status *err)
{
    const char *rv = gf_json_str(obj, "metadata.resourceVersion");
    if (rv != NULL && rv[0] != '\0')
        return 0;
    static const char msg[] = "Invalid value: 0x0: must be specified for an "
                              "update";
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              "%s%s%s \"%s\" is invalid: "
                              "metadata.resourceVersion: %s",
                              t->resource, t->group[0] ? "." : "", t->group,
                              name, msg);
    gf_ks_status_details(err, name, t->group, t->resource);
    gf_ks_status_cause(err, "FieldValueInvalid", msg,
                       "metadata.resourceVersion");
    return rc;
}

void gf__ks_do_update(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    cJSON *obj = NULL;
    bool dry = false;
    struct mf_ctx mf;
    int rc = dry_run(r, &dry, err);
    if (rc == 0)
        rc = mf_init(api, r, &mf, err);
    if (rc == 0)
        rc = gf__ks_parse_body(r, &obj, err);
    struct gf_ks_obj *cur = gf_ks_store_get(api->store, r->t, r->ns, r->name);
    /* Before validation, as the registry's BeforeUpdate checks it. */
    if (rc == 0 && cur != NULL && !r->t->unconditional_update)
        rc = rv_required(r->t, r->name, obj, err);
    if (rc < 0)
        goto fail;
    cJSON *old = old_for_checks(r->t, r->ver, cur);
    rc = check_write(api, r->t, r->ver, obj, old, subres(r), r->name,
                     strict_of(r), err);
    cJSON_Delete(old);
    if (rc < 0)
        goto fail;
    if (cur == NULL && create_on_update(r->t) && subres(r) == GF_KS_MAIN) {
        struct gf_ks_obj *o = NULL;
        if (!dry) {
            rc = gf__ks_create(api, r->t, r->ver, r->ns, obj, strict_of(r),
                               &mf.op, &o, err);
            obj = NULL;
            if (rc < 0)
                goto fail;
            gf__ks_reply_obj(r, 201, o);
        } else {
            gf_ks_managed_update(&mf.op, NULL, obj);
            reply_cjson_obj(r, 201, obj);
        }
        cJSON_Delete(obj);
        return;
    }
    if (dry && cur == NULL) {
        rc = gf_ks_status_not_found(err, r->t->group, r->t->resource, r->name);
        goto fail;
    }
    if (cur != NULL) {
        cJSON *live = gf_ks_obj_parse(cur);
        gf_ks_managed_update(&mf.op, live, obj);
        cJSON_Delete(live);
    }
    store_and_reply(api, r, obj, dry, err);
    return;
fail:
    cJSON_Delete(obj);
    gf__ks_reply_status(r->out, err);
}

/* ---- patch -------------------------------------------------------------- */

enum patch_kind { PK_MERGE, PK_JSON, PK_STRATEGIC, PK_APPLY, PK_UNKNOWN };

static enum patch_kind patch_kind(const char *ct)
{
    if (ct == NULL)
        return PK_UNKNOWN;
    size_t n = strcspn(ct, ";");
    static const struct {
        const char *ct;
        enum patch_kind k;
    } map[] = {
        {"application/merge-patch+json", PK_MERGE},
        {"application/json-patch+json", PK_JSON},
        {"application/strategic-merge-patch+json", PK_STRATEGIC},
        {"application/apply-patch+yaml", PK_APPLY},
        {"application/apply-patch+json", PK_APPLY},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].ct) == n && strncmp(map[i].ct, ct, n) == 0)
            return map[i].k;
    return PK_UNKNOWN;
}

static int unsupported_patch(const struct gf_ks_rtype *t,
                             struct gf_ks_status *err)
{
    if (gf__ks_builtin(t))
        return gf_ks_status_set(
            err, 415, "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted "
            "media types include: application/json-patch+json, "
            "application/merge-patch+json, application/apply-patch+yaml, "
            "application/strategic-merge-patch+json");
    return gf_ks_status_set(
        err, 415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media "
        "types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml");
}

/*
 * Server-side apply: the applied configuration is created when the object
 * is missing and merged into it otherwise, with apply's list semantics
 * (api_apply.c); then field ownership (managed.c) removes what this
 * manager no longer applies and refuses changes to other managers' fields
 * (409) unless force=true. live is the stored object, NULL on a create.
 */
static int apply_patch(struct gf__ks_rreq *r, const struct mf_ctx *mf,
                       const cJSON *live, cJSON **doc, struct gf_ks_status *err)
{
    cJSON *cfg = NULL;
    const struct gf_ks_api_req *q = r->req;
    const char *fm = gf__ks_param(r, "fieldManager");
    if (fm == NULL || fm[0] == '\0') {
        static const char msg[] = "Required value: is required for apply "
                                  "patch";
        int rc = gf_ks_status_set(err, 422, "Invalid",
                                  "PatchOptions.meta.k8s.io \"\" is "
                                  "invalid: fieldManager: %s",
                                  msg);
        gf_ks_status_details(err, "", "meta.k8s.io", "PatchOptions");
        gf_ks_status_cause(err, "FieldValueRequired", msg, "fieldManager");
        return rc;
    }
    if (q->body_len > GF__KS_BODY_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the request body is too large");
    int rc =
        gf__ks_yaml_doc(q->body != NULL ? q->body : "", q->body_len, &cfg, err);
    if (rc < 0)
        return rc;
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    }
    if (gf_json_path(cfg, "metadata.managedFields") != NULL &&
        !cJSON_IsNull(gf_json_path(cfg, "metadata.managedFields")))
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "metadata.managedFields must be nil");
    if (rc == 0)
        rc = gf__ks_apply_merge(r->t, r->ver, doc, cfg, err);
    if (rc == 0 && cJSON_IsObject(*doc))
        rc = gf_ks_managed_apply(&mf->op, live, cfg,
                                 gf__ks_param_true(r, "force"), *doc, err);
    cJSON_Delete(cfg);
    return rc;
}

static int patch_doc(struct gf__ks_rreq *r, const struct mf_ctx *mf,
                     const cJSON *live, enum patch_kind k, cJSON **doc,
                     struct gf_ks_status *err)
{
    const struct gf_ks_api_req *q = r->req;
    if (k == PK_APPLY)
        return apply_patch(r, mf, live, doc, err);
    if (q->body_len > GF_KS_PATCH_MAX)
        return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                "the request body is too large");
    enum gf_ks_patch_type pt = k == PK_JSON        ? GF_KS_PATCH_JSON
                               : k == PK_STRATEGIC ? GF_KS_PATCH_STRATEGIC
                                                   : GF_KS_PATCH_MERGE;
    int rc = gf_ks_patch_apply(pt, doc, q->body != NULL ? q->body : "",
                               q->body_len, err);
    if (rc == 0 && cJSON_IsObject(*doc))
        gf_ks_managed_update(&mf->op, live, *doc);
    return rc;
}

/* A server-side apply of a missing object creates it. */
static void apply_create(struct gf_ks_api *api, struct gf__ks_rreq *r,
                         const struct mf_ctx *mf, bool dry,
                         struct gf_ks_status *err)
{
    cJSON *doc = cJSON_CreateObject();
    int rc = apply_patch(r, mf, NULL, &doc, err);
    const char *name = gf_json_str(doc, "metadata.name");
    if (rc == 0 && (name == NULL || strcmp(name, r->name) != 0))
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "the name of the object (%s) does not match "
                              "the name on the URL (%s)",
                              name != NULL ? name : "", r->name);
    if (rc == 0 && dry) {
        rc = check_write(api, r->t, r->ver, doc, NULL, GF_KS_MAIN, r->name,
                         strict_of(r), err);
        if (rc == 0) {
            reply_cjson_obj(r, 201, doc);
            cJSON_Delete(doc);
            return;
        }
    }
    struct gf_ks_obj *o = NULL;
    if (rc == 0) {
        rc = gf__ks_create(api, r->t, r->ver, r->ns, doc, strict_of(r), NULL,
                           &o, err);
        doc = NULL;
    }
    cJSON_Delete(doc);
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    else
        gf__ks_reply_obj(r, 201, o);
}

void gf__ks_do_patch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                     struct gf_ks_status *err)
{
    enum patch_kind k = patch_kind(r->req->content_type);
    bool dry = false;
    struct mf_ctx mf;
    int rc = dry_run(r, &dry, err);
    cJSON *doc = NULL, *live = NULL;
    if (rc == 0 &&
        (k == PK_UNKNOWN || (k == PK_STRATEGIC && !gf__ks_builtin(r->t))))
        rc = unsupported_patch(r->t, err);
    if (rc == 0)
        rc = mf_init(api, r, &mf, err);
    if (rc < 0)
        goto fail;
    struct gf_ks_obj *cur = gf_ks_store_get(api->store, r->t, r->ns, r->name);
    if (cur == NULL && k == PK_APPLY && subres(r) == GF_KS_MAIN) {
        apply_create(api, r, &mf, dry, err);
        return;
    }
    if (cur == NULL) {
        rc = gf_ks_status_not_found(err, r->t->group, r->t->resource, r->name);
        goto fail;
    }
    /* The patch applies to the object as the client sees it. */
    doc = gf_ks_obj_parse(cur);
    char gv[256];
    gf__ks_gv(r->t->group, r->ver->name, gv, sizeof(gv));
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "apiVersion");
    cJSON_AddStringToObject(doc, "apiVersion", gv);
    live = cJSON_Duplicate(doc, true);
    rc = patch_doc(r, &mf, live, k, &doc, err);
    if (rc == 0 && !cJSON_IsObject(doc))
        rc = gf_ks_status_set(err, 422, "Invalid",
                              "the patched object is not an object");
    if (rc == 0) {
        cJSON *old = old_for_checks(r->t, r->ver, cur);
        rc = check_write_patched(api, r->t, r->ver, doc, old, subres(r),
                                 r->name, strict_of(r), true, err);
        cJSON_Delete(old);
    }
    cJSON_Delete(live);
    live = NULL;
    if (rc < 0)
        goto fail;
    store_and_reply(api, r, doc, dry, err);
    return;
fail:
    cJSON_Delete(live);
    cJSON_Delete(doc);
    gf__ks_reply_status(r->out, err);
}

/* ---- delete ------------------------------------------------------------- */

struct del_opts {
    struct gf_ks_delete_opts o;
    cJSON *body; /* owns the strings o points at */
    bool dry;
    bool no_orphan; /* orphanDependents=false was given */
};

static int parse_propagation(const char *s, enum gf_ks_propagation *p,
                             struct gf_ks_status *err)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    if (strcmp(s, "Foreground") == 0)
        *p = GF_KS_PROP_FOREGROUND;
    else if (strcmp(s, "Background") == 0)
        *p = GF_KS_PROP_BACKGROUND;
    else if (strcmp(s, "Orphan") == 0)
        *p = GF_KS_PROP_ORPHAN;
    else {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "Unsupported value: \"%s\": supported values: "
                 "\"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                 s);
        int rc = gf_ks_status_set(err, 422, "Invalid",
                                  "DeleteOptions.meta.k8s.io \"\" is invalid: "
                                  "propagationPolicy: %s",
                                  msg);
        gf_ks_status_details(err, "", "meta.k8s.io", "DeleteOptions");
        gf_ks_status_cause(err, "FieldValueNotSupported", msg,
                           "propagationPolicy");
        return rc;
    }
    return 0;
}

static bool body_dry_run(const cJSON *body)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(body, "dryRun"))
    {
        if (cJSON_IsString(d) && strcmp(d->valuestring, "All") == 0)
            return true;
    }
    return false;
}

/*
 * DeleteOptions from the body and the query (gracePeriodSeconds is
 * accepted and ignored: deletion is immediate unless finalizers hold).
 */
static int parse_delete(const struct gf__ks_rreq *r, struct del_opts *d,
                        struct gf_ks_status *err)
{
    memset(d, 0, sizeof(*d));
    int rc = dry_run(r, &d->dry, err);
    const struct gf_ks_api_req *q = r->req;
    if (rc == 0 && q->body != NULL && q->body_len > 0) {
        if (q->body_len > GF__KS_BODY_MAX)
            return gf_ks_status_set(err, 413, "RequestEntityTooLarge",
                                    "the request body is too large");
        d->body = cJSON_ParseWithLength(q->body, q->body_len);
        if (!cJSON_IsObject(d->body))
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "the body of the request could not be "
                                    "decoded as DeleteOptions");
        rc = parse_propagation(gf_json_str(d->body, "propagationPolicy"),
                               &d->o.propagation, err);
        d->o.uid = gf_json_str(d->body, "preconditions.uid");
        d->o.rv = gf_json_str(d->body, "preconditions.resourceVersion");
        bool orphan;
        if (gf_json_bool(d->body, "orphanDependents", &orphan) == 0) {
            d->no_orphan = !orphan;
            if (d->o.propagation == GF_KS_PROP_DEFAULT)
                d->o.propagation =
                    orphan ? GF_KS_PROP_ORPHAN : GF_KS_PROP_BACKGROUND;
        }
        d->dry = d->dry || body_dry_run(d->body);
    }
    if (rc == 0)
        rc = parse_propagation(gf__ks_param(r, "propagationPolicy"),
                               &d->o.propagation, err);
    const char *od = gf__ks_param(r, "orphanDependents");
    if (od != NULL)
        d->no_orphan = d->no_orphan || strcmp(od, "false") == 0;
    if (rc == 0 && od != NULL && d->o.propagation == GF_KS_PROP_DEFAULT)
        d->o.propagation =
            strcmp(od, "true") == 0 ? GF_KS_PROP_ORPHAN : GF_KS_PROP_BACKGROUND;
    return rc;
}

/*
 * The answer to a delete. An immediate removal is answered with a
 * Success Status naming the object (custom resources too); objects kept
 * by finalizers are answered with the object. The code is 200 even when
 * finalizers hold the object, except that orphanDependents=false asks for
 * 202 (the API server keeps this for old clients).
 */
static void reply_deleted(const struct gf__ks_rreq *r, struct gf_ks_obj *o,
                          bool gone, bool no_orphan)
{
    if (!gone) {
        gf__ks_reply_obj(r, no_orphan ? 202 : 200, o);
        return;
    }
    cJSON *s = gf_ks_status_success();
    cJSON *d = cJSON_AddObjectToObject(s, "details");
    cJSON_AddStringToObject(d, "name", o->name);
    if (r->t->group[0] != '\0')
        cJSON_AddStringToObject(d, "group", r->t->group);
    cJSON_AddStringToObject(d, "kind", r->t->resource);
    cJSON *j = gf_ks_obj_parse(o);
    const char *uid = gf_json_str(j, "metadata.uid");
    if (uid != NULL)
        cJSON_AddStringToObject(d, "uid", uid);
    cJSON_Delete(j);
    gf__ks_reply_json(r->out, 200, s);
    cJSON_Delete(s);
}

/* True when the delete's uid/resourceVersion preconditions hold. */
static bool preconditions_hold(struct gf_ks_api *api,
                               const struct gf__ks_rreq *r,
                               const struct gf_ks_delete_opts *o)
{
    struct gf_ks_obj *cur = gf_ks_store_get(api->store, r->t, r->ns, r->name);
    if (cur == NULL)
        return false;
    char rv[24];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)cur->rv);
    if (o->rv != NULL && o->rv[0] != '\0' && strcmp(o->rv, rv) != 0)
        return false;
    if (o->uid == NULL || o->uid[0] == '\0')
        return true;
    cJSON *j = gf_ks_obj_parse(cur);
    const char *uid = gf_json_str(j, "metadata.uid");
    bool ok = uid != NULL && strcmp(uid, o->uid) == 0;
    cJSON_Delete(j);
    return ok;
}

void gf__ks_do_delete(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    struct del_opts d;
    int rc = parse_delete(r, &d, err);
    if (rc == 0 && d.dry) {
        struct gf_ks_obj *cur =
            gf_ks_store_get(api->store, r->t, r->ns, r->name);
        if (cur == NULL)
            rc = gf_ks_status_not_found(err, r->t->group, r->t->resource,
                                        r->name);
        else
            gf__ks_reply_obj(r, 200, cur);
    } else if (rc == 0) {
        struct gf_ks_obj *o = NULL;
        bool gone = false;
        if (is_crd_type(r->t) && preconditions_hold(api, r, &d.o))
            gf__ks_crd_cleanup(api, r->name);
        rc = gf_ks_store_delete(api->store, r->t, r->ns, r->name, &d.o, &o,
                                &gone, err);
        if (rc == 0)
            reply_deleted(r, o, gone, d.no_orphan);
    }
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    cJSON_Delete(d.body);
}

void gf__ks_do_deletecollection(struct gf_ks_api *api, struct gf__ks_rreq *r,
                                struct gf_ks_status *err)
{
    struct del_opts d;
    struct gf__ks_sels s;
    struct gf_ks_list l = {0};
    int rc = parse_delete(r, &d, err);
    if (rc == 0)
        rc = gf__ks_parse_selectors(r, &s, err);
    else
        memset(&s, 0, sizeof(s));
    if (rc == 0) {
        struct gf_ks_list_opts lo = {
            .ns = r->ns, .label = s.label, .field = s.field};
        rc = gf_ks_store_list(api->store, r->t, &lo, &l, err);
    }
    gf__ks_sels_free(&s);
    /* The answer lists what was deleted, as the registry does. */
    for (size_t i = 0; rc == 0 && !d.dry && i < l.n; i++) {
        struct gf_ks_delete_opts o = {.propagation = d.o.propagation};
        struct gf_ks_status e2;
        gf_ks_status_init(&e2);
        gf_ks_store_delete(api->store, r->t, l.items[i]->ns, l.items[i]->name,
                           &o, NULL, NULL, &e2);
        gf_ks_status_clear(&e2);
    }
    if (rc == 0) {
        struct gf_buf b = GF_BUF_INIT(GF__KS_LIST_MAX);
        if (gf__ks_list_body(&b, r, &l) == 0)
            gf__ks_reply_buf(r->out, 200, &b);
        else
            rc = gf_ks_status_set(err, 500, "InternalError",
                                  "the list is too large to send");
        gf_buf_free(&b);
    }
    if (rc < 0)
        gf__ks_reply_status(r->out, err);
    gf_ks_list_free(&l);
    cJSON_Delete(d.body);
}
