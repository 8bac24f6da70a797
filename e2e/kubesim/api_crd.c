/*
 * api_crd: CustomResourceDefinitions become served types, as in the
 * apiextensions server.
 *
 * The API layer observes the CRD type in the store: an added or changed
 * CRD (re)registers its type with the schema of every version (interned in
 * the process-wide catalog, so a hundred clusters hold one copy of the
 * Workload schema), its printer columns and its status subresource; a
 * removed CRD unregisters the type, which deletes its objects and ends
 * its watches. The CRD's status then gets the conditions the server writes
 * (NamesAccepted, Established), which `kubectl wait
 * --for=condition=established` waits for.
 *
 * CRDs are checked before they are stored: the fields the server requires
 * and the name rule (metadata.name = plural.group); a CRD may not take
 * the name of a built-in type. Validation rules (x-kubernetes-validations)
 * that kubesim's CEL subset cannot evaluate are reported when the CRD is
 * registered: a warning per rule and a counter, never a silent skip.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_handlers.h"
#include "e2e/kubesim/patch.h"

#define CRD_KIND "CustomResourceDefinition.apiextensions.k8s.io"

/* ---- checks ------------------------------------------------------------- */

static int crd_invalid(struct gf_ks_status *err, const char *name,
                       const char *field, const char *detail)
{
    int rc =
        gf_ks_status_set(err, 422, "Invalid", "%s \"%s\" is invalid: %s: %s",
                         CRD_KIND, name, field, detail);
    gf_ks_status_details(err, name, "apiextensions.k8s.io",
                         "CustomResourceDefinition");
    gf_ks_status_cause(err, "FieldValueInvalid", detail, field);
    return rc;
}

static int check_versions(const cJSON *vs, const char *name,
                          struct gf_ks_status *err)
{
    if (!cJSON_IsArray(vs) || cJSON_GetArraySize(vs) == 0)
        return crd_invalid(err, name, "spec.versions",
                           "Required value: must have exactly one version "
                           "marked as storage version");
    int storage = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vs)
    {
        if (gf_json_str(v, "name") == NULL)
            return crd_invalid(err, name, "spec.versions.name",
                               "Required value");
        storage += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "storage"));
    }
    if (storage != 1)
        return crd_invalid(err, name, "spec.versions",
                           "Invalid value: must have exactly one version "
                           "marked as storage version");
    return 0;
}

int gf__ks_crd_check(struct gf_ks_api *api, const cJSON *crd,
                     struct gf_ks_status *err)
{
    const char *name = gf_json_str(crd, "metadata.name");
    const char *group = gf_json_str(crd, "spec.group");
    const char *plural = gf_json_str(crd, "spec.names.plural");
    const char *kind = gf_json_str(crd, "spec.names.kind");
    const char *scope = gf_json_str(crd, "spec.scope");
    const char *nm = name != NULL ? name : "";
    if (group == NULL || group[0] == '\0' || strchr(group, '.') == NULL)
        return crd_invalid(err, nm, "spec.group",
                           "Invalid value: should be a domain with at least "
                           "one dot");
    if (plural == NULL || plural[0] == '\0')
        return crd_invalid(err, nm, "spec.names.plural", "Required value");
    if (kind == NULL || kind[0] == '\0')
        return crd_invalid(err, nm, "spec.names.kind", "Required value");
    if (scope == NULL ||
        (strcmp(scope, "Namespaced") != 0 && strcmp(scope, "Cluster") != 0))
        return crd_invalid(err, nm, "spec.scope",
                           "Unsupported value: supported values: "
                           "\"Cluster\", \"Namespaced\"");
    char want[400];
    snprintf(want, sizeof(want), "%s.%s", plural, group);
    if (strcmp(nm, want) != 0)
        return crd_invalid(err, nm, "metadata.name",
                           "Invalid value: must be spec.names.plural+\".\"+"
                           "spec.group");
    int rc = check_versions(gf_json_path(crd, "spec.versions"), nm, err);
    if (rc < 0)
        return rc;
    const struct gf_ks_rtype *t =
        gf_ks_store_type(gf_ks_api_store(api), group, plural);
    if (t != NULL && gf__ks_builtin(t))
        return crd_invalid(err, nm, "spec.group",
                           "Invalid value: the group/resource is served by "
                           "a built-in type");
    return 0;
}

/* ---- registration ------------------------------------------------------- */

static char **strv_of(const cJSON *arr)
{
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n == 0)
        return NULL;
    char **v = gf_calloc((size_t)n + 1, sizeof(*v));
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e))
            v[i++] = gf_strdup(e->valuestring);
    }
    return v;
}

static void fill_version(struct gf_ks_api *api, struct gf_ks_version *out,
                         const cJSON *v, bool *has_status)
{
    out->name = gf_strdup(gf_json_str(v, "name"));
    out->served = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "served"));
    out->storage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "storage"));
    const cJSON *schema = gf_json_path(v, "schema.openAPIV3Schema");
    if (cJSON_IsObject(schema))
        out->schema = gf_ks_schema_intern(api->catalog->schemas, schema);
    const cJSON *pc =
        cJSON_GetObjectItemCaseSensitive(v, "additionalPrinterColumns");
    if (cJSON_IsArray(pc))
        out->printer_columns = cJSON_Duplicate(pc, true);
    if (gf_json_path(v, "subresources.status") != NULL && out->storage)
        *has_status = true;
}

/* Builds the type a stored (already checked) CRD describes. */
static struct gf_ks_rtype *crd_type(struct gf_ks_api *api, const cJSON *crd)
{
    const cJSON *names = gf_json_path(crd, "spec.names");
    const cJSON *vs = gf_json_path(crd, "spec.versions");
    struct gf_ks_rtype *t = gf_calloc(1, sizeof(*t));
    t->group = gf_strdup(gf_json_str(crd, "spec.group"));
    t->resource = gf_strdup(gf_json_str(names, "plural"));
    t->kind = gf_strdup(gf_json_str(names, "kind"));
    t->list_kind = gf_strdup(gf_json_str(names, "listKind"));
    t->singular = gf_strdup(gf_json_str(names, "singular"));
    t->short_names = strv_of(gf_json_path(names, "shortNames"));
    t->categories = strv_of(gf_json_path(names, "categories"));
    const char *scope = gf_json_str(crd, "spec.scope");
    t->namespaced = scope != NULL && strcmp(scope, "Namespaced") == 0;
    t->n_versions = (size_t)cJSON_GetArraySize(vs);
    t->versions = gf_calloc(t->n_versions, sizeof(*t->versions));
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vs)
    {
        fill_version(api, &t->versions[i], v, &t->has_status);
        if (t->versions[i].storage)
            t->storage = i;
        i++;
    }
    return t;
}

static bool has_true_condition(const cJSON *crd, const char *type)
{
    return gf_json_cond_true(gf_json_path(crd, "status.conditions"), type);
}

static cJSON *condition(const char *type, const char *reason,
                        const char *message, const char *now)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "status", "True");
    cJSON_AddStringToObject(c, "lastTransitionTime", now);
    cJSON_AddStringToObject(c, "reason", reason);
    cJSON_AddStringToObject(c, "message", message);
    return c;
}

/* The status the apiextensions controllers write for accepted names. */
static cJSON *crd_status(struct gf_ks_api *api, const cJSON *crd)
{
    char now[32];
    gf_time_rfc3339(gf_clock_wall_ms(api->clock), now);
    cJSON *st = cJSON_CreateObject();
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    cJSON_AddItemToArray(conds, condition("NamesAccepted", "NoConflicts",
                                          "no conflicts found", now));
    cJSON_AddItemToArray(
        conds, condition("Established", "InitialNamesAccepted",
                         "the initial names have been accepted", now));
    const cJSON *names = gf_json_path(crd, "spec.names");
    if (names != NULL)
        cJSON_AddItemToObject(st, "acceptedNames",
                              cJSON_Duplicate(names, true));
    cJSON *sv = cJSON_AddArrayToObject(st, "storedVersions");
    const cJSON *v;
    cJSON_ArrayForEach(v, gf_json_path(crd, "spec.versions"))
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "storage")))
            cJSON_AddItemToArray(sv,
                                 cJSON_CreateString(gf_json_str(v, "name")));
    }
    return st;
}

void gf__ks_crd_initial_status(struct gf_ks_api *api, cJSON *crd)
{
    cJSON_DeleteItemFromObjectCaseSensitive(crd, "status");
    cJSON_AddItemToObject(crd, "status", crd_status(api, crd));
}

/*
 * Writes the status for a CRD stored without it (objects created through
 * the store directly). CRDs created through the API carry it from the
 * start, so this is rarely a write.
 */
static void establish(struct gf_ks_api *api, const struct gf_ks_rtype *crdt,
                      const cJSON *crd)
{
    if (has_true_condition(crd, "Established"))
        return;
    cJSON *st = crd_status(api, crd);
    const char *name = gf_json_str(crd, "metadata.name");
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_store_patch_status(gf_ks_api_store(api), crdt, NULL, name,
                                      st, NULL, &err);
    if (rc < 0)
        GF_LOG(&api->lc, GF_LOG_WARN, "crd status not written",
               "name=%s err=%s", name, err.message);
    gf_ks_status_clear(&err);
    cJSON_Delete(st);
}

struct unsupported_ctx {
    struct gf_ks_api *api;
    const char *crd, *version;
};

static void log_unsupported(void *data, const char *path, const char *rule,
                            const char *why)
{
    struct unsupported_ctx *u = data;
    u->api->cel_unsupported++;
    char qr[600], qw[200];
    gf_log_quote(qr, sizeof(qr), rule);
    gf_log_quote(qw, sizeof(qw), why);
    GF_LOG(&u->api->lc, GF_LOG_WARN, "crd rule not evaluated",
           "crd=%s version=%s path=%s rule=%s reason=%s", u->crd, u->version,
           path, qr, qw);
}

static void report_rules(struct gf_ks_api *api, const cJSON *crd)
{
    const struct gf_ks_rtype *t =
        gf_ks_store_type(gf_ks_api_store(api), gf_json_str(crd, "spec.group"),
                         gf_json_str(crd, "spec.names.plural"));
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_versions; i++) {
        if (t->versions[i].schema == NULL)
            continue;
        struct unsupported_ctx u = {api, gf_json_str(crd, "metadata.name"),
                                    t->versions[i].name};
        gf_ks_cel_rules_each_unsupported(
            gf_ks_schema_rules(t->versions[i].schema), log_unsupported, &u);
    }
}

static void crd_changed(struct gf_ks_api *api, const struct gf_ks_event *ev)
{
    const cJSON *crd = ev->obj_json;
    const char *group = gf_json_str(crd, "spec.group");
    const char *plural = gf_json_str(crd, "spec.names.plural");
    if (group == NULL || plural == NULL)
        return;
    struct gf_ks_store *st = gf_ks_api_store(api);
    const struct gf_ks_rtype *cur = gf_ks_store_type(st, group, plural);
    if (cur != NULL && gf__ks_builtin(cur))
        return;
    if (ev->type == GF_KS_EV_DELETED) {
        if (cur != NULL)
            gf_ks_store_unregister(st, group, plural);
        GF_LOG(&api->lc, GF_LOG_INFO, "crd removed", "group=%s resource=%s",
               group, plural);
        return;
    }
    /* A status-only change (our own establish() included) keeps the type. */
    const cJSON *old_spec = gf_json_path(ev->old_json, "spec");
    if (cur != NULL && old_spec != NULL &&
        gf_json_equal(old_spec, gf_json_path(crd, "spec"))) {
        establish(api, ev->rtype, crd);
        return;
    }
    int rc = gf_ks_store_register(st, crd_type(api, crd));
    if (rc < 0) {
        GF_LOG(&api->lc, GF_LOG_WARN, "crd not registered",
               "group=%s resource=%s", group, plural);
        return;
    }
    if (cur == NULL)
        GF_LOG(&api->lc, GF_LOG_DEBUG, "crd registered", "group=%s resource=%s",
               group, plural);
    report_rules(api, crd);
    establish(api, ev->rtype, crd);
}

static void on_crd(void *data, const struct gf_ks_event *ev)
{
    struct gf_ks_api *api = data;
    if (ev->obj_json != NULL)
        crd_changed(api, ev);
}

void gf__ks_crd_cleanup(struct gf_ks_api *api, const char *crd_name)
{
    struct gf_ks_store *st = gf_ks_api_store(api);
    const struct gf_ks_rtype *crdt = gf_ks_store_type(
        st, "apiextensions.k8s.io", "customresourcedefinitions");
    struct gf_ks_obj *o = gf_ks_store_get(st, crdt, NULL, crd_name);
    if (o == NULL)
        return;
    cJSON *crd = gf_ks_obj_parse(o);
    const struct gf_ks_rtype *t = gf_ks_store_type(
        st,
        gf_json_str(crd, "spec.group") != NULL ? gf_json_str(crd, "spec.group")
                                               : "",
        gf_json_str(crd, "spec.names.plural") != NULL
            ? gf_json_str(crd, "spec.names.plural")
            : "");
    cJSON_Delete(crd);
    if (t == NULL || gf__ks_builtin(t))
        return;
    /* What the customresourcecleanup finalizer does: every object goes,
     * each with its DELETED event, before the type does. */
    struct gf_ks_list_opts lo = {0};
    struct gf_ks_list l;
    if (gf_ks_store_list(st, t, &lo, &l, NULL) < 0)
        return;
    for (size_t i = 0; i < l.n; i++) {
        struct gf_ks_delete_opts d = {.propagation = GF_KS_PROP_BACKGROUND};
        gf_ks_store_delete(st, t, l.items[i]->ns, l.items[i]->name, &d, NULL,
                           NULL, NULL);
    }
    gf_ks_list_free(&l);
}

void gf__ks_crd_start(struct gf_ks_api *api)
{
    struct gf_ks_store *st = gf_ks_api_store(api);
    const struct gf_ks_rtype *t = gf_ks_store_type(st, "apiextensions.k8s.io",
                                                   "customresourcedefinitions");
    api->crd_observer = gf_ks_store_observe(st, t, on_crd, api);
}
