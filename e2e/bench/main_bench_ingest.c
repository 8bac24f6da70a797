/*
 * bench_ingest: how fast kubeclient takes in a watch stream, against the
 * official Python client and kubectl on the same data in the same run.
 *
 *   bench_ingest [--events N] [--quick] [--kubesim PATH] [--crds DIR]
 *                [--no-python] [--no-kubectl]
 *
 * kubesim (a child process, so that the server has its own core) holds N
 * Workloads of ~1.5 KB created after a recorded resourceVersion, with a
 * watch cache big enough for all of them (the replay is paced by the
 * client, as the API server's is). Then, one client at a time:
 *   - kubeclient: a watch from that resourceVersion (the N ADDED events
 *     replay from the cache) into a projected store, as the controller
 *     will run it: framing, JSON, projection of the fields it needs;
 *   - Python (/usr/bin/python3, python3-kubernetes): the same watch, the
 *     same N events, decoded by the client's watch.stream();
 *   - kubectl get --watch -o name: kubectl cannot start a watch from a
 *     given resourceVersion, so it receives the same N objects through
 *     its initial (paginated) LIST, then watches; measured until it has
 *     printed N names.
 * For each: events/s over wall time and over the client's own CPU time
 * (one core), and the ratios to kubeclient. Figures only: nothing here
 * asserts a time.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "e2e/bench/benchkit.h"
#include "kubeclient/global.h"
#include "kubeclient/store.h"
#include "kubeclient/watch.h"

extern char **environ;

struct ingest_opts {
    unsigned events;
    bool python, kubectl;
    const char *kubesim, *crds, *script;
};

/* One client's result. */
struct ingest_result {
    const char *name;
    double wall, cpu; /* seconds */
    double events;
    bool ok;
};

/* ---- kubeclient -----------------------------------------------------------
 */

/* What the controller keeps of a Workload: a few fields, not the JSON. */
struct wl_proj {
    char *queue;
    int64_t priority;
    int64_t pods;
    int64_t gpus_milli;
};

static int project_workload(void *data, const cJSON *obj, void **out)
{
    (void)data;
    struct wl_proj *p = gf_calloc(1, sizeof(*p));
    const char *q = gf_json_str(obj, "spec.queueName");
    p->queue = gf_strdup(q != NULL ? q : "");
    gf_json_int(obj, "spec.priority", &p->priority);
    const cJSON *ps;
    cJSON_ArrayForEach(ps, gf_json_path(obj, "spec.podSets"))
    {
        int64_t count = 0, gpus = 0;
        gf_json_int(ps, "count", &count);
        const cJSON *req = gf_json_path(
            cJSON_GetArrayItem(gf_json_path(ps, "template.spec.containers"), 0),
            "resources.requests");
        gf_json_quantity_milli(
            cJSON_GetObjectItemCaseSensitive(req, "nvidia.com/gpu"), &gpus);
        p->pods += count;
        p->gpus_milli += count * gpus;
    }
    *out = p;
    return 0;
}

static void free_workload(void *proj)
{
    struct wl_proj *p = proj;
    gf_free(p->queue);
    gf_free(p);
}

struct kc_run {
    struct gf_store *store;
    struct gf_buf *capture; /* the stream's events, for the replay */
    uint64_t events, bytes, want;
    bool done;
    int err;
};

static int kc_event(void *data, const struct gf_watch_event *ev)
{
    struct kc_run *r = data;
    if (r->store != NULL &&
        (ev->type == GF_WATCH_ADDED || ev->type == GF_WATCH_MODIFIED))
        gf_store_upsert(r->store, ev->object);
    if (r->capture != NULL &&
        (gf_buf_append(r->capture, ev->raw, ev->raw_len) != 0 ||
         gf_buf_append(r->capture, "\n", 1) != 0))
        return GF_E2BIG;
    r->events++;
    r->bytes += ev->raw_len;
    /* Stop once everything is in: the watch would otherwise stay open. */
    return r->events >= r->want ? 1 : 0;
}

static void kc_done(void *data, int err, const struct gf_api_status *st)
{
    struct kc_run *r = data;
    r->done = true;
    if (r->events < r->want) {
        r->err = err != 0 ? err : GF_ETRANSPORT;
        fprintf(stderr, "bench: watch ended early: %s\n", st->message);
    }
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int run_kubeclient(struct gf_bench *b, const char *rv, unsigned n,
                          struct gf_buf *capture, struct ingest_result *out)
{
    struct gf_store_opts so = {.project = project_workload,
                               .free_proj = free_workload};
    /* A capture run only records the stream (no store, nothing printed):
     * the measured run does not pay for the copy. */
    struct kc_run r = {.store = capture == NULL ? gf_store_new(&so) : NULL,
                       .capture = capture,
                       .want = n};
    struct gf_watch_opts wo = {.res = &b->wl,
                               .ns = GF_BENCH_NS,
                               .resource_version = rv,
                               .on_event = kc_event,
                               .on_done = kc_done,
                               .data = &r};
    struct gf_watch *w;
    double c0 = cpu_self(), t0 = gf_bench_now();
    int rc = gf_watch_start(b->clients[0], &wo, &w);
    while (rc == 0 && !r.done)
        uv_run(&b->loop, UV_RUN_ONCE);
    out->wall = gf_bench_now() - t0;
    out->cpu = cpu_self() - c0;
    out->events = (double)r.events;
    out->ok = rc == 0 && r.err == 0 && r.events == n;
    if (r.store != NULL) {
        out->ok = out->ok && gf_store_len(r.store) == n;
        printf("%-34s %10.1f MB in %.2f s, %zu objects in the store\n",
               "kubeclient stream", (double)r.bytes / 1e6, out->wall,
               gf_store_len(r.store));
        gf_store_free(r.store);
    }
    return out->ok ? 0 : GF_EAPI;
}

/*
 * The same events again, from memory: the framer fed in 16 KB pieces (as
 * libcurl hands over a TLS stream), with and without the projection into
 * a store. The difference to the network run is what HTTP, TLS and the
 * socket cost; the first figure is the ceiling the JSON parser sets.
 */
static int run_replay(const struct gf_buf *stream, unsigned n, bool store,
                      struct ingest_result *out)
{
    struct gf_store_opts so = {.project = project_workload,
                               .free_proj = free_workload};
    struct kc_run r = {.store = store ? gf_store_new(&so) : NULL, .want = n};
    struct gf_watch_framer f;
    gf_watch_framer_init(&f, 0);
    double c0 = cpu_self(), t0 = gf_bench_now();
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < stream->len; off += 16384) {
        size_t len = stream->len - off < 16384 ? stream->len - off : 16384;
        rc = gf_watch_framer_feed(&f, stream->data + off, len, kc_event, &r);
    }
    out->wall = gf_bench_now() - t0;
    out->cpu = cpu_self() - c0;
    out->events = (double)r.events;
    /* kc_event returns 1 on the last event: the stream is whole. */
    out->ok =
        rc == 1 && r.events == n && (!store || gf_store_len(r.store) == n);
    gf_watch_framer_free(&f);
    if (r.store != NULL)
        gf_store_free(r.store);
    return out->ok ? 0 : GF_EAPI;
}

/* ---- other clients, as child processes ------------------------------------
 */

/* Spawns argv with stdout on a pipe; returns the read end, or -1. */
static int spawn_piped(char *const argv[], pid_t *pid)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        fprintf(stderr, "bench: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return fds[0];
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Waits for pid and returns its CPU seconds (user + system): what the
 * reaped children used grows by exactly its share. */
static double reap(pid_t pid, int *status)
{
    double before = cpu_children();
    if (waitpid(pid, status, 0) != pid)
        return 0;
    return cpu_children() - before;
}

static int run_python(const struct ingest_opts *o, const char *kubeconfig,
                      const char *rv, struct ingest_result *out)
{
    char n[16];
    snprintf(n, sizeof(n), "%u", o->events);
    char *argv[] = {"/usr/bin/python3",
                    (char *)o->script,
                    (char *)kubeconfig,
                    GF_BENCH_NS,
                    (char *)rv,
                    n,
                    NULL};
    pid_t pid;
    int fd = spawn_piped(argv, &pid);
    if (fd < 0)
        return -EIO;
    struct gf_buf b = GF_BUF_INIT(4096);
    char chunk[512];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof(chunk))) > 0)
        gf_buf_append(&b, chunk, (size_t)got);
    close(fd);
    int status;
    reap(pid, &status);
    cJSON *j = cJSON_Parse(gf_buf_cstr(&b));
    gf_buf_free(&b);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "events");
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(j, "cpu");
    out->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              cJSON_IsNumber(ev) && cJSON_IsNumber(secs) &&
              cJSON_IsNumber(cpu) && ev->valuedouble >= o->events;
    if (out->ok) {
        out->events = ev->valuedouble;
        out->wall = secs->valuedouble;
        out->cpu = cpu->valuedouble;
    }
    cJSON_Delete(j);
    return out->ok ? 0 : GF_EAPI;
}

/* Runs kubectl get --watch -o name until it has printed `lines` lines;
 * returns the wall seconds to that point and its CPU seconds. */
static int kubectl_lines(const char *kubeconfig, unsigned lines, double *wall,
                         double *cpu)
{
    char *argv[] = {"kubectl",
                    "--kubeconfig",
                    (char *)kubeconfig,
                    "get",
                    "workloads.kueue.x-k8s.io",
                    "-n",
                    GF_BENCH_NS,
                    "--watch",
                    "-o",
                    "name",
                    NULL};
    pid_t pid;
    double t0 = gf_bench_now();
    int fd = spawn_piped(argv, &pid);
    if (fd < 0)
        return -EIO;
    unsigned seen = 0;
    char chunk[65536];
    ssize_t got;
    while (seen < lines && (got = read(fd, chunk, sizeof(chunk))) > 0)
        for (ssize_t i = 0; i < got; i++)
            seen += chunk[i] == '\n';
    *wall = gf_bench_now() - t0;
    kill(pid, SIGTERM);
    close(fd);
    int status;
    *cpu = reap(pid, &status);
    return seen >= lines ? 0 : GF_EAPI;
}

static int run_kubectl(const struct ingest_opts *o, const char *kubeconfig,
                       struct ingest_result *out)
{
    if (kubectl_lines(kubeconfig, o->events, &out->wall, &out->cpu) != 0)
        return GF_EAPI;
    out->events = o->events;
    out->ok = true;
    return 0;
}

/* ---- main ------------------------------------------------------------------
 */

static void rv_cb(void *data, const struct gf_kube_result *res)
{
    struct gf_bench *b = data;
    const char *rv = NULL, *cont = NULL;
    if (res->err == 0 && res->json != NULL)
        gf_kube_list_meta(res->json, &rv, &cont);
    snprintf((char *)b->data, 64, "%s", rv != NULL ? rv : "");
    gf_bench_done(b, res);
}

static int issue_rv(struct gf_bench *b, size_t i)
{
    (void)i;
    struct gf_kube_list_opts lo = {.ns = GF_BENCH_NS, .limit = 1};
    return gf_kube_list(b->clients[0], &b->wl, &lo, rv_cb, b, NULL);
}

static void print_result(const struct ingest_result *r,
                         const struct ingest_result *ref)
{
    char what[64];
    snprintf(what, sizeof(what), "%s, wall", r->name);
    gf_bench_print_rate(what, r->events, r->wall, "events");
    printf("%-34s %10.0f events/s of its own CPU (%.2f s)\n", "  one core",
           r->events / r->cpu, r->cpu);
    if (ref != NULL && r != ref)
        printf("%-34s %10.1fx wall, %.1fx CPU\n", "  kubeclient is faster by",
               (ref->events / ref->wall) / (r->events / r->wall),
               (ref->events / ref->cpu) / (r->events / r->cpu));
}

static int parse_args(int argc, char **argv, struct ingest_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0)
            o->events = 5000;
        else if (strcmp(a, "--no-python") == 0)
            o->python = false;
        else if (strcmp(a, "--no-kubectl") == 0)
            o->kubectl = false;
        else if (strcmp(a, "--events") == 0 && v != NULL) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*end != '\0' || n == 0 || n > 1000000)
                return -EINVAL;
            o->events = (unsigned)n;
            i++;
        } else if (strcmp(a, "--kubesim") == 0 && v != NULL)
            o->kubesim = argv[++i];
        else if (strcmp(a, "--crds") == 0 && v != NULL)
            o->crds = argv[++i];
        else
            return -EINVAL;
    }
    return 0;
}

static int run_all(const struct ingest_opts *o, struct gf_bench *b,
                   const struct gf_bench_sim *sim)
{
    char rv[64] = "";
    b->data = rv;
    if (gf_bench_run(b, 1, 1, issue_rv) < 0 || rv[0] == '\0')
        return GF_EAPI;
    double dt = gf_bench_populate(b, o->events);
    if (dt < 0)
        return GF_EAPI;
    gf_bench_print_rate("create Workload (setup)", o->events, dt, "req");
    char kubeconfig[160];
    gf_bench_sim_kubeconfig(sim, 1, kubeconfig, sizeof(kubeconfig));
    struct ingest_result kc = {.name = "kubeclient watch"};
    struct ingest_result parse = {.name = "from memory: frame + parse"};
    struct ingest_result proj = {.name = "from memory: + project + store"};
    struct ingest_result py = {.name = "python watch"};
    struct ingest_result kl = {.name = "kubectl get --watch (list)"};
    struct gf_buf stream;
    gf_buf_init(&stream, (size_t)o->events * 65536);
    struct ingest_result capture = {0};
    int rc = run_kubeclient(b, rv, o->events, NULL, &kc);
    if (rc == 0)
        print_result(&kc, NULL);
    if (rc == 0)
        rc = run_kubeclient(b, rv, o->events, &stream, &capture);
    if (rc == 0)
        rc = run_replay(&stream, o->events, false, &parse);
    if (rc == 0)
        rc = run_replay(&stream, o->events, true, &proj);
    gf_buf_free(&stream);
    if (rc == 0) {
        print_result(&parse, NULL);
        print_result(&proj, NULL);
        printf("%-34s %10.1f us per event (%.0f%% of kubeclient's CPU)\n",
               "  of which the JSON parse", parse.cpu / parse.events * 1e6,
               100.0 * (parse.cpu / parse.events) / (kc.cpu / kc.events));
    }
    if (rc == 0 && o->python) {
        rc = run_python(o, kubeconfig, rv, &py);
        if (rc == 0)
            print_result(&py, &kc);
    }
    if (rc == 0 && o->kubectl) {
        rc = run_kubectl(o, kubeconfig, &kl);
        if (rc == 0)
            print_result(&kl, &kc);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct ingest_opts o = {.events = 100000,
                            .python = true,
                            .kubectl = true,
                            .kubesim = "build/debug/bin/kubesim",
                            .crds = "e2e/testdata/kueue/crds",
                            .script = "e2e/bench/ingest_python.py"};
    static char kubesim_path[512];
    const char *bin = getenv("GF_BIN");
    if (bin != NULL) {
        snprintf(kubesim_path, sizeof(kubesim_path), "%s/kubesim", bin);
        o.kubesim = kubesim_path;
    }
    if (parse_args(argc, argv, &o) != 0) {
        fputs("usage: bench_ingest [--events N] [--quick] [--kubesim PATH]\n"
              "                    [--crds DIR] [--no-python] "
              "[--no-kubectl]\n",
              stderr);
        return 2;
    }
    if (gf_kube_global_init() != 0 || curl_global_init(CURL_GLOBAL_ALL) != 0)
        return 1;
    gf_log_set_level(GF_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    printf("bench_ingest: %u Workload events\n", o.events);
    /* The watch cache must hold every event for the replay. */
    char cache[16];
    snprintf(cache, sizeof(cache), "%u", o.events + 64);
    const char *extra[] = {"--watch-cache", cache, NULL};
    struct gf_bench_sim sim = {0};
    struct gf_bench b = {0};
    int rc = gf_bench_sim_start(&sim, o.kubesim, o.crds, 1, extra);
    if (rc == 0) {
        rc = gf_bench_open(&b, &sim, 1);
        if (rc == 0)
            rc = run_all(&o, &b, &sim);
        gf_bench_close(&b);
    }
    gf_bench_sim_stop(&sim);
    curl_global_cleanup();
    gf_kube_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "bench_ingest: failed: %s\n", gf_strerror(rc));
        return 1;
    }
    return 0;
}
