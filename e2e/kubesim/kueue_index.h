/*
 * kueue_index: parsing stored objects into Kueue-lite's index structures
 * (kueue_internal.h). Each *_load replaces what the structure held with
 * what the object says; *_free accept NULL. Loop thread only.
 */
#ifndef GF_KS_KUEUE_INDEX_H
#define GF_KS_KUEUE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/kueue_internal.h"

/* What Kueue-lite knows of a Job with the queue-name label. */
struct gf_kq_job {
    char *uid;
    bool suspended; /* spec.suspend */
    int done;       /* 0 running or waiting, 1 Complete, 2 Failed */
    int64_t active; /* status.active: its pods not yet stopped */
    char *fail_msg; /* the Failed condition's message */
    bool need_wl;   /* its Workload has not been checked for yet */
    uint64_t seq;   /* resourceVersion when first seen: creation order */
};

void gf__kq_cq_load(struct gf_kq_cq *cq, const cJSON *obj);
void gf__kq_cq_free(struct gf_kq_cq *cq);
void gf__kq_lq_load(struct gf_kq_lq *lq, const cJSON *obj);
void gf__kq_lq_free(struct gf_kq_lq *lq);

/* A Workload entry for ns/name (seq: FIFO tie-break), not yet loaded. */
struct gf_kq_wl *gf__kq_wl_new(const char *ns, const char *name, uint64_t seq);
void gf__kq_wl_load(struct gf_kq_wl *wl, const cJSON *obj);
void gf__kq_wl_free(struct gf_kq_wl *wl);

/* Adds a pod spec's container requests to a pod set. */
void gf__kq_podset_reqs(struct gf_kq_podset *ps, const cJSON *pod_spec);

/* Returns true when anything Kueue-lite acts on changed. */
bool gf__kq_job_load(struct gf_kq_job *j, const cJSON *obj);
void gf__kq_job_free(struct gf_kq_job *j);

#endif
