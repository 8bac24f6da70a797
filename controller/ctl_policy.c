/*
 * gpufedctl policy: offline work on a FederationPolicy file.
 *
 *   gpufedctl policy check FILE...   validate; every error as
 *                                    FILE:LINE:COL: error: PATH: MSG
 *
 * Exit status (ctl.h): 0 every file is valid, 1 some file is invalid,
 * 2 usage error or a file that cannot be read.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/file.h"
#include "controller/ctl.h"
#include "policy/config.h"

static void policy_usage(FILE *f)
{
    fprintf(f, "usage: gpufedctl policy check FILE...\n"
               "\n"
               "  check   validate FederationPolicy files; print every error\n"
               "          as FILE:LINE:COL: error: PATH: MSG\n"
               "\n"
               "exit status: 0 valid, 1 invalid, 2 usage or read error\n");
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
    fprintf(stderr, "gpufedctl policy: unknown command '%s'\n\n", argv[1]);
    policy_usage(stderr);
    return 2;
}
