/*
 * api_review: SelfSubjectAccessReview, the question "may I?" that
 * `kubectl auth can-i` and controllers ask before they act.
 *
 * The review is answered from the same authorizer that guards every
 * request (the RBAC module in a running cluster), with the attributes the
 * client describes and the identity that sent the review, and nothing is
 * stored, as in the API server.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/api_handlers.h"

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* Asks the authorizer; returns true to allow, reason filled on denial. */
static bool review(struct gf_ks_api *api, const struct gf__ks_rreq *r,
                   const cJSON *spec, struct gf_ks_status *reason)
{
    if (api->authorize == NULL)
        return true;
    const cJSON *ra = gf_json_path(spec, "resourceAttributes");
    const cJSON *na = gf_json_path(spec, "nonResourceAttributes");
    struct gf_ks_authz_attrs a = {
        .user = r->req->user != NULL ? r->req->user : "",
        .groups = r->req->groups,
        .verb = or_empty(gf_json_str(ra != NULL ? ra : na, "verb")),
        .api_group = or_empty(gf_json_str(ra, "group")),
        .api_version = or_empty(gf_json_str(ra, "version")),
        .resource = ra != NULL ? or_empty(gf_json_str(ra, "resource")) : NULL,
        .subresource = or_empty(gf_json_str(ra, "subresource")),
        .ns = or_empty(gf_json_str(ra, "namespace")),
        .name = or_empty(gf_json_str(ra, "name")),
        .path = or_empty(gf_json_str(na, "path")),
    };
    return api->authorize(api->authorize_data, &a, reason) == 0;
}

void gf__ks_do_review(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err)
{
    cJSON *obj = NULL;
    int rc = 0;
    if (strcmp(r->verb, "create") != 0)
        rc = gf_ks_status_set(err, 405, "MethodNotAllowed",
                              "the server does not allow this method on the "
                              "requested resource");
    if (rc == 0)
        rc = gf__ks_parse_body(r, &obj, err);
    const cJSON *spec = gf_json_path(obj, "spec");
    if (rc == 0 && gf_json_path(spec, "resourceAttributes") == NULL &&
        gf_json_path(spec, "nonResourceAttributes") == NULL)
        rc = gf_ks_status_set(
            err, 422, "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: "
            "spec.resourceAttributes: Invalid value: \"null\": exactly one "
            "of nonResourceAttributes or resourceAttributes must be "
            "specified");
    if (rc < 0) {
        cJSON_Delete(obj);
        gf__ks_reply_status(r->out, err);
        return;
    }
    struct gf_ks_status reason;
    gf_ks_status_init(&reason);
    bool allowed = review(api, r, spec, &reason);
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    cJSON *st = cJSON_AddObjectToObject(obj, "status");
    cJSON_AddBoolToObject(st, "allowed", allowed);
    /*
     * The RBAC authorizer has no opinion when no rule matches and gives no
     * reason: the server then says only allowed: false (kubectl auth can-i
     * prints a bare "no"). Its denial here is the 403 message a request
     * would get, which restates the question: not a reason. An
     * authorizer's own words are.
     */
    if (!allowed && reason.message[0] != '\0' &&
        strstr(reason.message, " is forbidden: User \"") == NULL &&
        strncmp(reason.message, "forbidden: User \"", 17) != 0)
        cJSON_AddStringToObject(st, "reason", reason.message);
    gf_ks_status_clear(&reason);
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
    gf__ks_put_first(obj, "apiVersion", "authorization.k8s.io/v1");
    gf__ks_put_first(obj, "kind", "SelfSubjectAccessReview");
    gf__ks_reply_json(r->out, 201, obj);
    cJSON_Delete(obj);
}
