/*
 * kueue_testkit: see kueue_testkit.h.
 */
#include "e2e/kubesim/test/kueue_testkit.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/json.h"

static void load_crds(struct ks_kqtk *t, const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".yaml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        size_t len;
        char *text = ks_apitk_read_file(path, &len);
        assert_non_null(text);
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        if (gf_ks_api_apply_yaml(t->k.api, text, len, &err) != 0)
            fail_msg("%s: %s", de->d_name, err.message);
        gf_ks_status_clear(&err);
        gf_free(text);
    }
    closedir(d);
}

void ks_kqtk_start(struct ks_kqtk *t)
{
    memset(t, 0, sizeof(*t));
    const char *dir = ks_apitk_crd_dir();
    ks_apitk_start(&t->k, NULL);
    load_crds(t, dir);
    t->st = gf_ks_api_store(t->k.api);
    t->faults = gf_ks_faults_new(&t->k.clock);
    struct gf_ks_kueue_opts o = {
        .store = t->st,
        .clock = &t->k.clock,
        .faults = t->faults,
        .cluster = "test",
    };
    t->kueue = gf_ks_kueue_new(&o);
    ks_kqtk_settle(t);
}

void ks_kqtk_stop(struct ks_kqtk *t)
{
    gf_ks_kueue_free(t->kueue);
    gf_ks_faults_free(t->faults);
    ks_apitk_stop(&t->k);
}

void ks_kqtk_apply(struct ks_kqtk *t, const char *yaml)
{
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_api_apply_yaml(t->k.api, yaml, strlen(yaml), &err);
    if (rc != 0)
        fail_msg("apply: %d %s", rc, err.message);
    gf_ks_status_clear(&err);
}

void ks_kqtk_settle(struct ks_kqtk *t)
{
    /* Each pass may schedule another (its own writes are events). */
    for (int i = 0; i < 20; i++)
        if (gf_clock_advance(&t->k.clock, 0) == 0)
            return;
    fail_msg("timers due now never settle");
}

cJSON *ks_kqtk_get(struct ks_kqtk *t, const char *group, const char *res,
                   const char *ns, const char *name)
{
    const struct gf_ks_rtype *ty = gf_ks_store_type(t->st, group, res);
    assert_non_null(ty);
    struct gf_ks_obj *o = gf_ks_store_get(t->st, ty, ns, name);
    return o != NULL ? gf_ks_obj_parse(o) : NULL;
}

const char *ks_kqtk_cond(const cJSON *obj, const char *type,
                         const char **reason, const char **message)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, gf_json_path(obj, "status.conditions"))
    {
        const char *ty = gf_json_str(c, "type");
        if (ty == NULL || strcmp(ty, type) != 0)
            continue;
        if (reason != NULL)
            *reason = gf_json_str(c, "reason");
        if (message != NULL)
            *message = gf_json_str(c, "message");
        return gf_json_str(c, "status");
    }
    return NULL;
}

void ks_kqtk_patch(struct ks_kqtk *t, const char *group, const char *res,
                   const char *ns, const char *name, const char *patch)
{
    const struct gf_ks_rtype *ty = gf_ks_store_type(t->st, group, res);
    assert_non_null(ty);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_store_patch(t->st, ty, ns, name, GF_KS_PATCH_MERGE, patch,
                               strlen(patch), GF_KS_MAIN, NULL, &err);
    if (rc != 0)
        fail_msg("patch %s/%s: %s", ns, name, err.message);
    gf_ks_status_clear(&err);
}
