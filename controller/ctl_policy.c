/*
 * gpufedctl policy: offline work on a FederationPolicy file.
 *
 *   gpufedctl policy check FILE...   validate; every error as
 *                                    FILE:LINE:COL: error: PATH: MSG
 *   gpufedctl policy explain POLICY SNAPSHOT [MEMBER/NAMESPACE/NAME]
 *            [--at MS] [-o text|json]
 *                                    offline: with a Workload, why it is
 *                                    where it is and what happens next;
 *                                    without, every action decide() takes
 *
 * Exit status (ctl.h): 0 every file is valid, 1 some file is invalid,
 * 2 usage error or a file that cannot be read.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "common/json.h"
#include "controller/ctl.h"
#include "policy/config.h"
#include "policy/decide.h"
#include "policy/explain.h"
#include "policy/snapshot.h"

static void policy_usage(FILE *f)
{
    fprintf(f, "usage: gpufedctl policy check FILE...\n"
               "       gpufedctl policy explain POLICY SNAPSHOT "
               "[MEMBER/NAMESPACE/NAME]\n"
               "                [--at MS] [-o text|json]\n"
               "\n"
               "  check     validate FederationPolicy files; print every "
               "error\n"
               "            as FILE:LINE:COL: error: PATH: MSG\n"
               "  explain   offline, from a ledger snapshot: why a Workload "
               "is where\n"
               "            it is and what happens next; without one, every "
               "action\n"
               "            the next decision pass takes (--at: its time, "
               "default\n"
               "            the snapshot's nowMs)\n"
               "\n"
               "exit status: 0 valid / explained, 1 invalid / not found, 2 "
               "usage\n"
               "or read error\n");
}

/* One line that says what the valid policy holds. */
static void print_summary(const char *file, const struct gf_policy *p)
{
    printf("%s: valid: %zu members, %zu groups, %zu flavor classes, "
           "%zu sharing rules\n",
           file, p->n_members, p->n_groups, p->n_classes, p->n_rules);
}

/* 0 valid, 1 invalid, 2 unreadable. */
static int check_one(const char *file)
{
    char *data;
    size_t len;
    int rc = gf_file_read(file, GF_POLICY_MAX_BYTES, &data, &len);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot read: %s\n", file,
                rc == GF_E2BIG ? "larger than 1 MiB" : gf_strerror(rc));
        return 2;
    }
    struct gf_policy *p = NULL;
    struct gf_policy_diag diag;
    gf_policy_diag_init(&diag);
    rc = gf_policy_parse(data, len, &p, &diag);
    gf_free(data);
    int status = 0;
    if (rc == 0) {
        print_summary(file, p);
        gf_policy_free(p);
    } else {
        struct gf_buf out = GF_BUF_INIT(SIZE_MAX);
        gf_policy_diag_format(&diag, file, &out);
        fputs(gf_buf_cstr(&out), stderr);
        fprintf(stderr, "%s: invalid: %zu error(s)\n", file,
                diag.n + diag.dropped);
        gf_buf_free(&out);
        status = 1;
    }
    gf_policy_diag_free(&diag);
    return status;
}

static int policy_check(int argc, char **argv)
{
    if (argc < 2) {
        policy_usage(stderr);
        return 2;
    }
    int worst = 0;
    for (int i = 1; i < argc; i++) {
        int rc = check_one(argv[i]);
        worst = rc > worst ? rc : worst;
    }
    return worst;
}

/* Reads and parses a policy; 0, 1 (invalid, printed) or 2 (unreadable). */
static int load_policy(const char *file, struct gf_policy **out)
{
    char *data;
    size_t len;
    int rc = gf_file_read(file, GF_POLICY_MAX_BYTES, &data, &len);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot read: %s\n", file, gf_strerror(rc));
        return 2;
    }
    struct gf_policy_diag diag;
    gf_policy_diag_init(&diag);
    rc = gf_policy_parse(data, len, out, &diag);
    gf_free(data);
    if (rc != 0) {
        struct gf_buf b = GF_BUF_INIT(SIZE_MAX);
        gf_policy_diag_format(&diag, file, &b);
        fputs(gf_buf_cstr(&b), stderr);
        gf_buf_free(&b);
    }
    gf_policy_diag_free(&diag);
    return rc == 0 ? 0 : 1;
}

static int load_snapshot(const char *file, struct gf_ledger **out,
                         int64_t *now_ms)
{
    char *data;
    size_t len;
    int rc = gf_file_read(file, GF_SNAPSHOT_MAX_BYTES, &data, &len);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot read: %s\n", file, gf_strerror(rc));
        return 2;
    }
    char err[256];
    rc = gf_snapshot_load(data, len, out, now_ms, err, sizeof(err));
    gf_free(data);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", file, err);
        return 1;
    }
    return 0;
}

struct explain_args {
    const char *policy, *snapshot, *workload;
    const char *at;
    bool json;
};

static int parse_explain(int argc, char **argv, struct explain_args *a)
{
    const char *pos[3] = {NULL, NULL, NULL};
    size_t npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--at") == 0 && i + 1 < argc)
            a->at = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            const char *o = argv[++i];
            if (strcmp(o, "json") != 0 && strcmp(o, "text") != 0)
                return -1;
            a->json = strcmp(o, "json") == 0;
        } else if (argv[i][0] != '-' && npos < 3)
            pos[npos++] = argv[i];
        else
            return -1;
    }
    a->policy = pos[0];
    a->snapshot = pos[1];
    a->workload = pos[2];
    return npos >= 2 ? 0 : -1;
}

/* One Workload: "member/namespace/name". */
static int explain_one(const struct explain_args *a, const struct gf_ledger *l,
                       const struct gf_policy *p, int64_t now)
{
    char buf[800];
    snprintf(buf, sizeof(buf), "%s", a->workload);
    char *ns = strchr(buf, '/');
    char *name = ns != NULL ? strchr(ns + 1, '/') : NULL;
    if (name == NULL) {
        fprintf(stderr,
                "gpufedctl policy explain: expected "
                "MEMBER/NAMESPACE/NAME, got %s\n",
                a->workload);
        return 2;
    }
    *ns++ = '\0';
    *name++ = '\0';
    cJSON *ex = NULL;
    if (gf_explain(l, p, now, buf, ns, name, &ex) != 0) {
        fprintf(stderr, "%s: no Workload %s in the snapshot\n", a->snapshot,
                a->workload);
        return 1;
    }
    char *s = NULL;
    if (a->json)
        s = cJSON_Print(ex);
    else
        gf_explain_words(l, p, now, buf, ns, name, &s);
    fputs(s, stdout);
    if (a->json)
        fputs("\n", stdout);
    if (a->json)
        cJSON_free(s);
    else
        gf_free(s);
    cJSON_Delete(ex);
    return 0;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* A START says which mode it chose; the why says why. */
static const char *start_mode(const struct gf_action *x)
{
    return x->kind == GF_ACT_START ? gf_lease_mode_name(x->mode) : "";
}

static void print_action(const struct gf_action *x)
{
    printf("%-8s %-32s -> %s/%s %s%s%s: %s [%s]\n",
           gf_action_kind_name(x->kind),
           or_empty(x->lease != NULL ? x->lease : x->name), or_empty(x->lender),
           or_empty(x->lender_cq), or_empty(x->flavor),
           x->kind == GF_ACT_START ? " " : "", start_mode(x), x->why.text,
           or_empty(x->why.rule));
}

static cJSON *action_json(const struct gf_action *x)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", gf_action_kind_name(x->kind));
    cJSON_AddStringToObject(o, "subject",
                            or_empty(x->lease != NULL ? x->lease : x->name));
    cJSON_AddStringToObject(o, "lender", or_empty(x->lender));
    cJSON_AddStringToObject(o, "clusterQueue", or_empty(x->lender_cq));
    cJSON_AddStringToObject(o, "flavor", or_empty(x->flavor));
    if (x->kind == GF_ACT_START)
        cJSON_AddStringToObject(o, "mode", start_mode(x));
    cJSON_AddStringToObject(o, "rule", or_empty(x->why.rule));
    cJSON_AddStringToObject(o, "text", x->why.text);
    cJSON_AddNumberToObject(o, "gpus", (double)x->gpus);
    return o;
}

/* Every action of the next pass, one line each (or a JSON array). */
static int explain_all(const struct explain_args *a, const struct gf_ledger *l,
                       const struct gf_policy *p, int64_t now)
{
    struct gf_actions acts = {0};
    if (gf_decide(l, p, now, &acts) != 0) {
        fprintf(stderr, "the snapshot's resource is not the policy's\n");
        return 1;
    }
    cJSON *arr = a->json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < acts.n; i++) {
        if (arr != NULL)
            cJSON_AddItemToArray(arr, action_json(&acts.v[i]));
        else
            print_action(&acts.v[i]);
    }
    if (arr != NULL) {
        char *s = cJSON_Print(arr);
        puts(s);
        cJSON_free(s);
        cJSON_Delete(arr);
    }
    gf_actions_free(&acts);
    return 0;
}

static int policy_explain(int argc, char **argv)
{
    struct explain_args a = {0};
    if (parse_explain(argc, argv, &a) != 0) {
        policy_usage(stderr);
        return 2;
    }
    struct gf_policy *p = NULL;
    struct gf_ledger *l = NULL;
    int64_t now = 0;
    int rc = load_policy(a.policy, &p);
    if (rc == 0)
        rc = load_snapshot(a.snapshot, &l, &now);
    if (rc == 0 && a.at != NULL && gf_parse_i64(a.at, &now) != 0) {
        fprintf(stderr, "--at: expected milliseconds\n");
        rc = 2;
    }
    if (rc == 0)
        rc = a.workload != NULL ? explain_one(&a, l, p, now)
                                : explain_all(&a, l, p, now);
    gf_ledger_free(l);
    gf_policy_free(p);
    return rc;
}

int gf_ctl_policy_main(int argc, char **argv)
{
    if (argc < 2) {
        policy_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        policy_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "check") == 0)
        return policy_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "explain") == 0)
        return policy_explain(argc - 1, argv + 1);
    fprintf(stderr, "gpufedctl policy: unknown command '%s'\n\n", argv[1]);
    policy_usage(stderr);
    return 2;
}
