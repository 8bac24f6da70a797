/*
 * gpufed: the controller's program. `gpufed hub` runs in the hub cluster
 * (controller/hub.h), `gpufed agent` in each member (controller/agent.h).
 * Only main() parses arguments, installs signal handlers and exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "controller/agent.h"
#include "controller/hub.h"
#include "kubeclient/global.h"
#include "kubeclient/kubeconfig.h"
#include "kubeclient/uvclock.h"

struct hub_args {
    const char *kubeconfig, *context, *policy, *listen, *ns, *id;
    const char *log_level, *leader_lease;
};

static void hub_usage(FILE *f)
{
    fprintf(f,
            "usage: gpufed hub --policy FILE [--kubeconfig FILE]\n"
            "                  [--context NAME] [--namespace NS]\n"
            "                  [--listen ADDR] [--id NAME]\n"
            "                  [--leader-lease DUR] [--log-level L]\n"
            "\n"
            "Runs the hub: watches every member named in the policy, keeps\n"
            "the ledger of idle GPU quota and redirects Workloads that wait\n"
            "for longer than overflowAfter to members with idle quota,\n"
            "under QuotaLeases in the hub. The leader renews a heartbeat\n"
            "Lease in every member every leaseDuration/3; a member's\n"
            "`gpufed agent` fences borrowed copies when it lapses.\n"
            "\n"
            "  --policy FILE      the FederationPolicy (required)\n"
            "  --kubeconfig FILE  the hub cluster; without it, the Pod's\n"
            "                     service account (in-cluster)\n"
            "  --context NAME     a kubeconfig context (default: current)\n"
            "  --namespace NS     where QuotaLeases and member Secrets live\n"
            "                     (default gpufed-system)\n"
            "  --listen ADDR      /metrics, /healthz, /readyz (e.g. :8080)\n"
            "  --id NAME          this replica's identity in the leader\n"
            "                     election (default: the host name);\n"
            "                     replicas need distinct ids (the\n"
            "                     manifests pass the Pod's name)\n"
            "  --leader-lease DUR the leader Lease's duration (default\n"
            "                     15s): a standby takes over after DUR\n"
            "                     without renewal; the leader stops\n"
            "                     writing after 2/3 of it without one,\n"
            "                     and exits (status 1) to start again\n"
            "                     as a candidate\n"
            "  --log-level L      debug, info (default), warn, error\n"
            "\n"
            "Environment, for fault tests only: GPUFED_CLOCK_RATE_PPM=N\n"
            "runs the monotonic clock at (1 + N/1e6) times real time\n"
            "(|N| <= 500000).\n"
            "\n"
            "Exit status: 0 on SIGINT/SIGTERM, 1 when the policy is invalid\n"
            "or leadership was lost, 2 on other errors.\n");
}

static int parse_args(int argc, char **argv, struct hub_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char **dst = NULL;
        if (strcmp(k, "-h") == 0 || strcmp(k, "--help") == 0)
            return 1;
        if (strcmp(k, "--kubeconfig") == 0)
            dst = &a->kubeconfig;
        else if (strcmp(k, "--context") == 0)
            dst = &a->context;
        else if (strcmp(k, "--policy") == 0)
            dst = &a->policy;
        else if (strcmp(k, "--listen") == 0)
            dst = &a->listen;
        else if (strcmp(k, "--namespace") == 0)
            dst = &a->ns;
        else if (strcmp(k, "--id") == 0)
            dst = &a->id;
        else if (strcmp(k, "--log-level") == 0)
            dst = &a->log_level;
        else if (strcmp(k, "--leader-lease") == 0)
            dst = &a->leader_lease;
        if (dst == NULL || i + 1 >= argc) {
            fprintf(stderr, "gpufed hub: %s '%s'\n",
                    dst == NULL ? "unknown option" : "missing value for", k);
            return -EINVAL;
        }
        *dst = argv[++i];
    }
    if (a->policy == NULL) {
        fprintf(stderr, "gpufed hub: --policy is required\n");
        return -EINVAL;
    }
    return 0;
}

/*
 * Tests only: GPUFED_CLOCK_RATE_PPM=N runs this process's monotonic clock
 * at (1 + N/1e6) times real time, the clock-rate drift the lease protocol
 * bounds by rho (the chaos suite's clock-drift fault). Like
 * GPUFED_CRASH_AFTER it is an environment variable, not a flag, so that
 * no Deployment grows it by accident. Logged at warn so that a skewed
 * process is never mistaken for a healthy one. 0 or -EINVAL (said why).
 */
static int clock_rate_from_env(const char *cmd, int32_t *ppm)
{
    *ppm = 0;
    const char *v = getenv("GPUFED_CLOCK_RATE_PPM");
    if (v == NULL || *v == '\0')
        return 0;
    if (gf_clock_rate_parse(v, ppm) != 0) {
        fprintf(stderr,
                "gpufed %s: bad GPUFED_CLOCK_RATE_PPM '%s' (an integer "
                "within +-%d)\n",
                cmd, v, GF_CLOCK_RATE_MAX_PPM);
        return -EINVAL;
    }
    if (*ppm != 0) {
        struct gf_log_ctx lc = {.comp = cmd};
        GF_LOG(&lc, GF_LOG_WARN, "clock rate skewed for testing", "ppm=%ld",
               (long)*ppm);
    }
    return 0;
}

static int load_creds(const char *cmd, const char *kubeconfig,
                      const char *context, struct gf_kube_creds **out)
{
    struct gf_kubeconfig_error err;
    int rc = kubeconfig != NULL
                 ? gf_kubeconfig_load(kubeconfig, context, out, &err)
                 : gf_kubeconfig_in_cluster(NULL, out, &err);
    if (rc != 0) {
        char line[600];
        gf_kubeconfig_error_format(&err, line, sizeof(line));
        fprintf(stderr, "gpufed %s: %s\n", cmd, line);
    }
    return rc;
}

struct run {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct gf_hub *hub;
    struct gf_agent *agent;
    bool stopping, fatal, deposed;
};

static void on_stopped(void *data)
{
    struct run *r = data;
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct run *r = s->data;
    (void)signum;
    if (r->stopping)
        return;
    r->stopping = true;
    if (r->agent != NULL)
        gf_agent_stop(r->agent, on_stopped, r);
    else
        gf_hub_stop(r->hub, on_stopped, r);
}

/* STYLE: a leader that loses its lease stops writing (the hub has) and
 * exits; its Deployment starts it again as a candidate with fresh state. */
static void on_deposed(void *data)
{
    struct run *r = data;
    if (r->stopping)
        return;
    r->deposed = true;
    r->stopping = true;
    gf_hub_stop(r->hub, on_stopped, r);
}

static int hub_main(int argc, char **argv)
{
    struct hub_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        hub_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    enum gf_log_level lvl = GF_LOG_INFO;
    if (a.log_level != NULL && gf_log_parse_level(a.log_level, &lvl) != 0) {
        fprintf(stderr, "gpufed hub: bad --log-level '%s'\n", a.log_level);
        return 2;
    }
    gf_log_set_level(lvl);
    int32_t ppm = 0;
    if (clock_rate_from_env("hub", &ppm) != 0)
        return 2;
    int64_t lease_ms = 15000;
    if (a.leader_lease != NULL &&
        (gf_duration_parse_ms(a.leader_lease, &lease_ms) != 0 ||
         lease_ms < 1000)) {
        fprintf(stderr,
                "gpufed hub: bad --leader-lease '%s' (a duration, 1s at "
                "least)\n",
                a.leader_lease);
        return 2;
    }
    /* Replicas must not share an id: two holders of one identity would
     * both believe they lead. The host name is distinct per Pod. */
    char host[256] = "gpufed-hub";
    if (a.id == NULL) {
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "gpufed-hub");
        host[sizeof(host) - 1] = '\0';
        a.id = host;
    }
    struct gf_kube_creds *creds = NULL;
    if (load_creds("hub", a.kubeconfig, a.context, &creds) != 0)
        return 2;
    struct run r = {0};
    uv_loop_init(&r.loop);
    struct gf_hub_opts o = {
        .loop = &r.loop,
        .hub_creds = creds,
        .policy_path = a.policy,
        .listen = a.listen,
        .ns = a.ns,
        .id = a.id,
        .leader_lease_ms = (uint64_t)lease_ms,
        /* Tests only: see gf_hub_opts.crash_after. */
        .crash_after = getenv("GPUFED_CRASH_AFTER"),
        .clock_rate_ppm = ppm,
        .on_leadership_lost = on_deposed,
        .on_leadership_lost_data = &r,
    };
    rc = gf_hub_start(&o, &r.hub);
    gf_kube_creds_free(creds);
    int status = 0;
    if (rc == 0) {
        uv_signal_init(&r.loop, &r.sigint);
        uv_signal_init(&r.loop, &r.sigterm);
        r.sigint.data = r.sigterm.data = &r;
        uv_signal_start(&r.sigint, on_signal, SIGINT);
        uv_signal_start(&r.sigterm, on_signal, SIGTERM);
        uv_run(&r.loop, UV_RUN_DEFAULT);
    } else {
        /* An invalid policy is the admin's to fix (1); anything else, 2. */
        status = rc == GF_ECONFIG ? 1 : 2;
        uv_run(&r.loop, UV_RUN_DEFAULT);
    }
    if (r.deposed)
        status = 1;
    if (uv_loop_close(&r.loop) != 0)
        status = status ? status : 3;
    return status;
}

/* --- agent --------------------------------------------------------------- */

struct agent_args {
    const char *kubeconfig, *context, *member, *listen, *log_level, *offset;
};

static void agent_usage(FILE *f)
{
    fprintf(
        f, "usage: gpufed agent --member NAME [--kubeconfig FILE]\n"
           "                    [--context NAME] [--listen ADDR]\n"
           "                    [--max-clock-offset DUR] [--log-level L]\n"
           "\n"
           "Runs the fencing agent in a member: when the hub's heartbeat\n"
           "(Lease gpufed-system/gpufed-heartbeat) has not moved for its\n"
           "lease duration, deactivates every borrowed copy's Workload.\n"
           "\n"
           "  --member NAME           this member's name in the policy\n"
           "  --kubeconfig FILE       this member's API server; without it,\n"
           "                          the Pod's service account (in-cluster)\n"
           "  --context NAME          a kubeconfig context (default: current)\n"
           "  --listen ADDR           /metrics, /healthz, /readyz (:8081)\n"
           "  --max-clock-offset DUR  how far this cluster's clock may be\n"
           "                          behind the hub's (default 1s)\n"
           "  --log-level L           debug, info (default), warn, error\n"
           "\n"
           "Environment, for fault tests only: GPUFED_CLOCK_RATE_PPM=N runs\n"
           "the monotonic clock at (1 + N/1e6) times real time.\n");
}

static int parse_agent_args(int argc, char **argv, struct agent_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char **dst = NULL;
        if (strcmp(k, "-h") == 0 || strcmp(k, "--help") == 0)
            return 1;
        if (strcmp(k, "--kubeconfig") == 0)
            dst = &a->kubeconfig;
        else if (strcmp(k, "--context") == 0)
            dst = &a->context;
        else if (strcmp(k, "--member") == 0)
            dst = &a->member;
        else if (strcmp(k, "--listen") == 0)
            dst = &a->listen;
        else if (strcmp(k, "--max-clock-offset") == 0)
            dst = &a->offset;
        else if (strcmp(k, "--log-level") == 0)
            dst = &a->log_level;
        if (dst == NULL || i + 1 >= argc) {
            fprintf(stderr, "gpufed agent: %s '%s'\n",
                    dst == NULL ? "unknown option" : "missing value for", k);
            return -EINVAL;
        }
        *dst = argv[++i];
    }
    if (a->member == NULL || a->member[0] == '\0') {
        fprintf(stderr, "gpufed agent: --member is required\n");
        return -EINVAL;
    }
    return 0;
}

static void on_agent_fatal(void *data)
{
    struct run *r = data;
    r->fatal = true;
    on_signal(&r->sigterm, SIGTERM);
}

static int agent_main(int argc, char **argv)
{
    struct agent_args a = {0};
    int rc = parse_agent_args(argc, argv, &a);
    if (rc != 0) {
        agent_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    enum gf_log_level lvl = GF_LOG_INFO;
    int64_t offset_ms = 1000;
    if (a.log_level != NULL && gf_log_parse_level(a.log_level, &lvl) != 0) {
        fprintf(stderr, "gpufed agent: bad --log-level '%s'\n", a.log_level);
        return 2;
    }
    if (a.offset != NULL &&
        (gf_duration_parse_ms(a.offset, &offset_ms) != 0 || offset_ms < 0)) {
        fprintf(stderr, "gpufed agent: bad --max-clock-offset '%s'\n",
                a.offset);
        return 2;
    }
    gf_log_set_level(lvl);
    int32_t ppm = 0;
    if (clock_rate_from_env("agent", &ppm) != 0)
        return 2;
    struct gf_kube_creds *creds = NULL;
    if (load_creds("agent", a.kubeconfig, a.context, &creds) != 0)
        return 2;
    struct run r = {0};
    uv_loop_init(&r.loop);
    uv_signal_init(&r.loop, &r.sigint);
    uv_signal_init(&r.loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    struct gf_agent_opts o = {.loop = &r.loop,
                              .creds = creds,
                              .member = a.member,
                              .listen = a.listen,
                              .max_clock_offset_ms = (uint64_t)offset_ms,
                              .clock_rate_ppm = ppm,
                              .on_fatal = on_agent_fatal,
                              .data = &r};
    rc = gf_agent_start(&o, &r.agent);
    gf_kube_creds_free(creds);
    int status = 0;
    if (r.agent == NULL) {
        on_stopped(&r);
        status = 2;
    } else {
        uv_signal_start(&r.sigint, on_signal, SIGINT);
        uv_signal_start(&r.sigterm, on_signal, SIGTERM);
        if (rc != 0)
            on_agent_fatal(&r);
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    /* The agent stopped by itself: it cannot run (it logged why). */
    if (r.fatal)
        status = 2;
    if (uv_loop_close(&r.loop) != 0)
        status = status ? status : 3;
    return status;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gpufed COMMAND [ARGS...]\n\ncommands:\n"
               "  hub      run the controller in the hub cluster\n"
               "  agent    run the fencing agent in a member cluster\n"
               "\nRun 'gpufed COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    bool agent = strcmp(argv[1], "agent") == 0;
    if (!agent && strcmp(argv[1], "hub") != 0) {
        fprintf(stderr, "gpufed: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (gf_kube_global_init() != 0)
        return 2;
    int rc =
        agent ? agent_main(argc - 1, argv + 1) : hub_main(argc - 1, argv + 1);
    gf_kube_global_cleanup();
    return rc;
}
