/*
 * api_job: the batch/v1 Job registry, as a v1.28 API server applies it to
 * every write of a Job: defaulting, the generated selector and labels on
 * create, and the validation clients meet.
 *
 * Defaults (SetDefaults_Job and the pod template's): parallelism and
 * completions 1, backoffLimit 6, completionMode NonIndexed, suspend
 * false; in the template restartPolicy Always (refused just after),
 * terminationGracePeriodSeconds 30, dnsPolicy ClusterFirst,
 * securityContext {}, schedulerName default-scheduler, and per container
 * terminationMessagePath/Policy and imagePullPolicy (Always for an
 * untagged or :latest image, IfNotPresent otherwise) and resources {};
 * a Job without labels takes its template's. Defaults apply to
 * updates too, as the server defaults every decoded body: a PUT of a Job
 * without them changes nothing.
 *
 * On create the registry selects the Job's pods by its uid: the selector
 * batch.kubernetes.io/controller-uid, and the template labels
 * batch.kubernetes.io/controller-uid and batch.kubernetes.io/job-name
 * with their legacy forms controller-uid and job-name, as 1.28 sets them.
 * That runs as a store create mutator, because the uid is the store's.
 *
 * Validation: the template's restartPolicy must be OnFailure or Never;
 * parallelism, completions and backoffLimit are not negative. On update
 * spec.completions and spec.completionMode are immutable, and so is
 * spec.template, except that a Job that is suspended and has never
 * started (no status.startTime) may change its template's labels,
 * annotations, nodeSelector, tolerations, node affinity and
 * schedulingGates (what Kueue changes when it admits a Job). Left out:
 * elastic Indexed Jobs (completions changing with parallelism), the
 * selector's own checks, podFailurePolicy and the rest of pod validation.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "e2e/kubesim/api_toolkit.h"

#define UID_LABEL "batch.kubernetes.io/controller-uid"
#define NAME_LABEL "batch.kubernetes.io/job-name"

bool gf__ks_is_job(const struct gf_ks_rtype *t)
{
    return strcmp(t->group, "batch") == 0 && strcmp(t->resource, "jobs") == 0;
}

/* ---- defaults ----------------------------------------------------------- */

static cJSON *obj_at(cJSON *parent, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (cJSON_IsObject(o))
        return o;
    cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
    return cJSON_AddObjectToObject(parent, key);
}

static void default_num(cJSON *o, const char *key, double v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (x == NULL || cJSON_IsNull(x)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        cJSON_AddNumberToObject(o, key, v);
    }
}

static void default_str(cJSON *o, const char *key, const char *v)
{
    const char *x = gf_json_as_str(cJSON_GetObjectItemCaseSensitive(o, key));
    if (x == NULL || x[0] == '\0') {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        cJSON_AddStringToObject(o, key, v);
    }
}

/* Always for an image without a tag or with :latest (and no digest). */
static const char *pull_policy(const char *image)
{
    if (image == NULL || strchr(image, '@') != NULL)
        return "IfNotPresent";
    const char *slash = strrchr(image, '/');
    const char *colon = strchr(slash != NULL ? slash : image, ':');
    if (colon == NULL || strcmp(colon, ":latest") == 0)
        return "Always";
    return "IfNotPresent";
}

static void default_containers(cJSON *spec, const char *key)
{
    cJSON *cs = cJSON_GetObjectItemCaseSensitive(spec, key);
    cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        if (!cJSON_IsObject(c))
            continue;
        default_str(c, "terminationMessagePath", "/dev/termination-log");
        default_str(c, "terminationMessagePolicy", "File");
        default_str(c, "imagePullPolicy", pull_policy(gf_json_str(c, "image")));
        /* The server's Go type always writes it, empty or not. */
        obj_at(c, "resources");
        cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
        {
            if (cJSON_IsObject(p))
                default_str(p, "protocol", "TCP");
        }
    }
}

/*
 * A Job without labels of its own takes its template's (SetDefaults_Job).
 * The server applies this on every decode, the read of its own storage
 * included, so a created Job shows the generated template labels too.
 */
static void default_labels(cJSON *job)
{
    const cJSON *tl = gf_json_path(job, "spec.template.metadata.labels");
    const cJSON *l = gf_json_path(job, "metadata.labels");
    if (!cJSON_IsObject(tl) || cJSON_GetArraySize(tl) == 0 ||
        cJSON_GetArraySize(l) > 0)
        return;
    cJSON *m = obj_at(job, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "labels");
    cJSON_AddItemToObject(m, "labels", cJSON_Duplicate(tl, true));
}

void gf__ks_job_defaults(cJSON *job)
{
    cJSON *spec = obj_at(job, "spec");
    const cJSON *comp = cJSON_GetObjectItemCaseSensitive(spec, "completions");
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(spec, "parallelism");
    if ((comp == NULL || cJSON_IsNull(comp)) &&
        (par == NULL || cJSON_IsNull(par)))
        default_num(spec, "completions", 1);
    default_num(spec, "parallelism", 1);
    default_num(spec, "backoffLimit", 6);
    default_str(spec, "completionMode", "NonIndexed");
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(spec, "suspend"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "suspend");
        cJSON_AddFalseToObject(spec, "suspend");
    }
    cJSON *tmpl = obj_at(spec, "template");
    cJSON *tm = obj_at(tmpl, "metadata");
    /* What the server's Go types write for an unset time. */
    if (cJSON_GetObjectItemCaseSensitive(tm, "creationTimestamp") == NULL)
        cJSON_AddNullToObject(tm, "creationTimestamp");
    cJSON *ps = obj_at(tmpl, "spec");
    default_str(ps, "restartPolicy", "Always");
    default_num(ps, "terminationGracePeriodSeconds", 30);
    default_str(ps, "dnsPolicy", "ClusterFirst");
    default_str(ps, "schedulerName", "default-scheduler");
    obj_at(ps, "securityContext");
    default_containers(ps, "initContainers");
    default_containers(ps, "containers");
    default_labels(job);
}

/* ---- create: the generated selector ------------------------------------- */

static void set_label(cJSON *labels, const char *key, const char *v)
{
    /* A label the client set wins (validation would refuse a wrong one). */
    if (cJSON_GetObjectItemCaseSensitive(labels, key) == NULL)
        cJSON_AddStringToObject(labels, key, v);
}

static void prepare_create(void *data, const struct gf_ks_rtype *t, cJSON *job)
{
    (void)data;
    (void)t;
    const char *uid = gf_json_str(job, "metadata.uid");
    const char *name = gf_json_str(job, "metadata.name");
    if (uid == NULL || name == NULL)
        return;
    cJSON *spec = obj_at(job, "spec");
    /* The Job controller owns the status: a create starts it empty. */
    cJSON_DeleteItemFromObjectCaseSensitive(job, "status");
    cJSON_AddObjectToObject(job, "status");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "manualSelector")))
        return;
    cJSON *labels =
        obj_at(obj_at(obj_at(spec, "template"), "metadata"), "labels");
    set_label(labels, UID_LABEL, uid);
    set_label(labels, NAME_LABEL, name);
    set_label(labels, "controller-uid", uid);
    set_label(labels, "job-name", name);
    cJSON *ml = obj_at(obj_at(spec, "selector"), "matchLabels");
    set_label(ml, UID_LABEL, uid);
    default_labels(job);
}

void gf__ks_job_register(struct gf_ks_store *st)
{
    gf_ks_store_mutate(st, "batch", "jobs", prepare_create, NULL);
}

/* ---- validation --------------------------------------------------------- */

struct verr {
    struct gf_ks_status *err;
    struct gf_buf msg;
    size_t n;
};

static void field_err(struct verr *v, const char *reason, const char *field,
                      const char *detail)
{
    v->n++;
    gf_buf_printf(&v->msg, "%s%s: %s", v->msg.len ? ", " : "", field, detail);
    gf_ks_status_cause(v->err, reason, detail, field);
}

static void non_negative(struct verr *v, const cJSON *spec, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(spec, key);
    if (!cJSON_IsNumber(x) || x->valuedouble >= 0)
        return;
    char field[64], detail[128];
    snprintf(field, sizeof(field), "spec.%s", key);
    snprintf(detail, sizeof(detail),
             "Invalid value: %.0f: must be greater than or equal to 0",
             x->valuedouble);
    field_err(v, "FieldValueInvalid", field, detail);
}

/* The value as the server prints it in "Invalid value: X". */
static void print_value(const cJSON *x, char *out, size_t cap)
{
    if (cJSON_IsString(x))
        snprintf(out, cap, "\"%s\"", x->valuestring);
    else if (cJSON_IsNumber(x))
        snprintf(out, cap, "%.0f", x->valuedouble);
    else
        snprintf(out, cap, "null");
}

static void immutable(struct verr *v, const cJSON *spec, const cJSON *old,
                      const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(spec, key);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(old, key);
    if (gf_json_equal(a, b))
        return;
    char field[64], val[160], detail[256];
    snprintf(field, sizeof(field), "spec.%s", key);
    print_value(a, val, sizeof(val));
    snprintf(detail, sizeof(detail), "Invalid value: %s: field is immutable",
             val);
    field_err(v, "FieldValueInvalid", field, detail);
}

static void take(cJSON *into, const cJSON *from, const char *key)
{
    cJSON_DeleteItemFromObjectCaseSensitive(into, key);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(from, key);
    if (x != NULL)
        cJSON_AddItemToObject(into, key, cJSON_Duplicate(x, true));
}

/*
 * The template may change only where a suspended, never-started Job
 * allows it: the old template with those parts taken from the new one
 * must equal the new one.
 */
static void template_update(struct verr *v, const cJSON *spec,
                            const cJSON *old_job)
{
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(spec, "template");
    const cJSON *ot = gf_json_path(old_job, "spec.template");
    if (gf_json_equal(nt, ot))
        return;
    bool suspended = cJSON_IsTrue(gf_json_path(old_job, "spec.suspend")) &&
                     gf_json_path(old_job, "status.startTime") == NULL;
    if (suspended && cJSON_IsObject(nt) && cJSON_IsObject(ot)) {
        cJSON *o = cJSON_Duplicate(ot, true);
        cJSON *om = obj_at(o, "metadata"), *os = obj_at(o, "spec");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(nt, "metadata");
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(nt, "spec");
        take(om, nm, "labels");
        take(om, nm, "annotations");
        take(os, ns, "nodeSelector");
        take(os, ns, "tolerations");
        take(os, ns, "schedulingGates");
        const cJSON *naff = cJSON_GetObjectItemCaseSensitive(ns, "affinity");
        if (naff != NULL)
            take(obj_at(os, "affinity"), naff, "nodeAffinity");
        bool same = gf_json_equal(nt, o);
        cJSON_Delete(o);
        if (same)
            return;
    }
    /* The server prints the whole Go struct here; its shape is noise. */
    field_err(v, "FieldValueInvalid", "spec.template",
              "Invalid value: core.PodTemplateSpec{...}: field is immutable");
}

int gf__ks_job_validate(const cJSON *job, const cJSON *old, const char *name,
                        struct gf_ks_status *err)
{
    struct verr v = {.err = err, .msg = GF_BUF_INIT(8192)};
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    const char *rp = gf_json_str(spec, "template.spec.restartPolicy");
    if (rp == NULL ||
        (strcmp(rp, "OnFailure") != 0 && strcmp(rp, "Never") != 0))
        field_err(&v, "FieldValueRequired", "spec.template.spec.restartPolicy",
                  "Required value: valid values: \"OnFailure\", \"Never\"");
    non_negative(&v, spec, "parallelism");
    non_negative(&v, spec, "completions");
    non_negative(&v, spec, "backoffLimit");
    if (old != NULL) {
        const cJSON *os = cJSON_GetObjectItemCaseSensitive(old, "spec");
        immutable(&v, spec, os, "completions");
        immutable(&v, spec, os, "completionMode");
        template_update(&v, spec, old);
    }
    int rc = 0;
    if (v.n > 0) {
        cJSON *causes = err != NULL ? err->causes : NULL;
        if (err != NULL)
            err->causes = NULL;
        if (v.n == 1)
            rc = gf_ks_status_set(err, 422, "Invalid",
                                  "Job.batch \"%s\" is invalid: %s", name,
                                  gf_buf_cstr(&v.msg));
        else
            rc = gf_ks_status_set(err, 422, "Invalid",
                                  "Job.batch \"%s\" is invalid: [%s]", name,
                                  gf_buf_cstr(&v.msg));
        if (err != NULL) {
            err->causes = causes;
            gf_ks_status_details(err, name, "batch", "Job");
        }
    }
    gf_buf_free(&v.msg);
    return rc;
}
