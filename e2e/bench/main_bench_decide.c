/*
 * bench_decide: the cost of the pure core at the target scale.
 *
 *   bench_decide [--members M] [--queues Q] [--workloads W] [--quick]
 *
 * Builds a policy with M members and Q groups (group i is ClusterQueue i
 * of every member) and a ledger with M x Q ClusterQueues and W Workloads
 * (a third pending, the rest admitted), then measures, each over many
 * samples, with percentiles:
 *   - an incremental ledger update (a Workload changing state);
 *   - one decision: gf_decide_workload() for a pending Workload, which
 *     weighs every lender ClusterQueue of its group under every cap;
 *   - a full decision pass (gf_decide) over all pending Workloads.
 * Targets (DESIGN.md, issue): p99 decision <= 1 ms, update <= 5 us.
 * Figures only: nothing here asserts a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/rand.h"
#include "policy/config.h"
#include "policy/decide.h"
#include "policy/ledger.h"

#define GPU "nvidia.com/gpu"
#define MIN_MS ((int64_t)60000)

struct opts {
    unsigned members, queues, workloads;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    printf("%-36s p50 %9.2f us  p99 %9.2f us  max %9.2f us  (%zu samples)\n",
           what, v[n / 2], v[n * 99 / 100], v[n - 1], n);
}

static struct gf_policy *make_policy(const struct opts *o)
{
    struct gf_buf b = GF_BUF_INIT(SIZE_MAX);
    gf_buf_puts(&b, "apiVersion: gpufed.io/v1alpha1\nkind: FederationPolicy\n"
                    "spec:\n  locality: [region]\n  members:\n");
    for (unsigned m = 0; m < o->members; m++)
        gf_buf_printf(&b,
                      "  - {name: m%03u, apiServer: 'https://m%03u:6443', "
                      "credentialsSecret: s/m%03u, labels: {region: r%u}}\n",
                      m, m, m, m % 4);
    gf_buf_puts(&b, "  groups:\n");
    for (unsigned q = 0; q < o->queues; q++) {
        gf_buf_printf(&b,
                      "  - name: g%02u\n    reserve: {gpus: 1}\n"
                      "    clusterQueues:\n",
                      q);
        for (unsigned m = 0; m < o->members; m++)
            gf_buf_printf(&b, "    - {member: m%03u, name: cq%02u}\n", m, q);
    }
    gf_buf_puts(&b, "  sharing:\n    rules:\n    - {name: all, lenders: ['*'],"
                    " borrowers: ['*'], maxGPUs: 64}\n");
    struct gf_policy *p = NULL;
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    int rc = gf_policy_parse(b.data, b.len, &p, &d);
    if (rc != 0) {
        struct gf_buf e = GF_BUF_INIT(1 << 16);
        gf_policy_diag_format(&d, "bench", &e);
        fprintf(stderr, "bench: policy: %s", gf_buf_cstr(&e));
        gf_buf_free(&e);
    }
    gf_policy_diag_free(&d);
    gf_buf_free(&b);
    return p;
}

static void workload(struct gf_workload *w, char *name, size_t cap,
                     char *member, char *cq, unsigned i, const struct opts *o,
                     enum gf_wl_state st)
{
    unsigned m = i % o->members, q = (i / o->members) % o->queues;
    snprintf(member, 16, "m%03u", m);
    snprintf(cq, 16, "cq%02u", q);
    snprintf(name, cap, "job-%06u", i);
    *w = (struct gf_workload){.member = member,
                              .namespace = "team",
                              .name = name,
                              .uid = name,
                              .cluster_queue = cq,
                              .flavor = st == GF_WL_PENDING ? NULL : "a100",
                              .kind = "batch/Job",
                              .gpus = 1 + i % 4,
                              .priority = (int32_t)(i % 7),
                              .state = st,
                              .pending_since_ms = (int64_t)(i % 100) * 1000};
}

static struct gf_ledger *make_ledger(const struct opts *o)
{
    struct gf_ledger *l = gf_ledger_new(GPU);
    char member[16], cq[16], name[32];
    for (unsigned m = 0; m < o->members; m++) {
        snprintf(member, sizeof(member), "m%03u", m);
        gf_ledger_member_set(l, member, GF_FRESH_SYNCED, 0);
        /* Every lender's namespace accepts copies (the hub's check, too). */
        gf_ledger_ns_set(l, member, "default", false);
        gf_ledger_ns_set(l, member, "team", true);
        for (unsigned q = 0; q < o->queues; q++) {
            snprintf(cq, sizeof(cq), "cq%02u", q);
            struct gf_cq_quota quota = {"a100", GPU, 64, GF_NO_LIMIT,
                                        GF_NO_LIMIT};
            gf_ledger_cq_set(l, member, cq, &quota, 1);
        }
    }
    for (unsigned i = 0; i < o->workloads; i++) {
        struct gf_workload w;
        workload(&w, name, sizeof(name), member, cq, i, o,
                 i % 3 == 0 ? GF_WL_PENDING : GF_WL_ADMITTED);
        gf_ledger_workload_set(l, &w);
    }
    return l;
}

static void bench_updates(struct gf_ledger *l, const struct opts *o,
                          struct gf_rand *rng)
{
    size_t n = 100000;
    double *v = gf_calloc(n, sizeof(*v));
    char member[16], cq[16], name[32];
    for (size_t k = 0; k < n; k++) {
        unsigned i = (unsigned)gf_rand_range(rng, 0, o->workloads - 1);
        struct gf_workload w;
        /* Flip between Pending and Admitted: both sides' aggregates move. */
        const struct gf_ledger_wl *cur = NULL;
        workload(&w, name, sizeof(name), member, cq, i, o, GF_WL_PENDING);
        cur = gf_ledger_workload(l, member, "team", name);
        enum gf_wl_state st = cur != NULL && cur->state == GF_WL_PENDING
                                  ? GF_WL_ADMITTED
                                  : GF_WL_PENDING;
        workload(&w, name, sizeof(name), member, cq, i, o, st);
        double t0 = now_us();
        gf_ledger_workload_set(l, &w);
        v[k] = now_us() - t0;
    }
    report("ledger update (one Workload)", v, n);
    gf_free(v);
}

static void bench_decisions(const struct gf_ledger *l,
                            const struct gf_policy *p, const struct opts *o,
                            struct gf_rand *rng)
{
    size_t n = 2000, starts = 0;
    double *v = gf_calloc(n, sizeof(*v));
    char member[16], cq[16], name[32];
    for (size_t k = 0; k < n; k++) {
        unsigned i =
            3 * (unsigned)gf_rand_range(rng, 0, (o->workloads - 1) / 3);
        struct gf_workload w;
        workload(&w, name, sizeof(name), member, cq, i, o, GF_WL_PENDING);
        struct gf_action a;
        int s = 0;
        double t0 = now_us();
        gf_decide_workload(l, p, 10 * MIN_MS, member, "team", name, &a, &s);
        v[k] = now_us() - t0;
        starts += (size_t)s;
        gf_action_clear(&a);
    }
    report("decision (one pending Workload)", v, n);
    printf("%-36s %zu of %zu would start a lease\n", "  of which", starts, n);
    gf_free(v);
}

static void bench_pass(const struct gf_ledger *l, const struct gf_policy *p)
{
    double v[3];
    size_t actions = 0;
    for (size_t k = 0; k < 3; k++) {
        struct gf_actions acts = {0};
        double t0 = now_us();
        gf_decide(l, p, 10 * MIN_MS, &acts);
        v[k] = now_us() - t0;
        actions = acts.n;
        gf_actions_free(&acts);
    }
    qsort(v, 3, sizeof(v[0]), cmp_double);
    printf("%-36s %9.1f ms for %zu pending Workloads, %zu actions (median "
           "of 3)\n",
           "full decision pass", v[1] / 1000.0, gf_ledger_n_pending(l),
           actions);
}

/* The same pass in slices of the hub's budget (one per loop turn in the
 * hub): how many, the longest, and the total against the whole pass. */
static void bench_sliced_pass(const struct gf_ledger *l,
                              const struct gf_policy *p, size_t budget)
{
    struct gf_actions acts = {0};
    struct gf_decide_pass *dp;
    double t0 = now_us(), longest = 0;
    if (gf_decide_begin(l, p, 10 * MIN_MS, &acts, &dp) != 0)
        return;
    double first = now_us() - t0;
    size_t slices = 0;
    int done = 0;
    while (!done) {
        double s0 = now_us();
        done = gf_decide_step(dp, l, p, budget, &acts);
        double dt = now_us() - s0;
        longest = dt > longest ? dt : longest;
        slices++;
    }
    double total = now_us() - t0;
    gf_decide_pass_free(dp);
    printf("%-36s %9.1f ms in %zu slices of %zu (longest %.1f ms, upkeep "
           "%.1f ms), %zu actions\n",
           "sliced decision pass", total / 1000.0, slices, budget,
           longest / 1000.0, first / 1000.0, acts.n);
    gf_actions_free(&acts);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        unsigned *dst = NULL;
        if (strcmp(argv[i], "--quick") == 0) {
            *o = (struct opts){10, 10, 3000};
            continue;
        }
        if (strcmp(argv[i], "--members") == 0)
            dst = &o->members;
        else if (strcmp(argv[i], "--queues") == 0)
            dst = &o->queues;
        else if (strcmp(argv[i], "--workloads") == 0)
            dst = &o->workloads;
        char *end;
        unsigned long v = i + 1 < argc ? strtoul(argv[i + 1], &end, 10) : 0;
        if (dst == NULL || v == 0 || *end != '\0' || v > 10000000)
            return -EINVAL;
        *dst = (unsigned)v;
        i++;
    }
    return o->members >= 2 && o->queues <= 100 && o->members <= 1000 ? 0
                                                                     : -EINVAL;
}

int main(int argc, char **argv)
{
    struct opts o = {100, 100, 100000};
    if (parse_args(argc, argv, &o) != 0) {
        fputs("usage: bench_decide [--members M (2-1000)] [--queues Q (1-100)] "
              "[--workloads W] [--quick]\n",
              stderr);
        return 2;
    }
    printf("bench_decide: %u members x %u ClusterQueues, %u Workloads\n",
           o.members, o.queues, o.workloads);
    double t0 = now_us();
    struct gf_policy *p = make_policy(&o);
    if (p == NULL)
        return 1;
    double t1 = now_us();
    struct gf_ledger *l = make_ledger(&o);
    double t2 = now_us();
    printf("%-36s %9.1f ms\n%-36s %9.1f ms (%.2f us per Workload)\n",
           "policy parse", (t1 - t0) / 1000.0, "ledger build",
           (t2 - t1) / 1000.0, (t2 - t1) / o.workloads);
    struct gf_rand rng;
    gf_rand_seed(&rng, 42);
    bench_decisions(l, p, &o, &rng);
    bench_pass(l, p);
    bench_sliced_pass(l, p, 256);
    bench_sliced_pass(l, p, 64);
    bench_updates(l, &o, &rng);
    char why[256];
    int rc = gf_ledger_verify(l, why, sizeof(why));
    if (rc != 0)
        fprintf(stderr, "bench: ledger inconsistent: %s\n", why);
    gf_ledger_free(l);
    gf_policy_free(p);
    return rc == 0 ? 0 : 1;
}
