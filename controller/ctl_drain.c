/*
 * gpufedctl drain / uncordon: take a member out of lending and give it
 * back, through the ConfigMap gpufed-drain in the hub's namespace
 * (controller/drain.h), which the hub watches.
 *
 *   gpufedctl drain MEMBER [options]     add MEMBER's key (the time now);
 *                                        print the leases it lent that
 *                                        the hub will now take back
 *   gpufedctl uncordon MEMBER [options]  remove MEMBER's key
 *
 * Both are idempotent: draining a drained member keeps its first time
 * and writes nothing; uncordoning one that is not drained writes
 * nothing. drain creates the ConfigMap when it is absent and otherwise
 * writes a merge patch of its one key, so that two admins draining two
 * members at once both win (a create that loses the race to another
 * create is retried as a patch).
 *
 * Exit status (ctl.h): 0 done (or nothing to do), 1 the API server
 * refused or could not be reached (its words are printed), 2 usage or
 * configuration errors.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "controller/ctl.h"
#include "controller/drain.h"
#include "controller/observe.h"
#include "kubeclient/http.h"
#include "kubeclient/kubeconfig.h"
#include "kubeclient/request.h"
#include "kubeclient/uvclock.h"
#include "policy/lease.h"

#define DEFAULT_NS "gpufed-system"
/* A create that loses to another create is retried as a patch; two
 * rounds cover any honest race. */
#define MAX_ROUNDS 3

struct drain_run {
    bool drain; /* else uncordon */
    const char *member, *kubeconfig, *context, *ns;
    uv_loop_t loop;
    struct gf_clock clk;
    struct gf_http *http;
    struct gf_kube_client *client;
    struct gf_kube_resource cm, ql;
    int rounds;
    int status;
};

static void drain_usage(FILE *f)
{
    fprintf(f,
            "usage: gpufedctl drain MEMBER [options]\n"
            "       gpufedctl uncordon MEMBER [options]\n"
            "\n"
            "  drain     MEMBER lends nothing new: the hub withdraws its "
            "Pending\n"
            "            leases and reclaims its Active ones (each copy gets "
            "the\n"
            "            policy's gracePeriod to checkpoint); it may still "
            "borrow.\n"
            "            Prints the leases it lent that will be taken back.\n"
            "  uncordon  MEMBER lends again.\n"
            "\n"
            "The state is the ConfigMap gpufed-drain in the hub's namespace "
            "(key:\n"
            "the member, value: when it was drained); the caller needs get, "
            "create\n"
            "and patch on it, and list on quotaleases.gpufed.io.\n"
            "\n"
            "options:\n"
            "  --kubeconfig FILE   the hub cluster; default: $KUBECONFIG, "
            "else\n"
            "                      ~/.kube/config\n"
            "  --context NAME      default: the current context\n"
            "  -n, --namespace NS  the hub's namespace (default "
            "gpufed-system)\n"
            "\n"
            "exit status: 0 done or nothing to do, 1 refused by the API "
            "server,\n"
            "2 usage or configuration error\n");
}

/* 0, 1 (help printed) or -1 (usage error). */
static int parse_args(int argc, char **argv, struct drain_run *r)
{
    r->drain = strcmp(argv[0], "drain") == 0;
    r->ns = DEFAULT_NS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (strcmp(a, "--kubeconfig") == 0)
            slot = &r->kubeconfig;
        else if (strcmp(a, "--context") == 0)
            slot = &r->context;
        else if (strcmp(a, "-n") == 0 || strcmp(a, "--namespace") == 0)
            slot = &r->ns;
        if (slot != NULL) {
            if (i + 1 >= argc)
                return -1;
            *slot = argv[++i];
        } else if (a[0] == '-' || r->member != NULL) {
            fprintf(stderr, "gpufedctl %s: bad argument '%s'\n", argv[0], a);
            return -1;
        } else {
            r->member = a;
        }
    }
    if (r->member == NULL)
        return -1;
    if (strlen(r->member) > GF_DRAIN_NAME_MAX) {
        fprintf(stderr, "gpufedctl %s: '%s' is not a member name\n", argv[0],
                r->member);
        return -1;
    }
    return 0;
}

static void fail(struct drain_run *r, const char *what,
                 const struct gf_kube_result *res)
{
    const struct gf_api_status *st = res->status;
    if (st->code > 0)
        fprintf(stderr, "error: %s: %s (%s): %s\n", what,
                st->reason[0] ? st->reason : "Unknown", gf_strerror(res->err),
                st->message);
    else
        fprintf(stderr, "error: %s: %s: %s\n", what, gf_strerror(res->err),
                st->message);
    r->status = 1;
}

/* ---- the leases a drain takes back ---------------------------------- */

static const char *fate(enum gf_lease_phase p)
{
    switch (p) {
    case GF_LEASE_PENDING:
        return "withdrawn: its Job runs elsewhere or at home";
    case GF_LEASE_ACTIVE:
        return "reclaimed after the grace period";
    case GF_LEASE_RECLAIMING:
        return "already being reclaimed";
    case GF_LEASE_SUSPECT:
        return "member unreachable: taken back when it answers";
    default:
        return "ending";
    }
}

static void on_leases(void *data, const struct gf_kube_result *res)
{
    struct drain_run *r = data;
    if (res->err != 0) {
        fail(r, "cannot list the QuotaLeases", res);
        return;
    }
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res->json, "items"))
    {
        struct gf_lease l;
        char why[160];
        if (gf_obs_lease_from_json(it, &l, why, sizeof(why)) != 0)
            continue;
        bool live = l.phase != GF_LEASE_RELEASED &&
                    l.phase != GF_LEASE_FAILED && l.lender_member != NULL &&
                    strcmp(l.lender_member, r->member) == 0;
        if (live) {
            if (n++ == 0)
                printf("leases lent by %s that the hub takes back:\n",
                       r->member);
            printf("  %s  %s  %lld GPU(s)  origin %s/%s/%s: %s\n", l.name,
                   gf_lease_phase_name(l.phase), (long long)l.gpus,
                   l.origin_member, l.origin_namespace, l.origin_name,
                   fate(l.phase));
        }
        gf_lease_clear(&l);
    }
    if (n == 0)
        printf("no live leases lent by %s\n", r->member);
}

/* The live QuotaLeases with the member as lender. One unpaged list:
 * leases are few (one per borrowed job), and this is for a person. */
static void list_leases(struct drain_run *r)
{
    struct gf_kube_list_opts lo = {.ns = r->ns};
    int rc = gf_kube_list(r->client, &r->ql, &lo, on_leases, r, NULL);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
        r->status = 1;
    }
}

/* ---- the ConfigMap ------------------------------------------------------ */

static void read_cm(struct drain_run *r);

static void on_written(void *data, const struct gf_kube_result *res)
{
    struct drain_run *r = data;
    if (res->err == GF_EEXIST || res->err == GF_ENOTFOUND) {
        /* Someone created (or deleted) the ConfigMap meanwhile: read it
         * again and decide again. */
        if (++r->rounds < MAX_ROUNDS) {
            read_cm(r);
            return;
        }
    }
    if (res->err != 0) {
        fail(r, "cannot write the ConfigMap " GF_DRAIN_CONFIGMAP, res);
        return;
    }
    if (r->drain) {
        printf("member %s drained: it lends nothing new\n", r->member);
        list_leases(r);
    } else {
        printf("member %s uncordoned: it lends again\n", r->member);
    }
}

static void write_cm(struct drain_run *r, bool exists)
{
    struct gf_buf b = GF_BUF_INIT(4096);
    int64_t now = gf_clock_wall_ms(&r->clk);
    int rc;
    if (!exists) {
        rc = gf_drain_create_body(&b, r->ns, r->member, now);
        if (rc == 0)
            rc = gf_kube_create(r->client, &r->cm, r->ns, gf_buf_cstr(&b),
                                b.len, on_written, r, NULL);
    } else {
        rc = gf_drain_patch_body(&b, r->member, r->drain, now);
        struct gf_kube_patch_opts po = {.type = GF_PATCH_MERGE};
        if (rc == 0)
            rc =
                gf_kube_patch(r->client, &r->cm, r->ns, GF_DRAIN_CONFIGMAP, &po,
                              gf_buf_cstr(&b), b.len, on_written, r, NULL);
    }
    gf_buf_free(&b);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
        r->status = 1;
    }
}

static void on_cm(void *data, const struct gf_kube_result *res)
{
    struct drain_run *r = data;
    if (res->err != 0 && res->err != GF_ENOTFOUND) {
        fail(r, "cannot read the ConfigMap " GF_DRAIN_CONFIGMAP, res);
        return;
    }
    struct gf_drain_set s = {0};
    if (res->err == 0 && gf_drain_parse(res->json, &s) != 0) {
        fprintf(stderr, "error: the ConfigMap %s/%s is not a ConfigMap\n",
                r->ns, GF_DRAIN_CONFIGMAP);
        r->status = 1;
        return;
    }
    const struct gf_drain_entry *e = gf_drain_find(&s, r->member);
    char since[32] = "an unknown time";
    if (e != NULL && e->since_ms > 0)
        gf_time_rfc3339(e->since_ms, since);
    if (r->drain && e != NULL) {
        printf("member %s already drained since %s; nothing changed\n",
               r->member, since);
        list_leases(r);
    } else if (!r->drain && e == NULL) {
        printf("member %s is not drained; nothing changed\n", r->member);
    } else {
        write_cm(r, res->err == 0);
    }
    gf_drain_set_free(&s);
}

static void read_cm(struct drain_run *r)
{
    int rc = gf_kube_get(r->client, &r->cm, r->ns, GF_DRAIN_CONFIGMAP, on_cm, r,
                         NULL);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
        r->status = 1;
    }
}

/* ---- main -------------------------------------------------------------- */

static int run(struct drain_run *r, const struct gf_kube_creds *creds)
{
    if (gf_clock_init_uv(&r->clk, &r->loop) != 0 ||
        gf_http_new(&r->loop, &r->clk, &r->http) != 0)
        return 2;
    struct gf_kube_client_opts co = {.user_agent = "gpufedctl"};
    if (gf_kube_client_new(r->http, &r->clk, creds, &co, &r->client) != 0 ||
        gf_kube_resource_parse("configmaps", &r->cm) != 0 ||
        gf_kube_resource_parse("quotaleases.gpufed.io", &r->ql) != 0)
        return 2;
    read_cm(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return r->status;
}

int gf_ctl_drain_main(int argc, char **argv)
{
    struct drain_run r = {0};
    int rc = parse_args(argc, argv, &r);
    if (rc != 0) {
        drain_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    /* Client logs go to stderr, warnings and up: stdout is the answer. */
    gf_log_set_level(GF_LOG_WARN);
    struct gf_kube_creds *creds = NULL;
    struct gf_kubeconfig_error err;
    if (gf_kubeconfig_load(r.kubeconfig, r.context, &creds, &err) != 0) {
        char line[600];
        gf_kubeconfig_error_format(&err, line, sizeof(line));
        fprintf(stderr, "gpufedctl %s: %s\n", argv[0], line);
        return 2;
    }
    if (uv_loop_init(&r.loop) != 0) {
        gf_kube_creds_free(creds);
        return 2;
    }
    int status = run(&r, creds);
    gf_kube_creds_free(creds);
    gf_kube_client_free(r.client);
    if (r.http != NULL)
        gf_http_close(r.http, NULL, NULL);
    gf_clock_close(&r.clk);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    return status;
}
