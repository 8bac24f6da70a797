/*
 * store_testkit: one object store on a manual clock with the types the
 * store tests write (Namespace, ConfigMap, Job, Pod, Kueue's Workload and
 * ClusterQueue), and the helpers they share: create from JSON text, read
 * fields back, record watch and observer events. Support code linked into
 * every kubesim test binary; used by test_store*.c.
 */
#ifndef KS_STTK_H
#define KS_STTK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "e2e/kubesim/store.h"

struct ks_sttk_fx {
    int64_t base; /* live allocations when the test began */
    struct gf_clock clock;
    struct gf_ks_store *st;
    const struct gf_ks_rtype *ns, *cm, *wl, *job, *pod, *cq;
};

struct gf_ks_rtype *ks_sttk_mk_type(const char *group, const char *resource,
                                    const char *kind, bool namespaced,
                                    bool has_status);

void ks_sttk_init(struct ks_sttk_fx *f, size_t watch_cache);

void ks_sttk_done(struct ks_sttk_fx *f);

cJSON *ks_sttk_js(const char *s);

/* Creates from JSON text; asserts success; returns the stored object. */
struct gf_ks_obj *ks_sttk_mk(struct ks_sttk_fx *f, const struct gf_ks_rtype *t,
                             const char *ns, const char *json);

void ks_sttk_mk_ns(struct ks_sttk_fx *f, const char *name);

/* A string field of a stored object, copied into a static buffer. */
/*
 * field/ifield/has read a literal dotted path of an object: they are
 * macros so that gf_json_path's literal-only check reaches the call site.
 * Keys from data (label names) go through ks_sttk_label(), key by key.
 */
const char *ks_sttk_field_str(const struct gf_ks_obj *o, const char *path);
#define ks_sttk_field(o, path) ks_sttk_field_str(o, "" path "")

int64_t ks_sttk_field_int(const struct gf_ks_obj *o, const char *path);
#define ks_sttk_ifield(o, path) ks_sttk_field_int(o, "" path "")

bool ks_sttk_field_has(const struct gf_ks_obj *o, const char *path);
#define ks_sttk_has(o, path) ks_sttk_field_has(o, "" path "")

/* metadata.labels[key], or "<none>"; the key is taken whole. */
const char *ks_sttk_label(const struct gf_ks_obj *o, const char *key);

/* A recorder for watch callbacks: "ADDED ns/name rv" lines. */
struct ks_sttk_rec {
    char lines[64][96];
    int n;
    int closed, close_err;
};

void ks_sttk_rec_cb(void *data, enum gf_ks_ev_type type,
                    const struct gf_ks_obj *obj, uint64_t rv, int err);

/* An observer log shared by several observers: "tag TYPE Kind ns/name". */
struct ks_sttk_olog {
    char lines[64][128];
    int n;
};

struct ks_sttk_obs {
    struct ks_sttk_olog *log;
    const char *tag;
    int depth, max_depth;
};

void ks_sttk_olog_add(struct ks_sttk_olog *l, const char *tag,
                      const struct gf_ks_event *ev);

void ks_sttk_obs_cb(void *data, const struct gf_ks_event *ev);

int ks_sttk_olog_find(const struct ks_sttk_olog *l, const char *line);

void ks_sttk_olog_dump(const struct ks_sttk_olog *l);

/* Asserts that line a comes before line b in the log. */
void ks_sttk_before(const struct ks_sttk_olog *l, const char *a, const char *b);

int ks_sttk_upd(struct ks_sttk_fx *f, const struct gf_ks_rtype *t,
                const char *ns, const char *name, const char *json,
                enum gf_ks_subres sub, struct gf_ks_obj **out,
                struct gf_ks_status *err);

int ks_sttk_del(struct ks_sttk_fx *f, const struct gf_ks_rtype *t,
                const char *ns, const char *name, enum gf_ks_propagation prop,
                bool *gone);

/* An ownerReferences entry naming o. */
void ks_sttk_owner_ref(char *out, size_t cap, const char *kind,
                       const struct gf_ks_obj *o);

/* Creates a ConfigMap in "a" owned by the given refs (JSON array body). */
struct gf_ks_obj *ks_sttk_mk_owned(struct ks_sttk_fx *f, const char *name,
                                   const char *refs);

#endif
