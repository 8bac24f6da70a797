/*
 * api_table: server-side printing (meta.k8s.io/v1 Table), which is what
 * `kubectl get` asks for.
 *
 * Custom resources print their CRD's additionalPrinterColumns, evaluated
 * with the small JSONPath subset CRDs use (.a.b, [n], [*],
 * [?(@.k=='v')], escaped dots in keys); without printer columns a CRD
 * prints Name and Age, as the apiextensions server does. Built-in types
 * print the columns the API server's printers produce for them. Times in
 * "date" columns are shown as ages ("5m", "2d3h"), as the server does.
 * Each row carries the object's metadata (PartialObjectMetadata), the whole
 * object (includeObject=Object) or nothing (None).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"

/* ---- ages --------------------------------------------------------------- */

/* k8s.io/apimachinery duration.HumanDuration. */
static void human_duration(int64_t ms, char *out, size_t cap)
{
    /* Below limit: whole big units, plus small units when not zero. */
    static const struct {
        int64_t limit, big;
        char ubig;
        int64_t small;
        char usmall;
    } steps[] = {
        {INT64_C(120), 1, 's', 0, 0},
        {INT64_C(600), 60, 'm', 1, 's'},
        {INT64_C(3) * 3600, 60, 'm', 0, 0},
        {INT64_C(8) * 3600, 3600, 'h', 60, 'm'},
        {INT64_C(48) * 3600, 3600, 'h', 0, 0},
        {INT64_C(8) * 86400, 86400, 'd', 3600, 'h'},
        {INT64_C(2) * 365 * 86400, 86400, 'd', 0, 0},
        {INT64_C(8) * 365 * 86400, INT64_C(365) * 86400, 'y', 86400, 'd'},
        {INT64_MAX, INT64_C(365) * 86400, 'y', 0, 0},
    };
    int64_t s = ms / 1000;
    if (s < -1) {
        snprintf(out, cap, "<invalid>");
        return;
    }
    if (s < 0)
        s = 0;
    size_t i = 0;
    while (s >= steps[i].limit)
        i++;
    long long q = (long long)(s / steps[i].big);
    long long r = steps[i].small > 0
                      ? (long long)((s % steps[i].big) / steps[i].small)
                      : 0;
    if (r != 0)
        snprintf(out, cap, "%lld%c%lld%c", q, steps[i].ubig, r,
                 steps[i].usmall);
    else
        snprintf(out, cap, "%lld%c", q, steps[i].ubig);
}

static cJSON *age_of(const struct gf_ks_api *api, const char *ts)
{
    int64_t t;
    if (ts == NULL || gf_time_parse_rfc3339(ts, &t) != 0)
        return cJSON_CreateString("<unknown>");
    char buf[64];
    human_duration(gf_clock_wall_ms(api->clock) - t, buf, sizeof(buf));
    return cJSON_CreateString(buf);
}

/* ---- JSONPath subset ---------------------------------------------------- */

#define MAX_RESULTS 64

struct jp {
    const cJSON *res[MAX_RESULTS];
    size_t n;
};

static void jp_eval(const cJSON *node, const char *p, struct jp *out);

/* Reads a key up to '.', '[' or end; "\." is a literal dot. */
static const char *jp_key(const char *p, char *key, size_t cap)
{
    size_t n = 0;
    while (*p != '\0' && *p != '.' && *p != '[') {
        if (p[0] == '\\' && p[1] != '\0')
            p++;
        if (n + 1 < cap)
            key[n++] = *p;
        p++;
    }
    key[n] = '\0';
    return p;
}

/* [?(@.field=='value')] on every element of an array. */
static const char *jp_filter(const cJSON *arr, const char *p, struct jp *out)
{
    const char *close = strstr(p, ")]");
    if (close == NULL || strncmp(p, "[?(@.", 5) != 0)
        return NULL;
    char field[128], value[128];
    const char *eq = strstr(p, "==");
    if (eq == NULL || eq > close)
        return NULL;
    size_t fl = (size_t)(eq - (p + 5));
    const char *v = eq + 2;
    char q = *v;
    if ((q != '\'' && q != '"') || fl >= sizeof(field))
        return NULL;
    const char *vend = strchr(v + 1, q);
    if (vend == NULL || vend > close || (size_t)(vend - v - 1) >= sizeof(value))
        return NULL;
    snprintf(field, sizeof(field), "%.*s", (int)fl, p + 5);
    snprintf(value, sizeof(value), "%.*s", (int)(vend - v - 1), v + 1);
    const char *rest = close + 2;
    /*
     * The field is itself a path (@.metadata.labels.kueue\.x-k8s\.io/x),
     * read with the same key rules as the column's path: escaped dots
     * belong to the key.
     */
    char fpath[sizeof(field) + 1];
    snprintf(fpath, sizeof(fpath), ".%s", field);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        struct jp fr = {0};
        jp_eval(e, fpath, &fr);
        const char *fv = fr.n == 1 ? gf_json_as_str(fr.res[0]) : NULL;
        if (fv != NULL && strcmp(fv, value) == 0)
            jp_eval(e, rest, out);
    }
    return rest;
}

static void jp_index(const cJSON *node, const char *p, struct jp *out)
{
    if (!cJSON_IsArray(node))
        return;
    if (p[1] == '?') {
        jp_filter(node, p, out);
        return;
    }
    const char *close = strchr(p, ']');
    if (close == NULL)
        return;
    if (p[1] == '*' && close == p + 2) {
        const cJSON *e;
        cJSON_ArrayForEach(e, node)
        {
            jp_eval(e, close + 1, out);
        }
        return;
    }
    char *end;
    long i = strtol(p + 1, &end, 10);
    if (end != close || i < 0)
        return;
    const cJSON *e = cJSON_GetArrayItem(node, (int)i);
    if (e != NULL)
        jp_eval(e, close + 1, out);
}

static void jp_eval(const cJSON *node, const char *p, struct jp *out)
{
    if (node == NULL)
        return;
    if (*p == '\0') {
        if (out->n < MAX_RESULTS)
            out->res[out->n++] = node;
        return;
    }
    if (*p == '[') {
        jp_index(node, p, out);
        return;
    }
    if (*p != '.')
        return;
    char key[256];
    const char *rest = jp_key(p + 1, key, sizeof(key));
    if (key[0] == '\0') {
        jp_eval(node, rest, out);
        return;
    }
    if (cJSON_IsObject(node))
        jp_eval(cJSON_GetObjectItemCaseSensitive(node, key), rest, out);
}

/* ---- cells -------------------------------------------------------------- */

static cJSON *typed_cell(const struct gf_ks_api *api, const char *type,
                         const cJSON *v)
{
    if (strcmp(type, "date") == 0)
        return cJSON_IsString(v) ? age_of(api, v->valuestring)
                                 : cJSON_CreateNull();
    if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
        return cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble)
                                 : cJSON_CreateNull();
    if (strcmp(type, "boolean") == 0)
        return cJSON_IsBool(v) ? cJSON_CreateBool(cJSON_IsTrue(v))
                               : cJSON_CreateNull();
    if (cJSON_IsString(v))
        return cJSON_CreateString(v->valuestring);
    char *s = cJSON_PrintUnformatted(v);
    cJSON *c = cJSON_CreateString(s);
    gf_free(s);
    return c;
}

static cJSON *path_cell(const struct gf_ks_api *api, const cJSON *obj,
                        const char *path, const char *type)
{
    struct jp r = {0};
    jp_eval(obj, path, &r);
    if (r.n == 0)
        return cJSON_CreateNull();
    if (r.n == 1)
        return typed_cell(api, type, r.res[0]);
    /* Several results print as one string, space-separated. */
    struct gf_buf b = GF_BUF_INIT((size_t)64 * 1024);
    for (size_t i = 0; i < r.n; i++) {
        if (i > 0)
            gf_buf_putc(&b, ' ');
        if (cJSON_IsString(r.res[i])) {
            gf_buf_puts(&b, r.res[i]->valuestring);
        } else {
            char *s = cJSON_PrintUnformatted(r.res[i]);
            gf_buf_puts(&b, s);
            gf_free(s);
        }
    }
    cJSON *c = cJSON_CreateString(gf_buf_cstr(&b));
    gf_buf_free(&b);
    return c;
}

/* ---- built-in printers -------------------------------------------------- */

typedef cJSON *(*cell_fn)(const struct gf_ks_api *api, const cJSON *obj);

struct col {
    const char *name, *type, *format, *path;
    cell_fn fn;
};

static cJSON *cell_age(const struct gf_ks_api *api, const cJSON *obj)
{
    return age_of(api, gf_json_str(obj, "metadata.creationTimestamp"));
}

static cJSON *cell_count(const cJSON *a, const cJSON *b)
{
    return cJSON_CreateNumber(cJSON_GetArraySize(a) + cJSON_GetArraySize(b));
}

static cJSON *cell_data(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    return cell_count(gf_json_path(obj, "data"),
                      gf_json_path(obj, "binaryData"));
}

static cJSON *cell_sa_secrets(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    return cell_count(gf_json_path(obj, "secrets"), NULL);
}

static cJSON *cell_pod_ready(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    int total = cJSON_GetArraySize(gf_json_path(obj, "spec.containers"));
    int ready = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, gf_json_path(obj, "status.containerStatuses"))
    {
        ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "ready"));
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%d/%d", ready, total);
    return cJSON_CreateString(buf);
}

static cJSON *cell_pod_restarts(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    double n = 0;
    const cJSON *cs;
    cJSON_ArrayForEach(cs, gf_json_path(obj, "status.containerStatuses"))
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(cs, "restartCount");
        if (cJSON_IsNumber(r))
            n += r->valuedouble;
    }
    return cJSON_CreateNumber(n);
}

static bool cond_true(const cJSON *obj, const char *type)
{
    return gf_json_cond_true(gf_json_path(obj, "status.conditions"), type);
}

static cJSON *cell_job_status(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    const char *s = "Running";
    bool suspend = false;
    gf_json_bool(obj, "spec.suspend", &suspend);
    if (cond_true(obj, "Complete"))
        s = "Complete";
    else if (cond_true(obj, "Failed"))
        s = "Failed";
    else if (suspend || cond_true(obj, "Suspended"))
        s = "Suspended";
    return cJSON_CreateString(s);
}

static cJSON *cell_job_completions(const struct gf_ks_api *api,
                                   const cJSON *obj)
{
    (void)api;
    int64_t done = 0, want = 1;
    gf_json_int(obj, "status.succeeded", &done);
    gf_json_int(obj, "spec.completions", &want);
    char buf[48];
    snprintf(buf, sizeof(buf), "%lld/%lld", (long long)done, (long long)want);
    return cJSON_CreateString(buf);
}

static cJSON *cell_job_duration(const struct gf_ks_api *api, const cJSON *obj)
{
    int64_t start, end;
    const char *s = gf_json_str(obj, "status.startTime");
    if (s == NULL || gf_time_parse_rfc3339(s, &start) != 0)
        return cJSON_CreateString("");
    const char *e = gf_json_str(obj, "status.completionTime");
    if (e == NULL || gf_time_parse_rfc3339(e, &end) != 0)
        end = gf_clock_wall_ms(api->clock);
    char buf[64];
    human_duration(end - start, buf, sizeof(buf));
    return cJSON_CreateString(buf);
}

static cJSON *cell_event_seen(const struct gf_ks_api *api, const cJSON *obj)
{
    const char *ts = gf_json_str(obj, "lastTimestamp");
    if (ts == NULL)
        ts = gf_json_str(obj, "eventTime");
    if (ts == NULL)
        ts = gf_json_str(obj, "metadata.creationTimestamp");
    return age_of(api, ts);
}

static cJSON *cell_event_object(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    const char *k = gf_json_str(obj, "involvedObject.kind");
    const char *n = gf_json_str(obj, "involvedObject.name");
    char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", k != NULL ? k : "", n != NULL ? n : "");
    for (char *c = buf; *c != '\0' && *c != '/'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return cJSON_CreateString(buf);
}

static cJSON *cell_binding_role(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    const char *k = gf_json_str(obj, "roleRef.kind");
    const char *n = gf_json_str(obj, "roleRef.name");
    char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", k != NULL ? k : "", n != NULL ? n : "");
    return cJSON_CreateString(buf);
}

static cJSON *cell_node_status(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    return cJSON_CreateString(cond_true(obj, "Ready") ? "Ready" : "NotReady");
}

static cJSON *cell_created_at(const struct gf_ks_api *api, const cJSON *obj)
{
    (void)api;
    const char *ts = gf_json_str(obj, "metadata.creationTimestamp");
    return cJSON_CreateString(ts != NULL ? ts : "");
}

#define AGE                                                                    \
    {                                                                          \
        "Age", "string", "", NULL, cell_age                                    \
    }
#define END                                                                    \
    {                                                                          \
        NULL, NULL, NULL, NULL, NULL                                           \
    }

struct printer {
    const char *group, *resource;
    struct col cols[6];
};

static const struct printer printers[] = {
    {"",
     "namespaces",
     {{"Status", "string", "", ".status.phase", NULL}, AGE, END}},
    {"",
     "pods",
     {{"Ready", "string", "", NULL, cell_pod_ready},
      {"Status", "string", "", ".status.phase", NULL},
      {"Restarts", "string", "", NULL, cell_pod_restarts},
      AGE,
      END}},
    {"batch",
     "jobs",
     {{"Status", "string", "", NULL, cell_job_status},
      {"Completions", "string", "", NULL, cell_job_completions},
      {"Duration", "string", "", NULL, cell_job_duration},
      AGE,
      END}},
    {"", "configmaps", {{"Data", "integer", "", NULL, cell_data}, AGE, END}},
    {"",
     "secrets",
     {{"Type", "string", "", ".type", NULL},
      {"Data", "integer", "", NULL, cell_data},
      AGE,
      END}},
    {"",
     "serviceaccounts",
     {{"Secrets", "integer", "", NULL, cell_sa_secrets}, AGE, END}},
    {"",
     "nodes",
     {{"Status", "string", "", NULL, cell_node_status},
      AGE,
      {"Version", "string", "", ".status.nodeInfo.kubeletVersion", NULL},
      END}},
    {"coordination.k8s.io",
     "leases",
     {{"Holder", "string", "", ".spec.holderIdentity", NULL}, AGE, END}},
    {"rbac.authorization.k8s.io",
     "roles",
     {{"Created At", "string", "", NULL, cell_created_at}, END}},
    {"rbac.authorization.k8s.io",
     "clusterroles",
     {{"Created At", "string", "", NULL, cell_created_at}, END}},
    {"rbac.authorization.k8s.io",
     "rolebindings",
     {{"Role", "string", "", NULL, cell_binding_role}, AGE, END}},
    {"rbac.authorization.k8s.io",
     "clusterrolebindings",
     {{"Role", "string", "", NULL, cell_binding_role}, AGE, END}},
    {"apiextensions.k8s.io",
     "customresourcedefinitions",
     {{"Created At", "date", "", NULL, cell_created_at}, END}},
};

/* Events print no Name column; they lead with when and what. */
static const struct col event_cols[] = {
    {"Last Seen", "string", "", NULL, cell_event_seen},
    {"Type", "string", "", ".type", NULL},
    {"Reason", "string", "", ".reason", NULL},
    {"Object", "string", "", NULL, cell_event_object},
    {"Message", "string", "", ".message", NULL},
    END,
};

static const struct col default_cols[] = {AGE, END};

static const struct col *builtin_cols(const struct gf_ks_rtype *t,
                                      bool *name_col)
{
    *name_col = true;
    if (t->group[0] == '\0' && strcmp(t->resource, "events") == 0) {
        *name_col = false;
        return event_cols;
    }
    for (size_t i = 0; i < sizeof(printers) / sizeof(printers[0]); i++)
        if (strcmp(printers[i].group, t->group) == 0 &&
            strcmp(printers[i].resource, t->resource) == 0)
            return printers[i].cols;
    return default_cols;
}

/* ---- the table ---------------------------------------------------------- */

static cJSON *coldef(const char *name, const char *type, const char *format,
                     const char *desc, double priority)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "format", format != NULL ? format : "");
    cJSON_AddStringToObject(c, "description", desc != NULL ? desc : "");
    cJSON_AddNumberToObject(c, "priority", priority);
    return c;
}

static const char name_desc[] =
    "Name must be unique within a namespace. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/"
    "names#names";

static void crd_coldefs(cJSON *defs, const cJSON *pcs)
{
    const cJSON *pc;
    cJSON_ArrayForEach(pc, pcs)
    {
        const char *type = gf_json_str(pc, "type");
        int64_t prio = 0;
        gf_json_int(pc, "priority", &prio);
        if (type == NULL)
            type = "string";
        const char *nm = gf_json_str(pc, "name");
        cJSON_AddItemToArray(
            defs, coldef(nm != NULL ? nm : "", type, gf_json_str(pc, "format"),
                         gf_json_str(pc, "description"), (double)prio));
    }
}

static cJSON *column_defs(const struct gf_ks_rtype *t,
                          const struct gf_ks_version *ver)
{
    cJSON *defs = cJSON_CreateArray();
    if (!gf__ks_builtin(t)) {
        cJSON_AddItemToArray(defs,
                             coldef("Name", "string", "name", name_desc, 0));
        if (ver->printer_columns != NULL)
            crd_coldefs(defs, ver->printer_columns);
        else
            cJSON_AddItemToArray(defs, coldef("Age", "date", "", "", 0));
        return defs;
    }
    bool name_col;
    const struct col *cols = builtin_cols(t, &name_col);
    if (name_col)
        cJSON_AddItemToArray(defs,
                             coldef("Name", "string", "name", name_desc, 0));
    for (const struct col *c = cols; c->name != NULL; c++)
        cJSON_AddItemToArray(defs, coldef(c->name, c->type, c->format, "", 0));
    return defs;
}

static void crd_cells(const struct gf_ks_api *api, cJSON *cells,
                      const cJSON *obj, const struct gf_ks_version *ver)
{
    if (ver->printer_columns == NULL) {
        cJSON_AddItemToArray(cells, cell_age(api, obj));
        return;
    }
    const cJSON *pc;
    cJSON_ArrayForEach(pc, ver->printer_columns)
    {
        const char *path = gf_json_str(pc, "jsonPath");
        const char *type = gf_json_str(pc, "type");
        cJSON_AddItemToArray(cells,
                             path_cell(api, obj, path != NULL ? path : "",
                                       type != NULL ? type : "string"));
    }
}

static cJSON *row_cells(const struct gf_ks_api *api,
                        const struct gf_ks_rtype *t,
                        const struct gf_ks_version *ver, const cJSON *obj)
{
    cJSON *cells = cJSON_CreateArray();
    const char *name = gf_json_str(obj, "metadata.name");
    if (!gf__ks_builtin(t)) {
        cJSON_AddItemToArray(cells, cJSON_CreateString(name ? name : ""));
        crd_cells(api, cells, obj, ver);
        return cells;
    }
    bool name_col;
    const struct col *cols = builtin_cols(t, &name_col);
    if (name_col)
        cJSON_AddItemToArray(cells, cJSON_CreateString(name ? name : ""));
    for (const struct col *c = cols; c->name != NULL; c++)
        cJSON_AddItemToArray(
            cells, c->fn != NULL ? c->fn(api, obj)
                                 : path_cell(api, obj, c->path, c->type));
    return cells;
}

static cJSON *row_object(cJSON *obj, const char *include)
{
    if (include != NULL && strcmp(include, "Object") == 0)
        return cJSON_Duplicate(obj, true);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "kind", "PartialObjectMetadata");
    cJSON_AddStringToObject(p, "apiVersion", "meta.k8s.io/v1");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON_AddItemToObject(p, "metadata",
                          m != NULL ? cJSON_Duplicate(m, true)
                                    : cJSON_CreateObject());
    return p;
}

int gf__ks_table(struct gf_ks_api *api, struct gf_buf *b,
                 const struct gf_ks_rtype *t, const struct gf_ks_version *ver,
                 struct gf_ks_obj *const *objs, size_t n, const char *rv,
                 const char *cont, const char *include)
{
    cJSON *tab = cJSON_CreateObject();
    cJSON_AddStringToObject(tab, "kind", "Table");
    cJSON_AddStringToObject(tab, "apiVersion", "meta.k8s.io/v1");
    cJSON *m = cJSON_AddObjectToObject(tab, "metadata");
    if (rv != NULL)
        cJSON_AddStringToObject(m, "resourceVersion", rv);
    if (cont != NULL)
        cJSON_AddStringToObject(m, "continue", cont);
    cJSON_AddItemToObject(tab, "columnDefinitions", column_defs(t, ver));
    cJSON *rows = cJSON_AddArrayToObject(tab, "rows");
    bool none = include != NULL && strcmp(include, "None") == 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *obj = gf_ks_obj_parse(objs[i]);
        if (ver != NULL && ver != &t->versions[t->storage]) {
            char gv[256];
            gf__ks_gv(t->group, ver->name, gv, sizeof(gv));
            cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
            cJSON_AddStringToObject(obj, "apiVersion", gv);
        }
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToObject(row, "cells", row_cells(api, t, ver, obj));
        if (!none)
            cJSON_AddItemToObject(row, "object", row_object(obj, include));
        cJSON_AddItemToArray(rows, row);
        cJSON_Delete(obj);
    }
    char *s = cJSON_PrintUnformatted(tab);
    cJSON_Delete(tab);
    int rc = gf_buf_puts(b, s);
    gf_free(s);
    return rc;
}
