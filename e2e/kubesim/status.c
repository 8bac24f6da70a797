/*
 * status: builds Kubernetes Status objects for API errors, with the
 * messages and reasons the API server uses, so that clients classify
 * kubesim's failures exactly as they classify a real server's.
 */
#include "e2e/kubesim/status.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

void gf_ks_status_init(struct gf_ks_status *st)
{
    memset(st, 0, sizeof(*st));
}

void gf_ks_status_clear(struct gf_ks_status *st)
{
    if (st == NULL)
        return;
    cJSON_Delete(st->causes);
    gf_ks_status_init(st);
}

int gf_ks_status_set(struct gf_ks_status *st, int code, const char *reason,
                     const char *fmt, ...)
{
    if (st != NULL) {
        gf_ks_status_clear(st);
        st->code = code;
        st->reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->message, sizeof(st->message), fmt, ap);
        va_end(ap);
    }
    return gf_err_from_http(code, reason);
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

void gf_ks_status_details(struct gf_ks_status *st, const char *name,
                          const char *group, const char *kind)
{
    if (st == NULL)
        return;
    copy_field(st->name, sizeof(st->name), name);
    copy_field(st->group, sizeof(st->group), group);
    copy_field(st->kind, sizeof(st->kind), kind);
}

void gf_ks_status_cause(struct gf_ks_status *st, const char *reason,
                        const char *message, const char *field)
{
    if (st == NULL)
        return;
    if (st->causes == NULL)
        st->causes = cJSON_CreateArray();
    cJSON *c = cJSON_CreateObject();
    if (reason != NULL)
        cJSON_AddStringToObject(c, "reason", reason);
    if (message != NULL)
        cJSON_AddStringToObject(c, "message", message);
    if (field != NULL)
        cJSON_AddStringToObject(c, "field", field);
    cJSON_AddItemToArray(st->causes, c);
}

cJSON *gf_ks_status_to_json(const struct gf_ks_status *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "Status");
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddItemToObject(o, "metadata", cJSON_CreateObject());
    cJSON_AddStringToObject(o, "status", "Failure");
    cJSON_AddStringToObject(o, "message", st->message);
    if (st->reason != NULL && st->reason[0] != '\0')
        cJSON_AddStringToObject(o, "reason", st->reason);
    if (st->name[0] != '\0' || st->group[0] != '\0' || st->kind[0] != '\0' ||
        st->causes != NULL || st->retry_after > 0 || st->details) {
        cJSON *d = cJSON_AddObjectToObject(o, "details");
        if (st->name[0] != '\0')
            cJSON_AddStringToObject(d, "name", st->name);
        if (st->group[0] != '\0')
            cJSON_AddStringToObject(d, "group", st->group);
        if (st->kind[0] != '\0')
            cJSON_AddStringToObject(d, "kind", st->kind);
        if (st->causes != NULL)
            cJSON_AddItemToObject(d, "causes",
                                  cJSON_Duplicate(st->causes, true));
        if (st->retry_after > 0)
            cJSON_AddNumberToObject(d, "retryAfterSeconds", st->retry_after);
    }
    cJSON_AddNumberToObject(o, "code", st->code);
    return o;
}

cJSON *gf_ks_status_success(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "Status");
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddItemToObject(o, "metadata", cJSON_CreateObject());
    cJSON_AddStringToObject(o, "status", "Success");
    return o;
}

/*
 * The server names a resource in messages as "resource.group" (or just
 * "resource" in the core group): `jobs.batch "x" not found`.
 */
static void qualified(char *out, size_t cap, const char *group,
                      const char *resource)
{
    if (group != NULL && group[0] != '\0')
        snprintf(out, cap, "%s.%s", resource, group);
    else
        snprintf(out, cap, "%s", resource);
}

int gf_ks_status_not_found(struct gf_ks_status *st, const char *group,
                           const char *resource, const char *name)
{
    char q[256];
    qualified(q, sizeof(q), group, resource);
    int rc =
        gf_ks_status_set(st, 404, "NotFound", "%s \"%s\" not found", q, name);
    gf_ks_status_details(st, name, group, resource);
    return rc;
}

int gf_ks_status_already_exists(struct gf_ks_status *st, const char *group,
                                const char *resource, const char *name)
{
    char q[256];
    qualified(q, sizeof(q), group, resource);
    int rc = gf_ks_status_set(st, 409, "AlreadyExists",
                              "%s \"%s\" already exists", q, name);
    gf_ks_status_details(st, name, group, resource);
    return rc;
}

int gf_ks_status_conflict(struct gf_ks_status *st, const char *group,
                          const char *resource, const char *name,
                          const char *why)
{
    char q[256];
    qualified(q, sizeof(q), group, resource);
    int rc = gf_ks_status_set(st, 409, "Conflict",
                              "Operation cannot be fulfilled on %s \"%s\": %s",
                              q, name, why);
    gf_ks_status_details(st, name, group, resource);
    return rc;
}
