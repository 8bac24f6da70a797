/*
 * ctl_json: JSON text to a cJSON tree through libyaml's event parser, so
 * that numbers keep their text (see ctl_json.h).
 */
#include "controller/ctl_json.h"

#include <stdbool.h>
#include <string.h>

#include <yaml.h>

#include "common/err.h"

/* Deeper documents are refused: API objects nest a few dozen levels. */
#define MAX_DEPTH 512

struct level {
    cJSON *node;
    char *key; /* a mapping's key waiting for its value (cJSON-owned copy) */
};

struct builder {
    struct level st[MAX_DEPTH];
    size_t depth;
    cJSON *root;
};

/* A plain scalar must be a JSON literal: a number, true, false or null.
 * cJSON says which; the node keeps the original text. */
static cJSON *plain_scalar(const char *text, size_t len)
{
    cJSON *probe = cJSON_ParseWithLength(text, len);
    bool ok =
        cJSON_IsNumber(probe) || cJSON_IsBool(probe) || cJSON_IsNull(probe);
    cJSON_Delete(probe);
    return ok ? cJSON_CreateRaw(text) : NULL;
}

/* Puts v where the document says: root, array element or mapping value. */
static int place(struct builder *b, cJSON *v)
{
    if (b->depth == 0) {
        if (b->root != NULL)
            return GF_EPARSE;
        b->root = v;
        return 0;
    }
    struct level *l = &b->st[b->depth - 1];
    if (cJSON_IsArray(l->node)) {
        cJSON_AddItemToArray(l->node, v);
        return 0;
    }
    if (l->key == NULL)
        return GF_EPARSE; /* a container as a key */
    cJSON_AddItemToObject(l->node, l->key, v);
    cJSON_free(l->key);
    l->key = NULL;
    return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    struct level *l = b->depth > 0 ? &b->st[b->depth - 1] : NULL;
    if (l != NULL && cJSON_IsObject(l->node) && l->key == NULL) {
        /* A key: kept until its value arrives. */
        cJSON *k = cJSON_CreateString(text);
        l->key = k->valuestring;
        k->valuestring = NULL;
        cJSON_Delete(k);
        return 0;
    }
    cJSON *v = plain ? plain_scalar(text, len) : cJSON_CreateString(text);
    if (v == NULL)
        return GF_EPARSE;
    int rc = place(b, v);
    if (rc != 0)
        cJSON_Delete(v);
    return rc;
}

static int on_start(struct builder *b, cJSON *c)
{
    if (b->depth == MAX_DEPTH) {
        cJSON_Delete(c);
        return GF_EPARSE;
    }
    int rc = place(b, c);
    if (rc != 0) {
        cJSON_Delete(c);
        return rc;
    }
    b->st[b->depth].node = c;
    b->st[b->depth].key = NULL;
    b->depth++;
    return 0;
}

/* One event: 0 to go on, 1 at the end of the stream, or GF_EPARSE. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        return b->root == NULL ? 0 : GF_EPARSE; /* one document only */
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_SCALAR_EVENT:
        /* Anchors and tags are YAML, not JSON. */
        if (ev->data.scalar.anchor != NULL || ev->data.scalar.tag != NULL)
            return GF_EPARSE;
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        if (ev->data.sequence_start.anchor != NULL ||
            ev->data.sequence_start.tag != NULL)
            return GF_EPARSE;
        return on_start(b, cJSON_CreateArray());
    case YAML_MAPPING_START_EVENT:
        if (ev->data.mapping_start.anchor != NULL ||
            ev->data.mapping_start.tag != NULL)
            return GF_EPARSE;
        return on_start(b, cJSON_CreateObject());
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth == 0 || b->st[b->depth - 1].key != NULL)
            return GF_EPARSE;
        b->depth--;
        return 0;
    default:
        return GF_EPARSE; /* aliases: not JSON */
    }
}

int gf_ctl_json_parse(const char *text, size_t len, cJSON **out)
{
    *out = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return -ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    struct builder b = {.depth = 0, .root = NULL};
    int rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = GF_EPARSE;
            break;
        }
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (size_t i = 0; i < b.depth; i++)
        cJSON_free(b.st[i].key);
    if (rc != 1 || b.root == NULL) {
        cJSON_Delete(b.root);
        return GF_EPARSE;
    }
    *out = b.root;
    return 0;
}

/* Adds key as obj's first member unless obj has one so named. */
static void add_first(cJSON *obj, const char *key, const char *val)
{
    if (val == NULL || cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
        return;
    /* cJSON has no "insert into object": add (which names the item),
     * detach, and insert the named item at the front. */
    cJSON *v = cJSON_AddStringToObject(obj, key, val);
    cJSON_DetachItemViaPointer(obj, v);
    cJSON_InsertItemInArray(obj, 0, v);
}

void gf_ctl_json_type_meta(cJSON *obj, const char *api_version,
                           const char *kind)
{
    if (!cJSON_IsObject(obj))
        return;
    add_first(obj, "kind", kind);
    add_first(obj, "apiVersion", api_version);
}

void gf_ctl_json_strip_managed(cJSON *obj)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (cJSON_IsObject(md))
        cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
}
