/*
 * gpufedctl: the operator tool. Dispatches to one ctl_<name>.c per
 * subcommand so that each stays small and testable.
 */
#include "controller/ctl.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "kubeclient/global.h"

struct subcommand {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"drain", "a member lends nothing new; its leases are taken back",
     gf_ctl_drain_main},
    {"kube", "talk to any API server: get, watch", gf_ctl_kube_main},
    {"policy", "check or explain a FederationPolicy", gf_ctl_policy_main},
    {"uncordon", "a drained member lends again", gf_ctl_drain_main},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: gpufedctl COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nRun 'gpufedctl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            if (gf_kube_global_init() != 0)
                return 2;
            int rc = subcommands[i].main(argc - 1, argv + 1);
            gf_kube_global_cleanup();
            return rc;
        }
    }
    fprintf(stderr, "gpufedctl: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
