/*
 * api_impersonate: the API server's impersonation filter, for the
 * Impersonate-User and Impersonate-Group headers that kubectl's --as and
 * --as-group send.
 *
 * Each requested identity is authorized first, for the authenticated
 * user, with the verb "impersonate": the user (resource "users", cluster
 * scope) or, for "system:serviceaccount:NS:NAME", the service account
 * (resource "serviceaccounts" in NS), then every group (resource
 * "groups"). The first refusal answers 403 with the authorizer's message
 *   users "alice" is forbidden: User "system:serviceaccount:gpufed-system:
 *   gpufed-agent" cannot impersonate resource "users" in API group "" at
 *   the cluster scope
 * Otherwise the request runs as the impersonated identity, RBAC included:
 * its groups are the requested ones (a service account without requested
 * groups gets system:serviceaccounts and system:serviceaccounts:NS), plus
 * system:authenticated, as the server adds. Groups without a user is the
 * server's 500 in plain text. Impersonate-Uid and Impersonate-Extra-* are
 * not read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "e2e/kubesim/api_toolkit.h"

#define SA_PREFIX "system:serviceaccount:"

static size_t count(const char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

static bool has(char *const *v, const char *s)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* 403 unless q's user may impersonate resource/name (in ns). */
static int may(struct gf_ks_api *api, const struct gf_ks_api_req *q,
               const char *resource, const char *ns, const char *name,
               struct gf_ks_status *err)
{
    if (api->authorize == NULL)
        return 0;
    struct gf_ks_authz_attrs a = {
        .user = q->user != NULL ? q->user : "",
        .groups = q->groups,
        .verb = "impersonate",
        .api_group = "",
        .api_version = "v1",
        .resource = resource,
        .subresource = "",
        .ns = ns,
        .name = name,
        .path = q->path,
    };
    int rc = api->authorize(api->authorize_data, &a, err);
    if (rc < 0 && err->code == 0)
        rc = gf_ks_status_set(err, 403, "Forbidden", "forbidden");
    return rc < 0 ? rc : 0;
}

/* The user's authorization: a service account's or a plain user's. */
static int may_user(struct gf_ks_api *api, const struct gf_ks_api_req *q,
                    const char *user, struct gf_ks_status *err, char sa_ns[254])
{
    sa_ns[0] = '\0';
    if (strncmp(user, SA_PREFIX, strlen(SA_PREFIX)) == 0) {
        const char *rest = user + strlen(SA_PREFIX);
        const char *colon = strchr(rest, ':');
        if (colon != NULL && colon != rest && colon[1] != '\0' &&
            (size_t)(colon - rest) < 254) {
            snprintf(sa_ns, 254, "%.*s", (int)(colon - rest), rest);
            return may(api, q, "serviceaccounts", sa_ns, colon + 1, err);
        }
    }
    return may(api, q, "users", "", user, err);
}

/* The server's answer to groups without a user: a Go error, unwrapped. */
static void groups_without_user(const struct gf_ks_api_req *q,
                                const struct gf_ks_api_out *out)
{
    struct gf_buf b = GF_BUF_INIT(8192);
    gf_buf_printf(&b, "Internal Server Error: \"%s\": requested [", q->path);
    for (size_t i = 0; q->impersonate_groups[i] != NULL; i++)
        gf_buf_printf(&b, "%s{Group  %s    }", i ? " " : "",
                      q->impersonate_groups[i]);
    gf_buf_printf(&b, "] without impersonating a user\n");
    out->reply(out->ctx, 500, "text/plain; charset=utf-8", gf_buf_cstr(&b),
               b.len);
    gf_buf_free(&b);
}

int gf__ks_impersonate(struct gf_ks_api *api, const struct gf_ks_api_req *q,
                       const struct gf_ks_api_out *out,
                       struct gf__ks_acting *acting)
{
    acting->req = *q;
    acting->groups = NULL;
    const char *user = q->impersonate_user;
    size_t ng = count(q->impersonate_groups);
    if ((user == NULL || user[0] == '\0') && ng == 0)
        return 0;
    if (user == NULL || user[0] == '\0') {
        groups_without_user(q, out);
        return -EPERM;
    }
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    char sa_ns[254];
    int rc = may_user(api, q, user, &err, sa_ns);
    for (size_t i = 0; rc == 0 && i < ng; i++)
        rc = may(api, q, "groups", "", q->impersonate_groups[i], &err);
    if (rc < 0) {
        gf__ks_reply_status(out, &err);
        gf_ks_status_clear(&err);
        return rc;
    }
    gf_ks_status_clear(&err);
    char **g = gf_calloc(ng + 4, sizeof(*g));
    size_t n = 0;
    for (size_t i = 0; i < ng; i++)
        g[n++] = gf_strdup(q->impersonate_groups[i]);
    if (ng == 0 && sa_ns[0] != '\0') {
        g[n++] = gf_strdup("system:serviceaccounts");
        size_t len = strlen("system:serviceaccounts:") + strlen(sa_ns) + 1;
        g[n] = gf_malloc(len);
        snprintf(g[n++], len, "system:serviceaccounts:%s", sa_ns);
    }
    if (strcmp(user, "system:anonymous") != 0 &&
        !has(g, "system:authenticated"))
        g[n++] = gf_strdup("system:authenticated");
    acting->groups = g;
    acting->req.user = user;
    acting->req.groups = (const char *const *)g;
    acting->req.impersonate_user = NULL;
    acting->req.impersonate_groups = NULL;
    return 0;
}

void gf__ks_acting_done(struct gf__ks_acting *acting)
{
    for (size_t i = 0; acting->groups != NULL && acting->groups[i] != NULL; i++)
        gf_free(acting->groups[i]);
    GF_FREE(acting->groups);
}
