/*
 * kubesim: simulated Kubernetes clusters for gpufed's demo and tests.
 *
 *   kubesim --clusters hub,east,west --dir DIR [options]   serve clusters
 *   kubesim fault CLUSTER KIND [options]                   inject a fault
 *   kubesim fault clear [CLUSTER] | kubesim fault list      manage faults
 *
 * Serving writes kubeconfigs, DIR/admin and DIR/ready (cluster.h) and runs
 * until SIGINT or SIGTERM, then closes everything and exits 0. The fault
 * subcommand is a client of the admin endpoint named in DIR/admin. See
 * docs/kubesim.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "e2e/kubesim/cluster.h"
#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/kueue.h"
#include "e2e/kubesim/runner.h"
#include "kubeclient/global.h"
#include "kubeclient/uvclock.h"

static const struct gf_log_ctx lc = {.comp = "kubesim"};

/*
 * Usage and CLI results go to stdout/stderr from here: this is main(),
 * the one place besides log.c that talks to the terminal (rule zero).
 */
static void usage(FILE *f)
{
    fputs(
        "usage:\n"
        "  kubesim --clusters NAME[,NAME..]|N --dir DIR [--seed N]\n"
        "          [--time-scale X] [--crds DIR] [--base-port P]\n"
        "          [--admin-port P] [--watch-cache N] [--bookmark-seconds S]\n"
        "          [--watch-queue BYTES]\n"
        "          [--identity NAME=USER[:GROUP,..]].. [--log-level L]\n"
        "          [--nodes N] [--gpus-per-node G] [--job-duration DUR]\n"
        "          [--exec-log FILE] [--no-kueue]\n"
        "  kubesim fault CLUSTER|'*' KIND [--identity ID] [--for DUR]\n"
        "          [--latency DUR] [--code N] [--retry-after S]\n"
        "          [--count N] [--dir DIR]\n"
        "  kubesim fault clear [CLUSTER] [--dir DIR]\n"
        "  kubesim fault list [--dir DIR]\n"
        "KIND: blackhole reset latency 5xx 429 watch-drop kueue-frozen "
        "restart\n"
        "N clusters are named c1..cN. --dir defaults to $KUBESIM_DIR.\n",
        f);
}

/* ---- serve ------------------------------------------------------------- */

struct serve {
    uv_loop_t loop;
    struct gf_clock clk;
    uv_signal_t sigint, sigterm;
    struct gf_ks_world *world;
    char **names;
    size_t n_names;
};

static void free_names(struct serve *s)
{
    for (size_t i = 0; i < s->n_names; i++)
        gf_free(s->names[i]);
    GF_FREE(s->names);
    s->n_names = 0;
}

/* "a,b,c" or a count N (clusters c1..cN). */
static int parse_clusters(struct serve *s, const char *arg)
{
    int64_t n;
    if (gf_parse_i64(arg, &n) == 0) {
        if (n < 1 || n > 10000)
            return -EINVAL;
        s->names = gf_calloc((size_t)n, sizeof(char *));
        for (int64_t i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof(name), "c%lld", (long long)i + 1);
            s->names[s->n_names++] = gf_strdup(name);
        }
        return 0;
    }
    const char *p = arg;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        s->names = gf_realloc(s->names, (s->n_names + 1) * sizeof(char *));
        s->names[s->n_names++] = gf_strndup(p, len);
        p += len;
        if (*p == ',')
            p++;
    }
    return s->n_names > 0 ? 0 : -EINVAL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct serve *s = h->data;
    GF_LOG(&lc, GF_LOG_INFO, "stopping", "signal=%d", signum);
    gf_ks_world_close(s->world);
    s->world = NULL;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    gf_clock_close(&s->clk);
}

/* The extra identities of --identity, owned. */
struct ids {
    struct gf_ks_identity_spec *v;
    size_t n;
};

static void free_ids(struct ids *ids)
{
    for (size_t i = 0; i < ids->n; i++) {
        gf_free((char *)ids->v[i].identity);
        gf_free((char *)ids->v[i].user);
        for (size_t j = 0; ids->v[i].groups && ids->v[i].groups[j]; j++)
            gf_free((char *)ids->v[i].groups[j]);
        gf_free((void *)ids->v[i].groups);
    }
    GF_FREE(ids->v);
    ids->n = 0;
}

/* Splits s at sep into a NULL-terminated, returned-owned array. */
static const char **split(const char *s, char sep)
{
    size_t n = 1;
    for (const char *p = s; *p != '\0'; p++)
        n += *p == sep;
    const char **v = gf_calloc(n + 1, sizeof(char *));
    size_t i = 0;
    while (*s != '\0') {
        const char *e = strchr(s, sep);
        size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
        if (len > 0)
            v[i++] = gf_strndup(s, len);
        s += len;
        if (*s == sep)
            s++;
    }
    return v;
}

/* NAME=USER[:GROUP,GROUP..] */
static int parse_identity(struct ids *ids, const char *v)
{
    const char *eq = v != NULL ? strchr(v, '=') : NULL;
    if (eq == NULL || eq == v || eq[1] == '\0' || eq[1] == ':')
        return -EINVAL;
    const char *colon = strchr(eq + 1, ':');
    ids->v = gf_realloc(ids->v, (ids->n + 1) * sizeof(*ids->v));
    struct gf_ks_identity_spec *id = &ids->v[ids->n++];
    id->identity = gf_strndup(v, (size_t)(eq - v));
    id->user = colon != NULL ? gf_strndup(eq + 1, (size_t)(colon - eq - 1))
                             : gf_strdup(eq + 1);
    id->groups = colon != NULL ? split(colon + 1, ',') : NULL;
    return 0;
}

struct serve_args {
    const char *clusters, *dir, *crds, *log_level, *exec_log;
    struct ids ids;
    int64_t seed, base_port, admin_port, watch_cache, bookmark_s, watch_queue;
    int64_t nodes, gpus_per_node, job_ms;
    bool no_kueue;
    double time_scale;
};

/* ---- Kueue-lite and the job runner, per cluster ------------------------ */

struct hooks {
    const struct serve_args *a;
    int exec_fd; /* DIR/exec.log or --exec-log, shared by the clusters */
};

struct controllers {
    struct gf_ks_kueue *kueue;
    struct gf_ks_runner *runner;
};

static int attach(void *data, struct gf_ks_cluster *c)
{
    const struct hooks *h = data;
    /* --no-kueue: a bare API server, for tests that play Kueue by hand. */
    if (h->a->no_kueue)
        return 0;
    struct controllers *ctl = gf_calloc(1, sizeof(*ctl));
    struct gf_ks_store *st = gf_ks_api_store(gf_ks_cluster_api(c));
    struct gf_ks_kueue_opts ko = {
        .store = st,
        .clock = gf_ks_cluster_clock(c),
        .faults = gf_ks_cluster_faults(c),
        .cluster = gf_ks_cluster_name(c),
    };
    ctl->kueue = gf_ks_kueue_new(&ko);
    struct gf_ks_runner_opts ro = {
        .store = st,
        .clock = gf_ks_cluster_clock(c),
        .faults = gf_ks_cluster_faults(c),
        .cluster = gf_ks_cluster_name(c),
        .nodes = (unsigned)h->a->nodes,
        .gpus_per_node = (unsigned)h->a->gpus_per_node,
        .default_ms = (uint64_t)h->a->job_ms,
        .exec_log_fd = h->exec_fd,
        .time_scale = gf_ks_cluster_time_scale(c),
    };
    ctl->runner = gf_ks_runner_new(&ro);
    gf_ks_cluster_set_user(c, ctl);
    return 0;
}

static void detach(void *data, struct gf_ks_cluster *c)
{
    (void)data;
    struct controllers *ctl = gf_ks_cluster_user(c);
    if (ctl == NULL)
        return;
    gf_ks_runner_free(ctl->runner);
    gf_ks_kueue_free(ctl->kueue);
    gf_free(ctl);
    gf_ks_cluster_set_user(c, NULL);
}

static int parse_num(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (v == NULL || gf_parse_i64(v, out) != 0 || *out < lo || *out > hi)
        return -EINVAL;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    if (v == NULL)
        return -EINVAL;
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    if (errno != 0 || *end != '\0' || end == v || !(*out > 0) || *out > 1e6)
        return -EINVAL;
    return 0;
}

static int parse_serve_opt(struct serve_args *a, const char *k, const char *v)
{
    if (strcmp(k, "--clusters") == 0)
        a->clusters = v;
    else if (strcmp(k, "--dir") == 0)
        a->dir = v;
    else if (strcmp(k, "--crds") == 0)
        a->crds = v;
    else if (strcmp(k, "--log-level") == 0)
        a->log_level = v;
    else if (strcmp(k, "--identity") == 0)
        return parse_identity(&a->ids, v);
    else if (strcmp(k, "--seed") == 0)
        return parse_num(v, 0, INT64_MAX, &a->seed);
    else if (strcmp(k, "--base-port") == 0)
        return parse_num(v, 1, 65535, &a->base_port);
    else if (strcmp(k, "--admin-port") == 0)
        return parse_num(v, 1, 65535, &a->admin_port);
    else if (strcmp(k, "--watch-cache") == 0)
        return parse_num(v, 1, 1 << 24, &a->watch_cache);
    else if (strcmp(k, "--bookmark-seconds") == 0)
        return parse_num(v, 1, 3600, &a->bookmark_s);
    else if (strcmp(k, "--watch-queue") == 0)
        return parse_num(v, 1 << 16, (int64_t)1 << 32, &a->watch_queue);
    else if (strcmp(k, "--time-scale") == 0)
        return parse_double(v, &a->time_scale);
    else if (strcmp(k, "--nodes") == 0)
        return parse_num(v, 1, 10000, &a->nodes);
    else if (strcmp(k, "--gpus-per-node") == 0)
        return parse_num(v, 1, 1 << 20, &a->gpus_per_node);
    else if (strcmp(k, "--job-duration") == 0)
        return v != NULL && gf_duration_parse_ms(v, &a->job_ms) == 0 &&
                       a->job_ms > 0
                   ? 0
                   : -EINVAL;
    else if (strcmp(k, "--exec-log") == 0)
        a->exec_log = v;
    else
        return -EINVAL;
    return v != NULL ? 0 : -EINVAL;
}

static int run_world(struct serve *s, const struct serve_args *a,
                     struct hooks *h)
{
    struct gf_ks_world_opts wo = {
        .loop = &s->loop,
        .clock = &s->clk,
        .clusters = (const char *const *)s->names,
        .n_clusters = s->n_names,
        .base_port = (int)a->base_port,
        .admin_port = (int)a->admin_port,
        .seed = (uint64_t)a->seed,
        .time_scale = a->time_scale,
        .crd_dir = a->crds,
        .watch_cache = (size_t)a->watch_cache,
        .bookmark_s = (unsigned)a->bookmark_s,
        .watch_queue = (size_t)a->watch_queue,
        .identities = a->ids.v,
        .n_identities = a->ids.n,
        .attach = attach,
        .detach = detach,
        .hook_data = h,
    };
    int rc = gf_ks_world_new(&wo, &s->world);
    if (rc == 0)
        rc = gf_ks_world_write_files(s->world, a->dir);
    if (rc != 0) {
        gf_ks_world_close(s->world);
        s->world = NULL;
        return rc;
    }
    GF_LOG(&lc, GF_LOG_INFO, "serving", "clusters=%zu admin_port=%d dir=%s",
           s->n_names, gf_ks_world_admin_port(s->world), a->dir);
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    return uv_run(&s->loop, UV_RUN_DEFAULT) >= 0 ? 0 : -EIO;
}

static int serve_with(const struct serve_args *ap);

static int serve_main(int argc, char **argv)
{
    struct serve_args a = {.time_scale = 1.0};
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i += 2) {
        if (strcmp(argv[i], "--no-kueue") == 0) {
            /* The one flag without a value: Jobs run unqueued. */
            a.no_kueue = true;
            i--;
            continue;
        }
        if (parse_serve_opt(&a, argv[i], i + 1 < argc ? argv[i + 1] : NULL)) {
            fprintf(stderr, "kubesim: bad option or value: %s\n", argv[i]);
            usage(stderr);
            rc = 2;
        }
    }
    if (rc == 0)
        rc = serve_with(&a);
    free_ids(&a.ids);
    return rc;
}

/*
 * Every cluster is a listener plus its clients' connections: take all the
 * descriptors the hard limit allows, so 100 clusters fit. Writes to a
 * socket the peer closed must fail, not kill us.
 */
static void raise_fd_limit_ignore_sigpipe(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &sa, NULL);
}

/* The execution log (DIR/exec.log unless --exec-log); -1 on failure. */
static int open_exec_log(const struct serve_args *a)
{
    char path[4096];
    if (a->exec_log == NULL) {
        /* DIR is made by gf_ks_world_write_files too; the log comes first. */
        if (mkdir(a->dir, 0700) != 0 && errno != EEXIST)
            GF_LOG(&lc, GF_LOG_ERROR, "cannot create directory",
                   "path=%s error=%s", a->dir, strerror(errno));
        snprintf(path, sizeof(path), "%s/exec.log", a->dir);
    } else
        snprintf(path, sizeof(path), "%s", a->exec_log);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        GF_LOG(&lc, GF_LOG_ERROR, "cannot open execution log",
               "path=%s error=%s", path, strerror(errno));
    return fd;
}

static int serve_with(const struct serve_args *ap)
{
    const struct serve_args a = *ap;
    enum gf_log_level lvl = GF_LOG_INFO;
    if (a.clusters == NULL || a.dir == NULL ||
        (a.log_level != NULL && gf_log_parse_level(a.log_level, &lvl) != 0)) {
        usage(stderr);
        return 2;
    }
    gf_log_set_level(lvl);
    struct serve s = {0};
    if (parse_clusters(&s, a.clusters) != 0) {
        fprintf(stderr, "kubesim: bad --clusters: %s\n", a.clusters);
        free_names(&s);
        return 2;
    }
    raise_fd_limit_ignore_sigpipe();
    int rc = uv_loop_init(&s.loop);
    if (rc == 0)
        rc = gf_clock_init_uv(&s.clk, &s.loop);
    if (rc != 0) {
        free_names(&s);
        return 1;
    }
    struct hooks h = {.a = &a, .exec_fd = -1};
    h.exec_fd = open_exec_log(&a);
    rc = h.exec_fd < 0 ? -EIO : run_world(&s, &a, &h);
    if (rc != 0) {
        /* Startup failed: nothing else is open but the clock. */
        gf_clock_close(&s.clk);
        uv_run(&s.loop, UV_RUN_DEFAULT);
    }
    free_names(&s);
    if (h.exec_fd >= 0)
        close(h.exec_fd);
    int lrc = uv_loop_close(&s.loop);
    if (lrc != 0)
        GF_LOG(&lc, GF_LOG_ERROR, "loop not empty at exit", "error=%s",
               uv_strerror(lrc));
    return rc == 0 && lrc == 0 ? 0 : 1;
}

/* ---- fault client ------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    struct gf_buf *b = data;
    return gf_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* The first line of DIR/name, without its newline; -ENOENT if empty. */
static int first_line(const char *dir, const char *name, char *out, size_t cap)
{
    char file[4096];
    snprintf(file, sizeof(file), "%s/%s", dir, name);
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return -errno;
    if (fgets(out, (int)cap, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0' ? 0 : -ENOENT;
}

/*
 * One request to the admin endpoint. A blocking curl_easy_perform is
 * right here: this is a one-shot command line client with no loop.
 */
static int admin_call(const char *dir, const char *method, const char *path,
                      const char *body)
{
    char addr[128], tok[256];
    if (first_line(dir, "admin", addr, sizeof(addr)) != 0 ||
        first_line(dir, "admin-token", tok, sizeof(tok)) != 0) {
        fprintf(stderr, "kubesim fault: cannot read %s/admin and admin-token\n",
                dir);
        return 1;
    }
    char url[512], auth[300];
    snprintf(url, sizeof(url), "http://%s%s", addr, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    CURL *h = curl_easy_init();
    struct gf_buf resp = GF_BUF_INIT(1u << 24);
    struct curl_slist *hdr =
        curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, auth);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    int rc = 0;
    if (cc != CURLE_OK) {
        fprintf(stderr, "kubesim fault: %s: %s\n", url, curl_easy_strerror(cc));
        rc = 1;
    } else {
        fprintf(code < 300 ? stdout : stderr, "%s\n", gf_buf_cstr(&resp));
        rc = code < 300 ? 0 : 1;
    }
    gf_buf_free(&resp);
    return rc;
}

static int fault_opt_num(cJSON *spec, const char *key, const char *v,
                         bool duration)
{
    int64_t n;
    int rc = duration ? gf_duration_parse_ms(v, &n) : gf_parse_i64(v, &n);
    if (rc != 0 || n < 0)
        return -EINVAL;
    cJSON_AddNumberToObject(spec, key, (double)n);
    return 0;
}

static int parse_fault_opt(cJSON *spec, const char **dir, const char *k,
                           const char *v)
{
    if (v == NULL)
        return -EINVAL;
    if (strcmp(k, "--dir") == 0)
        *dir = v;
    else if (strcmp(k, "--identity") == 0)
        cJSON_AddStringToObject(spec, "identity", v);
    else if (strcmp(k, "--for") == 0)
        return fault_opt_num(spec, "forMs", v, true);
    else if (strcmp(k, "--latency") == 0)
        return fault_opt_num(spec, "latencyMs", v, true);
    else if (strcmp(k, "--code") == 0)
        return fault_opt_num(spec, "code", v, false);
    else if (strcmp(k, "--retry-after") == 0)
        return fault_opt_num(spec, "retryAfterSeconds", v, false);
    else if (strcmp(k, "--count") == 0)
        return fault_opt_num(spec, "count", v, false);
    else
        return -EINVAL;
    return 0;
}

static int fault_main(int argc, char **argv)
{
    /* argv[0] = "fault" */
    const char *dir = getenv("KUBESIM_DIR");
    int first_opt = 1;
    while (first_opt < argc && strncmp(argv[first_opt], "--", 2) != 0)
        first_opt++;
    cJSON *spec = cJSON_CreateObject();
    int rc = 0;
    for (int i = first_opt; i < argc && rc == 0; i += 2)
        rc = parse_fault_opt(spec, &dir, argv[i],
                             i + 1 < argc ? argv[i + 1] : NULL);
    const char *cmd = first_opt > 1 ? argv[1] : NULL;
    if (rc != 0 || dir == NULL || cmd == NULL) {
        cJSON_Delete(spec);
        usage(stderr);
        return 2;
    }
    char path[256];
    if (strcmp(cmd, "list") == 0) {
        rc = admin_call(dir, "GET", "/faults", NULL);
    } else if (strcmp(cmd, "clear") == 0) {
        snprintf(path, sizeof(path), "/faults%s%s", first_opt > 2 ? "/" : "",
                 first_opt > 2 ? argv[2] : "");
        rc = admin_call(dir, "DELETE", path, NULL);
    } else if (first_opt == 3) {
        enum gf_ks_fault_kind k;
        if (strcmp(argv[2], "restart") != 0 &&
            gf_ks_fault_kind_parse(argv[2], &k) != 0) {
            fprintf(stderr, "kubesim fault: unknown kind %s\n", argv[2]);
            cJSON_Delete(spec);
            return 2;
        }
        cJSON_AddStringToObject(spec, "kind", argv[2]);
        char *body = cJSON_PrintUnformatted(spec);
        snprintf(path, sizeof(path), "/faults/%s", cmd);
        rc = admin_call(dir, "POST", path, body);
        cJSON_free(body);
    } else {
        usage(stderr);
        rc = 2;
    }
    cJSON_Delete(spec);
    return rc;
}

int main(int argc, char **argv)
{
    if (gf_kube_global_init() != 0)
        return 1;
    int rc;
    if (argc >= 2 && strcmp(argv[1], "fault") == 0)
        rc = fault_main(argc - 1, argv + 1);
    else if (argc >= 2 &&
             (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        rc = 0;
    } else
        rc = serve_main(argc, argv);
    gf_kube_global_cleanup();
    return rc;
}
