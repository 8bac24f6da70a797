/*
 * store_write: create, update, patch and delete in the object store, with
 * the registry's rules (store.h), and the helpers that replace or remove
 * an entry, which garbage collection uses too.
 */
#include "e2e/kubesim/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/rand.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/store_internal.h"

#define NS_GR "/namespaces"

static cJSON *meta_of(cJSON *obj)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "metadata");
        m = cJSON_AddObjectToObject(obj, "metadata");
    }
    return m;
}

static void set_str(cJSON *obj, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddStringToObject(obj, key, v);
}

static void set_item(cJSON *obj, const char *key, cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, v);
}

static void copy_key(cJSON *dst, const cJSON *src, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);
    if (v != NULL)
        set_item(dst, key, cJSON_Duplicate(v, true));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(dst, key);
}

static const char *resource_of(const struct gf__ks_st_table *tab)
{
    return tab->t->resource;
}

/* ---- write helpers --------------------------------------------------- */

static void new_uid(struct gf_ks_store *st, char out[37])
{
    uint64_t a = gf_rand_u64(&st->rand), b = gf_rand_u64(&st->rand);
    /* A version 4, variant 1 UUID, as the API server generates. */
    snprintf(out, 37,
             "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64
             "-%012" PRIx64,
             a >> 32, (a >> 16) & 0xffff, a & 0xfff,
             ((b >> 48) & 0x3fff) | 0x8000, (uint64_t)(b & 0xffffffffffffULL));
}

static void now_rfc3339(const struct gf_ks_store *st, char out[32])
{
    gf_time_rfc3339(gf_clock_wall_ms(st->clock), out);
}

static bool is_rbac(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "rbac.authorization.k8s.io") == 0;
}

/* RFC 1123 subdomain, the rule for most object names. */
static bool dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}

static int check_name(const struct gf_ks_rtype *t, const char *name,
                      struct gf_ks_status *err)
{
    char msg[512];
    if (strlen(name) > GF__KS_NAME_MAX) {
        snprintf(msg, sizeof(msg), "Too long: may not be more than %d bytes",
                 GF__KS_NAME_MAX);
    } else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
               strchr(name, '/') != NULL || strchr(name, '%') != NULL) {
        snprintf(msg, sizeof(msg),
                 "Invalid value: \"%s\": may not contain '/' or '%%'", name);
    } else if (!is_rbac(t) && !dns_subdomain(name)) {
        snprintf(msg, sizeof(msg),
                 "Invalid value: \"%s\": a lowercase RFC 1123 subdomain must "
                 "consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character",
                 name);
    } else {
        return 0;
    }
    char grp[160];
    if (t->group[0] != '\0')
        snprintf(grp, sizeof(grp), "%s.%s", t->kind, t->group);
    else
        snprintf(grp, sizeof(grp), "%s", t->kind);
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              "%s \"%s\" is invalid: metadata.name: %s", grp,
                              name, msg);
    gf_ks_status_details(err, name, t->group, t->kind);
    gf_ks_status_cause(err, "FieldValueInvalid", msg, "metadata.name");
    return rc;
}

static bool gen_ignored(const char *key, bool has_status)
{
    return strcmp(key, "metadata") == 0 ||
           (has_status && strcmp(key, "status") == 0);
}

/*
 * True when anything but metadata (and status, for types with the status
 * subresource) differs: the rule for bumping metadata.generation.
 */
static bool spec_changed(const cJSON *a, const cJSON *b, bool has_status)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, a)
    {
        if (gen_ignored(x->string, has_status))
            continue;
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (y == NULL || !gf_json_equal(x, y))
            return true;
    }
    cJSON_ArrayForEach(x, b)
    {
        if (gen_ignored(x->string, has_status))
            continue;
        if (cJSON_GetObjectItemCaseSensitive(a, x->string) == NULL)
            return true;
    }
    return false;
}

bool gf__ks_st_has_finalizer(const cJSON *obj, const char *f)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, gf_json_path(obj, "metadata.finalizers"))
    {
        if (cJSON_IsString(v) && strcmp(v->valuestring, f) == 0)
            return true;
    }
    return false;
}

bool gf__ks_st_has_finalizers(const cJSON *obj)
{
    return cJSON_GetArraySize(gf_json_path(obj, "metadata.finalizers")) > 0;
}

void gf__ks_st_remove_finalizer(cJSON *obj, const char *f)
{
    cJSON *fins = (cJSON *)gf_json_path(obj, "metadata.finalizers");
    cJSON *v = fins != NULL ? fins->child : NULL;
    while (v != NULL) {
        cJSON *next = v->next;
        if (cJSON_IsString(v) && strcmp(v->valuestring, f) == 0) {
            cJSON_DetachItemViaPointer(fins, v);
            cJSON_Delete(v);
        }
        v = next;
    }
    if (fins != NULL && cJSON_GetArraySize(fins) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(meta_of(obj), "finalizers");
}

/* Prints obj with a fresh resourceVersion into a new blob. */
static struct gf_ks_obj *seal(struct gf_ks_store *st,
                              struct gf__ks_st_table *tab, cJSON *obj,
                              const char *ns, const char *name)
{
    uint64_t rv = ++st->rv;
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
    set_str(meta_of(obj), "resourceVersion", rvs);
    char *s = cJSON_PrintUnformatted(obj);
    struct gf_ks_obj *o = gf__ks_st_obj_new(tab, s, strlen(s), rv, ns, name);
    gf_free(s);
    return o;
}

static void entry_set(struct gf_ks_store *st, struct gf__ks_st_entry *e,
                      struct gf_ks_obj *o)
{
    if (e->obj != NULL) {
        st->bytes -= gf__ks_st_obj_bytes(e->obj);
        gf_ks_obj_unref(e->obj);
    }
    e->obj = o; /* takes the blob's reference */
    st->bytes += gf__ks_st_obj_bytes(o);
}

struct gf__ks_st_entry *gf__ks_st_lookup(const struct gf_ks_store *st,
                                         struct gf__ks_st_table *tab,
                                         const char *ns, const char *name)
{
    (void)st; /* kept for symmetry with the other lookups */
    char key[GF__KS_KEY_MAX];
    if (!gf__ks_st_make_key(key, tab->t->namespaced ? ns : "", name))
        return NULL;
    return gf__ks_st_tab_find(tab, key);
}

static bool ns_terminating(const struct gf_ks_store *st, const char *ns)
{
    struct gf__ks_st_table *nt = gf__ks_st_find_table(st, "", "namespaces");
    struct gf__ks_st_entry *e =
        nt != NULL ? gf__ks_st_lookup(st, nt, "", ns) : NULL;
    if (e == NULL)
        return false;
    cJSON *j = gf_ks_obj_parse(e->obj);
    bool t = gf_json_path(j, "metadata.deletionTimestamp") != NULL;
    cJSON_Delete(j);
    return t;
}

/*
 * An object stopped depending on the owners in refs (it went, or dropped
 * the references): owners waiting in foreground deletion may now be free
 * to go. The check itself runs later, as GC work.
 */
static void recheck_owners(struct gf_ks_store *st, const cJSON *refs)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, refs)
    {
        const char *ouid = gf_json_str(r, "uid");
        struct gf__ks_st_uidrec *u =
            ouid != NULL ? gf__ks_st_uid_find(st, ouid) : NULL;
        if (u != NULL && u->e != NULL)
            gf__ks_st_gc_queue(st, GF__KS_GC_FOREGROUND_DONE,
                               GF_KS_PROP_DEFAULT, ouid);
    }
}

/*
 * Removes an entry for good: obj is its final state (owned, gets a new
 * resourceVersion). Queues the DELETED event and the follow-up GC.
 */
struct gf_ks_obj *gf__ks_st_remove_now(struct gf_ks_store *st,
                                       struct gf__ks_st_entry *e, cJSON *obj,
                                       enum gf_ks_propagation prop)
{
    struct gf__ks_st_table *tab = e->tab;
    struct gf_ks_obj *o = seal(st, tab, obj, e->obj->ns, e->obj->name);
    struct gf_ks_obj *old = gf_ks_obj_ref(e->obj);
    char *uid = gf_strdup(e->uid);
    char *ns = gf_strdup(o->ns);
    /*
     * The owner index was built from the stored object; the final state
     * may name other owners (a PUT that drops ownerReferences along with
     * the last finalizer), so unlink by what the index holds.
     */
    cJSON *stored = gf_ks_obj_parse(e->obj);
    gf__ks_st_owners_link(st, e, stored, false);
    recheck_owners(st, gf_json_path(stored, "metadata.ownerReferences"));
    cJSON_Delete(stored);
    gf__ks_st_tab_remove(st, e);
    gf__ks_st_emit(st, tab, GF_KS_EV_DELETED, o, old);
    gf_ks_obj_unref(old);
    if (prop != GF_KS_PROP_ORPHAN && gf__ks_st_uid_find(st, uid) != NULL)
        gf__ks_st_gc_queue(st, GF__KS_GC_DEPENDENTS, prop, uid);
    if (tab->t->namespaced && ns[0] != '\0' && ns_terminating(st, ns))
        gf__ks_st_gc_queue(st, GF__KS_GC_NAMESPACE, GF_KS_PROP_DEFAULT, ns);
    gf_free(uid);
    gf_free(ns);
    cJSON_Delete(obj);
    gf__ks_st_keep(st, o);
    gf_ks_obj_unref(o);
    return o;
}

/* Stores obj (owned) as the new state of e and queues MODIFIED. */
struct gf_ks_obj *gf__ks_st_replace_now(struct gf_ks_store *st,
                                        struct gf__ks_st_entry *e, cJSON *obj,
                                        const cJSON *old_json)
{
    struct gf_ks_obj *o = seal(st, e->tab, obj, e->obj->ns, e->obj->name);
    const cJSON *a = gf_json_path(old_json, "metadata.ownerReferences");
    const cJSON *b = gf_json_path(obj, "metadata.ownerReferences");
    if (!(a == NULL && b == NULL) && !(a && b && gf_json_equal(a, b))) {
        gf__ks_st_owners_link(st, e, old_json, false);
        gf__ks_st_owners_link(st, e, obj, true);
        recheck_owners(st, a);
    }
    struct gf_ks_obj *old = gf_ks_obj_ref(e->obj);
    entry_set(st, e, o);
    gf__ks_st_emit(st, e->tab, GF_KS_EV_MODIFIED, o, old);
    gf_ks_obj_unref(old);
    cJSON_Delete(obj);
    gf__ks_st_keep(st, o);
    return o;
}

static int not_found(const struct gf__ks_st_table *tab, const char *name,
                     struct gf_ks_status *err)
{
    return gf_ks_status_not_found(err, tab->t->group, resource_of(tab), name);
}

/* ---- create ---------------------------------------------------------- */

static void random_suffix(struct gf_ks_store *st, char out[6])
{
    /* The alphabet of the API server's name generator (no vowels). */
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    for (int i = 0; i < 5; i++)
        out[i] = alphabet[gf_rand_range(&st->rand, 0, sizeof(alphabet) - 2)];
    out[5] = '\0';
}

static int check_namespace(struct gf_ks_store *st,
                           const struct gf__ks_st_table *tab, const char *ns,
                           struct gf_ks_status *err)
{
    struct gf__ks_st_table *nt = gf__ks_st_find_table(st, "", "namespaces");
    if (!tab->t->namespaced || nt == NULL)
        return 0;
    struct gf__ks_st_entry *e = gf__ks_st_lookup(st, nt, "", ns);
    if (e == NULL)
        return gf_ks_status_not_found(err, "", "namespaces", ns);
    if (ns_terminating(st, ns)) {
        return gf_ks_status_set(err, 403, "Forbidden",
                                "unable to create new content in namespace "
                                "%s because it is being terminated",
                                ns);
    }
    return 0;
}

/* 422 for a create that names no object. */
static int name_required(const struct gf_ks_rtype *t, struct gf_ks_status *err)
{
    char q[200];
    snprintf(q, sizeof(q), "%s%s%s", t->kind, t->group[0] ? "." : "", t->group);
    int rc = gf_ks_status_set(err, 422, "Invalid",
                              "%s \"\" is invalid: metadata.name: Required "
                              "value: name or generateName is required",
                              q);
    gf_ks_status_details(err, "", t->group, t->kind);
    gf_ks_status_cause(err, "FieldValueRequired",
                       "Required value: name or generateName is required",
                       "metadata.name");
    return rc;
}

/*
 * The name a create will use: metadata.name, or generateName plus a
 * random suffix. Writes it into out (cap bytes); checks it is valid and
 * free. Returns 0 or a GF_E* code with err filled.
 */
static int create_name(struct gf_ks_store *st, struct gf__ks_st_table *tab,
                       const char *ns, const cJSON *m, char *out, size_t cap,
                       struct gf_ks_status *err)
{
    const struct gf_ks_rtype *t = tab->t;
    const char *name = gf_json_str(m, "name");
    const char *gen = gf_json_str(m, "generateName");
    if (name != NULL && name[0] != '\0') {
        snprintf(out, cap, "%s", name);
    } else if (gen != NULL && gen[0] != '\0') {
        /* A few tries; the server also retries generated-name clashes. */
        for (int i = 0; i < 8; i++) {
            char sfx[6];
            random_suffix(st, sfx);
            snprintf(out, cap, "%.*s%s", 58, gen, sfx);
            if (gf__ks_st_lookup(st, tab, ns, out) == NULL)
                break;
        }
    } else {
        return name_required(t, err);
    }
    int rc = check_name(t, out, err);
    if (rc < 0)
        return rc;
    if (gf__ks_st_lookup(st, tab, ns, out) != NULL)
        return gf_ks_status_already_exists(err, t->group, t->resource, out);
    return 0;
}

/* What the namespace registry sets on every new namespace. */
static void init_namespace(cJSON *obj, cJSON *m, const char *name)
{
    cJSON *spec = cJSON_CreateObject();
    cJSON *fins = cJSON_AddArrayToObject(spec, "finalizers");
    cJSON_AddItemToArray(fins, cJSON_CreateString("kubernetes"));
    set_item(obj, "spec", spec);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddStringToObject(status, "phase", "Active");
    set_item(obj, "status", status);
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(m, "labels");
    if (!cJSON_IsObject(labels)) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "labels");
        labels = cJSON_AddObjectToObject(m, "labels");
    }
    set_str(labels, "kubernetes.io/metadata.name", name);
}

/* The metadata the registry owns on create; writes the new uid. */
static void init_meta(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      cJSON *obj, cJSON *m, const char *ns, const char *name,
                      enum gf_ks_subres sub, char uid[37])
{
    set_str(m, "name", name);
    if (t->namespaced)
        set_str(m, "namespace", ns);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(m, "namespace");
    char ts[32];
    new_uid(st, uid);
    now_rfc3339(st, ts);
    set_str(m, "uid", uid);
    set_str(m, "creationTimestamp", ts);
    static const char *const dropped[] = {"deletionTimestamp",
                                          "deletionGracePeriodSeconds",
                                          "resourceVersion", "selfLink"};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(m, dropped[i]);
    /* Only strategies that track spec changes set a generation. */
    if (!t->no_generation)
        set_item(m, "generation", cJSON_CreateNumber(1));
    if (t->has_status && sub == GF_KS_MAIN)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    if (strcmp(t->gr, NS_GR) == 0)
        init_namespace(obj, m, name);
}

static int create_checks(const struct gf_ks_rtype *t, const char *ns,
                         const cJSON *in, struct gf_ks_status *err)
{
    if (!cJSON_IsObject(in))
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request was not an object");
    if (t->namespaced && ns[0] == '\0')
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the namespace of the object must be set");
    const char *ons = gf_json_str(in, "metadata.namespace");
    if (t->namespaced && ons != NULL && ons[0] != '\0' && strcmp(ons, ns) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the namespace of the provided object does "
                                "not match the namespace sent on the request");
    return 0;
}

int gf_ks_store_create(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const cJSON *in, enum gf_ks_subres sub,
                       struct gf_ks_obj **out, struct gf_ks_status *err)
{
    struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    if (!t->namespaced || ns == NULL)
        ns = "";
    int rc = create_checks(t, ns, in, err);
    if (rc < 0)
        return rc;
    gf__ks_st_enter(st);
    cJSON *obj = cJSON_Duplicate(in, true);
    cJSON *m = meta_of(obj);
    char name[GF__KS_NAME_MAX + 2];
    rc = check_namespace(st, tab, ns, err);
    if (rc == 0)
        rc = create_name(st, tab, ns, m, name, sizeof(name), err);
    if (rc < 0) {
        cJSON_Delete(obj);
        return gf__ks_st_leave(st, rc);
    }
    char uid[37];
    init_meta(st, t, obj, m, ns, name, sub, uid);
    if (sub == GF_KS_MAIN)
        gf__ks_st_admit_create(st, t, obj);
    char key[GF__KS_KEY_MAX];
    gf__ks_st_make_key(key, ns, name);
    struct gf__ks_st_entry *e = gf__ks_st_tab_insert(st, tab, key, uid);
    struct gf_ks_obj *o = seal(st, tab, obj, ns, name);
    entry_set(st, e, o);
    gf__ks_st_owners_link(st, e, obj, true);
    gf__ks_st_emit(st, tab, GF_KS_EV_ADDED, o, NULL);
    gf__ks_st_keep(st, o);
    if (out != NULL)
        *out = o;
    cJSON_Delete(obj);
    return gf__ks_st_leave(st, 0);
}

/* ---- update ---------------------------------------------------------- */

static void fmt_rv(const struct gf_ks_obj *o, char out[24])
{
    snprintf(out, 24, "%llu", (unsigned long long)o->rv);
}

/* name, resourceVersion and uid of a write against the stored object. */
static int check_preconditions(const struct gf_ks_rtype *t,
                               const struct gf__ks_st_entry *e, const cJSON *im,
                               const char *cur, struct gf_ks_status *err)
{
    const char *name = e->obj->name;
    const char *iname = gf_json_str(im, "name");
    if (iname != NULL && strcmp(iname, name) != 0)
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the name of the object (%s) does not match "
                                "the name on the URL (%s)",
                                iname, name);
    const char *irv = gf_json_str(im, "resourceVersion");
    if (irv != NULL && irv[0] != '\0' && strcmp(irv, cur) != 0)
        return gf_ks_status_conflict(err, t->group, t->resource, name,
                                     "the object has been modified; please "
                                     "apply your changes to the latest "
                                     "version and try again");
    const char *iuid = gf_json_str(im, "uid");
    if (iuid != NULL && iuid[0] != '\0' && strcmp(iuid, e->uid) != 0) {
        char why[200];
        snprintf(why, sizeof(why),
                 "Precondition failed: UID in precondition: %s, UID in "
                 "object meta: %s",
                 iuid, e->uid);
        return gf_ks_status_conflict(err, t->group, t->resource, name, why);
    }
    return 0;
}

/* Once an object is being deleted, no finalizer may be added. */
static int check_new_finalizers(const struct gf_ks_rtype *t, const char *name,
                                const cJSON *old, const cJSON *obj,
                                struct gf_ks_status *err)
{
    if (gf_json_path(old, "metadata.deletionTimestamp") == NULL)
        return 0;
    static const char why[] = "Forbidden: no new finalizers can be added if "
                              "the object is being deleted";
    const cJSON *f;
    cJSON_ArrayForEach(f, gf_json_path(obj, "metadata.finalizers"))
    {
        if (!cJSON_IsString(f) || gf__ks_st_has_finalizer(old, f->valuestring))
            continue;
        char q[200];
        snprintf(q, sizeof(q), "%s%s%s", t->kind, t->group[0] ? "." : "",
                 t->group);
        int rc = gf_ks_status_set(err, 422, "Invalid",
                                  "%s \"%s\" is invalid: metadata.finalizers: "
                                  "%s",
                                  q, name, why);
        gf_ks_status_details(err, name, t->group, t->kind);
        gf_ks_status_cause(err, "FieldValueForbidden", why,
                           "metadata.finalizers");
        return rc;
    }
    return 0;
}

/*
 * The new state for a main-resource write: the input, with the stored
 * status (for types with the subresource) and the metadata the registry
 * owns. Returned-owned in *out; 0 or a GF_E* code.
 */
static int merge_main(const struct gf_ks_rtype *t, const char *name,
                      const cJSON *old, const cJSON *in, cJSON **out,
                      struct gf_ks_status *err)
{
    cJSON *obj = cJSON_Duplicate(in, true);
    if (t->has_status)
        copy_key(obj, old, "status");
    cJSON *m = meta_of(obj);
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(old, "metadata");
    static const char *const fixed[] = {"name",
                                        "namespace",
                                        "uid",
                                        "creationTimestamp",
                                        "deletionTimestamp",
                                        "deletionGracePeriodSeconds",
                                        "generation",
                                        "selfLink"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        copy_key(m, om, fixed[i]);
    int rc = check_new_finalizers(t, name, old, obj, err);
    if (rc < 0) {
        cJSON_Delete(obj);
        return rc;
    }
    if (strcmp(t->gr, NS_GR) == 0) {
        /* A namespace's spec and status belong to its controller. */
        copy_key(obj, old, "spec");
        copy_key(obj, old, "status");
    }
    if (!t->no_generation && spec_changed(old, obj, t->has_status)) {
        int64_t g = 1;
        gf_json_int(old, "metadata.generation", &g);
        set_item(m, "generation", cJSON_CreateNumber((double)(g + 1)));
    }
    *out = obj;
    return 0;
}

/*
 * The heart of PUT and PATCH: in is the full desired object (owned).
 * Applies the registry rules and stores it.
 */
static int update_obj(struct gf_ks_store *st, struct gf__ks_st_table *tab,
                      struct gf__ks_st_entry *e, cJSON *in,
                      enum gf_ks_subres sub, struct gf_ks_obj **out,
                      struct gf_ks_status *err)
{
    const struct gf_ks_rtype *t = tab->t;
    cJSON *old = gf_ks_obj_parse(e->obj);
    cJSON *obj = NULL;
    char cur[24];
    fmt_rv(e->obj, cur);
    int rc = 0;
    if (!cJSON_IsObject(in)) {
        rc = gf_ks_status_set(err, 400, "BadRequest",
                              "the body of the request was not an object");
        goto out;
    }
    rc = check_preconditions(t, e, meta_of(in), cur, err);
    if (rc < 0)
        goto out;
    if (sub == GF_KS_STATUS) {
        /* /status takes only status; everything else stays as stored,
         * but for the field ownership the write recorded (managed.c). */
        obj = cJSON_Duplicate(old, true);
        copy_key(obj, in, "status");
        if (gf_json_path(in, "metadata.managedFields") != NULL)
            copy_key(meta_of(obj), meta_of(in), "managedFields");
    } else {
        rc = merge_main(t, e->obj->name, old, in, &obj, err);
        if (rc < 0)
            goto out;
    }
    /* The server skips writes that change nothing: same RV, no event. */
    set_str(meta_of(obj), "resourceVersion", cur);
    struct gf_ks_obj *o = e->obj;
    if (gf_json_equal(obj, old)) {
        gf__ks_st_keep(st, o);
    } else if (gf_json_path(obj, "metadata.deletionTimestamp") != NULL &&
               !gf__ks_st_has_finalizers(obj)) {
        o = gf__ks_st_remove_now(st, e, obj, GF_KS_PROP_BACKGROUND);
        obj = NULL;
    } else {
        o = gf__ks_st_replace_now(st, e, obj, old);
        obj = NULL;
    }
    if (out != NULL)
        *out = o;
out:
    cJSON_Delete(obj);
    cJSON_Delete(old);
    cJSON_Delete(in);
    return rc;
}

int gf_ks_store_update(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const char *name, const cJSON *in,
                       enum gf_ks_subres sub, struct gf_ks_obj **out,
                       struct gf_ks_status *err)
{
    struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    int rc;
    gf__ks_st_enter(st);
    struct gf__ks_st_entry *e = gf__ks_st_lookup(st, tab, ns, name);
    if (e == NULL)
        rc = not_found(tab, name, err);
    else
        rc = update_obj(st, tab, e, cJSON_Duplicate(in, true), sub, out, err);
    return gf__ks_st_leave(st, rc);
}

int gf_ks_store_patch(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                      const char *ns, const char *name,
                      enum gf_ks_patch_type type, const char *patch, size_t len,
                      enum gf_ks_subres sub, struct gf_ks_obj **out,
                      struct gf_ks_status *err)
{
    struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    gf__ks_st_enter(st);
    int rc = 0;
    struct gf__ks_st_entry *e = gf__ks_st_lookup(st, tab, ns, name);
    if (e == NULL) {
        rc = not_found(tab, name, err);
        return gf__ks_st_leave(st, rc);
    }
    cJSON *doc = gf_ks_obj_parse(e->obj);
    rc = gf_ks_patch_apply(type, &doc, patch, len, err);
    if (rc < 0) {
        cJSON_Delete(doc);
        return gf__ks_st_leave(st, rc);
    }
    rc = update_obj(st, tab, e, doc, sub, out, err);
    return gf__ks_st_leave(st, rc);
}

int gf_ks_store_patch_status(struct gf_ks_store *st,
                             const struct gf_ks_rtype *t, const char *ns,
                             const char *name, const cJSON *status,
                             struct gf_ks_obj **out, struct gf_ks_status *err)
{
    struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    gf__ks_st_enter(st);
    int rc;
    struct gf__ks_st_entry *e = gf__ks_st_lookup(st, tab, ns, name);
    if (e == NULL) {
        rc = not_found(tab, name, err);
        return gf__ks_st_leave(st, rc);
    }
    cJSON *doc = gf_ks_obj_parse(e->obj);
    cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(doc, "status");
    gf_ks_patch_merge(&cur, status);
    cJSON_AddItemToObject(doc, "status", cur);
    rc = update_obj(st, tab, e, doc, GF_KS_STATUS, out, err);
    return gf__ks_st_leave(st, rc);
}

/* ---- delete ---------------------------------------------------------- */

static bool has_dependents(const struct gf_ks_store *st, const char *uid)
{
    struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, uid);
    return u != NULL && u->deps != NULL;
}

/* Removes d's ownerReference to owner_uid (one MODIFIED event). */
void gf__ks_st_drop_owner_ref(struct gf_ks_store *st, struct gf__ks_st_entry *d,
                              const char *owner_uid)
{
    cJSON *j = gf_ks_obj_parse(d->obj);
    cJSON *refs = (cJSON *)gf_json_path(j, "metadata.ownerReferences");
    cJSON *r = refs != NULL ? refs->child : NULL;
    while (r != NULL) {
        cJSON *next = r->next;
        const char *ru = gf_json_str(r, "uid");
        if (ru != NULL && strcmp(ru, owner_uid) == 0) {
            cJSON_DetachItemViaPointer(refs, r);
            cJSON_Delete(r);
        }
        r = next;
    }
    if (refs != NULL && cJSON_GetArraySize(refs) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(meta_of(j), "ownerReferences");
    cJSON *old = gf_ks_obj_parse(d->obj);
    gf__ks_st_replace_now(st, d, j, old);
    cJSON_Delete(old);
}

/* Removes the ownerReference to owner_uid from every dependent. */
void gf__ks_st_orphan_dependents(struct gf_ks_store *st, const char *owner_uid)
{
    for (;;) {
        struct gf__ks_st_uidrec *u = gf__ks_st_uid_find(st, owner_uid);
        if (u == NULL || u->deps == NULL)
            return;
        gf__ks_st_drop_owner_ref(st, u->deps->e, owner_uid);
    }
}

static enum gf_ks_propagation resolve_prop(const struct gf_ks_rtype *t,
                                           enum gf_ks_propagation p)
{
    if (p != GF_KS_PROP_DEFAULT)
        return p;
    return t->default_orphan ? GF_KS_PROP_ORPHAN : GF_KS_PROP_BACKGROUND;
}

static void add_finalizer(cJSON *m, const char *f)
{
    cJSON *fins = cJSON_GetObjectItemCaseSensitive(m, "finalizers");
    if (!cJSON_IsArray(fins)) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "finalizers");
        fins = cJSON_AddArrayToObject(m, "finalizers");
    }
    cJSON_AddItemToArray(fins, cJSON_CreateString(f));
}

struct gf_ks_obj *gf__ks_st_delete_entry(struct gf_ks_store *st,
                                         struct gf__ks_st_entry *e,
                                         enum gf_ks_propagation prop,
                                         bool requested, bool *gone)
{
    cJSON *j = gf_ks_obj_parse(e->obj);
    if (gf_json_path(j, "metadata.deletionTimestamp") != NULL) {
        cJSON_Delete(j);
        *gone = false;
        gf__ks_st_keep(st, e->obj);
        return e->obj;
    }
    bool orphan = prop == GF_KS_PROP_ORPHAN && requested;
    if (prop == GF_KS_PROP_ORPHAN && !requested)
        gf__ks_st_orphan_dependents(st, e->uid);
    bool is_ns = strcmp(e->tab->t->gr, NS_GR) == 0;
    bool fg = prop == GF_KS_PROP_FOREGROUND &&
              (requested || has_dependents(st, e->uid));
    if (!gf__ks_st_has_finalizers(j) && !fg && !orphan && !is_ns) {
        *gone = true;
        return gf__ks_st_remove_now(st, e, j, prop);
    }
    cJSON *old = cJSON_Duplicate(j, true);
    cJSON *m = meta_of(j);
    char ts[32];
    now_rfc3339(st, ts);
    set_str(m, "deletionTimestamp", ts);
    set_item(m, "deletionGracePeriodSeconds", cJSON_CreateNumber(0));
    /* The registry bumps the generation when it marks an object deleted. */
    int64_t g = 0;
    if (gf_json_int(m, "generation", &g) == 0 && g > 0)
        set_item(m, "generation", cJSON_CreateNumber((double)(g + 1)));
    if (fg)
        add_finalizer(m, GF__KS_FG_FINALIZER);
    if (orphan)
        add_finalizer(m, GF__KS_ORPHAN_FINALIZER);
    if (is_ns) {
        cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
        if (cJSON_IsObject(status))
            set_str(status, "phase", "Terminating");
    }
    char *uid = gf_strdup(e->uid);
    char *name = gf_strdup(e->obj->name);
    struct gf_ks_obj *o = gf__ks_st_replace_now(st, e, j, old);
    cJSON_Delete(old);
    if (fg)
        gf__ks_st_gc_queue(st, GF__KS_GC_DEPENDENTS, GF_KS_PROP_FOREGROUND,
                           uid);
    if (orphan)
        gf__ks_st_gc_queue(st, GF__KS_GC_ORPHAN, GF_KS_PROP_DEFAULT, uid);
    if (is_ns)
        gf__ks_st_gc_queue(st, GF__KS_GC_NAMESPACE, GF_KS_PROP_DEFAULT, name);
    gf_free(uid);
    gf_free(name);
    *gone = false;
    return o;
}

int gf_ks_store_delete(struct gf_ks_store *st, const struct gf_ks_rtype *t,
                       const char *ns, const char *name,
                       const struct gf_ks_delete_opts *o,
                       struct gf_ks_obj **out, bool *gone,
                       struct gf_ks_status *err)
{
    struct gf__ks_st_table *tab = gf__ks_st_table_of(st, t);
    if (tab == NULL)
        return gf_ks_status_set(err, 404, "NotFound",
                                "the server could not find the requested "
                                "resource");
    static const struct gf_ks_delete_opts none;
    if (o == NULL)
        o = &none;
    gf__ks_st_enter(st);
    int rc = 0;
    struct gf__ks_st_entry *e = gf__ks_st_lookup(st, tab, ns, name);
    if (e == NULL) {
        rc = not_found(tab, name, err);
        return gf__ks_st_leave(st, rc);
    }
    /* The storage layer's words; it names the kind, not the resource. */
    char why[256];
    if (o->uid != NULL && o->uid[0] != '\0' && strcmp(o->uid, e->uid) != 0) {
        snprintf(why, sizeof(why),
                 "the UID in the precondition (%s) does not match the UID "
                 "in record (%s). The object might have been deleted and "
                 "then recreated",
                 o->uid, e->uid);
        rc = gf_ks_status_conflict(err, t->group, t->kind, name, why);
        return gf__ks_st_leave(st, rc);
    }
    char cur[24];
    fmt_rv(e->obj, cur);
    if (o->rv != NULL && o->rv[0] != '\0' && strcmp(o->rv, cur) != 0) {
        snprintf(why, sizeof(why),
                 "the ResourceVersion in the precondition (%s) does not "
                 "match the ResourceVersion in record (%s). The object "
                 "might have been modified",
                 o->rv, cur);
        rc = gf_ks_status_conflict(err, t->group, t->kind, name, why);
        return gf__ks_st_leave(st, rc);
    }
    bool g = false;
    struct gf_ks_obj *res = gf__ks_st_delete_entry(
        st, e, resolve_prop(t, o->propagation), true, &g);
    if (out != NULL)
        *out = res;
    if (gone != NULL)
        *gone = g;
    return gf__ks_st_leave(st, rc);
}
