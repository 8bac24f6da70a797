#include "policy/explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "policy/decide.h"

static void add_str(cJSON *o, const char *k, const char *v)
{
    if (v != NULL)
        cJSON_AddStringToObject(o, k, v);
}

/*
 * One explanation, computed once from the ledger and the policy; the JSON
 * and the words are two renderings of it, so neither reads the other.
 */
struct expl {
    const struct gf_ledger_wl *w;
    const char *cq, *group; /* NULL if unknown / in no group */
    const char *cohort;     /* the ClusterQueue's, or NULL */
    const char *mode;       /* the group's: redirect, loan, both */
    int64_t now_ms;
    int64_t pending_ms;             /* PENDING only */
    const struct gf_lease **leases; /* the Workload's, in name order */
    size_t n_leases;
    struct gf_action a;
    int starts;
};

static int lease_name_cmp(const void *x, const void *y)
{
    const struct gf_lease *const *a = x, *const *b = y;
    return strcmp((*a)->name, (*b)->name);
}

/* As spec.groups[].mode spells it. */
static const char *group_mode(const struct gf_policy_group *g)
{
    if (g->modes == (GF_MODE_REDIRECT | GF_MODE_LOAN))
        return "both";
    return g->modes == GF_MODE_LOAN ? "loan" : "redirect";
}

static int expl_build(struct expl *e, const struct gf_ledger *l,
                      const struct gf_policy *p, int64_t now_ms,
                      const char *member, const char *ns, const char *name)
{
    memset(e, 0, sizeof(*e));
    const struct gf_ledger_wl *w = gf_ledger_workload(l, member, ns, name);
    if (w == NULL)
        return GF_ENOTFOUND;
    e->w = w;
    e->cq = w->cq != NULL ? w->cq->name : NULL;
    int g = w->cq != NULL ? gf_policy_group_of(p, w->member, w->cq->name) : -1;
    e->group = g >= 0 ? p->groups[g].name : NULL;
    e->now_ms = now_ms;
    e->cohort = w->cq != NULL ? w->cq->cohort : NULL;
    e->mode = g >= 0 ? group_mode(&p->groups[g]) : NULL;
    e->pending_ms = now_ms - w->pending_since_ms;
    size_t n = gf_ledger_leases(l, NULL, 0);
    const struct gf_ledger_lease **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_leases(l, v, n);
    e->leases = gf_calloc(n + 1, sizeof(*e->leases));
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *s = &v[i]->l;
        if (strcmp(s->origin_member, w->member) == 0 &&
            strcmp(s->origin_namespace, w->namespace) == 0 &&
            strcmp(s->origin_name, w->name) == 0)
            e->leases[e->n_leases++] = s;
    }
    gf_free(v);
    /* Name order: the ledger's order is a hash's. */
    qsort(e->leases, e->n_leases, sizeof(*e->leases), lease_name_cmp);
    gf_decide_workload(l, p, now_ms, member, ns, name, &e->a, &e->starts);
    return 0;
}

static void expl_clear(struct expl *e)
{
    gf_free(e->leases);
    gf_action_clear(&e->a);
}

static const char *expl_action(const struct expl *e)
{
    return e->starts ? "start" : e->w->state == GF_WL_PENDING ? "wait" : "none";
}

static cJSON *workload_json(const struct expl *e)
{
    const struct gf_ledger_wl *w = e->w;
    cJSON *o = cJSON_CreateObject();
    add_str(o, "member", w->member);
    add_str(o, "namespace", w->namespace);
    add_str(o, "name", w->name);
    add_str(o, "clusterQueue", e->cq);
    add_str(o, "cohort", e->cohort);
    add_str(o, "group", e->group);
    add_str(o, "groupMode", e->mode);
    cJSON_AddNumberToObject(o, "gpus", (double)w->gpus);
    cJSON_AddNumberToObject(o, "priority", w->priority);
    add_str(o, "state", gf_wl_state_name(w->state));
    if (w->state == GF_WL_PENDING)
        cJSON_AddNumberToObject(o, "pendingMs", (double)e->pending_ms);
    return o;
}

static cJSON *leases_json(const struct expl *e)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < e->n_leases; i++) {
        const struct gf_lease *s = e->leases[i];
        cJSON *o = cJSON_CreateObject();
        add_str(o, "name", s->name);
        add_str(o, "mode", gf_lease_mode_name(s->mode));
        add_str(o, "phase", gf_lease_phase_name(s->phase));
        add_str(o, "lender", s->lender_member);
        add_str(o, "clusterQueue", s->lender_cq);
        add_str(o, "flavor", s->lender_flavor);
        cJSON_AddNumberToObject(o, "epoch", (double)s->epoch);
        cJSON_AddNumberToObject(o, "gpus", (double)s->gpus);
        add_str(o, "reason", s->reason);
        /* The reclaim's times, and the end a retry waits on
         * (recentlyReclaimed): only when set. */
        if (s->reclaim_started_ms > 0)
            cJSON_AddNumberToObject(o, "reclaimStartedMs",
                                    (double)s->reclaim_started_ms);
        if (s->reclaim_deadline_ms > 0)
            cJSON_AddNumberToObject(o, "reclaimDeadlineMs",
                                    (double)s->reclaim_deadline_ms);
        if (s->ended_ms > 0)
            cJSON_AddNumberToObject(o, "endedMs", (double)s->ended_ms);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *decision_json(const struct expl *e)
{
    const struct gf_action *a = &e->a;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", expl_action(e));
    add_str(o, "rule", a->why.rule);
    add_str(o, "text", a->why.text);
    cJSON_AddNumberToObject(o, "have", (double)a->why.have);
    cJSON_AddNumberToObject(o, "need", (double)a->why.need);
    if (e->starts) {
        add_str(o, "lender", a->lender);
        add_str(o, "clusterQueue", a->lender_cq);
        add_str(o, "flavor", a->flavor);
        add_str(o, "mode", gf_lease_mode_name(a->mode));
        cJSON_AddNumberToObject(o, "epoch", (double)a->epoch);
    }
    return o;
}

int gf_explain(const struct gf_ledger *l, const struct gf_policy *p,
               int64_t now_ms, const char *member, const char *ns,
               const char *name, cJSON **out)
{
    *out = NULL;
    struct expl e;
    int rc = expl_build(&e, l, p, now_ms, member, ns, name);
    if (rc != 0)
        return rc;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "workload", workload_json(&e));
    cJSON_AddItemToObject(root, "leases", leases_json(&e));
    cJSON_AddItemToObject(root, "decision", decision_json(&e));
    expl_clear(&e);
    *out = root;
    return 0;
}

static const char *or_str(const char *s, const char *dflt)
{
    return s != NULL ? s : dflt;
}

static void words_workload(struct gf_buf *b, const struct expl *e)
{
    const struct gf_ledger_wl *w = e->w;
    gf_buf_printf(b, "%s/%s in %s (ClusterQueue %s", w->namespace, w->name,
                  w->member, or_str(e->cq, "unknown"));
    if (e->cohort != NULL)
        gf_buf_printf(b, " in cohort %s", e->cohort);
    gf_buf_printf(b, ", group %s", or_str(e->group, "none"));
    if (e->mode != NULL)
        gf_buf_printf(b, ", mode %s", e->mode);
    gf_buf_printf(b, "): %s", gf_wl_state_name(w->state));
    if (w->state == GF_WL_PENDING)
        gf_buf_printf(b, " for %llds", (long long)(e->pending_ms / 1000));
    gf_buf_printf(b, ", %lld GPUs, priority %lld\n", (long long)w->gpus,
                  (long long)w->priority);
}

static void words_leases(struct gf_buf *b, const struct expl *e)
{
    for (size_t i = 0; i < e->n_leases; i++) {
        const struct gf_lease *s = e->leases[i];
        gf_buf_printf(
            b, "lease %s (%s): %s in %s/%s (flavor %s), epoch %lld, %lld GPUs",
            s->name, gf_lease_mode_name(s->mode), gf_lease_phase_name(s->phase),
            or_str(s->lender_member, "?"), or_str(s->lender_cq, "?"),
            or_str(s->lender_flavor, "?"), (long long)s->epoch,
            (long long)s->gpus);
        if (s->reason != NULL)
            gf_buf_printf(b, " (%s)", s->reason);
        if (s->reclaim_deadline_ms > 0 && s->phase == GF_LEASE_RECLAIMING)
            gf_buf_printf(
                b, ", reclaim deadline in %llds",
                (long long)((s->reclaim_deadline_ms - e->now_ms) / 1000));
        if (s->ended_ms > 0)
            gf_buf_printf(b, ", ended %llds ago",
                          (long long)((e->now_ms - s->ended_ms) / 1000));
        gf_buf_puts(b, "\n");
    }
}

static void words_decision(struct gf_buf *b, const struct expl *e)
{
    const struct gf_action *a = &e->a;
    const char *action = expl_action(e);
    if (strcmp(action, "start") == 0)
        gf_buf_printf(
            b, "next: start a %s lease in %s/%s (flavor %s), epoch %lld: %s\n",
            gf_lease_mode_name(a->mode), or_str(a->lender, "?"),
            or_str(a->lender_cq, "?"), or_str(a->flavor, "?"),
            (long long)a->epoch, a->why.text);
    else if (strcmp(action, "wait") == 0)
        gf_buf_printf(b, "next: wait (%s: %lld of %lld): %s\n",
                      or_str(a->why.rule, "?"), (long long)a->why.have,
                      (long long)a->why.need, a->why.text);
    else
        gf_buf_puts(b, "next: nothing (not pending)\n");
}

int gf_explain_words(const struct gf_ledger *l, const struct gf_policy *p,
                     int64_t now_ms, const char *member, const char *ns,
                     const char *name, char **out)
{
    *out = NULL;
    struct expl e;
    int rc = expl_build(&e, l, p, now_ms, member, ns, name);
    if (rc != 0)
        return rc;
    struct gf_buf b = GF_BUF_INIT(1 << 20);
    words_workload(&b, &e);
    words_leases(&b, &e);
    words_decision(&b, &e);
    expl_clear(&e);
    *out = gf_strdup(gf_buf_cstr(&b));
    gf_buf_free(&b);
    return 0;
}
