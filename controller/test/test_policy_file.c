/*
 * Tests for controller/policy_file: the policy in force and its hot reload,
 * on the real example manifests/policy/federation-policy.yaml.
 *
 * A real libuv loop runs the pool work (stat, read, parse); the manual
 * clock drives the polling. One poll is gf_clock_advance() by the period,
 * which queues the work, then uv_run(UV_RUN_DEFAULT), which returns once
 * the work is done and its result applied: the manual clock keeps no libuv
 * handle alive, so nothing waits for wall time and nothing sleeps.
 *
 * The ConfigMap cases lay the directory out as the kubelet does
 * (policy.yaml -> ..data/policy.yaml, ..data -> ..TIMESTAMP) and update it
 * as the kubelet does: a new timestamped directory, a new symlink renamed
 * over ..data, the old directory removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/file.h"
#include "common/log.h"
#include "controller/policy_file.h"
#include "kubeclient/global.h"

#define EXAMPLE "manifests/policy/federation-policy.yaml"
#define POLL GF_POLICY_FILE_POLL_MS
#define LOG_MAX 65536

static int64_t baseline;
static char tmproot[256];

/* What the holder reported, and what it logged. */
struct rec {
    int calls;   /* every callback */
    int refused; /* callbacks with a diag */
    const struct gf_policy *now;
    uint64_t generation; /* at the last callback */
    /* The last diag, copied. */
    size_t n_errs;
    int line[4], col[4];
    char field[4][96];
    char msg[4][160];
    struct gf_policy_file *f;
    bool close_in_cb;
    int closed;
    char log[LOG_MAX];
    size_t log_len;
};

struct fx {
    uv_loop_t loop;
    struct gf_clock clk;
    char dir[300];
    char path[400];
    char *example;
    size_t example_len;
    struct gf_policy_file *f;
    struct rec rec;
};

static void on_closed(void *data)
{
    struct rec *r = data;
    r->closed++;
}

static void on_policy(void *data, const struct gf_policy *now,
                      const struct gf_policy_diag *diag)
{
    struct rec *r = data;
    r->calls++;
    r->now = now;
    r->generation = gf_policy_file_generation(r->f);
    r->n_errs = 0;
    if (diag != NULL) {
        r->refused++;
        r->n_errs = diag->n;
        for (size_t i = 0; i < diag->n && i < 4; i++) {
            r->line[i] = diag->errs[i].line;
            r->col[i] = diag->errs[i].col;
            snprintf(r->field[i], sizeof(r->field[i]), "%s",
                     diag->errs[i].path);
            snprintf(r->msg[i], sizeof(r->msg[i]), "%s", diag->errs[i].msg);
        }
    }
    if (r->close_in_cb)
        gf_policy_file_close(r->f, on_closed, r);
}

static void capture(void *data, enum gf_log_level level, const char *line,
                    size_t len)
{
    (void)level;
    struct rec *r = data;
    if (r->log_len + len + 2 > sizeof(r->log))
        return;
    memcpy(r->log + r->log_len, line, len);
    r->log_len += len;
    r->log[r->log_len++] = '\n';
    r->log[r->log_len] = '\0';
}

/* Occurrences of needle in the captured log. */
static int log_count(const struct rec *r, const char *needle)
{
    int n = 0;
    for (const char *p = r->log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* Moves path's mtime a minute on, so that a rewrite is surely seen as a
 * new version whatever the file system's timestamp granularity. */
static void bump_mtime(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    times[1].tv_sec += 60;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

/* text with the first occurrence of from replaced by to (gf_free). */
static char *variant(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    struct gf_buf b = GF_BUF_INIT(SIZE_MAX);
    assert_int_equal(gf_buf_append(&b, text, (size_t)(at - text)), 0);
    assert_int_equal(gf_buf_append(&b, to, strlen(to)), 0);
    const char *rest = at + strlen(from);
    assert_int_equal(gf_buf_append(&b, rest, strlen(rest)), 0);
    return gf_buf_steal(&b);
}

/* The 1-based line:column of the first occurrence of needle. */
static void position_of(const char *text, const char *needle, int *line,
                        int *col)
{
    const char *at = strstr(text, needle);
    assert_non_null(at);
    *line = 1;
    const char *bol = text;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            bol = p + 1;
        }
    }
    *col = (int)(at - bol) + 1;
}

static struct fx *fx_new(void)
{
    static struct fx x;
    memset(&x, 0, sizeof(x));
    assert_int_equal(uv_loop_init(&x.loop), 0);
    gf_clock_init_manual(&x.clk, 1000, 1700000000000);
    snprintf(x.dir, sizeof(x.dir), "%s/t-XXXXXX", tmproot);
    assert_non_null(mkdtemp(x.dir));
    snprintf(x.path, sizeof(x.path), "%s/policy.yaml", x.dir);
    assert_int_equal(
        gf_file_read(EXAMPLE, GF_POLICY_MAX_BYTES, &x.example, &x.example_len),
        0);
    gf_log_set_level(GF_LOG_INFO);
    gf_log_set_sink(capture, &x.rec);
    return &x;
}

static void fx_open(struct fx *x)
{
    struct gf_policy_file_opts o = {.loop = &x->loop,
                                    .clk = &x->clk,
                                    .path = x->path,
                                    .cb = on_policy,
                                    .data = &x->rec};
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    assert_int_equal(gf_policy_file_open(&o, &x->f, &d), 0);
    assert_int_equal(d.n, 0);
    gf_policy_diag_free(&d);
    x->rec.f = x->f;
}

/* One poll period: the stat, read and parse run and are applied. */
static void poll_once(struct fx *x)
{
    gf_clock_advance(&x->clk, POLL);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
}

/* Removes dir and what the tests put in it (files, symlinks and the
 * ConfigMap's version directories). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[700];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        if (S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            assert_int_equal(unlink(p), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

static void fx_free(struct fx *x)
{
    if (x->f != NULL && x->rec.closed == 0) {
        gf_policy_file_close(x->f, on_closed, &x->rec);
        /* Never before close returns. */
        assert_int_equal(x->rec.closed, 0);
    }
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(x->rec.closed, x->f != NULL ? 1 : 0);
    assert_int_equal(gf_clock_active_timers(&x->clk), 0);
    gf_clock_close(&x->clk);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    gf_free(x->example);
    gf_log_set_sink(NULL, NULL);
    rm_tree(x->dir);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_first_load_is_the_example(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    const struct gf_policy *p = gf_policy_file_get(x->f);
    assert_string_equal(p->name, "gpu-federation");
    assert_int_equal(p->n_members, 3);
    assert_int_equal(p->n_groups, 2);
    assert_string_equal(p->resource, "nvidia.com/gpu");
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    assert_int_equal(log_count(&x->rec, "comp=policy"), 1);
    assert_int_equal(log_count(&x->rec, "msg=\"policy loaded\""), 1);
    /* Polls of an untouched file change nothing and report nothing. */
    for (int i = 0; i < 3; i++)
        poll_once(x);
    assert_int_equal(x->rec.calls, 0);
    assert_ptr_equal(gf_policy_file_get(x->f), p);
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    fx_free(x);
}

static void test_a_change_is_accepted(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    char *v = variant(x->example, "overflowAfter: 2m", "overflowAfter: 45s");
    write_bytes(x->path, v, strlen(v));
    /* The default period is 2 s: not a poll before it. */
    gf_clock_advance(&x->clk, POLL - 1);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(x->rec.calls, 0);
    gf_clock_advance(&x->clk, 1);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(x->rec.refused, 0);
    assert_int_equal(x->rec.generation, 2);
    assert_ptr_equal(x->rec.now, gf_policy_file_get(x->f));
    assert_int_equal(gf_policy_file_get(x->f)->timing.overflow_after_ms, 45000);
    char want[600];
    snprintf(want, sizeof(want),
             "level=info comp=policy msg=\"policy reloaded\" path=%s "
             "generation=2",
             x->path);
    assert_int_equal(log_count(&x->rec, want), 1);
    /* The next poll sees the same version: no second report. */
    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    gf_free(v);
    fx_free(x);
}

static void test_a_bad_file_is_refused_and_the_last_good_stays(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    const struct gf_policy *good = gf_policy_file_get(x->f);
    /* Two mistakes, as an admin makes them: a negative cap and a
     * ClusterQueue in a member that does not exist. */
    char *v1 = variant(x->example, "maxGPUs: 32 ", "maxGPUs: -4 ");
    char *bad = variant(v1, "{member: north, name: research}",
                        "{member: south, name: research}");
    int l0, c0, l1, c1;
    position_of(bad, "-4 ", &l0, &c0);
    position_of(bad, "south, name", &l1, &c1);
    write_bytes(x->path, bad, strlen(bad));
    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(x->rec.refused, 1);
    assert_int_equal(x->rec.n_errs, 2);
    assert_int_equal(x->rec.line[0], l0);
    assert_int_equal(x->rec.col[0], c0);
    assert_string_equal(x->rec.field[0], "spec.members[0].lending.maxGPUs");
    assert_int_equal(x->rec.line[1], l1);
    assert_int_equal(x->rec.col[1], c1);
    assert_string_equal(x->rec.field[1],
                        "spec.groups[0].clusterQueues[2].member");
    assert_non_null(strstr(x->rec.msg[1], "unknown member \"south\""));
    /* The last good policy stays, and the callback was told which. */
    assert_ptr_equal(x->rec.now, good);
    assert_ptr_equal(gf_policy_file_get(x->f), good);
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    /* Logged at error, every error with its position, never the file. */
    char at[64];
    snprintf(at, sizeof(at), "level=error comp=policy msg=\"policy error\"");
    assert_int_equal(log_count(&x->rec, at), 2);
    snprintf(at, sizeof(at), "at=%d:%d field=spec.members[0]", l0, c0);
    assert_int_equal(log_count(&x->rec, at), 1);
    snprintf(at, sizeof(at), "at=%d:%d field=spec.groups[0]", l1, c1);
    assert_int_equal(log_count(&x->rec, at), 1);
    assert_int_equal(log_count(&x->rec, "errors=2"), 1);
    assert_int_equal(log_count(&x->rec, "example.internal"), 0);
    /* Reported once, not at every poll, nor when the same bad text is
     * written again (a new mtime: the file is read, its bytes are the
     * version already refused). */
    poll_once(x);
    write_bytes(x->path, bad, strlen(bad));
    bump_mtime(x->path);
    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(log_count(&x->rec, "msg=\"policy error\""), 2);
    /* Fixed: accepted. */
    char *fixed = variant(x->example, "maxGPUs: 32 ", "maxGPUs: 30 ");
    write_bytes(x->path, fixed, strlen(fixed));
    poll_once(x);
    assert_int_equal(x->rec.calls, 2);
    assert_int_equal(x->rec.refused, 1);
    assert_int_equal(x->rec.generation, 2);
    assert_int_equal(gf_policy_file_get(x->f)->members[0].max_lent.gpus, 30);
    gf_free(v1);
    gf_free(bad);
    gf_free(fixed);
    fx_free(x);
}

/* A file refused, then put back as it was: the refusal is cleared (the
 * hub can drop its condition) and nothing else changes. */
static void
test_a_revert_to_the_policy_in_force_clears_the_refusal(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    const struct gf_policy *good = gf_policy_file_get(x->f);
    char *bad = variant(x->example, "kind: FederationPolicy", "kind: Policy");
    write_bytes(x->path, bad, strlen(bad));
    poll_once(x);
    assert_int_equal(x->rec.refused, 1);
    write_bytes(x->path, x->example, x->example_len);
    poll_once(x);
    assert_int_equal(x->rec.calls, 2);
    assert_int_equal(x->rec.refused, 1);
    assert_ptr_equal(x->rec.now, good);
    assert_ptr_equal(gf_policy_file_get(x->f), good);
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    /* The same bad file again is a new refusal to report. */
    write_bytes(x->path, bad, strlen(bad));
    poll_once(x);
    assert_int_equal(x->rec.refused, 2);
    gf_free(bad);
    fx_free(x);
}

/* The kubelet's layout of a ConfigMap volume, at version ts. */
static void configmap_version(struct fx *x, const char *ts, const char *data,
                              size_t len)
{
    char d[400], file[450], tmp[450], link[450];
    snprintf(d, sizeof(d), "%s/%s", x->dir, ts);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(file, sizeof(file), "%s/policy.yaml", d);
    write_bytes(file, data, len);
    /* A new ..data symlink renamed over the old one: atomic. */
    snprintf(tmp, sizeof(tmp), "%s/..data_tmp", x->dir);
    snprintf(link, sizeof(link), "%s/..data", x->dir);
    assert_int_equal(symlink(ts, tmp), 0);
    assert_int_equal(rename(tmp, link), 0);
}

static void configmap_remove(struct fx *x, const char *ts)
{
    char d[400], file[450];
    snprintf(d, sizeof(d), "%s/%s", x->dir, ts);
    snprintf(file, sizeof(file), "%s/policy.yaml", d);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(d), 0);
}

static void test_configmap_symlink_swap(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    const char *v1 = "..2026_12_06_10_00_00.000000001";
    const char *v2 = "..2026_12_06_10_05_00.000000002";
    const char *v3 = "..2026_12_06_10_10_00.000000003";
    configmap_version(x, v1, x->example, x->example_len);
    assert_int_equal(symlink("..data/policy.yaml", x->path), 0);
    fx_open(x);
    assert_string_equal(gf_policy_file_get(x->f)->name, "gpu-federation");

    /* The new version has the same size and, as the kubelet may write it
     * within one timestamp tick, the same mtime: only the inode says it
     * is another file. */
    char *next =
        variant(x->example, "name: gpu-federation", "name: gpu-fed-region");
    assert_int_equal(strlen(next), x->example_len);
    char old_file[450], new_file[450];
    snprintf(old_file, sizeof(old_file), "%s/%s/policy.yaml", x->dir, v1);
    snprintf(new_file, sizeof(new_file), "%s/%s/policy.yaml", x->dir, v2);
    struct stat before;
    assert_int_equal(stat(old_file, &before), 0);
    char d2[400];
    snprintf(d2, sizeof(d2), "%s/%s", x->dir, v2);
    assert_int_equal(mkdir(d2, 0755), 0);
    write_bytes(new_file, next, strlen(next));
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, new_file, times, 0), 0);
    struct stat after;
    assert_int_equal(stat(new_file, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    assert_true(after.st_ino != before.st_ino);
    char tmp[450], link[450];
    snprintf(tmp, sizeof(tmp), "%s/..data_tmp", x->dir);
    snprintf(link, sizeof(link), "%s/..data", x->dir);
    assert_int_equal(symlink(v2, tmp), 0);
    assert_int_equal(rename(tmp, link), 0);
    configmap_remove(x, v1);

    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(x->rec.refused, 0);
    assert_int_equal(gf_policy_file_generation(x->f), 2);
    assert_string_equal(gf_policy_file_get(x->f)->name, "gpu-fed-region");

    /* A resync that writes the same bytes into a new version is not a
     * change. */
    configmap_version(x, v3, next, strlen(next));
    configmap_remove(x, v2);
    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(gf_policy_file_generation(x->f), 2);
    gf_free(next);
    fx_free(x);
}

static void test_an_unchanged_rewrite_is_not_a_change(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    const struct gf_policy *p = gf_policy_file_get(x->f);
    /* Rewritten in place and its mtime moved on: the identity differs,
     * so the file is read again, and the bytes are the same. */
    write_bytes(x->path, x->example, x->example_len);
    bump_mtime(x->path);
    poll_once(x);
    assert_int_equal(x->rec.calls, 0);
    assert_ptr_equal(gf_policy_file_get(x->f), p);
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    assert_int_equal(log_count(&x->rec, "reloaded"), 0);
    fx_free(x);
}

static void test_a_deleted_file_keeps_the_policy_and_reports_once(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    const struct gf_policy *p = gf_policy_file_get(x->f);
    assert_int_equal(unlink(x->path), 0);
    for (int i = 0; i < 5; i++)
        poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(x->rec.refused, 1);
    assert_int_equal(x->rec.n_errs, 1);
    assert_int_equal(x->rec.line[0], 0);
    assert_int_equal(x->rec.col[0], 0);
    assert_string_equal(x->rec.field[0], "");
    assert_non_null(strstr(x->rec.msg[0], "cannot read"));
    assert_ptr_equal(x->rec.now, p);
    assert_ptr_equal(gf_policy_file_get(x->f), p);
    assert_string_equal(p->name, "gpu-federation");
    assert_int_equal(log_count(&x->rec, "level=error"), 2);
    assert_int_equal(log_count(&x->rec, "at=0:0"), 1);
    /* Back with the same bytes: the refusal is cleared, nothing reloads. */
    write_bytes(x->path, x->example, x->example_len);
    poll_once(x);
    assert_int_equal(x->rec.calls, 2);
    assert_int_equal(x->rec.refused, 1);
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    assert_ptr_equal(gf_policy_file_get(x->f), p);
    /* Gone again: reported again, once. */
    assert_int_equal(unlink(x->path), 0);
    poll_once(x);
    poll_once(x);
    assert_int_equal(x->rec.calls, 3);
    assert_int_equal(x->rec.refused, 2);
    fx_free(x);
}

/* A file over the cap is refused from its size, before any read, and
 * like a vanished one is reported once. */
static void test_a_file_over_the_cap_is_refused_once(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    size_t big = GF_POLICY_MAX_BYTES + 1;
    char *huge = gf_malloc(big);
    memset(huge, '#', big);
    write_bytes(x->path, huge, big);
    poll_once(x);
    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(x->rec.refused, 1);
    assert_int_equal(x->rec.n_errs, 1);
    assert_int_equal(x->rec.line[0], 0);
    assert_non_null(strstr(x->rec.msg[0], "larger than 1 MiB"));
    assert_string_equal(gf_policy_file_get(x->f)->name, "gpu-federation");
    assert_int_equal(gf_policy_file_generation(x->f), 1);
    gf_free(huge);
    fx_free(x);
}

static void test_refs_keep_an_old_policy_alive_across_a_reload(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    /* A decision pass starts with generation 1. */
    const struct gf_policy *pass = gf_policy_file_ref(x->f);
    const struct gf_policy *pass2 = gf_policy_file_ref(x->f);
    assert_ptr_equal(pass, pass2);
    char *v = variant(x->example, "name: gpu-federation", "name: gpu-fed-v2");
    write_bytes(x->path, v, strlen(v));
    poll_once(x);
    assert_int_equal(gf_policy_file_generation(x->f), 2);
    assert_string_equal(gf_policy_file_get(x->f)->name, "gpu-fed-v2");
    /* The pass still reads the policy it started with. */
    assert_true(pass != gf_policy_file_get(x->f));
    assert_string_equal(pass->name, "gpu-federation");
    assert_int_equal(pass->n_members, 3);
    int64_t live = gf_alloc_live();
    gf_policy_file_unref(x->f, pass2);
    assert_int_equal(gf_alloc_live(), live);
    gf_policy_file_unref(x->f, pass);
    /* Freed after its last user. */
    assert_true(gf_alloc_live() < live);
    /* A ref on the policy in force: returning it frees nothing. */
    live = gf_alloc_live();
    const struct gf_policy *cur = gf_policy_file_ref(x->f);
    gf_policy_file_unref(x->f, cur);
    assert_int_equal(gf_alloc_live(), live);
    assert_string_equal(gf_policy_file_get(x->f)->name, "gpu-fed-v2");
    gf_policy_file_unref(x->f, NULL);
    gf_free(v);
    fx_free(x);
}

static void test_open_refuses_what_it_cannot_use(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    struct gf_policy_file_opts o = {
        .loop = &x->loop, .clk = &x->clk, .path = x->path};
    struct gf_policy_file *f = (struct gf_policy_file *)&o;
    struct gf_policy_diag d;
    gf_policy_diag_init(&d);
    /* Missing. */
    assert_int_equal(gf_policy_file_open(&o, &f, &d), -ENOENT);
    assert_null(f);
    assert_int_equal(d.n, 0);
    /* Invalid: every error, with its position. */
    char *bad = variant(x->example, "fencing: agent ", "fencing: maybe ");
    int line, col;
    position_of(bad, "maybe", &line, &col);
    write_bytes(x->path, bad, strlen(bad));
    assert_int_equal(gf_policy_file_open(&o, &f, &d), GF_ECONFIG);
    assert_null(f);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.errs[0].line, line);
    assert_int_equal(d.errs[0].col, col);
    assert_string_equal(d.errs[0].path, "spec.members[0].fencing");
    gf_policy_diag_free(&d);
    /* Over the cap: refused before it is read. */
    size_t big = GF_POLICY_MAX_BYTES + 1;
    char *huge = gf_malloc(big);
    memset(huge, '#', big);
    write_bytes(x->path, huge, big);
    assert_int_equal(gf_policy_file_open(&o, &f, &d), GF_E2BIG);
    assert_null(f);
    /* A directory is not a policy file. */
    o.path = x->dir;
    assert_int_equal(gf_policy_file_open(&o, &f, &d), -EINVAL);
    assert_int_equal(d.n, 0);
    gf_free(huge);
    gf_free(bad);
    gf_policy_diag_free(&d);
    fx_free(x);
}

static void test_close_cancels_a_poll_in_flight(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    char *v = variant(x->example, "overflowAfter: 2m", "overflowAfter: 1m");
    write_bytes(x->path, v, strlen(v));
    /* The poll is queued; the holder closes before the loop runs it. */
    gf_clock_advance(&x->clk, POLL);
    gf_policy_file_close(x->f, on_closed, &x->rec);
    assert_int_equal(x->rec.closed, 0);
    assert_int_equal(gf_clock_active_timers(&x->clk), 0);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(x->rec.closed, 1);
    /* No report from a closed holder. */
    assert_int_equal(x->rec.calls, 0);
    gf_free(v);
    fx_free(x);
}

static void test_close_from_the_callback(void **state)
{
    (void)state;
    struct fx *x = fx_new();
    write_bytes(x->path, x->example, x->example_len);
    fx_open(x);
    const struct gf_policy *pass = gf_policy_file_ref(x->f);
    char *v = variant(x->example, "overflowAfter: 2m", "overflowAfter: 1m");
    write_bytes(x->path, v, strlen(v));
    gf_policy_file_unref(x->f, pass);
    x->rec.close_in_cb = true;
    poll_once(x);
    assert_int_equal(x->rec.calls, 1);
    assert_int_equal(x->rec.closed, 1);
    assert_int_equal(gf_clock_active_timers(&x->clk), 0);
    gf_free(v);
    fx_free(x);
}

int main(void)
{
    assert_int_equal(gf_kube_global_init(), 0);
    const char *t = getenv("TMPDIR");
    snprintf(tmproot, sizeof(tmproot), "%s/gf-policy-file-XXXXXX",
             t != NULL && t[0] != '\0' ? t : "/tmp");
    if (mkdtemp(tmproot) == NULL)
        return 1;
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_load_is_the_example),
        cmocka_unit_test(test_a_change_is_accepted),
        cmocka_unit_test(test_a_bad_file_is_refused_and_the_last_good_stays),
        cmocka_unit_test(
            test_a_revert_to_the_policy_in_force_clears_the_refusal),
        cmocka_unit_test(test_configmap_symlink_swap),
        cmocka_unit_test(test_an_unchanged_rewrite_is_not_a_change),
        cmocka_unit_test(test_a_deleted_file_keeps_the_policy_and_reports_once),
        cmocka_unit_test(test_a_file_over_the_cap_is_refused_once),
        cmocka_unit_test(test_refs_keep_an_old_policy_alive_across_a_reload),
        cmocka_unit_test(test_open_refuses_what_it_cannot_use),
        cmocka_unit_test(test_close_cancels_a_poll_in_flight),
        cmocka_unit_test(test_close_from_the_callback),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmproot);
    gf_kube_global_cleanup();
    return rc;
}
