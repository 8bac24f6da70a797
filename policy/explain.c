#include "policy/explain.h"

#include <stdio.h>
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

static cJSON *workload_json(const struct gf_ledger_wl *w,
                            const struct gf_policy *p, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "member", w->member);
    add_str(o, "namespace", w->namespace);
    add_str(o, "name", w->name);
    add_str(o, "clusterQueue", w->cq != NULL ? w->cq->name : NULL);
    int g = w->cq != NULL ? gf_policy_group_of(p, w->member, w->cq->name) : -1;
    add_str(o, "group", g >= 0 ? p->groups[g].name : NULL);
    cJSON_AddNumberToObject(o, "gpus", (double)w->gpus);
    cJSON_AddNumberToObject(o, "priority", w->priority);
    add_str(o, "state", gf_wl_state_name(w->state));
    if (w->state == GF_WL_PENDING)
        cJSON_AddNumberToObject(o, "pendingMs",
                                (double)(now_ms - w->pending_since_ms));
    return o;
}

/* The leases whose origin is this Workload, in name order. */
static cJSON *leases_json(const struct gf_ledger *l,
                          const struct gf_ledger_wl *w)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = gf_ledger_leases(l, NULL, 0);
    const struct gf_ledger_lease **v = gf_calloc(n + 1, sizeof(*v));
    n = gf_ledger_leases(l, v, n);
    for (size_t i = 0; i < n; i++) {
        const struct gf_lease *s = &v[i]->l;
        if (strcmp(s->origin_member, w->member) != 0 ||
            strcmp(s->origin_namespace, w->namespace) != 0 ||
            strcmp(s->origin_name, w->name) != 0)
            continue;
        cJSON *o = cJSON_CreateObject();
        add_str(o, "name", s->name);
        add_str(o, "phase", gf_lease_phase_name(s->phase));
        add_str(o, "lender", s->lender_member);
        add_str(o, "clusterQueue", s->lender_cq);
        add_str(o, "flavor", s->lender_flavor);
        cJSON_AddNumberToObject(o, "epoch", (double)s->epoch);
        cJSON_AddNumberToObject(o, "gpus", (double)s->gpus);
        add_str(o, "reason", s->reason);
        /* Insert in name order: the ledger's order is a hash's. */
        cJSON *it = arr->child;
        int pos = 0;
        while (it != NULL && strcmp(gf_json_str(it, "name"), s->name) < 0) {
            it = it->next;
            pos++;
        }
        cJSON_InsertItemInArray(arr, pos, o);
    }
    gf_free(v);
    return arr;
}

static cJSON *decision_json(const struct gf_action *a, int starts,
                            const struct gf_ledger_wl *w)
{
    cJSON *o = cJSON_CreateObject();
    const char *action = starts                      ? "start"
                         : w->state == GF_WL_PENDING ? "wait"
                                                     : "none";
    cJSON_AddStringToObject(o, "action", action);
    add_str(o, "rule", a->why.rule);
    add_str(o, "text", a->why.text);
    cJSON_AddNumberToObject(o, "have", (double)a->why.have);
    cJSON_AddNumberToObject(o, "need", (double)a->why.need);
    if (starts) {
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
    const struct gf_ledger_wl *w = gf_ledger_workload(l, member, ns, name);
    if (w == NULL)
        return GF_ENOTFOUND;
    struct gf_action a;
    int starts = 0;
    gf_decide_workload(l, p, now_ms, member, ns, name, &a, &starts);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "workload", workload_json(w, p, now_ms));
    cJSON_AddItemToObject(root, "leases", leases_json(l, w));
    cJSON_AddItemToObject(root, "decision", decision_json(&a, starts, w));
    gf_action_clear(&a);
    *out = root;
    return 0;
}

static const char *s_or(const cJSON *o, const char *k, const char *dflt)
{
    const char *s = gf_json_str(o, k);
    return s != NULL ? s : dflt;
}

static long long num(const cJSON *o, const char *k)
{
    int64_t v = 0;
    gf_json_int(o, k, &v);
    return (long long)v;
}

static void words_workload(struct gf_buf *b, const cJSON *w)
{
    gf_buf_printf(b, "%s/%s in %s (ClusterQueue %s, group %s): %s",
                  s_or(w, "namespace", "?"), s_or(w, "name", "?"),
                  s_or(w, "member", "?"), s_or(w, "clusterQueue", "unknown"),
                  s_or(w, "group", "none"), s_or(w, "state", "?"));
    if (cJSON_GetObjectItemCaseSensitive(w, "pendingMs") != NULL)
        gf_buf_printf(b, " for %llds", num(w, "pendingMs") / 1000);
    gf_buf_printf(b, ", %lld GPUs, priority %lld\n", num(w, "gpus"),
                  num(w, "priority"));
}

char *gf_explain_words(const cJSON *ex)
{
    struct gf_buf b = GF_BUF_INIT(1 << 20);
    words_workload(&b, cJSON_GetObjectItemCaseSensitive(ex, "workload"));
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ex, "leases"))
    {
        gf_buf_printf(
            &b, "lease %s: %s in %s/%s (flavor %s), epoch %lld, %lld GPUs",
            s_or(it, "name", "?"), s_or(it, "phase", "?"),
            s_or(it, "lender", "?"), s_or(it, "clusterQueue", "?"),
            s_or(it, "flavor", "?"), num(it, "epoch"), num(it, "gpus"));
        if (gf_json_str(it, "reason") != NULL)
            gf_buf_printf(&b, " (%s)", gf_json_str(it, "reason"));
        gf_buf_puts(&b, "\n");
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ex, "decision");
    const char *action = s_or(d, "action", "none");
    if (strcmp(action, "start") == 0)
        gf_buf_printf(
            &b, "next: start a %s lease in %s/%s (flavor %s), epoch %lld: %s\n",
            s_or(d, "mode", "?"), s_or(d, "lender", "?"),
            s_or(d, "clusterQueue", "?"), s_or(d, "flavor", "?"),
            num(d, "epoch"), s_or(d, "text", ""));
    else if (strcmp(action, "wait") == 0)
        gf_buf_printf(&b, "next: wait (%s: %lld of %lld): %s\n",
                      s_or(d, "rule", "?"), num(d, "have"), num(d, "need"),
                      s_or(d, "text", ""));
    else
        gf_buf_puts(&b, "next: nothing (not pending)\n");
    char *s = gf_strdup(gf_buf_cstr(&b));
    gf_buf_free(&b);
    return s;
}
