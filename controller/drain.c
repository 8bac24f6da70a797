/*
 * drain: the ConfigMap gpufed-drain, read (gf_drain_parse) and written
 * (the bodies of gpufedctl drain / uncordon). See drain.h.
 */
#include "controller/drain.h"

#include <errno.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"

static bool name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 && n <= GF_DRAIN_NAME_MAX;
}

int gf_drain_parse(const cJSON *cm, struct gf_drain_set *out)
{
    *out = (struct gf_drain_set){0};
    if (!cJSON_IsObject(cm))
        return -EINVAL;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data");
    if (data == NULL || cJSON_IsNull(data))
        return 0;
    if (!cJSON_IsObject(data))
        return -EINVAL;
    size_t n = (size_t)cJSON_GetArraySize(data);
    out->e = gf_calloc(n ? n : 1, sizeof(*out->e));
    const cJSON *kv;
    cJSON_ArrayForEach(kv, data)
    {
        if (!cJSON_IsString(kv) || !name_ok(kv->string))
            continue;
        struct gf_drain_entry *e = &out->e[out->n++];
        e->member = gf_strdup(kv->string);
        /* The time is for people (gpufedctl, /readyz): a value someone
         * wrote by hand still drains the member. */
        if (gf_time_parse_rfc3339(kv->valuestring, &e->since_ms) != 0)
            e->since_ms = 0;
    }
    return 0;
}

void gf_drain_set_free(struct gf_drain_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        gf_free(s->e[i].member);
    GF_FREE(s->e);
    s->n = 0;
}

const struct gf_drain_entry *gf_drain_find(const struct gf_drain_set *s,
                                           const char *member)
{
    for (size_t i = 0; s != NULL && member != NULL && i < s->n; i++)
        if (strcmp(s->e[i].member, member) == 0)
            return &s->e[i];
    return NULL;
}

/* Appends j's compact text to out and frees j. */
static int put_json(struct gf_buf *out, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s == NULL)
        return -ENOMEM;
    int rc = gf_buf_puts(out, s);
    cJSON_free(s);
    return rc;
}

static void add_entry(cJSON *data, const char *member, int64_t since_ms)
{
    char when[32];
    gf_time_rfc3339(since_ms, when);
    cJSON_AddStringToObject(data, member, when);
}

int gf_drain_create_body(struct gf_buf *out, const char *ns, const char *member,
                         int64_t since_ms)
{
    if (!name_ok(member) || ns == NULL || *ns == '\0')
        return -EINVAL;
    cJSON *cm = cJSON_CreateObject();
    cJSON_AddStringToObject(cm, "apiVersion", "v1");
    cJSON_AddStringToObject(cm, "kind", "ConfigMap");
    cJSON *md = cJSON_AddObjectToObject(cm, "metadata");
    cJSON_AddStringToObject(md, "name", GF_DRAIN_CONFIGMAP);
    cJSON_AddStringToObject(md, "namespace", ns);
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(labels, "app.kubernetes.io/part-of", "gpufed");
    add_entry(cJSON_AddObjectToObject(cm, "data"), member, since_ms);
    return put_json(out, cm);
}

int gf_drain_patch_body(struct gf_buf *out, const char *member, bool drained,
                        int64_t since_ms)
{
    if (!name_ok(member))
        return -EINVAL;
    cJSON *p = cJSON_CreateObject();
    cJSON *data = cJSON_AddObjectToObject(p, "data");
    if (drained)
        add_entry(data, member, since_ms);
    else
        cJSON_AddNullToObject(data, member);
    return put_json(out, p);
}
