/*
 * fence: the agent's heartbeat rule and what it does to copies, as pure
 * functions of what was read and when (controller/fence.h). Keeping the
 * time arithmetic here, away from the loop, is what lets the tests walk
 * the manual clock to the exact millisecond of a fence.
 */
#include "controller/fence.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/json.h"
#include "controller/copy.h"
#include "controller/observe.h"

int gf_fence_lease_parse(const cJSON *lease, struct gf_hb_read *out)
{
    *out = (struct gf_hb_read){.present = true};
    const char *renew = gf_json_as_str(GF_JSON_AT(lease, "spec", "renewTime"));
    int64_t secs = 0;
    if (renew == NULL || strlen(renew) >= sizeof(out->renew) ||
        gf_time_parse_rfc3339(renew, &out->renew_wall_ms) != 0 ||
        gf_json_as_int(GF_JSON_AT(lease, "spec", "leaseDurationSeconds"),
                       &secs) != 0 ||
        secs < 1 || secs > 86400)
        return -EINVAL;
    snprintf(out->renew, sizeof(out->renew), "%s", renew);
    out->d_ms = (uint64_t)secs * 1000u;
    out->valid = true;
    return 0;
}

void gf_fence_init(struct gf_fence *f, uint64_t max_offset_ms)
{
    *f = (struct gf_fence){.max_offset_ms = max_offset_ms,
                           .d_ms = GF_FENCE_DEFAULT_D_MS};
}

static enum gf_fence_change enter(struct gf_fence *f, uint64_t now_ms)
{
    if (f->fenced)
        return GF_FENCE_SAME;
    f->fenced = true;
    f->fenced_since_ms = now_ms;
    f->fences++;
    return GF_FENCE_ENTER;
}

static void remember(struct gf_fence *f, const struct gf_hb_read *r,
                     uint64_t sent_ms)
{
    f->has_prev = true;
    f->prev_present = r->present;
    snprintf(f->prev_renew, sizeof(f->prev_renew), "%s",
             r->present ? r->renew : "");
    f->prev_sent_ms = sent_ms;
}

/* The start rule: nothing has been seen to move yet. */
static enum gf_fence_change on_first(struct gf_fence *f,
                                     const struct gf_hb_read *r,
                                     uint64_t sent_ms, uint64_t now_ms,
                                     int64_t wall_now_ms)
{
    f->answered = true;
    if (!r->present || !r->valid) {
        /* An absent Lease is a value later reads compare with (its
         * creation is a renewal); an unparsable one is not. */
        if (!r->present)
            remember(f, r, sent_ms);
        return enter(f, now_ms);
    }
    f->d_ms = r->d_ms;
    remember(f, r, sent_ms);
    int64_t age = wall_now_ms - r->renew_wall_ms;
    if (age < 0)
        age = 0;
    /* The agent's wall clock may be behind the hub's by max_offset: the
     * renewal may be that much older than it looks. */
    age += (int64_t)f->max_offset_ms;
    if ((uint64_t)age >= f->d_ms)
        return enter(f, now_ms);
    f->has_credit = true;
    f->credit_ms = (int64_t)now_ms - age;
    return GF_FENCE_SAME;
}

enum gf_fence_change gf_fence_on_read(struct gf_fence *f,
                                      const struct gf_hb_read *r,
                                      uint64_t sent_ms, uint64_t now_ms,
                                      int64_t wall_now_ms)
{
    if (!f->answered)
        return on_first(f, r, sent_ms, now_ms, wall_now_ms);
    /* A Lease that cannot be read is no evidence either way: like a
     * failed read, it neither gives credit nor replaces the last value. */
    if (r->present && !r->valid)
        return gf_fence_tick(f, now_ms);
    if (!r->present && f->has_prev && f->prev_present) {
        /* The Lease was there and is gone: the hub never deletes it, so
         * someone did by hand. Whoever creates it next cannot know what
         * this agent believed, and would count only the term it writes:
         * fence at once, as at start with no Lease. The cost is a re-run
         * of the copies; the creation is a move that lets us out. */
        remember(f, r, sent_ms);
        return enter(f, now_ms);
    }
    bool moved = false;
    if (r->present) {
        f->d_ms = r->d_ms;
        moved = f->has_prev &&
                (!f->prev_present || strcmp(f->prev_renew, r->renew) != 0);
    }
    if (moved) {
        /* The renewal landed after the previous successful read was
         * served, hence after it was sent. */
        f->has_credit = true;
        f->credit_ms = (int64_t)f->prev_sent_ms;
    }
    remember(f, r, sent_ms);
    if (moved && f->fenced &&
        (int64_t)now_ms - f->credit_ms < (int64_t)f->d_ms) {
        f->fenced = false;
        return GF_FENCE_LEAVE;
    }
    return gf_fence_tick(f, now_ms);
}

enum gf_fence_change gf_fence_tick(struct gf_fence *f, uint64_t now_ms)
{
    if (f->fenced || !f->has_credit)
        return GF_FENCE_SAME;
    if ((int64_t)now_ms - f->credit_ms >= (int64_t)f->d_ms)
        return enter(f, now_ms);
    return GF_FENCE_SAME;
}

uint64_t gf_fence_deadline(const struct gf_fence *f)
{
    if (f->fenced || !f->has_credit)
        return UINT64_MAX;
    int64_t due = f->credit_ms + (int64_t)f->d_ms;
    return due < 0 ? 0 : (uint64_t)due;
}

uint64_t gf_fence_poll_ms(const struct gf_fence *f)
{
    uint64_t p = f->d_ms / 6;
    /* While fenced, every poll also LISTs the copies afresh: a copy whose
     * create landed after the fence's LIST runs until the next one, and
     * the fencing margin must cover that (F in docs/failure-semantics.md).
     * A second bounds it whatever D is; the cost is one LIST a second,
     * only while fenced. */
    if (f->fenced && p > GF_FENCE_FENCED_POLL_MS)
        p = GF_FENCE_FENCED_POLL_MS;
    return p < 50 ? 50 : p;
}

int64_t gf_fence_age_ms(const struct gf_fence *f, uint64_t now_ms)
{
    return f->has_credit ? (int64_t)now_ms - f->credit_ms : -1;
}

/* --- copies ------------------------------------------------------------ */

int gf_fence_job_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    /* The watch's label selector already asks for copies only; a Job
     * without the label is not one whatever the server sent. */
    if (gf_json_label(obj, GF_LABEL_LEASE) == NULL)
        return 1;
    const char *uid = gf_json_as_str(GF_JSON_AT(obj, "metadata", "uid"));
    if (uid == NULL)
        return -EINVAL;
    struct gf_fence_job *j = gf_calloc(1, sizeof(*j));
    j->uid = gf_strdup(uid);
    const cJSON *conds = GF_JSON_AT(obj, "status", "conditions");
    j->finished = gf_json_cond_true(conds, "Complete") ||
                  gf_json_cond_true(conds, "Failed");
    *out = j;
    return 0;
}

/* Adds q milli of (flavor, res) to *v (n entries, strings owned). */
static void amount_add(struct gf_fit_amount **v, size_t *n, const char *flavor,
                       const char *res, int64_t q)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].flavor, flavor) == 0 &&
            strcmp((*v)[i].resource, res) == 0) {
            (*v)[i].milli += q;
            return;
        }
    *v = gf_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct gf_fit_amount){
        .flavor = gf_strdup(flavor), .resource = gf_strdup(res), .milli = q};
}

static void amounts_free(struct gf_fit_amount *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gf_free((char *)v[i].flavor);
        gf_free((char *)v[i].resource);
    }
    gf_free(v);
}

/*
 * status.admission as Kueue writes it: the ClusterQueue, and per podSet
 * the flavor of each resource (flavors) and the podSet's total
 * (resourceUsage). Resource names are data (nvidia.com/gpu): read key by
 * key. A quantity that cannot be read is skipped, so a Workload never
 * looks bigger than it is; the ClusterQueue status cross-checks nothing
 * here, the hub's release reads that.
 */
static void admission(struct gf_fence_wl *w, const cJSON *status)
{
    const cJSON *adm = cJSON_GetObjectItemCaseSensitive(status, "admission");
    const char *cq = gf_json_as_str(GF_JSON_AT(adm, "clusterQueue"));
    if (cq == NULL)
        return;
    w->cq = gf_strdup(cq);
    const cJSON *psa;
    cJSON_ArrayForEach(psa, GF_JSON_AT(adm, "podSetAssignments"))
    {
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(psa, "flavors");
        const cJSON *u;
        cJSON_ArrayForEach(
            u, cJSON_GetObjectItemCaseSensitive(psa, "resourceUsage"))
        {
            const char *f =
                gf_json_as_str(cJSON_GetObjectItemCaseSensitive(fl, u->string));
            int64_t milli = 0;
            if (f != NULL && u->string != NULL &&
                gf_json_quantity_milli(u, &milli) == 0 && milli > 0)
                amount_add(&w->uses, &w->n_uses, f, u->string, milli);
        }
    }
    const cJSON *rc =
        gf_json_cond(GF_JSON_AT(status, "conditions"), "QuotaReserved");
    const char *t = gf_json_as_str(GF_JSON_AT(rc, "lastTransitionTime"));
    if (t != NULL && gf_time_parse_rfc3339(t, &w->admitted_ms) != 0)
        w->admitted_ms = 0;
}

int gf_fence_wl_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_fence_wl *w = gf_calloc(1, sizeof(*w));
    w->active = true;
    bool active;
    if (gf_json_as_bool(GF_JSON_AT(obj, "spec", "active"), &active) == 0)
        w->active = active;
    w->finished =
        gf_json_cond_true(GF_JSON_AT(obj, "status", "conditions"), "Finished");
    w->loan = gf_json_annotation(obj, GF_ANN_LOAN) != NULL;
    admission(w, GF_JSON_AT(obj, "status"));
    const cJSON *refs = GF_JSON_AT(obj, "metadata", "ownerReferences");
    if (!cJSON_IsArray(refs))
        refs = NULL;
    const cJSON *ref;
    cJSON_ArrayForEach(ref, refs)
    {
        bool ctl = false;
        const char *kind = gf_json_as_str(GF_JSON_AT(ref, "kind"));
        const char *uid = gf_json_as_str(GF_JSON_AT(ref, "uid"));
        if (gf_json_as_bool(GF_JSON_AT(ref, "controller"), &ctl) == 0 && ctl &&
            kind != NULL && strcmp(kind, "Job") == 0 && uid != NULL) {
            w->owner_uid = gf_strdup(uid);
            break;
        }
    }
    *out = w;
    return 0;
}

void gf_fence_job_free(void *p)
{
    struct gf_fence_job *j = p;
    if (j == NULL)
        return;
    gf_free(j->uid);
    gf_free(j);
}

void gf_fence_wl_free(void *p)
{
    struct gf_fence_wl *w = p;
    if (w == NULL)
        return;
    gf_free(w->owner_uid);
    gf_free(w->cq);
    amounts_free(w->uses, w->n_uses);
    gf_free(w);
}

/* The first lease of a comma-separated list, owned; NULL when empty. */
static char *first_lease(const char *list)
{
    if (list == NULL || list[0] == '\0' || list[0] == ',')
        return NULL;
    size_t n = strcspn(list, ",");
    char *s = gf_malloc(n + 1);
    memcpy(s, list, n);
    s[n] = '\0';
    return s;
}

static bool is_grant(const cJSON *cq, const char *name)
{
    const char *mb = gf_json_label(cq, "app.kubernetes.io/managed-by");
    return name != NULL && mb != NULL && strcmp(mb, "gpufed") == 0 &&
           strncmp(name, GF_FENCE_GRANT_PREFIX,
                   strlen(GF_FENCE_GRANT_PREFIX)) == 0;
}

/* spec.resourceGroups' nominalQuota per flavor and resource into q; an
 * unreadable quantity is left out (the sum never grows from a guess). */
static void cq_quota(struct gf_fence_cq *q, const cJSON *obj)
{
    const cJSON *rg, *fl, *r;
    cJSON_ArrayForEach(rg, GF_JSON_AT(obj, "spec", "resourceGroups"))
    {
        cJSON_ArrayForEach(fl, GF_JSON_AT(rg, "flavors"))
        {
            const char *f = gf_json_as_str(GF_JSON_AT(fl, "name"));
            cJSON_ArrayForEach(r, GF_JSON_AT(fl, "resources"))
            {
                const char *res = gf_json_as_str(GF_JSON_AT(r, "name"));
                const cJSON *nq = GF_JSON_AT(r, "nominalQuota");
                int64_t milli = 0;
                if (f == NULL || res == NULL ||
                    (nq != NULL && gf_json_quantity_milli(nq, &milli) != 0))
                    continue;
                q->lends = q->lends || milli != 0;
                amount_add(&q->nominal, &q->n_nominal, f, res, milli);
            }
        }
    }
}

int gf_fence_cq_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    const char *name = gf_json_as_str(GF_JSON_AT(obj, "metadata", "name"));
    if (name == NULL)
        return -EINVAL;
    struct gf_fence_cq *q = gf_calloc(1, sizeof(*q));
    q->name = gf_strdup(name);
    const char *cohort = gf_json_as_str(GF_JSON_AT(obj, "spec", "cohortName"));
    q->cohort = cohort != NULL ? gf_strdup(cohort) : NULL;
    cq_quota(q, obj);
    q->grant = is_grant(obj, name);
    const char *loans = gf_json_annotation(obj, GF_FENCE_ANN_LOANS);
    const char *reverted = gf_json_annotation(obj, GF_FENCE_ANN_REVERTED_LOANS);
    /* Only a grant lends to the cohort for a loan; any other queue's
     * nominal quota is the cohort's own. */
    q->lends = q->grant && (q->lends || loans != NULL);
    if (q->grant)
        q->lease = first_lease(loans != NULL ? loans : reverted);
    *out = q;
    return 0;
}

void gf_fence_cq_free(void *p)
{
    struct gf_fence_cq *q = p;
    if (q == NULL)
        return;
    gf_free(q->name);
    gf_free(q->cohort);
    gf_free(q->lease);
    amounts_free(q->nominal, q->n_nominal);
    gf_free(q);
}

void gf_fence_index_update(struct gf_htab *idx,
                           const struct gf_store_entry *old,
                           const struct gf_store_entry *cur)
{
    const struct gf_fence_wl *ow = old != NULL ? old->proj : NULL;
    const struct gf_fence_wl *cw = cur != NULL ? cur->proj : NULL;
    /* Drop the old owner's entry only if it still names this Workload: a
     * second Workload of the same Job may have taken it over. */
    if (ow != NULL && ow->owner_uid != NULL) {
        const char *k = gf_htab_get_str(idx, ow->owner_uid);
        if (k != NULL && strcmp(k, old->key) == 0)
            gf_free(gf_htab_del_str(idx, ow->owner_uid));
    }
    if (cw != NULL && cw->owner_uid != NULL)
        gf_free(gf_htab_put_str(idx, cw->owner_uid, gf_strdup(cur->key)));
}

void gf_fence_index_free(struct gf_htab *idx)
{
    gf_htab_free_all(idx, gf_free);
}

enum gf_fence_act gf_fence_copy_act(const struct gf_fence_job *j,
                                    const struct gf_fence_wl *w)
{
    if (j->finished || (w != NULL && w->finished))
        return GF_FENCE_ACT_FINISHED;
    if (w == NULL)
        return GF_FENCE_ACT_WAIT;
    return w->active ? GF_FENCE_ACT_PATCH : GF_FENCE_ACT_INACTIVE;
}

struct plan {
    const struct gf_store *wls;
    const struct gf_htab *idx;
    void (*fn)(void *data, const struct gf_store_entry *job,
               const struct gf_store_entry *wl);
    void *data;
    size_t calls, waiting;
};

static int plan_one(void *data, const struct gf_store_entry *e)
{
    struct plan *p = data;
    const struct gf_fence_job *j = e->proj;
    const char *wk = gf_htab_get_str(p->idx, j->uid);
    const struct gf_store_entry *we =
        wk != NULL ? gf_store_get(p->wls, wk) : NULL;
    switch (gf_fence_copy_act(j, we != NULL ? we->proj : NULL)) {
    case GF_FENCE_ACT_PATCH:
        p->fn(p->data, e, we);
        p->calls++;
        break;
    case GF_FENCE_ACT_WAIT:
        p->waiting++;
        break;
    case GF_FENCE_ACT_FINISHED:
    case GF_FENCE_ACT_INACTIVE:
        break;
    }
    return 0;
}

size_t gf_fence_plan(const struct gf_store *jobs, const struct gf_store *wls,
                     const struct gf_htab *idx,
                     void (*fn)(void *data, const struct gf_store_entry *job,
                                const struct gf_store_entry *wl),
                     void *data, size_t *waiting)
{
    struct plan p = {.wls = wls, .idx = idx, .fn = fn, .data = data};
    gf_store_foreach(jobs, plan_one, &p);
    if (waiting != NULL)
        *waiting = p.waiting;
    return p.calls;
}

char *gf_fence_patch_body(int64_t wall_ms, const char *for_lease)
{
    char ts[32];
    gf_time_rfc3339(wall_ms, ts);
    cJSON *p = cJSON_CreateObject();
    cJSON *ann = cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "metadata"),
                                         "annotations");
    cJSON_AddStringToObject(ann, GF_ANN_FENCED_AT, ts);
    if (for_lease != NULL)
        cJSON_AddStringToObject(ann, GF_FENCE_ANN_FENCED_FOR_LOAN, for_lease);
    cJSON_AddFalseToObject(cJSON_AddObjectToObject(p, "spec"), "active");
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}

/* --- loans ------------------------------------------------------------- */

struct loan_plan {
    void (*fn)(void *data, const struct gf_store_entry *wl);
    void *data;
    size_t calls;
};

static int loan_one(void *data, const struct gf_store_entry *e)
{
    struct loan_plan *p = data;
    const struct gf_fence_wl *w = e->proj;
    /* Pending ones too: Kueue may admit a marked W on the grant at any
     * moment before the revert lands. */
    if (w->loan && w->active && !w->finished) {
        p->fn(p->data, e);
        p->calls++;
    }
    return 0;
}

size_t gf_fence_loan_plan(const struct gf_store *wls,
                          void (*fn)(void *data,
                                     const struct gf_store_entry *wl),
                          void *data)
{
    struct loan_plan p = {.fn = fn, .data = data};
    gf_store_foreach(wls, loan_one, &p);
    return p.calls;
}

/* An absent quantity lends nothing; one we cannot read is reverted. */
static bool quantity_zero(const cJSON *q)
{
    int64_t milli = 0;
    return q == NULL || (gf_json_quantity_milli(q, &milli) == 0 && milli == 0);
}

char *gf_fence_grant_patch(const cJSON *cq)
{
    const char *name = gf_json_as_str(GF_JSON_AT(cq, "metadata", "name"));
    if (!is_grant(cq, name))
        return NULL;
    const cJSON *rgs = GF_JSON_AT(cq, "spec", "resourceGroups");
    const char *loans = gf_json_annotation(cq, GF_FENCE_ANN_LOANS);
    bool lends = loans != NULL;
    cJSON *groups =
        cJSON_IsArray(rgs) ? cJSON_Duplicate(rgs, true) : cJSON_CreateArray();
    const cJSON *rg, *fl;
    cJSON *r;
    cJSON_ArrayForEach(rg, groups)
    {
        cJSON_ArrayForEach(fl, GF_JSON_AT(rg, "flavors"))
        {
            cJSON_ArrayForEach(r, GF_JSON_AT(fl, "resources"))
            {
                const cJSON *q = GF_JSON_AT(r, "nominalQuota");
                lends = lends || !quantity_zero(q);
                cJSON_DeleteItemFromObjectCaseSensitive(r, "nominalQuota");
                cJSON_AddStringToObject(r, "nominalQuota", "0");
            }
        }
    }
    if (!lends) {
        cJSON_Delete(groups);
        return NULL;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON *ann = cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "metadata"),
                                         "annotations");
    cJSON_AddNullToObject(ann, GF_FENCE_ANN_LOANS);
    /* Kept for the per-cohort rule, which names a lease on what it stops
     * (the revert has removed it from gpufed.io/loans). */
    if (loans != NULL)
        cJSON_AddStringToObject(ann, GF_FENCE_ANN_REVERTED_LOANS, loans);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(p, "spec"), "resourceGroups",
                          groups);
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return s;
}
