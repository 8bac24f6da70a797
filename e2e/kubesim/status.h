/*
 * status: Kubernetes Status objects, the body of every API error.
 *
 * The store and the API layer describe failures in a struct gf_ks_status
 * and the server writes gf_ks_status_to_json() as the response body (or as
 * the object of a watch ERROR event), exactly as the API server does:
 *   {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
 *    "message":"...","reason":"NotFound","details":{"name":"x",
 *    "group":"batch","kind":"jobs"},"code":404}
 * Clients key their behaviour on reason and code (client-go's
 * IsNotFound/IsConflict, the Python client's ApiException.status), so
 * both must match what Kubernetes writes for the same failure.
 *
 * A struct gf_ks_status is a plain value; only causes is heap-owned.
 */
#ifndef GF_KS_STATUS_H
#define GF_KS_STATUS_H

#include <stdarg.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

struct gf_ks_status {
    int code;           /* HTTP status code; 0 = no error recorded */
    const char *reason; /* static string: "NotFound", "Conflict", ... */
    char message[1024];
    char name[254];  /* details.name, "" = none */
    char group[128]; /* details.group */
    char kind[64];   /* details.kind (the resource, as the server does) */
    cJSON *causes;   /* owned: details.causes array, or NULL */
    int retry_after; /* details.retryAfterSeconds, 0 = none */
    bool details;    /* "details":{} even when nothing above is set */
};

/* Zeroes st (frees causes first when st was used). */
void gf_ks_status_init(struct gf_ks_status *st);
void gf_ks_status_clear(struct gf_ks_status *st);

/*
 * Records a failure. reason must be a static string. The message is
 * printf-formatted. Returns gf_err_from_http(code, reason) (common/err.h:
 * the mapping kubeclient reads answers with), so callers can `return
 * gf_ks_status_set(...)`. st may be NULL (then only the code is returned).
 */
int gf_ks_status_set(struct gf_ks_status *st, int code, const char *reason,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets details name/group/kind (any may be NULL). */
void gf_ks_status_details(struct gf_ks_status *st, const char *name,
                          const char *group, const char *kind);
/* Appends a cause {reason, message, field}. */
void gf_ks_status_cause(struct gf_ks_status *st, const char *reason,
                        const char *message, const char *field);

/* Returned-owned Status object (cJSON_Delete). */
cJSON *gf_ks_status_to_json(const struct gf_ks_status *st);
/* A Status with status "Success" (deletes of collections, etc.). */
cJSON *gf_ks_status_success(void);

/* Common failures, with the messages Kubernetes writes. */
int gf_ks_status_not_found(struct gf_ks_status *st, const char *group,
                           const char *resource, const char *name);
int gf_ks_status_already_exists(struct gf_ks_status *st, const char *group,
                                const char *resource, const char *name);
int gf_ks_status_conflict(struct gf_ks_status *st, const char *group,
                          const char *resource, const char *name,
                          const char *why);

#endif
