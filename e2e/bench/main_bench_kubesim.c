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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "e2e/bench/benchkit.h"
#include "kubeclient/global.h"
#include "kubeclient/request.h"
#include "kubeclient/watch.h"

#define LIST_WINDOW 4
#define PATCH_WINDOW 32

struct bench_opts {
    unsigned clusters, workloads, watchers, updates, lists;
    const char *kubesim, *crds;
};

struct bench {
    struct bench_opts o;
    struct gf_bench k; /* loop, clients, the op pump; k.data is this */
    struct gf_bench_sim sim;
    /* paginated lists: each chain's continue token */
    char *cont[LIST_WINDOW];
    bool chain_busy[LIST_WINDOW];
    /* the fan-out */
    char list_rv[64];
    size_t watches_done;
    unsigned round;
};

static int issue_list(struct gf_bench *kb, size_t i)
{
    struct bench *b = kb->data;
    struct gf_kube_list_opts lo = {.ns = GF_BENCH_NS};
    return gf_kube_list(b->k.clients[i % b->o.clusters], &b->k.wl, &lo,
                        gf_bench_done, &b->k, NULL);
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
    gf_bench_done(&b->k, res);
}

static int issue_page(struct gf_bench *kb, size_t i)
{
    struct bench *b = kb->data;
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
        .ns = GF_BENCH_NS, .limit = 100, .continue_token = b->cont[chain]};
    int rc = gf_kube_list(b->k.clients[chain % b->o.clusters], &b->k.wl, &lo,
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
    if (err != GF_ECANCELED && w->b->k.errors++ == 0)
        snprintf(w->b->k.first_error, sizeof(w->b->k.first_error),
                 "watch ended: %s", st->message);
    w->done = true;
    w->b->watches_done++;
}

static int issue_patch(struct gf_bench *kb, size_t i)
{
    struct bench *b = kb->data;
    char name[64], body[128];
    snprintf(name, sizeof(name), "job-train-%zu-5f2c1", i % b->o.workloads);
    /* A new value every time: a patch that changes nothing makes no event. */
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"labels\":{\"bench-round\":\"r%u-%zu\"}}}",
             b->round, i);
    struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
    return gf_kube_patch(b->k.clients[0], &b->k.wl, GF_BENCH_NS, name, &po,
                         body, strlen(body), gf_bench_done, &b->k, NULL);
}

static void rv_cb(void *data, const struct gf_kube_result *res)
{
    struct bench *b = data;
    const char *rv = NULL, *cont = NULL;
    if (res->err == 0 && res->json != NULL)
        gf_kube_list_meta(res->json, &rv, &cont);
    snprintf(b->list_rv, sizeof(b->list_rv), "%s", rv != NULL ? rv : "");
    gf_bench_done(&b->k, res);
}

static int issue_rv_list(struct gf_bench *kb, size_t i)
{
    struct bench *b = kb->data;
    (void)i;
    struct gf_kube_list_opts lo = {.ns = GF_BENCH_NS, .limit = 1};
    return gf_kube_list(b->k.clients[0], &b->k.wl, &lo, rv_cb, b, NULL);
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
        struct gf_watch_opts wo = {.res = &b->k.wl,
                                   .ns = GF_BENCH_NS,
                                   .resource_version = b->list_rv,
                                   .on_event = on_watch_event,
                                   .on_done = on_watch_done,
                                   .data = &ws[i]};
        int rc = gf_watch_start(b->k.clients[0], &wo, &handles[i]);
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
    if (gf_bench_run(&b->k, 1, 1, issue_rv_list) < 0 || b->list_rv[0] == '\0')
        return GF_EAPI;
    if (!live && gf_bench_run(&b->k, updates, PATCH_WINDOW, issue_patch) < 0)
        return GF_EAPI;
    unsigned n = b->o.watchers;
    struct watcher *ws = gf_calloc(n, sizeof(*ws));
    struct gf_watch **handles = gf_calloc(n, sizeof(*handles));
    b->watches_done = 0;
    double t0 = gf_bench_now();
    int rc = start_watchers(b, ws, handles, n);
    if (rc == 0 && live &&
        gf_bench_run(&b->k, updates, PATCH_WINDOW, issue_patch) < 0)
        rc = GF_EAPI;
    uint64_t want = (uint64_t)n * updates;
    /* Every event must arrive unless a watch ends: no time limit here. */
    while (rc == 0 && watched_total(ws, n) < want && b->watches_done == 0)
        uv_run(&b->k.loop, UV_RUN_ONCE);
    *secs = gf_bench_now() - t0;
    *events = watched_total(ws, n);
    for (unsigned i = 0; i < n; i++)
        if (!ws[i].done)
            gf_watch_stop(handles[i]);
    while (b->watches_done < n)
        uv_run(&b->k.loop, UV_RUN_ONCE);
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

static int phase_populate(struct bench *b)
{
    long rss0 = gf_bench_sim_rss_kb(&b->sim);
    size_t n = (size_t)b->o.clusters * b->o.workloads;
    double dt = gf_bench_populate(&b->k, b->o.workloads);
    if (dt < 0)
        return GF_EAPI;
    long rss1 = gf_bench_sim_rss_kb(&b->sim);
    gf_bench_print_rate("create Workload", (double)n, dt, "req");
    printf("%-34s %10ld KB before, %ld KB after\n", "kubesim resident memory",
           rss0, rss1);
    /* The reference: the Workload's own JSON as the client sent it. */
    struct gf_buf one = GF_BUF_INIT(16384);
    gf_bench_workload_json(&one, 1, 0);
    double per = (double)(rss1 - rss0) * 1024.0 / (double)n;
    printf("%-34s %10.0f bytes (%.2fx its %zu-byte JSON)\n",
           "resident memory per Workload", per, per / (double)one.len, one.len);
    gf_buf_free(&one);
    return 0;
}

static int phase_lists(struct bench *b)
{
    double dt = gf_bench_run(&b->k, b->o.lists, LIST_WINDOW, issue_list);
    if (dt < 0)
        return GF_EAPI;
    gf_bench_print_rate("list namespace (whole)", (double)b->o.lists, dt,
                        "req");
    gf_bench_print_rate("  objects listed", (double)b->k.objects, dt, "obj");
    gf_bench_print_rate("  bytes received", (double)b->k.bytes / 1e6, dt, "MB");
    size_t pages = (size_t)b->o.lists * 10;
    dt = gf_bench_run(&b->k, pages, LIST_WINDOW, issue_page);
    for (unsigned c = 0; c < LIST_WINDOW; c++) {
        gf_free(b->cont[c]);
        b->cont[c] = NULL;
    }
    if (dt < 0)
        return GF_EAPI;
    gf_bench_print_rate("list page (limit=100)", (double)pages, dt, "req");
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
    gf_bench_print_rate(what, (double)events, secs, "events");
    gf_bench_print_rate("  patches made meanwhile", (double)b->o.updates, secs,
                        "req");
    /* Replay stays inside the server's watch cache (1024 per type). */
    unsigned replay = b->o.updates < 1000 ? b->o.updates : 1000;
    rc = fanout(b, false, replay, &secs, &events);
    if (rc != 0)
        return rc;
    snprintf(what, sizeof(what), "watch fan-out, replay (%u watchers)",
             b->o.watchers);
    gf_bench_print_rate(what, (double)events, secs, "events");
    return 0;
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
    if (gf_kube_global_init() != 0 || curl_global_init(CURL_GLOBAL_ALL) != 0)
        return 1;
    gf_log_set_level(GF_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    printf("bench_kubesim: %u clusters x %u Workloads, %u watchers x %u "
           "updates\n",
           b.o.clusters, b.o.workloads, b.o.watchers, b.o.updates);
    b.k.data = &b;
    int rc =
        gf_bench_sim_start(&b.sim, b.o.kubesim, b.o.crds, b.o.clusters, NULL);
    if (rc == 0)
        rc = gf_bench_open(&b.k, &b.sim, b.o.clusters);
    if (rc == 0)
        rc = phase_populate(&b);
    if (rc == 0)
        rc = phase_lists(&b);
    if (rc == 0)
        rc = phase_fanout(&b);
    gf_bench_close(&b.k);
    gf_bench_sim_stop(&b.sim);
    curl_global_cleanup();
    gf_kube_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "bench_kubesim: failed: %s\n", gf_strerror(rc));
        return 1;
    }
    return 0;
}
