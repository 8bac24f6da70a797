/*
 * managed: field ownership (metadata.managedFields) for kubesim's writes,
 * after the structured-merge-diff rules a real API server runs.
 *
 * A field set is held as a FieldsV1 tree in which every member carries an
 * explicit "." child: the server prints a member without children as {},
 * which would be ambiguous with "no members below" while sets are being
 * combined. sets_out() turns the tree back into the printed form.
 */
#include "e2e/kubesim/managed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"

#define MAX_DEPTH 48
#define MAX_ENTRIES 64
#define MEMBER "."

/* ---- field sets ---------------------------------------------------------- */

static cJSON *set_new(void)
{
    return cJSON_CreateObject();
}

static bool set_empty(const cJSON *s)
{
    return s == NULL || s->child == NULL;
}

static bool is_member(const cJSON *s)
{
    return cJSON_GetObjectItemCaseSensitive(s, MEMBER) != NULL;
}

static void mark(cJSON *s)
{
    if (!is_member(s))
        cJSON_AddItemToObject(s, MEMBER, cJSON_CreateObject());
}

static cJSON *child_of(cJSON *s, const char *pe)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(s, pe);
    if (c == NULL)
        c = cJSON_AddObjectToObject(s, pe);
    return c;
}

/* Adds the path pe[0..n) to s as a member. */
static void set_insert(cJSON *s, char *const *pe, int n)
{
    for (int i = 0; i < n; i++)
        s = child_of(s, pe[i]);
    mark(s);
}

static void set_union(cJSON *dst, const cJSON *src)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, src)
    {
        if (strcmp(c->string, MEMBER) == 0)
            mark(dst);
        else
            set_union(child_of(dst, c->string), c);
    }
}

/* dst minus src; children left empty are dropped. */
static void set_diff(cJSON *dst, const cJSON *src)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, src)
    {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, c->string);
        if (d == NULL)
            continue;
        if (strcmp(c->string, MEMBER) == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(dst, MEMBER);
            continue;
        }
        set_diff(d, c);
        if (set_empty(d))
            cJSON_DeleteItemFromObjectCaseSensitive(dst, c->string);
    }
}

static cJSON *set_inter(const cJSON *a, const cJSON *b)
{
    cJSON *out = set_new();
    const cJSON *c;
    cJSON_ArrayForEach(c, a)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(b, c->string);
        if (d == NULL)
            continue;
        if (strcmp(c->string, MEMBER) == 0) {
            mark(out);
            continue;
        }
        cJSON *x = set_inter(c, d);
        if (set_empty(x))
            cJSON_Delete(x);
        else
            cJSON_AddItemToObject(out, c->string, x);
    }
    return out;
}

/* The server's order: the item itself, then fields, keys, values, indexes. */
static int pe_rank(const char *s)
{
    if (strcmp(s, MEMBER) == 0)
        return 0;
    switch (s[0]) {
    case 'f':
        return 1;
    case 'k':
        return 2;
    case 'v':
        return 3;
    default:
        return 4;
    }
}

static int pe_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    int rx = pe_rank(x->string), ry = pe_rank(y->string);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return strcmp(x->string, y->string);
}

/* The children of s in the server's order; returned-owned array. */
static const cJSON **sorted_children(const cJSON *s, size_t *n)
{
    size_t k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, s) k++;
    const cJSON **v = gf_calloc(k + 1, sizeof(*v));
    k = 0;
    cJSON_ArrayForEach(c, s) v[k++] = c;
    qsort(v, k, sizeof(*v), pe_cmp);
    *n = k;
    return v;
}

/* The printed FieldsV1 form of s; returned-owned. */
static cJSON *set_out(const cJSON *s)
{
    cJSON *out = cJSON_CreateObject();
    size_t n;
    const cJSON **v = sorted_children(s, &n);
    bool only_member = n == 1 && strcmp(v[0]->string, MEMBER) == 0;
    for (size_t i = 0; i < n && !only_member; i++)
        cJSON_AddItemToObject(out, v[i]->string,
                              strcmp(v[i]->string, MEMBER) == 0
                                  ? cJSON_CreateObject()
                                  : set_out(v[i]));
    gf_free(v);
    return out;
}

/* The printed form read back: {} is a member without children. */
static cJSON *set_in(const cJSON *f, int depth)
{
    cJSON *s = set_new();
    if (!cJSON_IsObject(f) || depth > MAX_DEPTH)
        return s;
    if (f->child == NULL) {
        mark(s);
        return s;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, f)
    {
        if (strcmp(c->string, MEMBER) == 0)
            mark(s);
        else
            cJSON_AddItemToObject(s, c->string, set_in(c, depth + 1));
    }
    return s;
}

/* ---- types --------------------------------------------------------------- */

enum kind { K_ATOMIC, K_MAP, K_LIST_MAP, K_SET };

/*
 * Where the walk is: a CRD schema node (NULL when unknown or built-in),
 * whether the rules are the built-in ones, and the field's name (the
 * built-in table is keyed by it).
 */
struct ty {
    const cJSON *schema;
    bool builtin;
    const char *field;
};

/* The list-map keys of the built-in types kubesim serves. */
static const struct {
    const char *field;
    const char *keys[2];
} builtin_keys[] = {
    {"containers", {"name"}},
    {"initContainers", {"name"}},
    {"ephemeralContainers", {"name"}},
    {"env", {"name"}},
    {"volumes", {"name"}},
    {"volumeMounts", {"mountPath"}},
    {"volumeDevices", {"devicePath"}},
    {"ports", {"containerPort", "protocol"}},
    {"conditions", {"type"}},
    {"ownerReferences", {"uid"}},
    {"imagePullSecrets", {"name"}},
    {"hostAliases", {"ip"}},
};

static int builtin_list(const char *field)
{
    for (size_t i = 0;
         field != NULL && i < sizeof(builtin_keys) / sizeof(builtin_keys[0]);
         i++)
        if (strcmp(builtin_keys[i].field, field) == 0)
            return (int)i;
    return -1;
}

static enum kind kind_of(struct ty t, const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        const char *mt = gf_json_str(t.schema, "x-kubernetes-map-type");
        return mt != NULL && strcmp(mt, "atomic") == 0 ? K_ATOMIC : K_MAP;
    }
    if (!cJSON_IsArray(v))
        return K_ATOMIC;
    if (t.builtin) {
        if (t.field != NULL && strcmp(t.field, "finalizers") == 0)
            return K_SET;
        return builtin_list(t.field) >= 0 ? K_LIST_MAP : K_ATOMIC;
    }
    const char *lt = gf_json_str(t.schema, "x-kubernetes-list-type");
    if (lt != NULL && strcmp(lt, "map") == 0)
        return K_LIST_MAP;
    if (lt != NULL && strcmp(lt, "set") == 0)
        return K_SET;
    return K_ATOMIC;
}

static struct ty field_ty(struct ty t, const char *key, int depth)
{
    /* ObjectMeta is a bare object in CRD schemas: the built-in rules. */
    if (depth == 0 && strcmp(key, "metadata") == 0)
        return (struct ty){NULL, true, key};
    if (t.builtin)
        return (struct ty){NULL, true, key};
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(t.schema, "properties"), key);
    if (!cJSON_IsObject(p))
        p = cJSON_GetObjectItemCaseSensitive(t.schema, "additionalProperties");
    return (struct ty){cJSON_IsObject(p) ? p : NULL, false, key};
}

static struct ty item_ty(struct ty t)
{
    if (t.builtin)
        return (struct ty){NULL, true, NULL};
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(t.schema, "items");
    return (struct ty){cJSON_IsObject(i) ? i : NULL, false, NULL};
}

/*
 * The k:{...} element of a list-map item: its key fields, sorted by name
 * as the server prints them. NULL when the item has none of them.
 * Container ports default their protocol to TCP before the server keys
 * them.
 */
static char *item_key(struct ty t, const cJSON *item)
{
    const char *names[8];
    size_t n = 0;
    if (t.builtin) {
        int i = builtin_list(t.field);
        for (size_t j = 0; j < 2 && builtin_keys[i].keys[j] != NULL; j++)
            names[n++] = builtin_keys[i].keys[j];
    } else {
        const cJSON *k;
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(
                                  t.schema, "x-kubernetes-list-map-keys"))
        {
            if (cJSON_IsString(k) && n < sizeof(names) / sizeof(names[0]))
                names[n++] = k->valuestring;
        }
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *x = names[j];
            names[j] = names[j - 1];
            names[j - 1] = x;
        }
    cJSON *o = cJSON_CreateObject();
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, names[i]);
        if (v == NULL && t.builtin && strcmp(names[i], "protocol") == 0) {
            cJSON_AddStringToObject(o, names[i], "TCP");
            continue;
        }
        if (v == NULL)
            continue;
        cJSON_AddItemToObject(o, names[i], cJSON_Duplicate(v, true));
        any = true;
    }
    char *s = NULL;
    if (any) {
        char *j = cJSON_PrintUnformatted(o);
        size_t len = strlen(j) + 3;
        s = gf_malloc(len);
        snprintf(s, len, "k:%s", j);
        gf_free(j);
    }
    cJSON_Delete(o);
    return s;
}

static char *value_pe(const cJSON *v)
{
    char *j = cJSON_PrintUnformatted(v);
    size_t len = strlen(j) + 3;
    char *s = gf_malloc(len);
    snprintf(s, len, "v:%s", j);
    gf_free(j);
    return s;
}

static char *field_pe(const char *name)
{
    size_t len = strlen(name) + 3;
    char *s = gf_malloc(len);
    snprintf(s, len, "f:%s", name);
    return s;
}

/* ---- comparing two objects ------------------------------------------- */

struct walk {
    char *pe[MAX_DEPTH + 1];
    int n;
    bool builtin; /* the root is a built-in type */
    bool job;     /* a batch/v1 Job: status.conditions is atomic */
    cJSON *added, *modified, *removed;
};

static bool push(struct walk *w, char *pe)
{
    if (pe == NULL || w->n >= MAX_DEPTH) {
        gf_free(pe);
        return false;
    }
    w->pe[w->n++] = pe;
    return true;
}

static void pop(struct walk *w)
{
    gf_free(w->pe[--w->n]);
}

static const cJSON *present(const cJSON *v)
{
    return v == NULL || cJSON_IsNull(v) ? NULL : v;
}

static bool empty_or_absent(const cJSON *v)
{
    return v == NULL ||
           ((cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child == NULL);
}

static void cmp(struct walk *w, const cJSON *a, const cJSON *b, struct ty t);

/*
 * A built-in object is compared as the Go struct it decodes to, where
 * struct-valued fields (spec, status, a Job's pod template and its
 * parts) and PodSpec.containers (no omitempty) are never absent: the
 * server never counts them as added or removed themselves.
 */
static bool never_absent(const struct walk *w)
{
    static const char *const paths[] = {
        "f:spec",
        "f:status",
        "f:spec\nf:template",
        "f:spec\nf:template\nf:metadata",
        "f:spec\nf:template\nf:spec",
        "f:spec\nf:template\nf:spec\nf:containers",
    };
    if (!w->builtin)
        return false;
    char path[256];
    size_t len = 0;
    path[0] = '\0';
    for (int i = 0; i < w->n && len < sizeof(path); i++)
        len += (size_t)snprintf(path + len, sizeof(path) - len, "%s%s",
                                i > 0 ? "\n" : "", w->pe[i]);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (strcmp(path, paths[i]) == 0)
            return true;
    return false;
}

static void cmp_leaf(struct walk *w, const cJSON *a, const cJSON *b)
{
    if (a == NULL)
        set_insert(w->added, w->pe, w->n);
    else if (b == NULL)
        set_insert(w->removed, w->pe, w->n);
    else if (!gf_json_equal(a, b))
        set_insert(w->modified, w->pe, w->n);
}

static void cmp_map(struct walk *w, const cJSON *a, const cJSON *b, struct ty t)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, a)
    {
        if (push(w, field_pe(c->string))) {
            cmp(w, present(c),
                present(cJSON_GetObjectItemCaseSensitive(b, c->string)),
                field_ty(t, c->string, w->n - 1));
            pop(w);
        }
    }
    cJSON_ArrayForEach(c, b)
    {
        if (cJSON_GetObjectItemCaseSensitive(a, c->string) == NULL &&
            push(w, field_pe(c->string))) {
            cmp(w, NULL, present(c), field_ty(t, c->string, w->n - 1));
            pop(w);
        }
    }
}

static const cJSON *find_keyed(struct ty t, const cJSON *list, const char *key)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        char *k = item_key(t, e);
        bool same = k != NULL && strcmp(k, key) == 0;
        gf_free(k);
        if (same)
            return e;
    }
    return NULL;
}

static void cmp_list_map(struct walk *w, const cJSON *a, const cJSON *b,
                         struct ty t)
{
    struct ty it = item_ty(t);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        char *k = item_key(t, e);
        const cJSON *o = k != NULL ? find_keyed(t, b, k) : NULL;
        if (push(w, k)) {
            cmp(w, e, o, it);
            pop(w);
        }
    }
    cJSON_ArrayForEach(e, b)
    {
        char *k = item_key(t, e);
        if (k != NULL && find_keyed(t, a, k) != NULL) {
            gf_free(k);
            continue;
        }
        if (push(w, k)) {
            cmp(w, NULL, e, it);
            pop(w);
        }
    }
}

static bool in_list(const cJSON *list, const cJSON *v)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        if (gf_json_equal(e, v))
            return true;
    }
    return false;
}

static void cmp_set(struct walk *w, const cJSON *a, const cJSON *b)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!in_list(b, e) && push(w, value_pe(e))) {
            set_insert(w->removed, w->pe, w->n);
            pop(w);
        }
    }
    cJSON_ArrayForEach(e, b)
    {
        if (!in_list(a, e) && push(w, value_pe(e))) {
            set_insert(w->added, w->pe, w->n);
            pop(w);
        }
    }
}

/*
 * The structured-merge-diff comparison: leaves (scalars, atomic lists and
 * maps, and empty ones) are added, modified or removed; a granular map or
 * list is itself added or removed when it appears or goes.
 */
static void cmp(struct walk *w, const cJSON *a, const cJSON *b, struct ty t)
{
    if (a == NULL && b == NULL)
        return;
    const cJSON *any = a != NULL ? a : b;
    enum kind k = kind_of(t, any);
    if (w->job && w->n == 2 && strcmp(w->pe[0], "f:status") == 0 &&
        strcmp(w->pe[1], "f:conditions") == 0)
        k = K_ATOMIC;
    bool same_shape = a == NULL || b == NULL ||
                      (cJSON_IsObject(a) == cJSON_IsObject(b) &&
                       cJSON_IsArray(a) == cJSON_IsArray(b));
    if (k == K_ATOMIC || !same_shape ||
        (empty_or_absent(a) && empty_or_absent(b))) {
        cmp_leaf(w, a, b);
        return;
    }
    if (k == K_MAP)
        cmp_map(w, a, b, t);
    else if (k == K_LIST_MAP)
        cmp_list_map(w, a, b, t);
    else
        cmp_set(w, a, b);
    if (never_absent(w))
        return;
    if (a == NULL)
        set_insert(w->added, w->pe, w->n);
    else if (b == NULL)
        set_insert(w->removed, w->pe, w->n);
}

/*
 * The fields of an applied configuration: its leaves and list-map items,
 * not the maps and lists that hold them.
 */
static void to_set(struct walk *w, const cJSON *v, struct ty t, bool item)
{
    enum kind k = kind_of(t, v);
    if (item || k == K_ATOMIC || empty_or_absent(v))
        set_insert(w->added, w->pe, w->n);
    if (k == K_ATOMIC || empty_or_absent(v))
        return;
    const cJSON *c;
    cJSON_ArrayForEach(c, v)
    {
        if (k == K_MAP) {
            if (present(c) != NULL && push(w, field_pe(c->string))) {
                to_set(w, c, field_ty(t, c->string, w->n - 1), false);
                pop(w);
            }
        } else if (k == K_LIST_MAP) {
            if (push(w, item_key(t, c))) {
                to_set(w, c, item_ty(t), true);
                pop(w);
            }
        } else if (push(w, value_pe(c))) {
            set_insert(w->added, w->pe, w->n);
            pop(w);
        }
    }
}

/*
 * The part of an object that field management looks at: not the type
 * meta, not the metadata the registry owns, and with a status
 * subresource either the status alone (a /status write) or everything but
 * the status, as the registries' reset fields say.
 */
static cJSON *tracked(const struct gf_ks_managed_op *op, const cJSON *obj)
{
    cJSON *o =
        cJSON_IsObject(obj) ? cJSON_Duplicate(obj, true) : cJSON_CreateObject();
    if (op->has_status && op->status) {
        cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(o, "status");
        cJSON_Delete(o);
        o = cJSON_CreateObject();
        if (st != NULL)
            cJSON_AddItemToObject(o, "status", st);
        return o;
    }
    if (op->has_status)
        cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "kind");
    cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    static const char *const owned[] = {"name",
                                        "namespace",
                                        "uid",
                                        "generation",
                                        "creationTimestamp",
                                        "selfLink",
                                        "managedFields",
                                        "resourceVersion",
                                        "deletionTimestamp",
                                        "deletionGracePeriodSeconds"};
    for (size_t i = 0;
         cJSON_IsObject(m) && i < sizeof(owned) / sizeof(owned[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(m, owned[i]);
    return o;
}

static struct ty root_ty(const struct gf_ks_managed_op *op)
{
    return (struct ty){op->schema, op->schema == NULL, NULL};
}

/* ---- managedFields entries ---------------------------------------------- */

struct entry {
    char manager[GF_KS_MANAGER_MAX + 1];
    bool apply;
    char api_version[128];
    bool status;
    char time[32];
    cJSON *set; /* owned, internal form */
};

struct entries {
    struct entry e[MAX_ENTRIES];
    size_t n;
};

static void entries_free(struct entries *es)
{
    for (size_t i = 0; i < es->n; i++)
        cJSON_Delete(es->e[i].set);
    es->n = 0;
}

static void entries_read(struct entries *es, const cJSON *mf)
{
    const cJSON *m;
    es->n = 0;
    cJSON_ArrayForEach(m, mf)
    {
        const char *mgr = gf_json_str(m, "manager");
        const char *op = gf_json_str(m, "operation");
        if (es->n == MAX_ENTRIES || mgr == NULL || op == NULL)
            continue;
        struct entry *e = &es->e[es->n++];
        snprintf(e->manager, sizeof(e->manager), "%s", mgr);
        e->apply = strcmp(op, "Apply") == 0;
        const char *s = gf_json_str(m, "apiVersion");
        snprintf(e->api_version, sizeof(e->api_version), "%s", s ? s : "");
        s = gf_json_str(m, "time");
        snprintf(e->time, sizeof(e->time), "%s", s ? s : "");
        s = gf_json_str(m, "subresource");
        e->status = s != NULL && strcmp(s, "status") == 0;
        e->set = set_in(cJSON_GetObjectItemCaseSensitive(m, "fieldsV1"), 0);
    }
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->apply != y->apply)
        return x->apply ? -1 : 1; /* "Apply" sorts before "Update" */
    int c = strcmp(x->time, y->time);
    if (c == 0)
        c = strcmp(x->manager, y->manager);
    if (c == 0)
        c = strcmp(x->api_version, y->api_version);
    if (c == 0 && x->status != y->status)
        c = x->status ? 1 : -1;
    return c;
}

/* Writes es (sorted, empty sets dropped) as obj's managedFields. */
static void entries_write(struct entries *es, cJSON *obj)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (m == NULL)
        m = cJSON_AddObjectToObject(obj, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "managedFields");
    size_t k = 0;
    for (size_t i = 0; i < es->n; i++) {
        if (set_empty(es->e[i].set))
            cJSON_Delete(es->e[i].set);
        else
            es->e[k++] = es->e[i];
    }
    es->n = k;
    if (k == 0)
        return;
    qsort(es->e, k, sizeof(es->e[0]), entry_cmp);
    cJSON *arr = cJSON_AddArrayToObject(m, "managedFields");
    for (size_t i = 0; i < k; i++) {
        const struct entry *e = &es->e[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "manager", e->manager);
        cJSON_AddStringToObject(o, "operation", e->apply ? "Apply" : "Update");
        cJSON_AddStringToObject(o, "apiVersion", e->api_version);
        cJSON_AddStringToObject(o, "time", e->time);
        cJSON_AddStringToObject(o, "fieldsType", "FieldsV1");
        cJSON_AddItemToObject(o, "fieldsV1", set_out(e->set));
        if (e->status)
            cJSON_AddStringToObject(o, "subresource", "status");
        cJSON_AddItemToArray(arr, o);
    }
}

/*
 * The entry of this write's manager: Apply entries are one per manager
 * (and subresource), Update entries one per manager and API version.
 */
static struct entry *entry_of(struct entries *es,
                              const struct gf_ks_managed_op *op, bool apply)
{
    for (size_t i = 0; i < es->n; i++) {
        struct entry *e = &es->e[i];
        if (e->apply == apply && e->status == op->status &&
            strcmp(e->manager, op->manager) == 0 &&
            (apply || strcmp(e->api_version, op->api_version) == 0))
            return e;
    }
    if (es->n == MAX_ENTRIES)
        return NULL;
    struct entry *e = &es->e[es->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->manager, sizeof(e->manager), "%s", op->manager);
    e->apply = apply;
    e->status = op->status;
    e->set = set_new();
    return e;
}

static void entry_stamp(struct entry *e, const struct gf_ks_managed_op *op)
{
    snprintf(e->api_version, sizeof(e->api_version), "%s", op->api_version);
    snprintf(e->time, sizeof(e->time), "%s", op->now);
}

/*
 * ObjectMeta itself is never owned (the server strips .metadata from
 * every set); only fields inside it are.
 */
static void unown_meta(cJSON *s)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(s, "f:metadata");
    if (m == NULL)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(m, MEMBER);
    if (set_empty(m))
        cJSON_DeleteItemFromObjectCaseSensitive(s, "f:metadata");
}

static void compare(const struct gf_ks_managed_op *op, const cJSON *live,
                    const cJSON *obj, struct walk *w)
{
    cJSON *a = tracked(op, live), *b = tracked(op, obj);
    w->n = 0;
    w->added = set_new();
    w->modified = set_new();
    w->removed = set_new();
    w->builtin = op->schema == NULL;
    w->job = op->kind != NULL && strcmp(op->kind, "Job") == 0 && w->builtin;
    cmp(w, a, b, root_ty(op));
    unown_meta(w->added);
    unown_meta(w->modified);
    unown_meta(w->removed);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void walk_free(struct walk *w)
{
    cJSON_Delete(w->added);
    cJSON_Delete(w->modified);
    cJSON_Delete(w->removed);
}

/* ---- the two operations ------------------------------------------------ */

void gf_ks_managed_name(const char *field_manager, const char *user_agent,
                        char *out, size_t cap)
{
    if (field_manager != NULL && field_manager[0] != '\0') {
        snprintf(out, cap, "%s", field_manager);
        return;
    }
    if (user_agent == NULL || user_agent[0] == '\0') {
        snprintf(out, cap, "unknown");
        return;
    }
    size_t n = strcspn(user_agent, "/");
    if (n > GF_KS_MANAGER_MAX)
        n = GF_KS_MANAGER_MAX;
    snprintf(out, cap, "%.*s", (int)n, user_agent);
}

void gf_ks_managed_update(const struct gf_ks_managed_op *op, const cJSON *live,
                          cJSON *obj)
{
    struct entries *es = gf_calloc(1, sizeof(*es));
    const cJSON *mine = gf_json_path(obj, "metadata.managedFields");
    entries_read(es, cJSON_IsArray(mine) && mine->child != NULL
                         ? mine
                         : gf_json_path(live, "metadata.managedFields"));
    struct walk w;
    compare(op, live, obj, &w);
    cJSON *changed = set_new();
    set_union(changed, w.added);
    set_union(changed, w.modified);
    for (size_t i = 0; i < es->n; i++) {
        set_diff(es->e[i].set, changed);
        set_diff(es->e[i].set, w.removed);
    }
    if (!set_empty(changed)) {
        struct entry *e = entry_of(es, op, false);
        if (e != NULL) {
            set_union(e->set, changed);
            entry_stamp(e, op);
        }
    }
    entries_write(es, obj);
    entries_free(es);
    cJSON_Delete(changed);
    walk_free(&w);
    gf_free(es);
}

/* The item of v that the path element pe names, and its type in *ct. */
static cJSON *item_at(cJSON *v, const char *pe, struct ty t, int depth,
                      struct ty *ct)
{
    *ct = t;
    if (strncmp(pe, "f:", 2) == 0 && cJSON_IsObject(v)) {
        *ct = field_ty(t, pe + 2, depth);
        return cJSON_GetObjectItemCaseSensitive(v, pe + 2);
    }
    if (strncmp(pe, "k:", 2) == 0 && cJSON_IsArray(v)) {
        *ct = item_ty(t);
        return (cJSON *)find_keyed(t, v, pe);
    }
    if (strncmp(pe, "v:", 2) != 0 || !cJSON_IsArray(v))
        return NULL;
    cJSON *e, *x = NULL, *want = cJSON_Parse(pe + 2);
    cJSON_ArrayForEach(e, v)
    {
        if (x == NULL && want != NULL && gf_json_equal(e, want))
            x = e;
    }
    cJSON_Delete(want);
    return x;
}

/*
 * Removes the members of s from v (the object, at the same place), but
 * not an item that a manager still owns something inside of (own, the
 * union of every manager's set, at the same place): the server removes
 * the manager's last set and adds back every item still owned.
 */
static void remove_items(cJSON *v, const cJSON *s, const cJSON *own,
                         struct ty t, int depth)
{
    const cJSON *c;
    if (depth > MAX_DEPTH)
        return;
    cJSON_ArrayForEach(c, s)
    {
        struct ty ct;
        cJSON *x = strcmp(c->string, MEMBER) == 0
                       ? NULL
                       : item_at(v, c->string, t, depth, &ct);
        if (x == NULL)
            continue;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(own, c->string);
        if (is_member(c) && set_empty(o))
            cJSON_Delete(cJSON_DetachItemViaPointer(v, x));
        else
            remove_items(x, c, o, ct, depth + 1);
    }
}

/* [name="main"] for k:{"name":"main"}. */
static void key_str(struct gf_buf *b, const char *json)
{
    cJSON *k = cJSON_Parse(json);
    const cJSON *f;
    gf_buf_putc(b, '[');
    cJSON_ArrayForEach(f, k)
    {
        char *v = cJSON_PrintUnformatted(f);
        gf_buf_printf(b, "%s%s=%s", f == k->child ? "" : ",", f->string, v);
        gf_free(v);
    }
    gf_buf_putc(b, ']');
    cJSON_Delete(k);
}

/* ".spec.containers[name=\"main\"].image", as conflicts name a field. */
static void path_str(const char *const *pe, int n, char *out, size_t cap)
{
    struct gf_buf b;
    gf_buf_init(&b, cap);
    for (int i = 0; i < n; i++) {
        const char *p = pe[i];
        if (strncmp(p, "f:", 2) == 0)
            gf_buf_printf(&b, ".%s", p + 2);
        else if (strncmp(p, "v:", 2) == 0)
            gf_buf_printf(&b, "[=%s]", p + 2);
        else if (strncmp(p, "k:", 2) == 0)
            key_str(&b, p + 2);
        else
            gf_buf_printf(&b, "[%s]", p + 2);
    }
    snprintf(out, cap, "%s", gf_buf_cstr(&b));
    gf_buf_free(&b);
}

struct conflicts {
    const struct entry *e;
    struct gf_buf *msg;
    struct gf_ks_status *err;
    int count;
    char who[GF_KS_MANAGER_MAX + 200];
    char *pe[MAX_DEPTH + 1];
};

/* "\"name\"", with the subresource and, for an Update, its version. */
static void who_of(const struct entry *e, char *out, size_t cap)
{
    int n = snprintf(out, cap, "\"%s\"", e->manager);
    if (e->status && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n,
                      " with subresource "
                      "\"status\"");
    if (!e->apply && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " using %s", e->api_version);
}

/* Calls fn on each member path of s, in the server's order. */
static int each_path(const cJSON *s, char **pe, int n,
                     void (*fn)(void *, char *const *, int), void *arg)
{
    size_t k;
    int count = 0;
    if (n > MAX_DEPTH)
        return 0;
    const cJSON **v = sorted_children(s, &k);
    for (size_t i = 0; i < k; i++) {
        if (strcmp(v[i]->string, MEMBER) == 0) {
            fn(arg, pe, n);
            count++;
            continue;
        }
        pe[n] = v[i]->string;
        count += each_path(v[i], pe, n + 1, fn, arg);
    }
    gf_free(v);
    return count;
}

static void count_one(void *arg, char *const *pe, int n)
{
    (void)pe;
    (void)n;
    (*(int *)arg)++;
}

/* One conflicting field: a cause, and a line when there are several. */
static void conflict_one(void *arg, char *const *pe, int n)
{
    struct conflicts *c = arg;
    char path[1024], msg[GF_KS_MANAGER_MAX + 220];
    path_str((const char *const *)pe, n, path, sizeof(path));
    snprintf(msg, sizeof(msg), "conflict with %s", c->who);
    gf_ks_status_cause(c->err, "FieldManagerConflict", msg, path);
    if (c->count == 1)
        gf_buf_printf(c->msg, "conflict with %s: %s", c->who, path);
    else
        gf_buf_printf(c->msg, "\n- %s", path);
}

/*
 * The 409 of a refused apply, worded as the server words it: one
 * conflict on one line, several grouped by manager.
 */
static int conflict_error(const struct entries *es, cJSON *const *sets,
                          struct gf_ks_status *err)
{
    char *pe[MAX_DEPTH + 1];
    int total = 0;
    for (size_t i = 0; i < es->n; i++)
        if (sets[i] != NULL)
            each_path(sets[i], pe, 0, count_one, &total);
    struct gf_buf msg;
    gf_buf_init(&msg, sizeof(err->message));
    gf_buf_printf(&msg, "Apply failed with %d conflict%s: ", total,
                  total == 1 ? "" : "s");
    int rc = gf_ks_status_set(err, 409, "Conflict", "Apply failed");
    struct conflicts c = {.msg = &msg, .err = err, .count = total};
    bool first = true;
    for (size_t i = 0; i < es->n; i++) {
        if (sets[i] == NULL)
            continue;
        who_of(&es->e[i], c.who, sizeof(c.who));
        if (total > 1)
            gf_buf_printf(&msg, "%sconflicts with %s:", first ? "" : "\n",
                          c.who);
        first = false;
        each_path(sets[i], c.pe, 0, conflict_one, &c);
    }
    snprintf(err->message, sizeof(err->message), "%s", gf_buf_cstr(&msg));
    err->details = true;
    gf_buf_free(&msg);
    return rc;
}

/*
 * kubectl's move from client-side to server-side apply: for the manager
 * "kubectl", a conflict on a field that the last-applied-configuration
 * annotation names (and the object has) is allowed, so the first
 * `kubectl apply --server-side` after `kubectl apply` takes over the
 * fields it applied before. Returned-owned set; NULL when the object has
 * no annotation.
 */
static cJSON *last_applied_fields(const struct gf_ks_managed_op *op,
                                  const cJSON *live)
{
    const cJSON *ann = gf_json_path(live, "metadata.annotations");
    const cJSON *la = cJSON_GetObjectItemCaseSensitive(
        ann, "kubectl.kubernetes.io/last-applied-configuration");
    if (strcmp(op->manager, "kubectl") != 0 || !cJSON_IsString(la) ||
        la->valuestring[0] == '\0')
        return NULL;
    cJSON *cfg = cJSON_Parse(la->valuestring);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return NULL;
    }
    struct walk w = {0};
    w.builtin = op->schema == NULL;
    cJSON *t = tracked(op, cfg), *l = tracked(op, live);
    w.added = set_new();
    to_set(&w, t, root_ty(op), false);
    cJSON *a = w.added;
    w.added = set_new();
    to_set(&w, l, root_ty(op), false);
    cJSON *out = set_inter(a, w.added);
    cJSON_Delete(w.added);
    cJSON_Delete(a);
    cJSON_Delete(t);
    cJSON_Delete(l);
    cJSON_Delete(cfg);
    return out;
}

/* Other managers in the order the server lists conflicts: by name. */
static int by_manager(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->manager, y->manager);
    if (c == 0 && x->apply != y->apply)
        c = x->apply ? -1 : 1;
    return c;
}

/* The fields of an applied configuration (to_set), returned-owned. */
static cJSON *config_set(const struct gf_ks_managed_op *op, const cJSON *cfg)
{
    struct walk w = {0};
    cJSON *c = tracked(op, cfg);
    w.added = set_new();
    w.builtin = op->schema == NULL;
    to_set(&w, c, root_ty(op), false);
    cJSON_Delete(c);
    unown_meta(w.added);
    return w.added;
}

/*
 * me's new set is set: what it applied last time and no longer applies
 * goes from obj, unless a manager still owns it or something inside it.
 */
static void prune(struct entries *es, struct entry *me, cJSON *set,
                  const struct gf_ks_managed_op *op, cJSON *obj)
{
    cJSON *gone = me->set;
    me->set = set;
    cJSON *own = set_new();
    for (size_t i = 0; i < es->n; i++)
        set_union(own, es->e[i].set);
    set_diff(gone, own);
    remove_items(obj, gone, own, root_ty(op), 0);
    cJSON_Delete(own);
    cJSON_Delete(gone);
    /* ObjectMeta's maps and lists are omitted when empty. */
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    static const char *const maps[] = {"labels", "annotations", "finalizers"};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        if (empty_or_absent(cJSON_GetObjectItemCaseSensitive(m, maps[i])))
            cJSON_DeleteItemFromObjectCaseSensitive(m, maps[i]);
}

/*
 * conf[i]: the fields of other manager i that this apply changes, NULL
 * when none. Returns whether there is any.
 */
static bool find_conflicts(const struct entries *es, const struct entry *me,
                           const cJSON *changed, cJSON **conf)
{
    bool any = false;
    for (size_t i = 0; i < es->n; i++) {
        conf[i] = NULL;
        if (&es->e[i] == me)
            continue;
        cJSON *x = set_inter(es->e[i].set, changed);
        if (set_empty(x)) {
            cJSON_Delete(x);
            continue;
        }
        conf[i] = x;
        any = true;
    }
    return any;
}

/* Drops the conflicts allowed; returns whether any are left. */
static bool allow(const struct entries *es, cJSON **conf, cJSON *allowed)
{
    bool any = false;
    for (size_t i = 0; i < es->n; i++) {
        if (conf[i] == NULL)
            continue;
        set_diff(conf[i], allowed);
        if (set_empty(conf[i])) {
            cJSON_Delete(conf[i]);
            conf[i] = NULL;
        } else
            any = true;
    }
    cJSON_Delete(allowed);
    return any;
}

int gf_ks_managed_apply(const struct gf_ks_managed_op *op, const cJSON *live,
                        const cJSON *cfg, bool force, cJSON *obj,
                        struct gf_ks_status *err)
{
    struct entries *es = gf_calloc(1, sizeof(*es));
    entries_read(es, gf_json_path(live, "metadata.managedFields"));
    qsort(es->e, es->n, sizeof(es->e[0]), by_manager);
    cJSON *set = config_set(op, cfg);
    struct entry *me = entry_of(es, op, true);
    int rc = 0;
    if (me == NULL) {
        cJSON_Delete(set);
        rc = gf_ks_status_set(err, 500, "InternalError",
                              "too many field managers");
        goto out;
    }
    prune(es, me, set, op, obj);
    struct walk w = {0};
    compare(op, live, obj, &w);
    cJSON *changed = set_new();
    set_union(changed, w.added);
    set_union(changed, w.modified);
    cJSON *conf[MAX_ENTRIES];
    bool any = find_conflicts(es, me, changed, conf);
    size_t n = es->n; /* entries_write drops emptied entries */
    cJSON *allowed = any && !force ? last_applied_fields(op, live) : NULL;
    if (allowed != NULL)
        any = allow(es, conf, allowed);
    if (any && !force) {
        rc = conflict_error(es, conf, err);
    } else {
        for (size_t i = 0; i < es->n; i++) {
            if (&es->e[i] == me)
                continue;
            set_diff(es->e[i].set, changed);
            set_diff(es->e[i].set, w.removed);
        }
        entry_stamp(me, op);
        entries_write(es, obj);
    }
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(conf[i]);
    cJSON_Delete(changed);
    walk_free(&w);
out:
    entries_free(es);
    gf_free(es);
    return rc;
}
