/*
 * ctl: the subcommands of gpufedctl, the operator tool.
 *
 * main_gpufedctl.c dispatches on argv[1]; each subcommand lives in its own
 * ctl_<name>.c and takes the remaining arguments (argv[0] is the
 * subcommand's name). Each returns the process exit status: 0 success,
 * 1 a negative answer (e.g. a policy that fails validation), 2 usage or
 * runtime error.
 */
#ifndef GF_CTL_H
#define GF_CTL_H

/* drain and uncordon (argv[0] says which): ctl_drain.c */
int gf_ctl_drain_main(int argc, char **argv);
int gf_ctl_kube_main(int argc, char **argv);
int gf_ctl_policy_main(int argc, char **argv);

#endif
