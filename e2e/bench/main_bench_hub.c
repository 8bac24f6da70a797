/*
 * bench_hub: `gpufed hub` end to end on kubesim, as an operator would see
 * it (issue: the controller's benchmark).
 *
 *   bench_hub [--members M] [--background B] [--probes P] [--early E]
 *             [--rate R] [--quick] [--gpufed PATH] [--kubesim PATH]
 *             [--crds DIR]
 *
 * kubesim serves M member clusters and a hub cluster in one child
 * process, with Kueue-lite. The first max(1, M/2) members are origins
 * (their ClusterQueue has no GPUs, so GPU Jobs there wait), the others
 * lenders (idle GPUs in the same cohort); one group of the policy holds
 * every member's ClusterQueue. Each member also holds B background
 * Workloads (the ~1.5 KB object Kueue makes for a 4-GPU Job, pending in
 * a namespace that may not overflow), which the hub tracks like any
 * other. Then:
 *
 *   1. E early probe Jobs are submitted to the origins and left to wait
 *      past overflowAfter; the hub starts (a child process) and the time
 *      from its start to its first `redirect decided` log line is the
 *      cold start. A whole-namespace LIST of every member's background
 *      Workloads by kubeclient is the reference: the least any cold start
 *      has to read.
 *   2. Once every early copy exists, the hub's VmRSS is read; the script
 *      runs two sizes and derives the RSS per tracked Workload.
 *   3. P probe Jobs are submitted at R per second, round robin over the
 *      origins. The bench watches the origins' Workloads (creationTimestamp
 *      of each) and the lenders' Jobs (each copy's arrival, on this
 *      process's wall clock, in ms). A Workload is eligible overflowAfter
 *      after it was created: the later of the instant its Job's create
 *      was sent and its creationTimestamp (whole seconds), which is no
 *      later than its real creation; the hub counts from the moment it
 *      saw the Workload. Latency is eligible -> copy seen in the lender,
 *      split at the hub's `redirect decided` line (ms timestamps).
 *
 * Figures only: nothing here asserts a time. Exits 1 when the world could
 * not be built or a probe never got its copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/htab.h"
#include "common/json.h"
#include "common/log.h"
#include "common/rand.h"
#include "e2e/bench/benchkit.h"
#include "kubeclient/global.h"
#include "kubeclient/reflector.h"
#include "kubeclient/store.h"

extern char **environ;

#define GPU "nvidia.com/gpu"
#define OVERFLOW_AFTER_MS 1000
#define SETUP_WINDOW 32
#define WAIT_COPIES_S 300.0
#define HUB_STOP_S 40

struct opts {
    unsigned members, background, probes, early, rate;
    const char *gpufed, *kubesim, *crds;
};

/* One probe Job. Its times are joined at the end from what the watches
 * and the hub's log said, in whatever order that came. */
struct probe {
    char name[32];
    unsigned origin; /* member index, 0-based */
    char uid[40];    /* the origin Job's uid */
    int64_t sent;    /* wall ms when its create was sent */
};

/* An origin Workload of a probe, by its owner Job's uid. */
struct wl_seen {
    int64_t created; /* creationTimestamp, wall ms (whole seconds) */
    char key[320];   /* "member/ns/name", as the hub logs it */
};

/* A watch's projection data: which member it is. */
struct watch_ctx {
    struct hb *x;
    unsigned m;
};

/* A create to run: cluster index (0-based; M is the hub) and body. */
struct item {
    unsigned cluster;
    const struct gf_kube_resource *res;
    const char *ns;
    char *body;
};

struct hb {
    struct opts o;
    struct gf_bench_sim sim;
    struct gf_bench k;
    struct gf_rand rng;
    unsigned n_origins;
    struct gf_kube_resource rf, cq, lq, job, secret, ns, wl;
    /* setup items for the current gf_bench_run */
    struct item *items;
    size_t n_items;
    /* probes: by index, by origin Job uid, by origin Workload key */
    struct probe *probes;
    size_t n_probes;
    struct gf_htab wls;     /* origin Job uid -> struct wl_seen */
    struct gf_htab copies;  /* origin Job uid -> int64_t first sight */
    struct gf_htab decided; /* "member/ns/name" -> int64_t log time */
    struct gf_htab created; /* the same, of the hub's "copy created" */
    /* watches */
    struct watch_ctx *wctx;
    struct gf_store **stores;
    struct gf_reflector **refls;
    size_t n_refls;
    /* the hub */
    pid_t hub_pid;
    char work[96];
    char log_path[160];
    FILE *log;
    int64_t hub_started;
    int64_t first_decision;
    struct gf_timer tail, pace;
    size_t paced;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, int64_t *v, size_t n)
{
    if (n == 0) {
        printf("%-40s no samples\n", what);
        return;
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    printf("%-40s p50 %6lld ms  p99 %6lld ms  max %6lld ms  (%zu samples)\n",
           what, (long long)v[n / 2], (long long)v[n * 99 / 100],
           (long long)v[n - 1], n);
}

static const char *member_name(unsigned i, char out[16])
{
    snprintf(out, 16, "c%u", i + 1);
    return out;
}

/* ---- creates --------------------------------------------------------- */

static int issue_item(struct gf_bench *k, size_t i)
{
    struct hb *x = k->data;
    const struct item *it = &x->items[i];
    return gf_kube_create(k->clients[it->cluster], it->res, it->ns, it->body,
                          strlen(it->body), gf_bench_done, k, NULL);
}

static void add_item(struct hb *x, unsigned cluster,
                     const struct gf_kube_resource *res, const char *ns,
                     struct gf_buf *body)
{
    x->items = gf_realloc(x->items, (x->n_items + 1) * sizeof(*x->items));
    x->items[x->n_items++] = (struct item){.cluster = cluster,
                                           .res = res,
                                           .ns = ns,
                                           .body = gf_strdup(body->data)};
    gf_buf_reset(body);
}

/* Runs the queued items, then forgets them. */
static int run_items(struct hb *x)
{
    double dt = gf_bench_run(&x->k, x->n_items, SETUP_WINDOW, issue_item);
    for (size_t i = 0; i < x->n_items; i++)
        gf_free(x->items[i].body);
    gf_free(x->items);
    x->items = NULL;
    x->n_items = 0;
    return dt < 0 ? GF_EAPI : 0;
}

static bool is_origin(const struct hb *x, unsigned m)
{
    return m < x->n_origins;
}

/* Namespaces, then queues (a LocalQueue needs its namespace). */
static int setup_members(struct hb *x)
{
    struct gf_buf b = GF_BUF_INIT(1 << 16);
    for (unsigned m = 0; m < x->o.members; m++) {
        gf_buf_printf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                          "\"metadata\":{\"name\":\"ml\",\"labels\":{"
                          "\"gpufed.io/accept-overflow\":\"true\"}}}");
        add_item(x, m, &x->ns, NULL, &b);
        gf_buf_printf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                          "\"metadata\":{\"name\":\"" GF_BENCH_NS "\"}}");
        add_item(x, m, &x->ns, NULL, &b);
        /* The hub's heartbeat Lease lives there (manifests/member). */
        gf_buf_printf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                          "\"metadata\":{\"name\":\"gpufed-system\"}}");
        add_item(x, m, &x->ns, NULL, &b);
        gf_buf_printf(&b, "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\","
                          "\"kind\":\"ResourceFlavor\","
                          "\"metadata\":{\"name\":\"a100\"}}");
        add_item(x, m, &x->rf, NULL, &b);
        /* Origins have no GPUs; lenders enough for every probe. */
        unsigned gpus = is_origin(x, m) ? 0 : 100000;
        gf_buf_printf(
            &b,
            "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":"
            "\"ClusterQueue\",\"metadata\":{\"name\":\"ml-gpu\"},\"spec\":{"
            "\"cohortName\":\"ml\",\"namespaceSelector\":{},"
            "\"resourceGroups\":[{\"coveredResources\":[\"cpu\",\"memory\","
            "\"" GPU "\"],\"flavors\":[{\"name\":\"a100\",\"resources\":["
            "{\"name\":\"cpu\",\"nominalQuota\":\"100000\"},"
            "{\"name\":\"memory\",\"nominalQuota\":\"1000Ti\"},"
            "{\"name\":\"" GPU "\",\"nominalQuota\":\"%u\"}]}]}]}}",
            gpus);
        add_item(x, m, &x->cq, NULL, &b);
    }
    int rc = run_items(x);
    for (unsigned m = 0; m < x->o.members && rc == 0; m++) {
        gf_buf_printf(&b, "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\","
                          "\"kind\":\"LocalQueue\",\"metadata\":{\"name\":"
                          "\"ml\",\"namespace\":\"ml\"},\"spec\":{"
                          "\"clusterQueue\":\"ml-gpu\"}}");
        add_item(x, m, &x->lq, "ml", &b);
    }
    if (rc == 0)
        rc = run_items(x);
    gf_buf_free(&b);
    return rc;
}

/* The hub: its namespace and one kubeconfig Secret per member. */
static int setup_hub(struct hb *x)
{
    unsigned hub = x->o.members;
    struct gf_buf b = GF_BUF_INIT(1 << 16);
    gf_buf_printf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                      "\"metadata\":{\"name\":\"gpufed-system\"}}");
    add_item(x, hub, &x->ns, NULL, &b);
    int rc = run_items(x);
    for (unsigned m = 0; m < x->o.members && rc == 0; m++) {
        char path[160], name[16];
        gf_bench_sim_kubeconfig(&x->sim, m + 1, path, sizeof(path));
        struct gf_buf kc = GF_BUF_INIT(1 << 20);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            rc = -errno;
            break;
        }
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            gf_buf_append(&kc, chunk, n);
        fclose(f);
        unsigned char *b64 = gf_malloc(4 * (kc.len / 3 + 1) + 1);
        EVP_EncodeBlock(b64, (const unsigned char *)kc.data, (int)kc.len);
        gf_buf_printf(&b,
                      "{\"apiVersion\":\"v1\",\"kind\":\"Secret\","
                      "\"metadata\":{\"name\":\"%s-kubeconfig\","
                      "\"namespace\":\"gpufed-system\"},"
                      "\"data\":{\"kubeconfig\":\"%s\"}}",
                      member_name(m, name), (const char *)b64);
        add_item(x, hub, &x->secret, "gpufed-system", &b);
        gf_free(b64);
        gf_buf_free(&kc);
    }
    if (rc == 0)
        rc = run_items(x);
    gf_buf_free(&b);
    return rc;
}

/* The member's port from kubesim's ready file ("name port" lines). */
static int member_port(const struct hb *x, unsigned m, unsigned *port)
{
    char path[128], line[256], want[16];
    snprintf(path, sizeof(path), "%s/ready", x->sim.dir);
    member_name(m, want);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    int rc = GF_ENOTFOUND;
    while (rc != 0 && fgets(line, sizeof(line), f) != NULL) {
        size_t wl = strlen(want);
        if (strncmp(line, want, wl) == 0 && line[wl] == ' ') {
            char *end = NULL;
            long p = strtol(line + wl + 1, &end, 10);
            if (end != line + wl + 1 && p > 0 && p < 65536) {
                *port = (unsigned)p;
                rc = 0;
            }
        }
    }
    fclose(f);
    return rc;
}

static int write_policy(struct hb *x, const char *path)
{
    struct gf_buf b = GF_BUF_INIT(1 << 22);
    gf_buf_printf(&b, "apiVersion: gpufed.io/v1alpha1\n"
                      "kind: FederationPolicy\n"
                      "metadata: {name: bench}\n"
                      "spec:\n"
                      "  resource: " GPU "\n"
                      "  members:\n");
    int rc = 0;
    for (unsigned m = 0; m < x->o.members && rc == 0; m++) {
        unsigned port = 0;
        char name[16];
        rc = member_port(x, m, &port);
        member_name(m, name);
        gf_buf_printf(&b,
                      "  - {name: %s, apiServer: \"https://127.0.0.1:%u\", "
                      "credentialsSecret: gpufed-system/%s-kubeconfig, "
                      "fencing: none}\n",
                      name, port, name);
    }
    gf_buf_printf(&b, "  flavorEquivalence:\n  - name: a100\n    flavors:\n");
    for (unsigned m = 0; m < x->o.members; m++) {
        char name[16];
        gf_buf_printf(&b, "    - {member: %s, flavor: a100}\n",
                      member_name(m, name));
    }
    gf_buf_printf(&b, "  groups:\n  - name: ml\n    mode: redirect\n"
                      "    clusterQueues:\n");
    for (unsigned m = 0; m < x->o.members; m++) {
        char name[16];
        gf_buf_printf(&b, "    - {member: %s, name: ml-gpu}\n",
                      member_name(m, name));
    }
    gf_buf_printf(&b,
                  "    overflow: {namespaces: [ml]}\n"
                  "  timing: {overflowAfter: %ums, admitTimeout: 600s, "
                  "leaseDuration: 300s}\n",
                  OVERFLOW_AFTER_MS);
    FILE *f = rc == 0 ? fopen(path, "w") : NULL;
    if (rc == 0 && f == NULL)
        rc = -errno;
    if (f != NULL) {
        if (fwrite(b.data, 1, b.len, f) != b.len)
            rc = -EIO;
        if (fclose(f) != 0 && rc == 0)
            rc = -errno;
    }
    gf_buf_free(&b);
    return rc;
}

/* ---- probes ---------------------------------------------------------- */

static void probe_created(void *data, const struct gf_kube_result *res)
{
    struct probe *p = data;
    const char *uid =
        res->err == 0 ? gf_json_str(res->json, "metadata.uid") : NULL;
    if (uid == NULL) {
        fprintf(stderr, "bench_hub: probe %s not created: %s\n", p->name,
                res->status->message);
        return;
    }
    snprintf(p->uid, sizeof(p->uid), "%s", uid);
}

static int submit_probe(struct hb *x)
{
    size_t i = x->n_probes;
    struct probe *p = &x->probes[i]; /* preallocated: see main */
    *p = (struct probe){.origin = (unsigned)(i % x->n_origins)};
    snprintf(p->name, sizeof(p->name), "probe-%zu", i);
    p->sent = wall_ms();
    x->n_probes++;
    struct gf_buf b = GF_BUF_INIT(1 << 14);
    gf_buf_printf(
        &b,
        "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{"
        "\"name\":\"%s\",\"namespace\":\"ml\",\"labels\":{"
        "\"kueue.x-k8s.io/queue-name\":\"ml\"},\"annotations\":{"
        "\"kubesim.gpufed.io/duration\":\"3600s\"}},\"spec\":{"
        "\"parallelism\":1,\"completions\":1,\"backoffLimit\":0,"
        "\"suspend\":true,\"template\":{\"spec\":{\"restartPolicy\":"
        "\"Never\",\"containers\":[{\"name\":\"main\",\"image\":\"trainer\","
        "\"resources\":{\"requests\":{\"cpu\":\"1\",\"" GPU "\":\"1\"},"
        "\"limits\":{\"" GPU "\":\"1\"}}}]}}}}",
        p->name);
    int rc = gf_kube_create(x->k.clients[p->origin], &x->job, "ml", b.data,
                            b.len, probe_created, p, NULL);
    gf_buf_free(&b);
    return rc;
}

static int64_t *new_time(int64_t t)
{
    int64_t *v = gf_malloc(sizeof(*v));
    *v = t;
    return v;
}

/* Origin Workloads (namespace ml holds only probes): creation time and
 * name, by owner Job uid. */
static int wl_project(void *data, const cJSON *obj, void **out)
{
    const struct watch_ctx *c = data;
    struct hb *x = c->x;
    (void)out;
    const cJSON *refs = GF_JSON_AT(obj, "metadata", "ownerReferences");
    const cJSON *ref = cJSON_IsArray(refs) ? cJSON_GetArrayItem(refs, 0) : NULL;
    const char *owner = ref != NULL ? gf_json_str(ref, "uid") : NULL;
    const char *ts = gf_json_str(obj, "metadata.creationTimestamp");
    const char *ns = gf_json_str(obj, "metadata.namespace");
    const char *name = gf_json_str(obj, "metadata.name");
    int64_t created;
    if (owner == NULL || ts == NULL || ns == NULL || name == NULL ||
        gf_htab_get_str(&x->wls, owner) != NULL ||
        gf_time_parse_rfc3339(ts, &created) != 0)
        return 1;
    struct wl_seen *w = gf_calloc(1, sizeof(*w));
    w->created = created;
    char mname[16];
    snprintf(w->key, sizeof(w->key), "%s/%s/%s", member_name(c->m, mname), ns,
             name);
    gf_htab_put_str(&x->wls, owner, w);
    return 1; /* nothing to keep in the store */
}

/* Lender Jobs: a copy's first sight, by its origin-uid label. */
static int copy_project(void *data, const cJSON *obj, void **out)
{
    struct hb *x = ((const struct watch_ctx *)data)->x;
    (void)out;
    const cJSON *uid =
        GF_JSON_AT(obj, "metadata", "labels", "gpufed.io/origin-uid");
    if (cJSON_IsString(uid) &&
        gf_htab_get_str(&x->copies, uid->valuestring) == NULL)
        gf_htab_put_str(&x->copies, uid->valuestring, new_time(wall_ms()));
    return 1;
}

static void free_nothing(void *v)
{
    (void)v;
}

static int start_watch(struct hb *x, unsigned m, bool origin)
{
    struct gf_store_opts so = {.project = origin ? wl_project : copy_project,
                               .free_proj = free_nothing,
                               .project_data = &x->wctx[m]};
    x->wctx[m] = (struct watch_ctx){.x = x, .m = m};
    struct gf_store *s = gf_store_new(&so);
    struct gf_reflector_opts ro = {
        .client = x->k.clients[m],
        .store = s,
        .rng = &x->rng,
        .res = origin ? x->wl : x->job,
        .ns = "ml",
        .label_selector = origin ? NULL : "gpufed.io/origin-uid",
    };
    struct gf_reflector *r = NULL;
    int rc = gf_reflector_new(&ro, &r);
    if (rc == 0)
        rc = gf_reflector_start(r);
    x->stores[x->n_refls] = s;
    x->refls[x->n_refls++] = r;
    return rc;
}

/* ---- the hub process and its log ------------------------------------ */

static int hub_spawn(struct hb *x, const char *policy)
{
    char kc[160];
    gf_bench_sim_kubeconfig(&x->sim, x->o.members + 1, kc, sizeof(kc));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, x->log_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    const char *lvl = getenv("GF_BENCH_HUB_LOG_LEVEL");
    const char *argv[] = {
        x->o.gpufed, "hub",  "--kubeconfig", kc,
        "--policy",  policy, "--log-level",  lvl != NULL ? lvl : "info",
        NULL};
    x->hub_started = wall_ms();
    int rc = posix_spawn(&x->hub_pid, x->o.gpufed, &fa, NULL,
                         (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench_hub: cannot start %s: %s\n", x->o.gpufed,
                strerror(rc));
        x->hub_pid = 0;
        return -rc;
    }
    return 0;
}

static int hub_stop(struct hb *x)
{
    if (x->hub_pid <= 0)
        return 0;
    kill(x->hub_pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < HUB_STOP_S * 10; i++) {
        if (waitpid(x->hub_pid, &status, WNOHANG) == x->hub_pid) {
            x->hub_pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        struct timespec ts = {0, 100L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(x->hub_pid, SIGKILL);
    waitpid(x->hub_pid, &status, 0);
    x->hub_pid = 0;
    return 128 + SIGKILL;
}

/* A logfmt value: `key=` then a quoted or bare value, into out. */
static bool logfmt_val(const char *line, const char *key, char *out, size_t cap)
{
    const char *p = strstr(line, key);
    if (p == NULL)
        return false;
    p += strlen(key);
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (p[n] != '\0' && p[n] != '"')
            n++;
    } else {
        while (p[n] != '\0' && p[n] != ' ' && p[n] != '\n')
            n++;
    }
    if (n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void log_line(struct hb *x, const char *line)
{
    bool decided = strstr(line, "msg=\"redirect decided\"") != NULL;
    if (!decided && strstr(line, "msg=\"copy created\"") == NULL)
        return;
    char ts[64], origin[400];
    int64_t t;
    if (!logfmt_val(line, "ts=", ts, sizeof(ts)) ||
        gf_time_parse_rfc3339(ts, &t) != 0 ||
        !logfmt_val(line, " origin=", origin, sizeof(origin)))
        return;
    struct gf_htab *at = decided ? &x->decided : &x->created;
    if (decided && x->first_decision == 0)
        x->first_decision = t;
    if (gf_htab_get_str(at, origin) == NULL)
        gf_htab_put_str(at, origin, new_time(t));
}

/* Reads the complete lines the hub has written since the last call. */
static void tail_log(struct hb *x)
{
    if (x->log == NULL)
        x->log = fopen(x->log_path, "r");
    if (x->log == NULL)
        return;
    char line[4096];
    for (;;) {
        long at = ftell(x->log);
        if (fgets(line, sizeof(line), x->log) == NULL) {
            clearerr(x->log);
            return;
        }
        if (strchr(line, '\n') == NULL) {
            /* Not finished yet: read it again next time. */
            fseek(x->log, at, SEEK_SET);
            return;
        }
        log_line(x, line);
    }
}

static void on_tail(struct gf_timer *t)
{
    struct hb *x = t->data;
    tail_log(x);
    gf_timer_start(t, 20, on_tail);
}

/* Runs the loop until pred holds or timeout_s passes (wall time: this
 * talks to real processes). */
static bool run_until(struct hb *x, bool (*pred)(const struct hb *),
                      double timeout_s)
{
    double t0 = gf_bench_now();
    while (!pred(x)) {
        if (gf_bench_now() - t0 > timeout_s)
            return false;
        if (x->hub_pid > 0 &&
            waitpid(x->hub_pid, NULL, WNOHANG) == x->hub_pid) {
            fprintf(stderr, "bench_hub: the hub exited; see %s\n", x->log_path);
            x->hub_pid = 0;
            return false;
        }
        uv_run(&x->k.loop, UV_RUN_ONCE);
    }
    return true;
}

static bool all_copies(const struct hb *x)
{
    return gf_htab_len(&x->copies) >= x->n_probes;
}

static bool uids_known(const struct hb *x)
{
    for (size_t i = 0; i < x->n_probes; i++)
        if (x->probes[i].uid[0] == '\0')
            return false;
    return true;
}

static bool first_decided(const struct hb *x)
{
    return x->first_decision != 0;
}

static bool all_paced(const struct hb *x)
{
    return x->paced == x->o.probes;
}

static void on_pace(struct gf_timer *t)
{
    struct hb *x = t->data;
    if (submit_probe(x) != 0)
        fprintf(stderr, "bench_hub: probe not submitted\n");
    if (++x->paced < x->o.probes)
        gf_timer_start(t, 1000 / x->o.rate, on_pace);
}

/* For run_until: never true, so that it runs the loop for its time. */
static bool never(const struct hb *x)
{
    (void)x;
    return false;
}

/* ---- the phases ------------------------------------------------------ */

static int phase_world(struct hb *x)
{
    double t0 = gf_bench_now();
    int rc = setup_members(x);
    if (rc == 0)
        rc = setup_hub(x);
    if (rc != 0)
        return rc;
    printf("%-40s %8.2f s\n", "world built (queues, Secrets)",
           gf_bench_now() - t0);
    return 0;
}

static int issue_background(struct gf_bench *k, size_t i)
{
    struct hb *x = k->data;
    unsigned m = (unsigned)(i % x->o.members);
    struct gf_buf body = GF_BUF_INIT(16384);
    gf_bench_workload_json(&body, m + 1, i / x->o.members);
    /* Inactive: Kueue-lite rescans every pending Workload of a cluster
     * at each change, which would make the creates quadratic; the hub
     * tracks these all the same (store, ledger). */
    static const char spec[] = "\"spec\":{";
    char *at = strstr(body.data, spec);
    struct gf_buf b2 = GF_BUF_INIT(16384);
    if (at != NULL) {
        size_t head = (size_t)(at - body.data) + sizeof(spec) - 1;
        gf_buf_append(&b2, body.data, head);
        gf_buf_printf(&b2, "\"active\":false,%s", body.data + head);
        gf_buf_reset(&body);
        gf_buf_append(&body, b2.data, b2.len);
    }
    gf_buf_free(&b2);
    int rc = gf_kube_create(k->clients[m], &k->wl, GF_BENCH_NS, body.data,
                            body.len, gf_bench_done, k, NULL);
    gf_buf_free(&body);
    return rc;
}

static int issue_list(struct gf_bench *k, size_t i)
{
    struct gf_kube_list_opts lo = {.ns = GF_BENCH_NS};
    return gf_kube_list(k->clients[i], &k->wl, &lo, gf_bench_done, k, NULL);
}

static int phase_background(struct hb *x)
{
    size_t n = (size_t)x->o.members * x->o.background;
    if (n == 0)
        return 0;
    double dt = gf_bench_run(&x->k, n, 64, issue_background);
    if (dt < 0)
        return GF_EAPI;
    gf_bench_print_rate("background Workloads created", (double)n, dt, "req");
    /* The reference for the cold start: reading them all once. */
    dt = gf_bench_run(&x->k, x->o.members, 4, issue_list);
    if (dt < 0)
        return GF_EAPI;
    printf("%-40s %8.2f s  (%llu Workloads, %.1f MB; reference)\n",
           "kubeclient LIST of every member's", dt,
           (unsigned long long)x->k.objects, (double)x->k.bytes / 1e6);
    return 0;
}

static int phase_cold_start(struct hb *x, const char *policy)
{
    for (unsigned i = 0; i < x->o.early; i++)
        if (submit_probe(x) != 0)
            return GF_EAPI;
    if (!run_until(x, uids_known, 60))
        return GF_ETIMEDOUT;
    /* Every early probe waits past overflowAfter before the hub starts:
     * its first pass has work at once. */
    struct timespec ts = {(OVERFLOW_AFTER_MS + 1500) / 1000,
                          ((OVERFLOW_AFTER_MS + 1500) % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    int rc = hub_spawn(x, policy);
    if (rc != 0)
        return rc;
    gf_timer_start(&x->tail, 20, on_tail);
    size_t tracked = (size_t)x->o.members * x->o.background + x->n_probes;
    /* Lists take a while at 100k. */
    if (run_until(x, first_decided, 60))
        printf("%-40s %8.3f s  (%zu Workloads in %u members)\n",
               "cold start to first decision",
               (double)(x->first_decision - x->hub_started) / 1000.0, tracked,
               x->o.members);
    else
        printf("%-40s %8s    (%zu Workloads in %u members)\n",
               "cold start to first decision", "n/a", tracked, x->o.members);
    /* Every early probe is eligible now, whatever order the hub's
     * reflectors listed their kinds in (a Workload listed before its
     * LocalQueue is fed again when the queue arrives): each gets a copy,
     * untouched. */
    if (!run_until(x, all_copies, WAIT_COPIES_S)) {
        fprintf(stderr, "bench_hub: %zu of %zu early copies seen\n",
                gf_htab_len(&x->copies), x->n_probes);
        return GF_ETIMEDOUT;
    }
    /* Let the hub finish what the copies set off (confirmations, phase
     * writes) before its memory is read. */
    run_until(x, never, 2);
    long rss = gf_bench_rss_kb(x->hub_pid);
    printf("%-40s %8ld KB  (%zu Workloads tracked)\n", "hub RSS", rss, tracked);
    return 0;
}

static int phase_latency(struct hb *x)
{
    if (x->o.probes == 0)
        return 0;
    size_t first = x->n_probes;
    x->paced = 0;
    gf_timer_start(&x->pace, 0, on_pace);
    double t0 = gf_bench_now();
    if (!run_until(x, all_paced, WAIT_COPIES_S) ||
        !run_until(x, uids_known, 60))
        return GF_ETIMEDOUT;
    bool ok = run_until(x, all_copies, WAIT_COPIES_S);
    run_until(x, never, 0.5);
    tail_log(x);
    double dt = gf_bench_now() - t0;
    size_t n = x->n_probes - first;
    int64_t *lat = gf_calloc(n + 1, sizeof(*lat));
    int64_t *dec = gf_calloc(n + 1, sizeof(*dec));
    int64_t *cp = gf_calloc(n + 1, sizeof(*cp));
    int64_t *hw = gf_calloc(n + 1, sizeof(*hw));
    size_t nl = 0, nd = 0, nc = 0, nh = 0;
    for (size_t i = first; i < x->n_probes; i++) {
        const struct probe *p = &x->probes[i];
        const struct wl_seen *w = gf_htab_get_str(&x->wls, p->uid);
        const int64_t *copy = gf_htab_get_str(&x->copies, p->uid);
        if (w == NULL || copy == NULL)
            continue;
        /* Its Workload was created after the Job's create was sent and
         * within the second its creationTimestamp names: the later of
         * the two is the earliest it can have started waiting, so the
         * latency counts any delay in Kueue making the Workload too. */
        int64_t eligible =
            (p->sent > w->created ? p->sent : w->created) + OVERFLOW_AFTER_MS;
        lat[nl++] = *copy - eligible;
        const int64_t *dc = gf_htab_get_str(&x->decided, w->key);
        if (dc != NULL) {
            dec[nd++] = *dc - eligible;
            cp[nc++] = *copy - *dc;
            const int64_t *cr = gf_htab_get_str(&x->created, w->key);
            if (cr != NULL)
                hw[nh++] = *cr - *dc;
        }
    }
    printf("%-40s %8zu Jobs at %u/s, %zu copies in %.1f s\n",
           "probes submitted", n, x->o.rate, nl, dt);
    report("decision latency (eligible -> copy)", lat, nl);
    report("  eligible -> redirect decided", dec, nd);
    report("  redirect decided -> copy seen", cp, nc);
    /* The hub's own writes (record, hold, copy), without the bench's
     * watch of the lenders. */
    report("  redirect decided -> copy created (hub)", hw, nh);
    gf_free(hw);
    gf_free(lat);
    gf_free(dec);
    gf_free(cp);
    printf("%-40s %8ld KB\n", "hub RSS after the probes",
           gf_bench_rss_kb(x->hub_pid));
    if (!ok) {
        fprintf(stderr, "bench_hub: %zu of %zu copies seen\n",
                gf_htab_len(&x->copies), x->n_probes);
        return GF_ETIMEDOUT;
    }
    return 0;
}

/* ---- main ------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_hub [--members M] [--background B] [--probes P]\n"
            "                 [--early E] [--rate R] [--quick]\n"
            "                 [--gpufed PATH] [--kubesim PATH] [--crds DIR]\n"
            "  M members (half origins, half lenders; default 3), B\n"
            "  background Workloads per member (default 0), P probe Jobs\n"
            "  (default 300) at R per second (default 20), E early probes\n"
            "  waiting before the hub starts (default: one per origin).\n"
            "  --crds must hold the Kueue CRDs and the QuotaLease CRD.\n");
}

static int parse_uint(const char *s, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > 1000000)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static unsigned *num_flag(struct opts *o, const char *a)
{
    static const struct {
        const char *flag;
        size_t off;
    } flags[] = {
        {"--members", offsetof(struct opts, members)},
        {"--background", offsetof(struct opts, background)},
        {"--probes", offsetof(struct opts, probes)},
        {"--early", offsetof(struct opts, early)},
        {"--rate", offsetof(struct opts, rate)},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(a, flags[i].flag) == 0)
            return (unsigned *)(void *)((char *)o + flags[i].off);
    return NULL;
}

static const char **str_flag(struct opts *o, const char *a)
{
    if (strcmp(a, "--gpufed") == 0)
        return &o->gpufed;
    if (strcmp(a, "--kubesim") == 0)
        return &o->kubesim;
    if (strcmp(a, "--crds") == 0)
        return &o->crds;
    return NULL;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned *num = num_flag(o, a);
        const char **str = str_flag(o, a);
        if (strcmp(a, "--quick") == 0) {
            o->members = 3;
            o->background = 10;
            o->probes = 20;
            o->rate = 20;
        } else if (num != NULL && v != NULL && parse_uint(v, num) == 0) {
            i++;
        } else if (str != NULL && v != NULL) {
            *str = argv[++i];
        } else {
            return -EINVAL;
        }
    }
    if (o->members < 2 || o->rate == 0 || o->rate > 1000)
        return -EINVAL;
    return 0;
}

static void refl_closed(void *data)
{
    (*(size_t *)data)--;
}

/* Closes the watches and the clients, stops kubesim, frees. */
static void teardown(struct hb *x)
{
    gf_timer_stop(&x->tail);
    gf_timer_stop(&x->pace);
    if (x->log != NULL)
        fclose(x->log);
    size_t closing = 0;
    for (size_t i = 0; i < x->n_refls; i++) {
        if (x->refls[i] != NULL) {
            closing++;
            gf_reflector_close(x->refls[i], refl_closed, &closing);
        }
    }
    while (closing > 0)
        uv_run(&x->k.loop, UV_RUN_ONCE);
    for (size_t i = 0; i < x->n_refls; i++)
        gf_store_free(x->stores[i]);
    gf_free(x->stores);
    gf_free(x->refls);
    gf_bench_close(&x->k);
    gf_bench_sim_stop(&x->sim);
    gf_htab_free_all(&x->wls, gf_free);
    gf_htab_free_all(&x->copies, gf_free);
    gf_htab_free_all(&x->decided, gf_free);
    gf_htab_free_all(&x->created, gf_free);
    gf_free(x->wctx);
    gf_free(x->probes);
}

int main(int argc, char **argv)
{
    static struct hb x = {
        .o = {.members = 3, .probes = 300, .rate = 20, .early = UINT32_MAX}};
    static char gpufed[512], kubesim[512];
    const char *bin = getenv("GF_BIN");
    snprintf(gpufed, sizeof(gpufed), "%s/gpufed",
             bin != NULL ? bin : "build/debug/bin");
    snprintf(kubesim, sizeof(kubesim), "%s/kubesim",
             bin != NULL ? bin : "build/debug/bin");
    x.o.gpufed = gpufed;
    x.o.kubesim = kubesim;
    if (parse_args(argc, argv, &x.o) != 0 || x.o.crds == NULL) {
        usage();
        return 2;
    }
    x.n_origins = x.o.members / 2;
    if (x.o.early == UINT32_MAX)
        x.o.early = x.n_origins;
    if (gf_kube_global_init() != 0 || curl_global_init(CURL_GLOBAL_ALL) != 0)
        return 1;
    gf_log_set_level(GF_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures as they come */
    printf("bench_hub: %u members (%u origins, %u lenders), %u background "
           "Workloads each, %u early + %u probe Jobs at %u/s\n",
           x.o.members, x.n_origins, x.o.members - x.n_origins, x.o.background,
           x.o.early, x.o.probes, x.o.rate);
    fflush(stdout);
    /* Probes are preallocated: create callbacks hold their address. */
    x.probes = gf_calloc(x.o.early + x.o.probes + 1, sizeof(*x.probes));
    gf_htab_init(&x.wls, GF_HTAB_OWN_KEYS);
    gf_htab_init(&x.copies, GF_HTAB_OWN_KEYS);
    gf_htab_init(&x.decided, GF_HTAB_OWN_KEYS);
    gf_htab_init(&x.created, GF_HTAB_OWN_KEYS);
    gf_rand_seed_os(&x.rng);
    gf_kube_resource_set(&x.rf, "kueue.x-k8s.io", "v1beta2", "resourceflavors",
                         "ResourceFlavor", false);
    gf_kube_resource_set(&x.cq, "kueue.x-k8s.io", "v1beta2", "clusterqueues",
                         "ClusterQueue", false);
    gf_kube_resource_set(&x.lq, "kueue.x-k8s.io", "v1beta2", "localqueues",
                         "LocalQueue", true);
    gf_kube_resource_set(&x.wl, "kueue.x-k8s.io", "v1beta2", "workloads",
                         "Workload", true);
    gf_kube_resource_set(&x.job, "batch", "v1", "jobs", "Job", true);
    gf_kube_resource_set(&x.secret, "", "v1", "secrets", "Secret", true);
    gf_kube_resource_set(&x.ns, "", "v1", "namespaces", "Namespace", false);
    x.k.data = &x;
    char policy[200];
    int rc = gf_bench_sim_start_kueue(&x.sim, x.o.kubesim, x.o.crds,
                                      x.o.members + 1, NULL);
    if (rc == 0) {
        snprintf(x.log_path, sizeof(x.log_path), "%s/hub.log", x.sim.dir);
        snprintf(policy, sizeof(policy), "%s/policy.yaml", x.sim.dir);
        rc = gf_bench_open(&x.k, &x.sim, x.o.members + 1);
    }
    x.wctx = gf_calloc(x.o.members + 1, sizeof(*x.wctx));
    x.stores = gf_calloc(x.o.members + 1, sizeof(*x.stores));
    x.refls = gf_calloc(x.o.members + 1, sizeof(*x.refls));
    gf_timer_init(&x.k.clk, &x.tail);
    gf_timer_init(&x.k.clk, &x.pace);
    x.tail.data = x.pace.data = &x;
    if (rc == 0)
        rc = phase_world(&x);
    if (rc == 0)
        rc = write_policy(&x, policy);
    for (unsigned m = 0; m < x.o.members && rc == 0; m++)
        rc = start_watch(&x, m, is_origin(&x, m));
    if (rc == 0)
        rc = phase_background(&x);
    if (rc == 0)
        rc = phase_cold_start(&x, policy);
    if (rc == 0)
        rc = phase_latency(&x);
    int hub_rc = hub_stop(&x);
    if (rc == 0 && hub_rc != 0) {
        fprintf(stderr, "bench_hub: gpufed hub exited with %d\n", hub_rc);
        rc = GF_EAPI;
    }
    if (rc != 0 && x.log_path[0] != '\0') {
        /* What the hub said last, before its directory goes. */
        char *const tail[] = {"tail", "-n", "20", x.log_path, NULL};
        pid_t pid;
        if (posix_spawnp(&pid, "tail", NULL, NULL, tail, environ) == 0)
            waitpid(pid, NULL, 0);
    }
    teardown(&x);
    curl_global_cleanup();
    gf_kube_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "bench_hub: failed: %s\n", gf_strerror(rc));
        return 1;
    }
    return 0;
}
