/*
 * hub: wiring. The hub cluster's watches (QuotaLeases, the members'
 * kubeconfig Secrets, the drain ConfigMap), the members, and the workqueue that
 * serialises every piece of work by key. Decisions are in pass.c, the protocol
 * in lease_reconcile.c, the member clusters in member.c.
 */
#include "controller/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "kubeclient/uvclock.h"

#define DEFAULT_NS "gpufed-system"
#define DEFAULT_PASS_MS 1000
#define DEFAULT_COPY_TTL_MS ((uint64_t)10 * 60 * 1000)

/* --- the crash hook --------------------------------------------------- */

static void parse_crash(struct gf_hub *h, const char *spec)
{
    const char *colon = spec != NULL ? strchr(spec, ':') : NULL;
    if (colon == NULL || (size_t)(colon - spec) >= sizeof(h->crash_write))
        return;
    memcpy(h->crash_write, spec, (size_t)(colon - spec));
    h->crash_write[colon - spec] = '\0';
    char *end = NULL;
    long n = strtol(colon + 1, &end, 10);
    h->crash_n = end != colon + 1 && *end == '\0' && n > 0 ? (unsigned)n : 0;
}

void gf__hub_wrote(struct gf_hub *h, const char *write)
{
    if (h->crash_n == 0 || strcmp(write, h->crash_write) != 0)
        return;
    if (--h->crash_n > 0)
        return;
    GF_LOG(&h->lc, GF_LOG_WARN, "crash hook: killing the hub", "after=%s",
           write);
    /* Rule zero: tests need the hub to die exactly as under SIGKILL, with
     * no cleanup, between two protocol steps. */
    raise(SIGKILL);
}

/* --- the policy --------------------------------------------------------- */

/* Members are connections: a policy that adds, removes or moves one is
 * applied by a restart (the Deployment's rollout), not in place. */
static bool same_members(const struct gf_policy *a, const struct gf_policy *b)
{
    if (a->n_members != b->n_members || strcmp(a->resource, b->resource) != 0)
        return false;
    for (size_t i = 0; i < a->n_members; i++) {
        const struct gf_policy_member *x = &a->members[i], *y = &b->members[i];
        if (strcmp(x->name, y->name) != 0 ||
            strcmp(x->api_server ? x->api_server : "",
                   y->api_server ? y->api_server : "") != 0 ||
            strcmp(x->credentials_secret ? x->credentials_secret : "",
                   y->credentials_secret ? y->credentials_secret : "") != 0)
            return false;
    }
    return true;
}

static void policy_event(struct gf_hub *h, const char *reason, const char *msg,
                         bool warn);

static void on_policy(void *data, const struct gf_policy *now,
                      const struct gf_policy_diag *diag)
{
    struct gf_hub *h = data;
    if (diag != NULL) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "policy refused (%zu error(s)), the last good one stays: "
                 "%s:%d:%d: %s: %s",
                 diag->n + diag->dropped, h->policy_path,
                 diag->n > 0 ? diag->errs[0].line : 0,
                 diag->n > 0 ? diag->errs[0].col : 0,
                 diag->n > 0 ? diag->errs[0].path : "",
                 diag->n > 0 ? diag->errs[0].msg : "");
        policy_event(h, "PolicyRefused", msg, true);
        return;
    }
    if (now == h->policy)
        return;
    if (!same_members(h->policy, now)) {
        GF_LOG(&h->lc, GF_LOG_ERROR,
               "policy changes members: restart the hub to apply it", "");
        policy_event(h, "PolicyNeedsRestart",
                     "the new policy changes members; it applies after a "
                     "restart, the running policy stays",
                     true);
        return;
    }
    gf_policy_file_unref(h->pf, h->policy);
    h->policy = gf_policy_file_ref(h->pf);
    policy_event(h, "PolicyApplied", "a new policy is in force", false);
    gf__hub_kick_pass(h);
}

/* An Event on the policy's ConfigMap in the hub: where an admin who
 * edited it looks. */
static void policy_event(struct gf_hub *h, const char *reason, const char *msg,
                         bool warn)
{
    if (!gf__hub_writing(h))
        return; /* the leader records it; the log has it here */
    const struct gf__event ev = {.ns = h->ns,
                                 .api_version = "v1",
                                 .kind = "ConfigMap",
                                 .name = "gpufed-policy",
                                 .reason = reason,
                                 .message = msg,
                                 .component = "gpufed-hub",
                                 .warning = warn};
    gf__event_post(h, h->hubc, &ev);
}

/* --- per-lease memory -------------------------------------------------- */

struct gf__lease_mem *gf__lease_mem(struct gf_hub *h, const char *name)
{
    struct gf__lease_mem *m = gf_htab_get_str(&h->lease_mem, name);
    if (m == NULL) {
        m = gf_calloc(1, sizeof(*m));
        m->name = gf_strdup(name);
        m->phase_seen = GF_LEASE_PHASE_COUNT;
        gf_htab_put_str(&h->lease_mem, m->name, m);
    }
    return m;
}

/* Forgets every lease's memory: at stop, and at each change of
 * leadership (what a previous term saw confirmed may have changed while
 * another replica led; confirmations are cheap to obtain again). Nothing
 * holds a struct gf__lease_mem across a loop turn: reconciles look theirs
 * up by name in each callback. */
static void lease_mem_clear(struct gf_hub *h)
{
    struct gf_htab_iter it;
    void *v;
    gf_htab_iter_init(&it, &h->lease_mem);
    while (gf_htab_next(&it, NULL, NULL, &v)) {
        struct gf__lease_mem *m = v;
        cJSON_Delete(m->origin_job);
        gf_free(m->name);
        gf_free(m);
    }
    gf_htab_free(&h->lease_mem);
    gf_htab_init(&h->lease_mem, GF_HTAB_BORROW_KEYS);
}

void gf__lease_mem_drop(struct gf_hub *h, const char *name)
{
    struct gf__lease_mem *m = gf_htab_del_str(&h->lease_mem, name);
    if (m != NULL) {
        cJSON_Delete(m->origin_job);
        gf_free(m->name);
        gf_free(m);
    }
}

/* --- reclaim figures (/metrics) ----------------------------------------- */

/* From a second (a reclaim that finds its copy already gone) to ten
 * minutes (a long grace period). */
const double gf__reclaim_bounds[GF__RECLAIM_BUCKETS] = {
    1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600};

void gf__hub_count_reclaim(struct gf_hub *h, const char *lender,
                           const char *cause)
{
    char key[160];
    snprintf(key, sizeof(key), "%s\n%s", lender, cause);
    uint64_t *n = gf_htab_get_str(&h->reclaims, key);
    if (n == NULL) {
        n = gf_calloc(1, sizeof(*n));
        gf_htab_put_str(&h->reclaims, key, n);
    }
    (*n)++;
}

void gf__hub_observe_reclaim(struct gf_hub *h, double seconds)
{
    for (size_t i = 0; i < GF__RECLAIM_BUCKETS; i++)
        if (seconds <= gf__reclaim_bounds[i])
            h->reclaim_secs_buckets[i]++;
    h->reclaim_secs_count++;
    h->reclaim_secs_sum += seconds;
}

void gf__hub_enqueue_lease(struct gf_hub *h, const char *name)
{
    char key[300];
    snprintf(key, sizeof(key), "lease/%s", name);
    gf_wq_add(h->wq, key);
}

void gf__hub_kick_pass(struct gf_hub *h)
{
    /* Coalesced: many events in one turn are one pass. A short delay
     * gathers the events of one burst (a relist) into one pass. */
    gf_wq_add_after(h->wq, "pass", 50);
}

const char *gf__copy_namespace(const struct gf_hub *h, const char *group,
                               const char *lender, const char *origin_ns)
{
    const struct gf_policy *p = h->policy;
    int g = gf_policy_group_index(p, group);
    if (g < 0)
        return origin_ns;
    const struct gf_policy_group *gr = &p->groups[g];
    for (size_t i = 0; i < gr->n_ns_map; i++) {
        const struct gf_policy_ns_map *m = &gr->ns_map[i];
        if (strcmp(p->members[m->member].name, lender) == 0 &&
            strcmp(m->from, origin_ns) == 0)
            return m->to;
    }
    return origin_ns;
}

struct gf__member *gf__hub_member(const struct gf_hub *h, const char *name)
{
    for (size_t i = 0; i < h->n_members; i++)
        if (strcmp(h->members[i]->name, name) == 0)
            return h->members[i];
    return NULL;
}

/* --- hub watches ------------------------------------------------------ */

static int lease_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf__lease_proj *p = gf_calloc(1, sizeof(*p));
    char why[160];
    int rc = gf_obs_lease_from_json(obj, &p->l, why, sizeof(why));
    if (rc != 0) {
        gf_free(p);
        return rc;
    }
    if (p->l.reason == NULL || gf_lm_reason_parse(p->l.reason, &p->reason) != 0)
        p->reason = GF_LM_R_NONE;
    if (p->l.reason == NULL ||
        gf_ln_reason_parse(p->l.reason, &p->ln_reason) != 0)
        p->ln_reason = GF_LN_R_NONE;
    bool granted = false;
    p->granted =
        gf_json_as_bool(GF_JSON_AT(obj, "status", "granted"), &granted) == 0 &&
        granted;
    *out = p;
    return 0;
}

static void lease_proj_free(void *v)
{
    struct gf__lease_proj *p = v;
    if (p == NULL)
        return;
    gf_lease_clear(&p->l);
    gf_free(p);
}

static void lease_add(void *data, const struct gf_store_entry *e)
{
    struct gf_hub *h = data;
    const struct gf__lease_proj *p = e->proj;
    gf_ledger_lease_set(h->ledger, &p->l);
    gf__hub_enqueue_lease(h, p->l.name);
    gf__hub_kick_pass(h);
}

static void lease_upd(void *data, const struct gf_store_entry *o,
                      const struct gf_store_entry *e)
{
    (void)o;
    lease_add(data, e);
}

static void lease_del(void *data, const struct gf_store_entry *o)
{
    struct gf_hub *h = data;
    const struct gf__lease_proj *p = o->proj;
    gf_ledger_lease_delete(h->ledger, p->l.name);
    gf__lease_mem_drop(h, p->l.name);
    gf__hub_kick_pass(h);
}

/* A member kubeconfig Secret, decoded. */
struct secret_proj {
    unsigned char *kubeconfig;
    size_t len;
};

static int secret_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    const cJSON *d = GF_JSON_AT(obj, "data", "kubeconfig");
    if (!cJSON_IsString(d))
        return 1; /* not a member Secret: skip */
    struct secret_proj *p = gf_calloc(1, sizeof(*p));
    int rc = gf_kube_base64_decode(d->valuestring, strlen(d->valuestring),
                                   &p->kubeconfig, &p->len);
    if (rc != 0) {
        gf_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void secret_proj_free(void *v)
{
    struct secret_proj *p = v;
    if (p == NULL)
        return;
    gf_wipe(p->kubeconfig, p->len);
    gf_free(p->kubeconfig);
    gf_free(p);
}

/* The Secret a member's credentialsSecret names ("namespace/name"). */
static void secret_key(const struct gf_hub *h, size_t i, char *out, size_t cap)
{
    const char *ref = h->policy->members[i].credentials_secret;
    if (ref != NULL)
        snprintf(out, cap, "%s", ref);
    else
        snprintf(out, cap, "%s/%s-kubeconfig", h->ns,
                 h->policy->members[i].name);
}

static void secret_changed(void *data, const struct gf_store_entry *e)
{
    struct gf_hub *h = data;
    for (size_t i = 0; i < h->n_members; i++) {
        char k[300];
        secret_key(h, i, k, sizeof(k));
        if (strcmp(k, e->key) == 0) {
            char key[160];
            snprintf(key, sizeof(key), "member/%s", h->members[i]->name);
            gf_wq_add(h->wq, key);
        }
    }
}

static void secret_add(void *data, const struct gf_store_entry *e)
{
    secret_changed(data, e);
}

static void secret_upd(void *data, const struct gf_store_entry *o,
                       const struct gf_store_entry *e)
{
    (void)o;
    secret_changed(data, e);
}

static void secret_del(void *data, const struct gf_store_entry *o)
{
    /* The member keeps its connection: removing a member is a policy
     * change, not a Secret deletion. */
    (void)data;
    (void)o;
}

/* --- the drain ConfigMap ------------------------------------------------ */

static int drain_project(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct gf_drain_set *s = gf_calloc(1, sizeof(*s));
    int rc = gf_drain_parse(obj, s);
    if (rc != 0) {
        gf_drain_set_free(s);
        gf_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void drain_proj_free(void *v)
{
    gf_drain_set_free(v);
    gf_free(v);
}

const struct gf_drain_set *gf__hub_drained(const struct gf_hub *h)
{
    char key[300];
    snprintf(key, sizeof(key), "%s/%s", h->ns, GF_DRAIN_CONFIGMAP);
    const struct gf_store_entry *e =
        h->drain_cm != NULL ? gf_store_get(h->drain_cm, key) : NULL;
    return e != NULL ? e->proj : NULL;
}

bool gf__hub_synced(const struct gf_hub *h)
{
    return h->leases != NULL && gf_store_has_synced(h->leases) &&
           h->drain_cm != NULL && gf_store_has_synced(h->drain_cm);
}

/* Names in the drained set that are no member, logged once each: a typo
 * stays in the ConfigMap until someone uncordons it, and every resync
 * would repeat it. */
static void drain_warn_unknown(struct gf_hub *h, const struct gf_drain_set *s)
{
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        const char *name = s->e[i].member;
        if (gf_policy_member_index(h->policy, name) >= 0 ||
            gf_htab_get_str(&h->drain_warned, name) != NULL)
            continue;
        gf_htab_put_str(&h->drain_warned, name, h);
        GF_LOG(&h->lc, GF_LOG_WARN,
               "drained name is not a member of the policy; ignored",
               "configmap=%s member=%s", GF_DRAIN_CONFIGMAP, name);
    }
}

/* The drained set s (NULL: nothing drained) into the ledger, for every
 * member of the policy. Level-triggered: each change of the ConfigMap
 * sets every member's flag from the whole set. */
static void drain_apply(struct gf_hub *h, const struct gf_drain_set *s)
{
    const struct gf_policy *p = h->policy;
    for (size_t i = 0; i < p->n_members; i++) {
        const char *name = p->members[i].name;
        const struct gf_drain_entry *e = gf_drain_find(s, name);
        const struct gf_ledger_member *lm = gf_ledger_member(h->ledger, name);
        bool was = lm != NULL && lm->drained;
        if (was != (e != NULL)) {
            char since[32] = "";
            if (e != NULL && e->since_ms > 0)
                gf_time_rfc3339(e->since_ms, since);
            GF_LOG(&h->lc, GF_LOG_INFO,
                   e != NULL ? "member drained" : "member uncordoned",
                   "member=%s since=%s", name, since);
        }
        gf_ledger_member_drain(h->ledger, name, e != NULL);
    }
    drain_warn_unknown(h, s);
    gf__hub_kick_pass(h);
}

static void drain_add(void *data, const struct gf_store_entry *e)
{
    drain_apply(data, e->proj);
}

static void drain_upd(void *data, const struct gf_store_entry *o,
                      const struct gf_store_entry *e)
{
    (void)o;
    drain_apply(data, e->proj);
}

static void drain_del(void *data, const struct gf_store_entry *o)
{
    (void)o;
    drain_apply(data, NULL);
}

/* --- member keys ------------------------------------------------------- */

static void member_reconcile(struct gf_hub *h, const char *key,
                             const char *name)
{
    struct gf__member *m = gf__hub_member(h, name);
    if (m == NULL) {
        gf_wq_done(h->wq, key, GF_WQ_OK, 0);
        return;
    }
    char sk[300];
    secret_key(h, m->index, sk, sizeof(sk));
    const struct gf_store_entry *e = gf_store_get(h->secrets, sk);
    if (e == NULL) {
        GF_LOG(&m->lc, GF_LOG_WARN, "member Secret not found", "secret=%s", sk);
        gf_wq_done(h->wq, key, GF_WQ_REQUEUE_AFTER, 10000);
        return;
    }
    const struct secret_proj *p = e->proj;
    int rc = gf__member_connect(m, (const char *)p->kubeconfig, p->len, e->rv);
    if (rc == -EAGAIN)
        gf_wq_done(h->wq, key, GF_WQ_REQUEUE_AFTER, 200);
    else
        gf_wq_done(h->wq, key, rc == 0 ? GF_WQ_OK : GF_WQ_ERROR, 0);
}

/* --- leadership ------------------------------------------------------- */

bool gf__hub_writing(const struct gf_hub *h)
{
    /* Not h->stopping: a stopping leader lets the writes of reconciles in
     * flight finish (the drain), and takes no new keys anyway. */
    return h->leading;
}

static int enqueue_lease(void *data, const struct gf_store_entry *e)
{
    const struct gf__lease_proj *p = e->proj;
    gf__hub_enqueue_lease(data, p->l.name);
    return 0;
}

void gf__hub_on_lead(struct gf_hub *h)
{
    lease_mem_clear(h);
    gf__pass_abandon(h); /* a pass of an earlier term starts afresh */
    /* hb_sent := now for every member (the previous leader may have
     * renewed just before it stopped), then renew. */
    gf__heartbeat_resume(h);
    /* Keys dropped while standing by come back: every lease, and a pass
     * (both wait until every cache has synced, the rule at start). */
    if (h->leases != NULL)
        gf_store_foreach(h->leases, enqueue_lease, h);
    gf__hub_kick_pass(h);
}

static void on_leader_change(void *data, bool leading)
{
    struct gf_hub *h = data;
    h->leading = leading;
    if (leading) {
        GF_LOG(&h->lc, GF_LOG_INFO, "leading: writes resume", "");
        gf__hub_on_lead(h);
        return;
    }
    gf__heartbeat_pause(h);
    /* Stop at once: process() drops lease and pass keys from now on,
     * Events are not posted, and what a write in flight confirms is
     * forgotten with the rest; the next leader rebuilds by observation. */
    lease_mem_clear(h);
    GF_LOG(&h->lc, GF_LOG_WARN, "not leading: writes stopped", "");
    if (h->on_lost != NULL && !h->stopping) {
        GF_LOG(&h->lc, GF_LOG_WARN, "lost leadership: stopping", "");
        h->on_lost(h->on_lost_data);
    }
}

static int start_leader(struct gf_hub *h, const struct gf_hub_opts *o)
{
    h->on_lost = o->on_leadership_lost;
    h->on_lost_data = o->on_leadership_lost_data;
    struct gf_leader_opts lo = {.clk = &h->clk,
                                .id = o->id != NULL ? o->id : "gpufed-hub",
                                .lease_ms = o->leader_lease_ms,
                                .client = h->hubc,
                                .ns = h->ns,
                                .on_change = on_leader_change,
                                .data = h};
    return gf_leader_start(&lo, &h->leader);
}

/* --- the queue -------------------------------------------------------- */

static void process(struct gf_workqueue *wq, const char *key, void *data)
{
    struct gf_hub *h = data;
    if (h->stopping) {
        gf_wq_done(wq, key, GF_WQ_OK, 0);
        return;
    }
    /* The gate of a replica that does not lead: member keys (connecting
     * reflectors, which only read) run, so its caches stay warm; lease
     * and pass keys are dropped and come back with gf__hub_on_lead. */
    if (!h->leading && strncmp(key, "member/", 7) != 0) {
        gf_wq_done(wq, key, GF_WQ_OK, 0);
        return;
    }
    if (strcmp(key, "pass") == 0)
        gf__pass_run(h);
    else if (strncmp(key, "lease/", 6) == 0)
        gf__lease_reconcile(h, key, key + 6);
    else if (strncmp(key, "member/", 7) == 0)
        member_reconcile(h, key, key + 7);
    else
        gf_wq_done(wq, key, GF_WQ_TERMINAL, 0);
}

/* --- lifecycle ---------------------------------------------------------- */

/* A reflector on resource in the hub's namespace, into store. */
static int start_refl(struct gf_hub *h, const char *resource,
                      const char *field_selector, struct gf_store *store,
                      struct gf_reflector **refl)
{
    struct gf_reflector_opts ro = {.client = h->hubc,
                                   .store = store,
                                   .rng = &h->rng,
                                   .ns = h->ns,
                                   .field_selector = field_selector,
                                   .page_limit = 500,
                                   .lc = &h->lc};
    int rc = gf_kube_resource_parse(resource, &ro.res);
    if (rc == 0)
        rc = gf_reflector_new(&ro, refl);
    if (rc == 0)
        rc = gf_reflector_start(*refl);
    return rc;
}

static int start_hub_watch(struct gf_hub *h, const char *resource,
                           gf_store_project_fn project, gf_store_free_fn fr,
                           const struct gf_store_handlers *hs,
                           struct gf_store **store, struct gf_reflector **refl)
{
    struct gf_store_opts so = {
        .project = project, .free_proj = fr, .handlers = hs};
    *store = gf_store_new(&so);
    return start_refl(h, resource, NULL, *store, refl);
}

static const struct gf_store_handlers lease_handlers = {
    .on_add = lease_add, .on_update = lease_upd, .on_delete = lease_del};
static const struct gf_store_handlers secret_handlers = {
    .on_add = secret_add, .on_update = secret_upd, .on_delete = secret_del};
static const struct gf_store_handlers drain_handlers = {
    .on_add = drain_add, .on_update = drain_upd, .on_delete = drain_del};

void gf__hub_drain_store_new(struct gf_hub *h)
{
    struct gf_store_handlers dh = drain_handlers;
    dh.data = h;
    struct gf_store_opts so = {.project = drain_project,
                               .free_proj = drain_proj_free,
                               .handlers = &dh};
    h->drain_cm = gf_store_new(&so);
}

/* Every error of a refused policy, one log line each, file:line:col
 * first (the format of `gpufedctl policy check`). */
static void log_diag(struct gf_hub *h, const char *path,
                     const struct gf_policy_diag *diag)
{
    struct gf_buf b = GF_BUF_INIT(1 << 20);
    gf_policy_diag_format(diag, path, &b);
    GF_LOG(&h->lc, GF_LOG_ERROR, "policy invalid", "path=%s errors=%zu", path,
           diag->n + diag->dropped);
    const char *line = gf_buf_cstr(&b);
    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        int n = (int)(nl != NULL ? (size_t)(nl - line) : strlen(line));
        char one[600];
        snprintf(one, sizeof(one), "%.*s", n, line);
        GF_LOG(&h->lc, GF_LOG_ERROR, "policy error", "error=%s", one);
        line = nl != NULL ? nl + 1 : NULL;
    }
    gf_buf_free(&b);
}

static int open_policy(struct gf_hub *h, const char *path)
{
    struct gf_policy_diag diag;
    gf_policy_diag_init(&diag);
    struct gf_policy_file_opts po = {.loop = h->loop,
                                     .clk = &h->clk,
                                     .path = path,
                                     .cb = on_policy,
                                     .data = h};
    int rc = gf_policy_file_open(&po, &h->pf, &diag);
    if (rc == GF_ECONFIG)
        log_diag(h, path, &diag);
    else if (rc != 0)
        GF_LOG(&h->lc, GF_LOG_ERROR, "policy unreadable", "path=%s err=%s",
               path, gf_strerror(rc));
    gf_policy_diag_free(&diag);
    if (rc == 0)
        h->policy = gf_policy_file_ref(h->pf);
    return rc;
}

/* A start that failed before anything watched: frees what exists; the
 * caller's loop run closes the handles. */
static void abandon_start(struct gf_hub *h, int rc)
{
    GF_LOG(&h->lc, GF_LOG_ERROR, "hub not started", "err=%s", gf_strerror(rc));
    if (h->http != NULL)
        gf_http_close(h->http, NULL, NULL);
    if (h->pf != NULL) {
        gf_policy_file_unref(h->pf, h->policy);
        gf_policy_file_close(h->pf, NULL, NULL);
    }
    gf_clock_close(&h->clk);
    gf_htab_free(&h->lease_mem);
    gf_htab_free(&h->starting);
    gf_htab_free(&h->drain_warned);
    gf_htab_free(&h->reclaims);
    gf_free(h->policy_path);
    gf_free(h->ns);
    gf_free(h);
}

/* The ledger, the workqueue and one member per policy member, with their
 * heartbeats (paused until this replica leads). */
static void start_members(struct gf_hub *h, const struct gf_hub_opts *o)
{
    h->resource = gf_strdup(h->policy->resource);
    h->ledger = gf_ledger_new(h->resource);
    h->wq = gf_wq_new(&h->clk, NULL, process, h);
    h->n_members = h->policy->n_members;
    h->members =
        gf_calloc(h->n_members ? h->n_members : 1, sizeof(*h->members));
    for (size_t i = 0; i < h->n_members; i++) {
        gf__member_new(h, i, &h->members[i]);
        gf_ledger_member_set(h->ledger, h->members[i]->name, GF_FRESH_UNKNOWN,
                             0);
    }
    /* The Lease names the replica that renews it; only the leader does
     * (resumed when it gains the lead). */
    gf__heartbeat_start(h, o->id != NULL ? o->id : "gpufed-hub");
    gf__heartbeat_pause(h);
}

int gf_hub_start(const struct gf_hub_opts *o, struct gf_hub **out)
{
    *out = NULL;
    struct gf_hub *h = gf_calloc(1, sizeof(*h));
    h->loop = o->loop;
    h->ns = gf_strdup(o->ns != NULL ? o->ns : DEFAULT_NS);
    h->pass_period_ms = o->pass_period_ms ? o->pass_period_ms : DEFAULT_PASS_MS;
    h->copy_ttl_ms = o->copy_ttl_ms ? o->copy_ttl_ms : DEFAULT_COPY_TTL_MS;
    h->lc = (struct gf_log_ctx){.comp = "hub"};
    parse_crash(h, o->crash_after);
    gf_rand_seed_os(&h->rng);
    gf_htab_init(&h->lease_mem, GF_HTAB_BORROW_KEYS);
    gf_htab_init(&h->starting, GF_HTAB_OWN_KEYS);
    gf_htab_init(&h->drain_warned, GF_HTAB_OWN_KEYS);
    gf_htab_init(&h->reclaims, GF_HTAB_OWN_KEYS);
    h->policy_path = gf_strdup(o->policy_path);
    int rc = gf_clock_init_uv_rate(&h->clk, h->loop, o->clock_rate_ppm);
    if (rc == 0)
        rc = open_policy(h, o->policy_path);
    if (rc == 0)
        rc = gf_http_new(h->loop, &h->clk, &h->http);
    struct gf_kube_client_opts co = {.user_agent = "gpufed-hub", .name = "hub"};
    if (rc == 0)
        rc = gf_kube_client_new(h->http, &h->clk, o->hub_creds, &co, &h->hubc);
    if (rc != 0) {
        abandon_start(h, rc);
        return rc;
    }
    start_members(h, o);
    struct gf_store_handlers lh = lease_handlers, sh = secret_handlers;
    lh.data = sh.data = h;
    rc = start_hub_watch(h, "quotaleases.gpufed.io", lease_project,
                         lease_proj_free, &lh, &h->leases, &h->lease_refl);
    if (rc == 0)
        rc = start_hub_watch(h, "secrets", secret_project, secret_proj_free,
                             &sh, &h->secrets, &h->secret_refl);
    /* One ConfigMap by name: the hub caches no other ConfigMap of the
     * namespace. */
    gf__hub_drain_store_new(h);
    if (rc == 0)
        rc = start_refl(h, "configmaps", "metadata.name=" GF_DRAIN_CONFIGMAP,
                        h->drain_cm, &h->drain_cm_refl);
    if (rc == 0)
        rc = start_leader(h, o);
    if (rc == 0 && o->listen != NULL)
        rc = gf__hub_http_start(h, o->listen);
    gf__hub_kick_pass(h);
    GF_LOG(&h->lc, GF_LOG_INFO, "hub started", "namespace=%s members=%zu",
           h->ns, h->n_members);
    *out = h;
    return rc;
}

static void finish_stop(struct gf_hub *h)
{
    gf__heartbeat_free(h);
    gf__pass_abandon(h);
    gf_wq_free(h->wq);
    gf_store_free(h->leases);
    gf_store_free(h->secrets);
    gf_store_free(h->drain_cm);
    gf_ledger_free(h->ledger);
    lease_mem_clear(h);
    gf_htab_free(&h->lease_mem);
    gf_htab_free(&h->starting);
    gf_htab_free(&h->drain_warned);
    gf_htab_free_all(&h->reclaims, gf_free);
    gf_kube_client_free(h->hubc);
    gf_http_close(h->http, NULL, NULL);
    gf_policy_file_unref(h->pf, h->policy);
    gf_policy_file_close(h->pf, NULL, NULL);
    gf_clock_close(&h->clk);
    gf_free(h->resource);
    gf_free(h->policy_path);
    void (*cb)(void *) = h->stop_cb;
    void *d = h->stop_data;
    gf_free(h->members);
    gf_free(h->ns);
    gf_free(h);
    if (cb != NULL)
        cb(d);
}

static void on_closed(void *data)
{
    struct gf_hub *h = data;
    if (--h->closing == 0)
        finish_stop(h);
}

static void close_all(struct gf_hub *h)
{
    h->closing = 1; /* held until everything has been asked to close */
    for (size_t i = 0; i < h->n_members; i++) {
        h->closing++;
        gf__member_close(h->members[i], on_closed, h);
    }
    if (h->lease_refl != NULL) {
        h->closing++;
        gf_reflector_close(h->lease_refl, on_closed, h);
    }
    if (h->secret_refl != NULL) {
        h->closing++;
        gf_reflector_close(h->secret_refl, on_closed, h);
    }
    if (h->drain_cm_refl != NULL) {
        h->closing++;
        gf_reflector_close(h->drain_cm_refl, on_closed, h);
    }
    if (h->http_srv != NULL) {
        h->closing++;
        gf__hub_http_close(h, on_closed, h);
    }
    if (h->leader != NULL) {
        /* No release: a restart with the same id takes the Lease back at
         * once, another replica after one lease. */
        h->closing++;
        gf_leader_close(h->leader, on_closed, h);
        h->leader = NULL;
        h->leading = false;
    }
    on_closed(h);
}

static void on_drain(struct gf_timer *t)
{
    struct gf_hub *h = t->data;
    struct gf_wq_stats st;
    gf_wq_stats(h->wq, &st);
    /* Reconciles and writes in flight finish (STYLE: drain, 30 s at
     * most): their callbacks hold the hub. */
    if ((st.inflight > 0 || h->inflight_writes > 0) &&
        gf_clock_now_ms(&h->clk) < h->drain_deadline) {
        gf_timer_start(t, 20, on_drain);
        return;
    }
    close_all(h);
}

void gf_hub_stop(struct gf_hub *h, void (*cb)(void *data), void *data)
{
    h->stopping = true;
    h->stop_cb = cb;
    h->stop_data = data;
    gf_wq_shutdown(h->wq);
    gf__heartbeat_stop(h);
    GF_LOG(&h->lc, GF_LOG_INFO, "hub stopping", "");
    struct gf_timer *t = &h->drain;
    gf_timer_init(&h->clk, t);
    t->data = h;
    h->drain_deadline = gf_clock_now_ms(&h->clk) + 30000;
    gf_timer_start(t, 0, on_drain);
}

void gf_hub_stats(const struct gf_hub *h, struct gf_hub_stats *out)
{
    *out = (struct gf_hub_stats){
        .passes = h->n_passes,
        .starts = h->n_starts,
        .writes = h->n_writes,
        .write_errors = h->n_write_errors,
        .leases = gf_store_len(h->leases),
        .pending = gf_ledger_n_pending(h->ledger),
        .leading = h->leading,
    };
    for (size_t i = 0; i < h->n_members; i++)
        out->members_synced += gf__member_synced(h->members[i]);
}
