/*
 * benchkit: what the benchmarks share. A kubesim child process (started,
 * waited for, measured, stopped), kubeclient clients for its clusters on
 * one loop, an op pump that keeps a window of requests in flight, and
 * the Workload every benchmark uses (the ~1.5 KB object Kueue makes for a
 * 4-GPU training Job).
 *
 * Benchmarks measure wall time (they talk to real processes) and print
 * figures; nothing here asserts a time. Loop thread only.
 */
#ifndef GF_BENCHKIT_H
#define GF_BENCHKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "common/buf.h"
#include "common/clock.h"
#include "kubeclient/http.h"
#include "kubeclient/request.h"

#define GF_BENCH_NS "bench"

/* Monotonic wall time in seconds. */
double gf_bench_now(void);

struct gf_bench_sim {
    pid_t pid;
    char dir[64]; /* a fresh temporary directory */
};

/*
 * Starts `kubesim` with `clusters` clusters (c1..cN), the CRDs in crds,
 * Kueue-lite off (benchmarks measure the API server) and the extra
 * arguments (NULL-terminated, may be NULL); waits until it is ready.
 * 0 or a negative error (printed).
 */
int gf_bench_sim_start(struct gf_bench_sim *s, const char *kubesim,
                       const char *crds, unsigned clusters,
                       const char *const *extra);
/* The same with Kueue-lite running in every cluster (benchmarks of the
 * controller, which needs Workloads made from Jobs and admitted). */
int gf_bench_sim_start_kueue(struct gf_bench_sim *s, const char *kubesim,
                             const char *crds, unsigned clusters,
                             const char *const *extra);
/* SIGTERM, wait, remove the directory. Accepts a sim never started. */
void gf_bench_sim_stop(struct gf_bench_sim *s);
/* The child's resident memory (VmRSS), KB, or -1. */
long gf_bench_sim_rss_kb(const struct gf_bench_sim *s);
/* Any process's resident memory (VmRSS), KB, or -1. */
long gf_bench_rss_kb(pid_t pid);
/* DIR/cI/kubeconfig-admin.yaml of cluster i (1-based). */
void gf_bench_sim_kubeconfig(const struct gf_bench_sim *s, unsigned i,
                             char *out, size_t cap);

struct gf_bench;
typedef int (*gf_bench_issue_fn)(struct gf_bench *b, size_t i);

/* A loop with one kubeclient client per cluster, and the op pump. */
struct gf_bench {
    uv_loop_t loop;
    struct gf_clock clk;
    struct gf_http *http;
    struct gf_kube_client **clients;
    unsigned nclients;
    struct gf_kube_resource wl, ns;
    void *data; /* the benchmark's own state */
    /* the pump */
    gf_bench_issue_fn issue;
    size_t total, issued, done, inflight, window;
    unsigned errors;
    uint64_t objects, bytes;
    char first_error[600];
};

/* Loop, clock and one client per cluster of sim. 0 or an error. */
int gf_bench_open(struct gf_bench *b, const struct gf_bench_sim *sim,
                  unsigned clusters);
void gf_bench_close(struct gf_bench *b);

/*
 * Runs `total` calls, at most `window` in flight: issue(b, i) starts call
 * i with gf_bench_done as its callback (and b as its data). Returns the
 * wall time in seconds, or < 0 when a call failed (printed).
 */
double gf_bench_run(struct gf_bench *b, size_t total, size_t window,
                    gf_bench_issue_fn issue);
void gf_bench_done(void *data, const struct gf_kube_result *res);

/* Creates GF_BENCH_NS in every cluster, then `per_cluster` Workloads in
 * each; returns the seconds the Workloads took, < 0 on failure. */
double gf_bench_populate(struct gf_bench *b, size_t per_cluster);

/* The Workload number i of a cluster, as compact JSON into out. */
void gf_bench_workload_json(struct gf_buf *out, unsigned cluster, size_t i);

/* "what   N unit/s  (n in t s)", the benchmarks' line format. */
void gf_bench_print_rate(const char *what, double n, double secs,
                         const char *unit);

#endif
