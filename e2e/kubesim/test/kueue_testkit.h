/*
 * kueue_testkit: one simulated cluster's API with the upstream Kueue CRDs,
 * a fault table and Kueue-lite on a manual clock, for the Kueue-lite and
 * job runner tests. Support code linked into every kubesim test binary.
 */
#ifndef KS_KQTK_H
#define KS_KQTK_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/kueue.h"
#include "e2e/kubesim/store.h"
#include "e2e/kubesim/test/api_testkit.h"

struct ks_kqtk {
    struct ks_apitk_cluster k;
    struct gf_ks_store *st;
    struct gf_ks_faults *faults;
    struct gf_ks_kueue *kueue;
};

/* Starts everything; fails the test when the CRDs are missing. */
void ks_kqtk_start(struct ks_kqtk *t);
/* Frees everything and asserts the allocation counter is back. */
void ks_kqtk_stop(struct ks_kqtk *t);
/* Creates every object of a YAML stream as the system; asserts success. */
void ks_kqtk_apply(struct ks_kqtk *t, const char *yaml);
/* Runs the timers due now (the loop turns) until nothing is due. */
void ks_kqtk_settle(struct ks_kqtk *t);
/* Returned-owned parsed object (cJSON_Delete), or NULL. */
cJSON *ks_kqtk_get(struct ks_kqtk *t, const char *group, const char *res,
                   const char *ns, const char *name);
/* The status ("True"/"False") of a condition, or NULL; reason optional. */
const char *ks_kqtk_cond(const cJSON *obj, const char *type,
                         const char **reason, const char **message);
/* A merge patch to an object's main resource; asserts success. */
void ks_kqtk_patch(struct ks_kqtk *t, const char *group, const char *res,
                   const char *ns, const char *name, const char *patch);

#endif
