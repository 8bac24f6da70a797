/*
 * api_proto: decoding of the Kubernetes protobuf encoding for the few
 * built-in kinds kubectl's typed commands send that way.
 *
 * `kubectl create namespace|configmap|secret|serviceaccount|role|
 * clusterrole|rolebinding|clusterrolebinding` and `kubectl auth can-i`
 * (a SelfSubjectAccessReview) encode their object as
 * application/vnd.kubernetes.protobuf: the magic "k8s\0", then a
 * runtime.Unknown message {typeMeta{apiVersion, kind}, raw} whose raw
 * bytes are the object in the generated.proto encoding of k8s.io/api.
 * kubesim speaks JSON, so these bodies are turned into the JSON object
 * they stand for, guided by a small table of field numbers per message
 * (only the fields these commands can set). Other kinds are refused with
 * 415, as client-go then falls back to JSON.
 *
 * The decoder is bounds-checked at every step: bad input is a 400, never
 * an over-read.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/err.h"
#include "e2e/kubesim/api_toolkit.h"

#define PROTO_MAX_DEPTH 16

enum fkind {
    F_STRING,
    F_BYTES, /* base64 in JSON */
    F_BOOL,
    F_INT,
    F_MSG,     /* nested message (desc) */
    F_MAP_SS,  /* map<string,string> */
    F_MAP_SB,  /* map<string,bytes> */
    F_RSTRING, /* repeated string */
    F_RMSG,    /* repeated message (desc) */
};

struct fdesc {
    unsigned num;
    const char *json;
    enum fkind kind;
    const struct fdesc *desc; /* F_MSG / F_RMSG; ends with num 0 */
};

static const struct fdesc owner_ref[] = {
    {1, "kind", F_STRING, NULL},     {3, "name", F_STRING, NULL},
    {4, "uid", F_STRING, NULL},      {5, "apiVersion", F_STRING, NULL},
    {6, "controller", F_BOOL, NULL}, {7, "blockOwnerDeletion", F_BOOL, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc object_meta[] = {
    {1, "name", F_STRING, NULL},
    {2, "generateName", F_STRING, NULL},
    {3, "namespace", F_STRING, NULL},
    {6, "resourceVersion", F_STRING, NULL},
    {11, "labels", F_MAP_SS, NULL},
    {12, "annotations", F_MAP_SS, NULL},
    {13, "ownerReferences", F_RMSG, owner_ref},
    {14, "finalizers", F_RSTRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc ns_spec[] = {
    {1, "finalizers", F_RSTRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc namespace_d[] = {
    {1, "metadata", F_MSG, object_meta},
    {2, "spec", F_MSG, ns_spec},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc configmap_d[] = {
    {1, "metadata", F_MSG, object_meta}, {2, "data", F_MAP_SS, NULL},
    {3, "binaryData", F_MAP_SB, NULL},   {4, "immutable", F_BOOL, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc secret_d[] = {
    {1, "metadata", F_MSG, object_meta}, {2, "data", F_MAP_SB, NULL},
    {3, "type", F_STRING, NULL},         {4, "stringData", F_MAP_SS, NULL},
    {5, "immutable", F_BOOL, NULL},      {0, NULL, F_STRING, NULL},
};

static const struct fdesc local_ref[] = {
    {1, "name", F_STRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc serviceaccount_d[] = {
    {1, "metadata", F_MSG, object_meta},
    {3, "imagePullSecrets", F_RMSG, local_ref},
    {4, "automountServiceAccountToken", F_BOOL, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc policy_rule[] = {
    {1, "verbs", F_RSTRING, NULL},
    {2, "apiGroups", F_RSTRING, NULL},
    {3, "resources", F_RSTRING, NULL},
    {4, "resourceNames", F_RSTRING, NULL},
    {5, "nonResourceURLs", F_RSTRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc role_d[] = {
    {1, "metadata", F_MSG, object_meta},
    {2, "rules", F_RMSG, policy_rule},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc subject[] = {
    {1, "kind", F_STRING, NULL}, {2, "apiGroup", F_STRING, NULL},
    {3, "name", F_STRING, NULL}, {4, "namespace", F_STRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc role_ref[] = {
    {1, "apiGroup", F_STRING, NULL},
    {2, "kind", F_STRING, NULL},
    {3, "name", F_STRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc binding_d[] = {
    {1, "metadata", F_MSG, object_meta},
    {2, "subjects", F_RMSG, subject},
    {3, "roleRef", F_MSG, role_ref},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc resource_attrs[] = {
    {1, "namespace", F_STRING, NULL}, {2, "verb", F_STRING, NULL},
    {3, "group", F_STRING, NULL},     {4, "version", F_STRING, NULL},
    {5, "resource", F_STRING, NULL},  {6, "subresource", F_STRING, NULL},
    {7, "name", F_STRING, NULL},      {0, NULL, F_STRING, NULL},
};

static const struct fdesc nonresource_attrs[] = {
    {1, "path", F_STRING, NULL},
    {2, "verb", F_STRING, NULL},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc ssar_spec[] = {
    {1, "resourceAttributes", F_MSG, resource_attrs},
    {2, "nonResourceAttributes", F_MSG, nonresource_attrs},
    {0, NULL, F_STRING, NULL},
};

static const struct fdesc ssar_d[] = {
    {1, "metadata", F_MSG, object_meta},
    {2, "spec", F_MSG, ssar_spec},
    {0, NULL, F_STRING, NULL},
};

static const struct {
    const char *api_version, *kind;
    const struct fdesc *desc;
} kinds[] = {
    {"authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar_d},
    {"v1", "Namespace", namespace_d},
    {"v1", "ConfigMap", configmap_d},
    {"v1", "Secret", secret_d},
    {"v1", "ServiceAccount", serviceaccount_d},
    {"rbac.authorization.k8s.io/v1", "Role", role_d},
    {"rbac.authorization.k8s.io/v1", "ClusterRole", role_d},
    {"rbac.authorization.k8s.io/v1", "RoleBinding", binding_d},
    {"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding_d},
};

/* ---- wire format -------------------------------------------------------- */

struct rd {
    const unsigned char *p, *end;
};

static bool varint(struct rd *r, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return false;
        unsigned char b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return true;
    }
    return false;
}

/* Reads one field header and, for length-delimited fields, its bytes. */
static bool field(struct rd *r, unsigned *num, unsigned *wt, struct rd *sub,
                  uint64_t *val)
{
    uint64_t key;
    if (!varint(r, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff)
        return false;
    *num = (unsigned)(key >> 3);
    *wt = (unsigned)(key & 7);
    switch (*wt) {
    case 0:
        return varint(r, val);
    case 1:
        if (r->end - r->p < 8)
            return false;
        r->p += 8;
        return true;
    case 5:
        if (r->end - r->p < 4)
            return false;
        r->p += 4;
        return true;
    case 2: {
        uint64_t len;
        if (!varint(r, &len) || len > (uint64_t)(r->end - r->p))
            return false;
        sub->p = r->p;
        sub->end = r->p + len;
        r->p += len;
        return true;
    }
    default:
        return false;
    }
}

static cJSON *str_of(const struct rd *s, bool b64)
{
    size_t n = (size_t)(s->end - s->p);
    if (!b64) {
        char *t = gf_strndup((const char *)s->p, n);
        cJSON *j = memchr(s->p, '\0', n) == NULL ? cJSON_CreateString(t) : NULL;
        gf_free(t);
        return j;
    }
    char *out = gf_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, s->p, (int)n);
    cJSON *j = cJSON_CreateString(out);
    gf_free(out);
    return j;
}

/* A map entry {key = 1; value = 2} into obj. */
static bool map_entry(cJSON *obj, struct rd e, bool b64)
{
    cJSON *k = NULL, *v = NULL;
    while (e.p < e.end) {
        unsigned num, wt;
        struct rd sub = {0};
        uint64_t val;
        if (!field(&e, &num, &wt, &sub, &val))
            goto bad;
        if (wt != 2)
            continue;
        if (num == 1) {
            cJSON_Delete(k);
            k = str_of(&sub, false);
        } else if (num == 2) {
            cJSON_Delete(v);
            v = str_of(&sub, b64);
        }
    }
    if (k == NULL)
        goto bad;
    if (v == NULL)
        v = cJSON_CreateString("");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, k->valuestring);
    cJSON_AddItemToObject(obj, k->valuestring, v);
    cJSON_Delete(k);
    return true;
bad:
    cJSON_Delete(k);
    cJSON_Delete(v);
    return false;
}

static cJSON *message(struct rd r, const struct fdesc *d, int depth);

static const struct fdesc *find_field(const struct fdesc *d, unsigned num)
{
    for (; d->num != 0; d++)
        if (d->num == num)
            return d;
    return NULL;
}

static cJSON *container(cJSON *obj, const char *key, bool array)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (c == NULL)
        c = array ? cJSON_AddArrayToObject(obj, key)
                  : cJSON_AddObjectToObject(obj, key);
    return c;
}

/* Adds one decoded field to obj; false when it is malformed. */
static bool add_field(cJSON *obj, const struct fdesc *f, unsigned wt,
                      struct rd sub, uint64_t val, int depth)
{
    cJSON *v = NULL;
    switch (f->kind) {
    case F_BOOL:
    case F_INT:
        if (wt != 0)
            return false;
        v = f->kind == F_BOOL ? cJSON_CreateBool(val != 0)
                              : cJSON_CreateNumber((double)(int64_t)val);
        break;
    case F_MAP_SS:
    case F_MAP_SB:
        return wt == 2 && map_entry(container(obj, f->json, false), sub,
                                    f->kind == F_MAP_SB);
    case F_RSTRING:
        v = wt == 2 ? str_of(&sub, false) : NULL;
        if (v == NULL)
            return false;
        cJSON_AddItemToArray(container(obj, f->json, true), v);
        return true;
    case F_RMSG:
        v = wt == 2 ? message(sub, f->desc, depth + 1) : NULL;
        if (v == NULL)
            return false;
        cJSON_AddItemToArray(container(obj, f->json, true), v);
        return true;
    case F_MSG:
        v = wt == 2 ? message(sub, f->desc, depth + 1) : NULL;
        break;
    case F_STRING:
    case F_BYTES:
        v = wt == 2 ? str_of(&sub, f->kind == F_BYTES) : NULL;
        /* Go's marshaller writes every string field, set or not; the API
         * server reads "" as unset and its JSON omits it (omitempty). */
        if (v != NULL && f->kind == F_STRING && v->valuestring[0] == '\0') {
            cJSON_Delete(v);
            cJSON_DeleteItemFromObjectCaseSensitive(obj, f->json);
            return true;
        }
        break;
    }
    if (v == NULL)
        return false;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, f->json);
    cJSON_AddItemToObject(obj, f->json, v);
    return true;
}

static cJSON *message(struct rd r, const struct fdesc *d, int depth)
{
    if (depth > PROTO_MAX_DEPTH)
        return NULL;
    cJSON *obj = cJSON_CreateObject();
    while (r.p < r.end) {
        unsigned num, wt;
        struct rd sub = {0};
        uint64_t val = 0;
        if (!field(&r, &num, &wt, &sub, &val)) {
            cJSON_Delete(obj);
            return NULL;
        }
        const struct fdesc *f = find_field(d, num);
        /* Fields this table does not know are skipped, as proto does. */
        if (f != NULL && !add_field(obj, f, wt, sub, val, depth)) {
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

/* ---- the envelope ------------------------------------------------------- */

struct unknown {
    char api_version[128], kind[64];
    struct rd raw;
};

static bool copy_str(char *dst, size_t cap, const struct rd *s)
{
    size_t n = (size_t)(s->end - s->p);
    if (n >= cap)
        return false;
    memcpy(dst, s->p, n);
    dst[n] = '\0';
    return true;
}

static bool type_meta(struct rd r, struct unknown *u)
{
    while (r.p < r.end) {
        unsigned num, wt;
        struct rd sub = {0};
        uint64_t val;
        if (!field(&r, &num, &wt, &sub, &val))
            return false;
        if (wt == 2 && num == 1 &&
            !copy_str(u->api_version, sizeof(u->api_version), &sub))
            return false;
        if (wt == 2 && num == 2 && !copy_str(u->kind, sizeof(u->kind), &sub))
            return false;
    }
    return true;
}

static bool envelope(const char *body, size_t len, struct unknown *u)
{
    memset(u, 0, sizeof(*u));
    if (len < 4 || memcmp(body, "k8s\0", 4) != 0)
        return false;
    struct rd r = {(const unsigned char *)body + 4,
                   (const unsigned char *)body + len};
    while (r.p < r.end) {
        unsigned num, wt;
        struct rd sub = {0};
        uint64_t val;
        if (!field(&r, &num, &wt, &sub, &val))
            return false;
        if (wt == 2 && num == 1 && !type_meta(sub, u))
            return false;
        if (wt == 2 && num == 2)
            u->raw = sub;
    }
    return u->kind[0] != '\0';
}

int gf__ks_proto_decode(const char *body, size_t len, cJSON **out,
                        struct gf_ks_status *err)
{
    *out = NULL;
    struct unknown u;
    if (!envelope(body, len, &u))
        return gf_ks_status_set(err, 400, "BadRequest",
                                "the body of the request could not be "
                                "decoded as protobuf");
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i].api_version, u.api_version) != 0 ||
            strcmp(kinds[i].kind, u.kind) != 0)
            continue;
        cJSON *j = message(u.raw, kinds[i].desc, 0);
        if (j == NULL)
            return gf_ks_status_set(err, 400, "BadRequest",
                                    "the body of the request could not be "
                                    "decoded as protobuf %s",
                                    u.kind);
        cJSON_AddStringToObject(j, "apiVersion", u.api_version);
        cJSON_AddStringToObject(j, "kind", u.kind);
        *out = j;
        return 0;
    }
    return gf_ks_status_set(err, 415, "UnsupportedMediaType",
                            "the body of the request was in an unknown "
                            "format - accepted media types include: "
                            "application/json, application/yaml");
}
