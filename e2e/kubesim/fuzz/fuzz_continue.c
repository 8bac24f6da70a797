/*
 * Fuzz target for list continue tokens (base64 JSON from the client):
 * any token either pages correctly or fails with 400; never a crash, a
 * leak, or an item outside the listed namespace.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "e2e/kubesim/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A store with five ConfigMaps across namespaces "a" and "b". */
static struct gf_ks_store *setup(struct gf_clock *clock)
{
    gf_clock_init_manual(clock, 0, 0);
    struct gf_ks_store_opts o = {.clock = clock, .uid_seed = 1};
    struct gf_ks_store *st = gf_ks_store_new(&o);
    struct gf_ks_rtype *t = gf_calloc(1, sizeof(*t));
    t->group = gf_strdup("");
    t->resource = gf_strdup("configmaps");
    t->kind = gf_strdup("ConfigMap");
    t->versions = gf_calloc(1, sizeof(*t->versions));
    t->versions[0].name = gf_strdup("v1");
    t->n_versions = 1;
    t->namespaced = true;
    gf_ks_store_register(st, t);
    const struct gf_ks_rtype *cm = gf_ks_store_type(st, "", "configmaps");
    for (int i = 0; i < 5; i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"c%d\"}}", i);
        cJSON *j = cJSON_Parse(buf);
        gf_ks_store_create(st, cm, i % 2 ? "a" : "b", j, GF_KS_MAIN, NULL,
                           NULL);
        cJSON_Delete(j);
    }
    return st;
}

static void check(const struct gf_ks_list_opts *lo, const struct gf_ks_list *l,
                  int rc, const struct gf_ks_status *err)
{
    if (rc != 0) {
        GF_BUG_ON(err->code != 400 && err->code != 410);
        return;
    }
    for (size_t i = 0; i < l->n; i++)
        GF_BUG_ON(lo->ns != NULL && strcmp(l->items[i]->ns, lo->ns) != 0);
    GF_BUG_ON(lo->limit > 0 && l->n > lo->limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    struct gf_clock clock;
    struct gf_ks_store *st = setup(&clock);
    const struct gf_ks_rtype *cm = gf_ks_store_type(st, "", "configmaps");
    char *tok = gf_strndup((const char *)data + 1, size - 1);
    struct gf_ks_list_opts lo = {
        .ns = data[0] & 1 ? "a" : NULL, .limit = data[0] >> 4, .cont = tok};
    struct gf_ks_list l;
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    int rc = gf_ks_store_list(st, cm, &lo, &l, &err);
    check(&lo, &l, rc, &err);
    gf_ks_list_free(&l);
    gf_ks_status_clear(&err);
    gf_free(tok);
    gf_ks_store_free(st);
    gf_clock_close(&clock);
    return 0;
}
