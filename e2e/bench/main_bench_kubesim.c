/*
 * bench_kubesim: how much load one kubesim process carries.
 *
 *   bench_kubesim [--clusters N] [--workloads M] [--watchers W]
 *                 [--updates U] [--lists L] [--quick] [--kubesim PATH]
 *                 [--crds DIR]
 *
 * Starts kubesim as a child process with N clusters and the Kueue CRDs,
 * then, as a client in this process (kubeclient over TLS, so the server
 * and the client each have their own core):
 *   1. creates M Workloads (~1.5 KB of JSON, the shape Kueue makes) in
 *      every cluster and reports creates/s and the server's resident
 *      memory per stored Workload (VmRSS before and after);
 *   2. lists one namespace of M Workloads, whole and in pages of 100, and
 *      reports requests/s and objects/s;
 *   3. opens W watches on one cluster, patches U Workloads there and
 *      reports watch events delivered per second across all watchers
 *      (the fan-out).
 * Figures only: nothing here asserts a time. The only failure is a
 * request that fails or an event that never arrives.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "kubeclient/http.h"
#include "kubeclient/kubeconfig.h"
#include "kubeclient/request.h"
#include "kubeclient/watch.h"

extern char **environ;

#define BENCH_NS "bench"
#define CREATE_WINDOW 64
#define LIST_WINDOW 4
#define PATCH_WINDOW 32
#define READY_WAIT_S 120

struct bench_opts {
    unsigned clusters, workloads, watchers, updates, lists;
    const char *kubesim, *crds;
};

struct bench;
typedef int (*bench_issue_fn)(struct bench *b, size_t i);

struct bench {
    struct bench_opts o;
    uv_loop_t loop;
    struct gf_clock clk;
    struct gf_http *http;
    struct gf_kube_client **clients;
    struct gf_kube_resource wl, ns;
    char dir[64];
    pid_t child;
    /* the op pump */
    bench_issue_fn issue;
    size_t total, issued, done, inflight, window;
    unsigned errors;
    uint64_t objects, bytes;
    char first_error[600];
    /* paginated lists: each chain's continue token */
    char *cont[LIST_WINDOW];
    bool chain_busy[LIST_WINDOW];
    /* the fan-out */
    char list_rv[64];
    size_t watches_done;
    unsigned round;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the child ----------------------------------------------------------- */

static long child_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static int start_kubesim(struct bench *b)
{
    char nclusters[16];
    snprintf(nclusters, sizeof(nclusters), "%u", b->o.clusters);
    /* --no-kueue: this measures the API server; Kueue-lite would add its
     * own status writes to every Workload created. */
    char *argv[] = {(char *)b->o.kubesim,
                    "--no-kueue",
                    "--clusters",
                    nclusters,
                    "--dir",
                    b->dir,
                    "--crds",
                    (char *)b->o.crds,
                    "--log-level",
                    "warn",
                    NULL};
    int rc = posix_spawn(&b->child, b->o.kubesim, NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "bench: cannot start %s: %s\n", b->o.kubesim,
                strerror(rc));
        return -rc;
    }
    /* Wall-clock wait: this is a benchmark talking to a real process. */
    char ready[128];
    snprintf(ready, sizeof(ready), "%s/ready", b->dir);
    for (int i = 0; i < READY_WAIT_S * 10; i++) {
        struct stat st;
        if (stat(ready, &st) == 0)
            return 0;
        int status;
        if (waitpid(b->child, &status, WNOHANG) == b->child) {
            fprintf(stderr, "bench: kubesim exited before it was ready\n");
            b->child = 0;
            return -ECHILD;
        }
        struct timespec ts = {0, 100L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "bench: kubesim not ready after %d s\n", READY_WAIT_S);
    return GF_ETIMEDOUT;
}

static void stop_kubesim(struct bench *b)
{
    if (b->child <= 0)
        return;
    kill(b->child, SIGTERM);
    int status;
    waitpid(b->child, &status, 0);
    b->child = 0;
}

/* ---- clients ----------------------------------------------------------- */

static int open_clients(struct bench *b)
{
    int rc = gf_http_new(&b->loop, &b->clk, &b->http);
    if (rc != 0)
        return rc;
    b->clients = gf_calloc(b->o.clusters, sizeof(*b->clients));
    for (unsigned i = 0; i < b->o.clusters; i++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/c%u/kubeconfig-admin.yaml", b->dir,
                 i + 1);
        struct gf_kube_creds *creds = NULL;
        struct gf_kubeconfig_error err;
        rc = gf_kubeconfig_load(path, NULL, &creds, &err);
        if (rc != 0) {
            fprintf(stderr, "bench: %s:%u:%u: %s\n", err.file, err.line,
                    err.column, err.msg);
            return rc;
        }
        struct gf_kube_client_opts co = {.timeout_ms = 120000};
        rc = gf_kube_client_new(b->http, &b->clk, creds, &co, &b->clients[i]);
        gf_kube_creds_free(creds);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void on_http_closed(void *data)
{
    *(bool *)data = true;
}

static void close_clients(struct bench *b)
{
    if (b->clients != NULL) {
        for (unsigned i = 0; i < b->o.clusters; i++)
            gf_kube_client_free(b->clients[i]);
        gf_free(b->clients);
        b->clients = NULL;
    }
    if (b->http != NULL) {
        bool closed = false;
        gf_http_close(b->http, on_http_closed, &closed);
        while (!closed)
            uv_run(&b->loop, UV_RUN_ONCE);
        b->http = NULL;
    }
}

/* ---- the op pump: `total` calls, at most `window` in flight ------------ */

static void pump(struct bench *b);

static void op_done(void *data, const struct gf_kube_result *res)
{
    struct bench *b = data;
    b->inflight--;
    b->done++;
    b->bytes += res->body_len;
    if (res->err != 0) {
        if (b->errors++ == 0)
            snprintf(b->first_error, sizeof(b->first_error), "HTTP %ld: %s",
                     res->http_code, res->status->message);
    } else if (res->json != NULL) {
        const cJSON *items =
            cJSON_GetObjectItemCaseSensitive(res->json, "items");
        b->objects +=
            cJSON_IsArray(items) ? (uint64_t)cJSON_GetArraySize(items) : 1;
    }
    pump(b);
}

static void pump(struct bench *b)
{
    while (b->inflight < b->window && b->issued < b->total) {
        size_t i = b->issued++;
        b->inflight++;
        if (b->issue(b, i) != 0) {
            b->inflight--;
            b->done++;
            b->errors++;
        }
    }
}

/* Runs `total` ops and returns their wall time in seconds (< 0: errors). */
static double run_ops(struct bench *b, size_t total, size_t window,
                      bench_issue_fn issue)
{
    b->issue = issue;
    b->total = total;
    b->issued = b->done = b->inflight = 0;
    b->window = window;
    b->errors = 0;
    b->objects = b->bytes = 0;
    double t0 = now_s();
    pump(b);
    while (b->done < b->total)
        uv_run(&b->loop, UV_RUN_ONCE);
    double dt = now_s() - t0;
    if (b->errors > 0) {
        fprintf(stderr, "bench: %u of %zu requests failed; first: %s\n",
                b->errors, total, b->first_error);
        return -1;
    }
    return dt;
}

/* ---- the workload ------------------------------------------------------ */

/* A Workload as Kueue creates it for a batch/v1 Job asking for GPUs: with
 * its labels, owner reference and a realistic pod template, ~2 KB. */
static void workload_json(struct gf_buf *out, unsigned cluster, size_t i)
{
    gf_buf_reset(out);
    gf_buf_printf(
        out,
        "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
        "\"metadata\":{\"name\":\"job-train-%zu-5f2c1\",\"namespace\":\"%s\","
        "\"labels\":{\"kueue.x-k8s.io/job-uid\":\"8e3a41d0-%04u-4c1b-9f6e-"
        "%012zu\",\"team\":\"ml-%zu\",\"app.kubernetes.io/part-of\":"
        "\"training\"},\"annotations\":{\"gpufed.io/origin\":\"c%u\"},"
        "\"ownerReferences\":[{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\","
        "\"name\":\"train-%zu\",\"uid\":\"8e3a41d0-%04u-4c1b-9f6e-%012zu\","
        "\"controller\":true,\"blockOwnerDeletion\":true}]},"
        "\"spec\":{\"queueName\":\"gpu-queue\",\"priority\":%zu,"
        "\"podSets\":[{\"name\":\"main\",\"count\":2,\"template\":{"
        "\"metadata\":{\"labels\":{\"job-name\":\"train-%zu\"}},"
        "\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{"
        "\"name\":\"trainer\",\"image\":\"registry.example.com/ml/trainer:"
        "2.4.1\",\"command\":[\"python\",\"-m\",\"trainer.main\"],"
        "\"args\":[\"--epochs=40\",\"--batch-size=256\",\"--data=/data/"
        "imagenet\",\"--checkpoint-dir=/ckpt/train-%zu\"],"
        "\"env\":[{\"name\":\"NCCL_DEBUG\",\"value\":\"WARN\"},{\"name\":"
        "\"OMP_NUM_THREADS\",\"value\":\"8\"},{\"name\":\"MASTER_PORT\","
        "\"value\":\"29500\"}],\"resources\":{\"requests\":{\"cpu\":\"8\","
        "\"memory\":\"64Gi\",\"nvidia.com/gpu\":\"4\"},\"limits\":{"
        "\"nvidia.com/gpu\":\"4\"}},\"volumeMounts\":[{\"name\":\"data\","
        "\"mountPath\":\"/data\",\"readOnly\":true},{\"name\":\"ckpt\","
        "\"mountPath\":\"/ckpt\"}]}],\"volumes\":[{\"name\":\"data\","
        "\"persistentVolumeClaim\":{\"claimName\":\"imagenet\"}},{\"name\":"
        "\"ckpt\",\"persistentVolumeClaim\":{\"claimName\":\"checkpoints\"}}],"
        "\"tolerations\":[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\","
        "\"effect\":\"NoSchedule\"}],\"nodeSelector\":{\"gpu.example.com/"
        "class\":\"a100\"}}}}]}}",
        i, BENCH_NS, cluster, i, i % 7, cluster, i, cluster, i, i % 100, i, i);
}

static int issue_namespace(struct bench *b, size_t i)
{
    const char *body = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                       "\"metadata\":{\"name\":\"" BENCH_NS "\"}}";
    return gf_kube_create(b->clients[i], &b->ns, NULL, body, strlen(body),
                          op_done, b, NULL);
}

static int issue_create(struct bench *b, size_t i)
{
    unsigned cluster = (unsigned)(i % b->o.clusters);
    struct gf_buf body = GF_BUF_INIT(16384);
    workload_json(&body, cluster + 1, i / b->o.clusters);
    int rc = gf_kube_create(b->clients[cluster], &b->wl, BENCH_NS, body.data,
                            body.len, op_done, b, NULL);
    gf_buf_free(&body);
    return rc;
}

static int issue_list(struct bench *b, size_t i)
{
    struct gf_kube_list_opts lo = {.ns = BENCH_NS};
    return gf_kube_list(b->clients[i % b->o.clusters], &b->wl, &lo, op_done, b,
                        NULL);
}

/* Paginated lists: LIST_WINDOW chains walk the namespace in pages of 100
 * (a chain's pages must go in order, so each chain has one page in flight);
 * a chain starts over when its continue token runs out. */
struct page_op {
    struct bench *b;
    unsigned chain;
};

static void page_cb(void *data, const struct gf_kube_result *res)
{
    struct page_op *po = data;
    struct bench *b = po->b;
    const char *rv = NULL, *cont = NULL;
    if (res->err == 0 && res->json != NULL)
        gf_kube_list_meta(res->json, &rv, &cont);
    gf_free(b->cont[po->chain]);
    b->cont[po->chain] =
        cont != NULL && cont[0] != '\0' ? gf_strdup(cont) : NULL;
    b->chain_busy[po->chain] = false;
    gf_free(po);
    op_done(b, res);
}

static int issue_page(struct bench *b, size_t i)
{
    (void)i;
    unsigned chain = 0;
    while (chain < LIST_WINDOW && b->chain_busy[chain])
        chain++;
    if (chain == LIST_WINDOW)
        return -ECHILD; /* cannot happen: window == chains */
    struct page_op *po = gf_malloc(sizeof(*po));
    po->b = b;
    po->chain = chain;
    struct gf_kube_list_opts lo = {
        .ns = BENCH_NS, .limit = 100, .continue_token = b->cont[chain]};
    int rc = gf_kube_list(b->clients[chain % b->o.clusters], &b->wl, &lo,
                          page_cb, po, NULL);
    if (rc != 0)
        gf_free(po);
    else
        b->chain_busy[chain] = true;
    return rc;
}

/* ---- watch fan-out ----------------------------------------------------- */

struct watcher {
    struct bench *b;
    uint64_t seen;
    bool done;
};

static int on_watch_event(void *data, const struct gf_watch_event *ev)
{
    struct watcher *w = data;
    if (ev->type == GF_WATCH_MODIFIED)
        w->seen++;
    return 0;
}

static void on_watch_done(void *data, int err, const struct gf_api_status *st)
{
    struct watcher *w = data;
    if (err != GF_ECANCELED && w->b->errors++ == 0)
        snprintf(w->b->first_error, sizeof(w->b->first_error),
                 "watch ended: %s", st->message);
    w->done = true;
    w->b->watches_done++;
}

static int issue_patch(struct bench *b, size_t i)
{
    char name[64], body[128];
    snprintf(name, sizeof(name), "job-train-%zu-5f2c1", i % b->o.workloads);
    /* A new value every time: a patch that changes nothing makes no event. */
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"labels\":{\"bench-round\":\"r%u-%zu\"}}}",
             b->round, i);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    return gf_kube_patch(b->clients[0], &b->wl, BENCH_NS, name, &po, body,
                         strlen(body), op_done, b, NULL);
}

static void rv_cb(void *data, const struct gf_kube_result *res)
{
    struct bench *b = data;
    const char *rv = NULL, *cont = NULL;
    if (res->err == 0 && res->json != NULL)
        gf_kube_list_meta(res->json, &rv, &cont);
    snprintf(b->list_rv, sizeof(b->list_rv), "%s", rv != NULL ? rv : "");
    op_done(data, res);
}

static int issue_rv_list(struct bench *b, size_t i)
{
    (void)i;
    struct gf_kube_list_opts lo = {.ns = BENCH_NS, .limit = 1};
    return gf_kube_list(b->clients[0], &b->wl, &lo, rv_cb, b, NULL);
}

static uint64_t watched_total(const struct watcher *w, unsigned n)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < n; i++)
        t += w[i].seen;
    return t;
}

static int start_watchers(struct bench *b, struct watcher *ws,
                          struct gf_watch **handles, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        ws[i].b = b;
        struct gf_watch_opts wo = {.res = &b->wl,
                                   .ns = BENCH_NS,
                                   .resource_version = b->list_rv,
                                   .on_event = on_watch_event,
                                   .on_done = on_watch_done,
                                   .data = &ws[i]};
        int rc = gf_watch_start(b->clients[0], &wo, &handles[i]);
        if (rc != 0) {
            /* The ones started so far are stopped by the caller. */
            fprintf(stderr, "bench: watch %u: %s\n", i, gf_strerror(rc));
            for (unsigned j = i; j < n; j++) {
                ws[j].done = true;
                b->watches_done++;
            }
            return rc;
        }
    }
    return 0;
}

/*
 * One fan-out round: watchers start from one list's resourceVersion, so
 * every event of the `updates` patches after it is owed to every watcher
 * whenever it connects. Live: the watchers are open while the patches are
 * made, so the rate is bounded by the patch rate. Replay: the patches are
 * made first and the watchers then receive them from the watch cache,
 * which measures the fan-out alone (updates must fit in the cache).
 */
static int fanout(struct bench *b, bool live, unsigned updates, double *secs,
                  uint64_t *events)
{
    b->round++;
    if (run_ops(b, 1, 1, issue_rv_list) < 0 || b->list_rv[0] == '\0')
        return GF_EAPI;
    if (!live && run_ops(b, updates, PATCH_WINDOW, issue_patch) < 0)
        return GF_EAPI;
    unsigned n = b->o.watchers;
    struct watcher *ws = gf_calloc(n, sizeof(*ws));
    struct gf_watch **handles = gf_calloc(n, sizeof(*handles));
    b->watches_done = 0;
    double t0 = now_s();
    int rc = start_watchers(b, ws, handles, n);
    if (rc == 0 && live && run_ops(b, updates, PATCH_WINDOW, issue_patch) < 0)
        rc = GF_EAPI;
    uint64_t want = (uint64_t)n * updates;
    /* Every event must arrive unless a watch ends: no time limit here. */
    while (rc == 0 && watched_total(ws, n) < want && b->watches_done == 0)
        uv_run(&b->loop, UV_RUN_ONCE);
    *secs = now_s() - t0;
    *events = watched_total(ws, n);
    for (unsigned i = 0; i < n; i++)
        if (!ws[i].done)
            gf_watch_stop(handles[i]);
    while (b->watches_done < n)
        uv_run(&b->loop, UV_RUN_ONCE);
    gf_free(handles);
    gf_free(ws);
    if (rc == 0 && *events < want) {
        fprintf(stderr,
                "bench: fan-out got %" PRIu64 " of %" PRIu64 " events\n",
                *events, want);
        rc = GF_EAPI;
    }
    return rc;
}

/* ---- main -------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage: bench_kubesim [--clusters N] [--workloads M] "
          "[--watchers W]\n"
          "                     [--updates U] [--lists L] [--quick]\n"
          "                     [--kubesim PATH] [--crds DIR]\n",
          stderr);
}

static int parse_uint(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > 1000000)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static unsigned *numeric_flag(struct bench_opts *o, const char *a)
{
    static const struct {
        const char *flag;
        size_t off;
    } flags[] = {
        {"--clusters", offsetof(struct bench_opts, clusters)},
        {"--workloads", offsetof(struct bench_opts, workloads)},
        {"--watchers", offsetof(struct bench_opts, watchers)},
        {"--updates", offsetof(struct bench_opts, updates)},
        {"--lists", offsetof(struct bench_opts, lists)},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(a, flags[i].flag) == 0)
            return (unsigned *)(void *)((char *)o + flags[i].off);
    return NULL;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned *num = numeric_flag(o, a);
        if (strcmp(a, "--quick") == 0) {
            *o = (struct bench_opts){.clusters = 10,
                                     .workloads = 200,
                                     .watchers = 20,
                                     .updates = 500,
                                     .lists = 40,
                                     .kubesim = o->kubesim,
                                     .crds = o->crds};
        } else if (num != NULL && v != NULL && parse_uint(v, num) == 0) {
            i++;
        } else if (strcmp(a, "--kubesim") == 0 && v != NULL) {
            o->kubesim = argv[++i];
        } else if (strcmp(a, "--crds") == 0 && v != NULL) {
            o->crds = argv[++i];
        } else {
            return -EINVAL;
        }
    }
    return 0;
}

static int setup(struct bench *b)
{
    snprintf(b->dir, sizeof(b->dir), "/tmp/gf-bench-kubesim.XXXXXX");
    if (mkdtemp(b->dir) == NULL)
        return -errno;
    int rc = uv_loop_init(&b->loop);
    if (rc != 0)
        return rc;
    rc = gf_clock_init_uv(&b->clk, &b->loop);
    if (rc != 0)
        return rc;
    gf_kube_resource_set(&b->wl, "kueue.x-k8s.io", "v1beta2", "workloads",
                         "Workload", true);
    gf_kube_resource_set(&b->ns, "", "v1", "namespaces", "Namespace", false);
    return start_kubesim(b);
}

static void print_rate(const char *what, double n, double secs,
                       const char *unit)
{
    printf("%-34s %10.0f %s/s  (%.0f in %.2f s)\n", what, n / secs, unit, n,
           secs);
}

static int phase_populate(struct bench *b)
{
    long rss0 = child_rss_kb(b->child);
    if (run_ops(b, b->o.clusters, CREATE_WINDOW, issue_namespace) < 0)
        return GF_EAPI;
    size_t n = (size_t)b->o.clusters * b->o.workloads;
    double dt = run_ops(b, n, CREATE_WINDOW, issue_create);
    if (dt < 0)
        return GF_EAPI;
    long rss1 = child_rss_kb(b->child);
    print_rate("create Workload", (double)n, dt, "req");
    printf("%-34s %10ld KB before, %ld KB after\n", "kubesim resident memory",
           rss0, rss1);
    /* The reference: the Workload's own JSON as the client sent it. */
    struct gf_buf one = GF_BUF_INIT(16384);
    workload_json(&one, 1, 0);
    double per = (double)(rss1 - rss0) * 1024.0 / (double)n;
    printf("%-34s %10.0f bytes (%.2fx its %zu-byte JSON)\n",
           "resident memory per Workload", per, per / (double)one.len, one.len);
    gf_buf_free(&one);
    return 0;
}

static int phase_lists(struct bench *b)
{
    double dt = run_ops(b, b->o.lists, LIST_WINDOW, issue_list);
    if (dt < 0)
        return GF_EAPI;
    print_rate("list namespace (whole)", (double)b->o.lists, dt, "req");
    print_rate("  objects listed", (double)b->objects, dt, "obj");
    print_rate("  bytes received", (double)b->bytes / 1e6, dt, "MB");
    size_t pages = (size_t)b->o.lists * 10;
    dt = run_ops(b, pages, LIST_WINDOW, issue_page);
    for (unsigned c = 0; c < LIST_WINDOW; c++) {
        gf_free(b->cont[c]);
        b->cont[c] = NULL;
    }
    if (dt < 0)
        return GF_EAPI;
    print_rate("list page (limit=100)", (double)pages, dt, "req");
    return 0;
}

static int phase_fanout(struct bench *b)
{
    double secs;
    uint64_t events;
    int rc = fanout(b, true, b->o.updates, &secs, &events);
    if (rc != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof(what), "watch fan-out, live (%u watchers)",
             b->o.watchers);
    print_rate(what, (double)events, secs, "events");
    print_rate("  patches made meanwhile", (double)b->o.updates, secs, "req");
    /* Replay stays inside the server's watch cache (1024 per type). */
    unsigned replay = b->o.updates < 1000 ? b->o.updates : 1000;
    rc = fanout(b, false, replay, &secs, &events);
    if (rc != 0)
        return rc;
    snprintf(what, sizeof(what), "watch fan-out, replay (%u watchers)",
             b->o.watchers);
    print_rate(what, (double)events, secs, "events");
    return 0;
}

static void cleanup(struct bench *b)
{
    close_clients(b);
    stop_kubesim(b);
    gf_clock_close(&b->clk);
    while (uv_loop_close(&b->loop) == UV_EBUSY)
        uv_run(&b->loop, UV_RUN_NOWAIT);
    char cmd[128];
    /* The child wrote certificates and kubeconfigs here; remove them. */
    snprintf(cmd, sizeof(cmd), "%s", b->dir);
    char *const argv[] = {"rm", "-rf", cmd, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) == 0)
        waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    struct bench b = {.o = {.clusters = 100,
                            .workloads = 1000,
                            .watchers = 100,
                            .updates = 2000,
                            .lists = 200,
                            .kubesim = "build/debug/bin/kubesim",
                            .crds = "e2e/testdata/kueue/crds"}};
    const char *bin = getenv("GF_BIN");
    static char kubesim_path[512];
    if (bin != NULL) {
        snprintf(kubesim_path, sizeof(kubesim_path), "%s/kubesim", bin);
        b.o.kubesim = kubesim_path;
    }
    if (parse_args(argc, argv, &b.o) != 0) {
        usage();
        return 2;
    }
    if (gf_alloc_global_init() != 0 || curl_global_init(CURL_GLOBAL_ALL) != 0)
        return 1;
    gf_log_set_level(GF_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    printf("bench_kubesim: %u clusters x %u Workloads, %u watchers x %u "
           "updates\n",
           b.o.clusters, b.o.workloads, b.o.watchers, b.o.updates);
    int rc = setup(&b);
    if (rc == 0)
        rc = open_clients(&b);
    if (rc == 0)
        rc = phase_populate(&b);
    if (rc == 0)
        rc = phase_lists(&b);
    if (rc == 0)
        rc = phase_fanout(&b);
    cleanup(&b);
    curl_global_cleanup();
    gf_alloc_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "bench_kubesim: failed: %s\n", gf_strerror(rc));
        return 1;
    }
    return 0;
}
