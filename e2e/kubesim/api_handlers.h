/*
 * api_handlers: the handlers the router (api.c) dispatches to, and the
 * hooks of the API's lifetime. Only api.c calls them; a handler file
 * includes this header only so that the compiler checks its definitions
 * against what the router calls, and calls no entry point but its own
 * (.ci/layering). Handlers answer through api_toolkit.h.
 */
#ifndef GF_KS_API_HANDLERS_H
#define GF_KS_API_HANDLERS_H

#include <stdbool.h>

#include "e2e/kubesim/api_toolkit.h"

/* ---- verbs: each answers the request through r->out; err is scratch -- */

/* get and list (api_read.c). */
void gf__ks_do_get(struct gf_ks_api *api, struct gf__ks_rreq *r,
                   struct gf_ks_status *err);
void gf__ks_do_list(struct gf_ks_api *api, struct gf__ks_rreq *r,
                    struct gf_ks_status *err);

/* Writes (api_write.c). */
void gf__ks_do_create(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err);
void gf__ks_do_update(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err);
void gf__ks_do_patch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                     struct gf_ks_status *err);
void gf__ks_do_delete(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err);
void gf__ks_do_deletecollection(struct gf_ks_api *api, struct gf__ks_rreq *r,
                                struct gf_ks_status *err);

/* SelfSubjectAccessReview, for which gf__ks_review() is true
 * (api_review.c). */
void gf__ks_do_review(struct gf_ks_api *api, struct gf__ks_rreq *r,
                      struct gf_ks_status *err);

/* Serves a watch request (the verb is "watch"; api_watch.c). */
void gf__ks_watch(struct gf_ks_api *api, struct gf__ks_rreq *r,
                  struct gf_ks_api_call **call);

/* ---- non-resource paths (api_discovery.c) ------------------------------ */

/* Answers a non-resource path; returns false when the path is unknown. */
bool gf__ks_discovery(struct gf_ks_api *api, const struct gf__ks_rreq *r);

/* ---- lifetime ---------------------------------------------------------- */

/* Registers the built-in types and creates the default namespaces
 * (api_builtin.c). */
void gf__ks_builtin_register(struct gf_ks_api *api);
/* Starts following CRD objects (observer; api_crd.c). */
void gf__ks_crd_start(struct gf_ks_api *api);
/* Frees every call without callbacks (api free; api_watch.c). */
void gf__ks_watch_free_all(struct gf_ks_api *api);

#endif
