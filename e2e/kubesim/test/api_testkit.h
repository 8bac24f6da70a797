/*
 * api_testkit: drives gf_ks_api_handle() in tests without sockets.
 *
 * A struct ks_apitk_cluster is one API (manual clock, catalog, optional
 * authorizer); a struct ks_apitk_resp records what the API layer sent
 * through gf_ks_api_out: one reply, or a stream (begin, the written
 * chunks, end). Every request is made with the same user unless the test
 * changes it. Support code shared by the test_api*.c binaries.
 */
#ifndef KS_APITK_H
#define KS_APITK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/clock.h"
#include "e2e/kubesim/api.h"

struct ks_apitk_resp {
    int code;
    char ctype[128];
    struct gf_buf body;    /* the reply, or every stream chunk concatenated */
    struct gf_buf headers; /* extra headers, "Name: value\n" each */
    size_t chunks;
    bool streaming, ended;
    int fail_writes; /* stream_write fails once this many chunks are in */
    int behind_at;   /* stream_write says "behind" (1) at this many chunks */
    struct gf_ks_api_out out;
    struct gf_ks_api_call *call;
};

struct ks_apitk_cluster {
    struct gf_clock clock;
    struct gf_ks_catalog *catalog;
    struct gf_ks_api *api;
    const char *user;
    const char *const *groups;
    /* Impersonate-User / Impersonate-Group of every request; NULL = none. */
    const char *as_user;
    const char *const *as_groups;
    int64_t baseline;
};

/* opts may be NULL; clock and catalog are filled in by the kit. */
void ks_apitk_start(struct ks_apitk_cluster *k, struct gf_ks_api_opts *opts);
/* Frees everything and asserts the allocation counter is back. */
void ks_apitk_stop(struct ks_apitk_cluster *k);

void ks_apitk_resp_init(struct ks_apitk_resp *r);
void ks_apitk_resp_free(struct ks_apitk_resp *r);

/*
 * One request. target is the path with an optional "?query". body may be
 * NULL. Returns r->code (0 when streaming has not begun).
 */
int ks_apitk_do(struct ks_apitk_cluster *k, struct ks_apitk_resp *r,
                const char *method, const char *target, const char *ctype,
                const char *accept, const char *body);
/* The same with a body of len bytes (binary bodies). */
int ks_apitk_do_len(struct ks_apitk_cluster *k, struct ks_apitk_resp *r,
                    const char *method, const char *target, const char *ctype,
                    const char *accept, const char *body, size_t len);
/* A request with a fresh response, whose parsed body is returned
 * (cJSON_Delete; NULL if the body is not JSON); *code gets the status. */
cJSON *ks_apitk_json(struct ks_apitk_cluster *k, const char *method,
                     const char *target, const char *ctype, const char *body,
                     int *code);

/* The n-th line (event) of a stream, parsed, or NULL. */
cJSON *ks_apitk_event(const struct ks_apitk_resp *r, size_t n);
size_t ks_apitk_events(const struct ks_apitk_resp *r);

/* Reads a whole file (test data); returned-owned, NULL when missing. */
char *ks_apitk_read_file(const char *path, size_t *len);
/*
 * The directory of upstream Kueue files (crds/, samples/): $GF_SHARED/kueue
 * when GF_SHARED is set (the Makefile exports it), else the project's copy
 * in e2e/testdata/kueue, by an absolute path fixed at build time. Fails the
 * running test when the CRDs are not there. Static storage.
 */
const char *ks_apitk_kueue_dir(void);
/* ks_apitk_kueue_dir()/crds. Static storage. */
const char *ks_apitk_crd_dir(void);

#endif
