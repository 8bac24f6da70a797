#include "e2e/bench/benchkit.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kubeclient/kubeconfig.h"
#include "kubeclient/uvclock.h"

extern char **environ;

#define READY_WAIT_S 120
#define CREATE_WINDOW 64
#define MAX_SIM_ARGS 32

double gf_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the kubesim child ----------------------------------------------------
 */

static int wait_ready(struct gf_bench_sim *s)
{
    /* Wall-clock wait: this is a benchmark talking to a real process. */
    char ready[128];
    snprintf(ready, sizeof(ready), "%s/ready", s->dir);
    for (int i = 0; i < READY_WAIT_S * 10; i++) {
        struct stat st;
        if (stat(ready, &st) == 0)
            return 0;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "bench: kubesim exited before it was ready\n");
            s->pid = 0;
            return -ECHILD;
        }
        struct timespec ts = {0, 100L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "bench: kubesim not ready after %d s\n", READY_WAIT_S);
    return GF_ETIMEDOUT;
}

static int sim_start(struct gf_bench_sim *s, const char *kubesim,
                     const char *crds, unsigned clusters,
                     const char *const *extra, bool kueue)
{
    s->pid = 0;
    snprintf(s->dir, sizeof(s->dir), "/tmp/gf-bench.XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        s->dir[0] = '\0';
        return -errno;
    }
    char nclusters[16];
    snprintf(nclusters, sizeof(nclusters), "%u", clusters);
    const char *argv[MAX_SIM_ARGS] = {kubesim, "--clusters",  nclusters,
                                      "--dir", s->dir,        "--crds",
                                      crds,    "--log-level", "warn"};
    size_t n = 9;
    /* --no-kueue: most benchmarks measure the API server; Kueue-lite would
     * add its own status writes to every Workload created. */
    if (!kueue)
        argv[n++] = "--no-kueue";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        if (n + 1 < MAX_SIM_ARGS)
            argv[n++] = extra[i];
    argv[n] = NULL;
    int rc =
        posix_spawn(&s->pid, kubesim, NULL, NULL, (char *const *)argv, environ);
    if (rc != 0) {
        fprintf(stderr, "bench: cannot start %s: %s\n", kubesim, strerror(rc));
        s->pid = 0;
        return -rc;
    }
    return wait_ready(s);
}

int gf_bench_sim_start(struct gf_bench_sim *s, const char *kubesim,
                       const char *crds, unsigned clusters,
                       const char *const *extra)
{
    return sim_start(s, kubesim, crds, clusters, extra, false);
}

int gf_bench_sim_start_kueue(struct gf_bench_sim *s, const char *kubesim,
                             const char *crds, unsigned clusters,
                             const char *const *extra)
{
    return sim_start(s, kubesim, crds, clusters, extra, true);
}

void gf_bench_sim_stop(struct gf_bench_sim *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int status;
        waitpid(s->pid, &status, 0);
        s->pid = 0;
    }
    if (s->dir[0] != '\0' && getenv("GF_BENCH_KEEP") == NULL) {
        /* The child wrote certificates and kubeconfigs here. */
        char *const argv[] = {"rm", "-rf", s->dir, NULL};
        pid_t pid;
        if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) == 0)
            waitpid(pid, NULL, 0);
        s->dir[0] = '\0';
    }
}

long gf_bench_sim_rss_kb(const struct gf_bench_sim *s)
{
    return gf_bench_rss_kb(s->pid);
}

long gf_bench_rss_kb(pid_t pid)
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

void gf_bench_sim_kubeconfig(const struct gf_bench_sim *s, unsigned i,
                             char *out, size_t cap)
{
    snprintf(out, cap, "%s/c%u/kubeconfig-admin.yaml", s->dir, i);
}

/* ---- clients ---------------------------------------------------------------
 */

int gf_bench_open(struct gf_bench *b, const struct gf_bench_sim *sim,
                  unsigned clusters)
{
    int rc = uv_loop_init(&b->loop);
    if (rc == 0)
        rc = gf_clock_init_uv(&b->clk, &b->loop);
    if (rc == 0)
        rc = gf_http_new(&b->loop, &b->clk, &b->http);
    if (rc != 0)
        return rc;
    gf_kube_resource_set(&b->wl, "kueue.x-k8s.io", "v1beta2", "workloads",
                         "Workload", true);
    gf_kube_resource_set(&b->ns, "", "v1", "namespaces", "Namespace", false);
    b->clients = gf_calloc(clusters, sizeof(*b->clients));
    b->nclients = clusters;
    for (unsigned i = 0; i < clusters; i++) {
        char path[160];
        gf_bench_sim_kubeconfig(sim, i + 1, path, sizeof(path));
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

void gf_bench_close(struct gf_bench *b)
{
    for (unsigned i = 0; b->clients != NULL && i < b->nclients; i++)
        gf_kube_client_free(b->clients[i]);
    gf_free(b->clients);
    b->clients = NULL;
    if (b->http != NULL) {
        bool closed = false;
        gf_http_close(b->http, on_http_closed, &closed);
        while (!closed)
            uv_run(&b->loop, UV_RUN_ONCE);
        b->http = NULL;
    }
    gf_clock_close(&b->clk);
    while (uv_loop_close(&b->loop) == UV_EBUSY)
        uv_run(&b->loop, UV_RUN_NOWAIT);
}

/* ---- the op pump ------------------------------------------------------------
 */

static void pump(struct gf_bench *b)
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

void gf_bench_done(void *data, const struct gf_kube_result *res)
{
    struct gf_bench *b = data;
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

double gf_bench_run(struct gf_bench *b, size_t total, size_t window,
                    gf_bench_issue_fn issue)
{
    b->issue = issue;
    b->total = total;
    b->issued = b->done = b->inflight = 0;
    b->window = window;
    b->errors = 0;
    b->objects = b->bytes = 0;
    double t0 = gf_bench_now();
    pump(b);
    while (b->done < b->total)
        uv_run(&b->loop, UV_RUN_ONCE);
    double dt = gf_bench_now() - t0;
    if (b->errors > 0) {
        fprintf(stderr, "bench: %u of %zu requests failed; first: %s\n",
                b->errors, total, b->first_error);
        return -1;
    }
    return dt;
}

/* ---- the Workload ---- */

/* A Workload as Kueue creates it for a batch/v1 Job asking for GPUs: with
 * its labels, owner reference and a realistic pod template, ~2 KB. */
void gf_bench_workload_json(struct gf_buf *out, unsigned cluster, size_t i)
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
        i, GF_BENCH_NS, cluster, i, i % 7, cluster, i, cluster, i, i % 100, i,
        i);
}

/* ---- populating
 * ---------------------------------------------------------------- */

static int issue_namespace(struct gf_bench *b, size_t i)
{
    const char *body = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                       "\"metadata\":{\"name\":\"" GF_BENCH_NS "\"}}";
    return gf_kube_create(b->clients[i], &b->ns, NULL, body, strlen(body),
                          gf_bench_done, b, NULL);
}

static int issue_create(struct gf_bench *b, size_t i)
{
    unsigned cluster = (unsigned)(i % b->nclients);
    struct gf_buf body = GF_BUF_INIT(16384);
    gf_bench_workload_json(&body, cluster + 1, i / b->nclients);
    int rc = gf_kube_create(b->clients[cluster], &b->wl, GF_BENCH_NS, body.data,
                            body.len, gf_bench_done, b, NULL);
    gf_buf_free(&body);
    return rc;
}

double gf_bench_populate(struct gf_bench *b, size_t per_cluster)
{
    if (gf_bench_run(b, b->nclients, CREATE_WINDOW, issue_namespace) < 0)
        return -1;
    return gf_bench_run(b, per_cluster * b->nclients, CREATE_WINDOW,
                        issue_create);
}

void gf_bench_print_rate(const char *what, double n, double secs,
                         const char *unit)
{
    printf("%-34s %10.0f %s/s  (%.0f in %.2f s)\n", what, n / secs, unit, n,
           secs);
}
