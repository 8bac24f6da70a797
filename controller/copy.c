/*
 * copy: building the copy Job and the origin's patches. The copy is made
 * by deleting what the origin cluster assigned rather than by picking
 * what to keep, so fields a newer Job API adds travel with it.
 */
#include "controller/copy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/htab.h"

int gf_copy_name(const char *origin_job, const char *origin_uid, uint64_t epoch,
                 char out[GF_COPY_NAME_MAX])
{
    if (origin_job == NULL || *origin_job == '\0' || origin_uid == NULL ||
        *origin_uid == '\0')
        return -EINVAL;
    char tail[32];
    uint32_t h = (uint32_t)gf_hash(origin_uid, strlen(origin_uid));
    int t = snprintf(tail, sizeof(tail), "%08" PRIx32 "-%" PRIu64, h, epoch);
    /* The origin's name keeps what room "-<hash>-<epoch>" leaves in 63. */
    size_t n = strlen(origin_job);
    size_t room = GF_COPY_NAME_MAX - 2 - (size_t)t;
    if (n > room)
        n = room;
    /* A cut name must still end in an alphanumeric (DNS-1123). */
    while (n > 0 && (origin_job[n - 1] == '-' || origin_job[n - 1] == '.'))
        n--;
    int w = snprintf(out, GF_COPY_NAME_MAX, "%.*s%s%s", (int)n, origin_job,
                     n > 0 ? "-" : "", tail);
    return w > 0 && w < GF_COPY_NAME_MAX ? 0 : -EINVAL;
}

static void delete_keys(cJSON *obj, const char *const *keys)
{
    for (; *keys != NULL; keys++)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, *keys);
}

/* Labels the Job controller adds to a Job and its pod template; they name
 * the origin's controller-uid and would make the lender's Job controller
 * refuse the copy's selector. */
static const char *const job_labels[] = {"controller-uid", "job-name",
                                         "batch.kubernetes.io/controller-uid",
                                         "batch.kubernetes.io/job-name", NULL};

static void drop_labels(cJSON *meta)
{
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (cJSON_IsObject(labels))
        delete_keys(labels, job_labels);
}

static cJSON *ensure_object(cJSON *parent, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (cJSON_IsObject(o))
        return o;
    cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
    return cJSON_AddObjectToObject(parent, key);
}

static void set_str(cJSON *obj, const char *key, const char *val)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddStringToObject(obj, key, val);
}

static bool privileged_container(const cJSON *c)
{
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(c, "securityContext");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(sc, "privileged");
    const cJSON *esc =
        cJSON_GetObjectItemCaseSensitive(sc, "allowPrivilegeEscalation");
    return cJSON_IsTrue(p) || cJSON_IsTrue(esc);
}

static const char *privileged_in(const cJSON *pod, const char *list)
{
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(pod, list);
    const cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        if (privileged_container(c)) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
            return cJSON_IsString(n) ? n->valuestring : "?";
        }
    }
    return NULL;
}

/* Why the pod template may not run in another cluster, or NULL. */
static const char *host_access(const cJSON *pod, char *why, size_t cap)
{
    static const char *const host_ns[] = {"hostNetwork", "hostPID", "hostIPC",
                                          NULL};
    for (const char *const *k = host_ns; *k != NULL; k++) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pod, *k))) {
            snprintf(why, cap, "the pod template sets %s", *k);
            return why;
        }
    }
    const cJSON *vols = cJSON_GetObjectItemCaseSensitive(pod, "volumes");
    const cJSON *v;
    cJSON_ArrayForEach(v, vols)
    {
        if (cJSON_GetObjectItemCaseSensitive(v, "hostPath") != NULL) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");
            snprintf(why, cap, "volume %s is a hostPath",
                     cJSON_IsString(n) ? n->valuestring : "?");
            return why;
        }
    }
    static const char *const lists[] = {"containers", "initContainers",
                                        "ephemeralContainers", NULL};
    for (const char *const *l = lists; *l != NULL; l++) {
        const char *name = privileged_in(pod, *l);
        if (name != NULL) {
            snprintf(why, cap, "container %s is privileged", name);
            return why;
        }
    }
    return NULL;
}

static void copy_metadata(cJSON *job, const struct gf_copy_spec *s,
                          const char *origin_name)
{
    static const char *const assigned[] = {
        "uid",          "resourceVersion",   "creationTimestamp",
        "generation",   "managedFields",     "ownerReferences",
        "finalizers",   "deletionTimestamp", "deletionGracePeriodSeconds",
        "generateName", "selfLink",          NULL};
    cJSON *meta = ensure_object(job, "metadata");
    delete_keys(meta, assigned);
    set_str(meta, "name", s->name);
    set_str(meta, "namespace", s->namespace);
    drop_labels(meta);
    cJSON *labels = ensure_object(meta, "labels");
    char epoch[24];
    snprintf(epoch, sizeof(epoch), "%" PRIu64, s->epoch);
    set_str(labels, GF_KUEUE_QUEUE_LABEL, s->local_queue);
    set_str(labels, GF_LABEL_LEASE, s->lease);
    set_str(labels, GF_LABEL_ORIGIN_CLUSTER, s->origin_member);
    set_str(labels, GF_LABEL_ORIGIN_UID, s->origin_uid);
    set_str(labels, GF_LABEL_EPOCH, epoch);
    /* Kueue reads the queue from the label; an annotation with the same
     * key (older Kueue) would contradict it. */
    cJSON *ann = ensure_object(meta, "annotations");
    cJSON_DeleteItemFromObjectCaseSensitive(ann, GF_KUEUE_QUEUE_LABEL);
    delete_keys(ann, (const char *const[]){GF_ANN_LEASE, GF_ANN_PLACEMENT,
                                           GF_ANN_OUTCOME, NULL});
    char origin[512];
    snprintf(origin, sizeof(origin), "%s/%s/%s", s->origin_member,
             s->origin_namespace, origin_name);
    set_str(ann, GF_ANN_ORIGIN, origin);
}

/* The Job's spec as the submitter wrote it, suspended for the lender's
 * Kueue to admit. */
static void copy_spec(cJSON *spec)
{
    /* The selector and manualSelector name the origin's controller-uid;
     * the lender's Job controller makes its own. */
    delete_keys(spec, (const char *const[]){"selector", "manualSelector",
                                            "managedBy", NULL});
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "suspend");
    cJSON_AddTrueToObject(spec, "suspend");
    cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    cJSON *tmeta = cJSON_GetObjectItemCaseSensitive(tmpl, "metadata");
    if (cJSON_IsObject(tmeta))
        drop_labels(tmeta);
}

int gf_copy_job_build(const cJSON *origin_job, const struct gf_copy_spec *s,
                      cJSON **out, char *why, size_t why_cap)
{
    const cJSON *meta =
        cJSON_GetObjectItemCaseSensitive(origin_job, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(origin_job, "spec");
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(tmpl, "spec");
    if (!cJSON_IsString(name) || !cJSON_IsObject(pod)) {
        snprintf(why, why_cap, "the origin is not a Job with a pod template");
        return -EINVAL;
    }
    if (!s->allow_host_access && host_access(pod, why, why_cap) != NULL)
        return -EPERM;
    cJSON *job = cJSON_Duplicate(origin_job, true);
    cJSON_DeleteItemFromObjectCaseSensitive(job, "status");
    set_str(job, "apiVersion", "batch/v1");
    set_str(job, "kind", "Job");
    copy_metadata(job, s, name->valuestring);
    copy_spec(cJSON_GetObjectItemCaseSensitive(job, "spec"));
    *out = job;
    return 0;
}

static char *print(cJSON *root)
{
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

char *gf_copy_hold_patch(const char *rv, const char *lease, const char *lender)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p, "metadata");
    cJSON_AddStringToObject(meta, "resourceVersion", rv);
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_AddStringToObject(ann, GF_ANN_LEASE, lease);
    cJSON_AddStringToObject(ann, GF_ANN_PLACEMENT, lender);
    cJSON *spec = cJSON_AddObjectToObject(p, "spec");
    cJSON_AddFalseToObject(spec, "active");
    return print(p);
}

char *gf_copy_reclaim_mark_patch(const char *deadline)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p, "metadata");
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_AddStringToObject(ann, GF_ANN_RECLAIM_DEADLINE, deadline);
    return print(p);
}

char *gf_copy_reclaim_stop_patch(const char *rv, const char *at)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p, "metadata");
    cJSON_AddStringToObject(meta, "resourceVersion", rv);
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_AddStringToObject(ann, GF_ANN_RECLAIMED_AT, at);
    cJSON *spec = cJSON_AddObjectToObject(p, "spec");
    cJSON_AddFalseToObject(spec, "active");
    return print(p);
}

int gf_json_pointer_escape(const char *key, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *k = key; *k != '\0'; k++) {
        bool esc = *k == '~' || *k == '/';
        if (o + (esc ? 2 : 1) >= cap)
            return -ENAMETOOLONG;
        if (esc) {
            out[o++] = '~';
            out[o++] = *k == '~' ? '0' : '1';
        } else {
            out[o++] = *k;
        }
    }
    if (o >= cap)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return 0;
}

static void add_op(cJSON *ops, const char *op, const char *path, cJSON *value)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", op);
    cJSON_AddStringToObject(o, "path", path);
    if (value != NULL)
        cJSON_AddItemToObject(o, "value", value);
    cJSON_AddItemToArray(ops, o);
}

char *gf_copy_reactivate_patch(const char *lease)
{
    char lease_ptr[128] = "/metadata/annotations/";
    char place_ptr[128] = "/metadata/annotations/";
    size_t base = strlen(lease_ptr);
    /* Both keys are ours and short: they always fit. */
    gf_json_pointer_escape(GF_ANN_LEASE, lease_ptr + base,
                           sizeof(lease_ptr) - base);
    gf_json_pointer_escape(GF_ANN_PLACEMENT, place_ptr + base,
                           sizeof(place_ptr) - base);
    cJSON *ops = cJSON_CreateArray();
    add_op(ops, "test", lease_ptr, cJSON_CreateString(lease));
    add_op(ops, "remove", lease_ptr, NULL);
    add_op(ops, "remove", place_ptr, NULL);
    add_op(ops, "replace", "/spec/active", cJSON_CreateTrue());
    return print(ops);
}

char *gf_copy_outcome_patch(bool succeeded)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p, "metadata");
    cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
    cJSON_AddStringToObject(ann, GF_ANN_OUTCOME,
                            succeeded ? "Succeeded" : "Failed");
    return print(p);
}
