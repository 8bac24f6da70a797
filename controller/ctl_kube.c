/*
 * gpufedctl kube: kubeclient as a command, so that a person can point it
 * at any API server (kubesim now, a real cluster later) and see it work.
 *
 *   gpufedctl kube get RESOURCE [NAME] [options]
 *   gpufedctl kube watch RESOURCE [options]
 *
 * RESOURCE is read as kubectl reads it, against the server's discovery
 * (kubeclient/discovery.h): plural, singular, Kind or short name, alone
 * or as resource.group or resource.version.group ("cq", "StorageClass",
 * "workloads.kueue.x-k8s.io", "storageclasses.v1.storage.k8s.io"); scope
 * and kind come from the server. `get` lists every page
 * (limit/continue); `watch` runs a reflector: it prints the objects that
 * exist, then one line per change, and keeps going across relists and
 * reconnects until SIGINT or SIGTERM. Output is `-o name` (kubectl's
 * kind.group/name) or `-o json` (get: the object, or a List whose items
 * carry apiVersion and kind; watch: one {"type":...,"object":...} line
 * per event). `get -o json` prints numbers as the server wrote them
 * (ctl_json.h).
 *
 * Exit status (ctl.h): 0 success, 1 `get NAME` of an object that does not
 * exist or a resource type the server does not have, 2 usage,
 * configuration or server errors.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/rand.h"
#include "controller/ctl.h"
#include "controller/ctl_json.h"
#include "kubeclient/discovery.h"
#include "kubeclient/http.h"
#include "kubeclient/kubeconfig.h"
#include "kubeclient/reflector.h"
#include "kubeclient/request.h"
#include "kubeclient/store.h"
#include "kubeclient/uvclock.h"

/* Page size of `get`: kubectl's default chunk size. */
#define KUBE_PAGE 500

struct kube_args {
    const char *verb, *resource, *name;
    const char *kubeconfig, *context, *ns, *selector;
    bool all_ns, json, help;
};

struct kube_run {
    struct kube_args a;
    uv_loop_t loop;
    struct gf_clock clk;
    uv_signal_t sigint, sigterm;
    struct gf_http *http;
    struct gf_kube_client *client;
    struct gf_kube_discover *disc; /* discovery in flight */
    struct gf_kube_resource res;
    const char *ns; /* effective namespace, NULL = all / cluster scope */
    struct gf_rand rng;
    struct gf_store *store;
    struct gf_reflector *refl;
    cJSON *items; /* get -o json: the objects of every page */
    char item_api_version[200], item_kind[64]; /* what list items lack */
    bool signals; /* the signal handlers are open */
    bool stopping;
    int status;
};

static void kube_usage(FILE *f)
{
    fprintf(f, "usage: gpufedctl kube get RESOURCE [NAME] [options]\n"
               "       gpufedctl kube watch RESOURCE [options]\n"
               "\n"
               "RESOURCE, as kubectl reads it against the server's "
               "discovery:\n"
               "  plural, singular, Kind or short name, alone or as\n"
               "  resource.group or resource.version.group\n"
               "  (e.g. pods, cq, StorageClass, workloads.kueue.x-k8s.io,\n"
               "  storageclasses.v1.storage.k8s.io)\n"
               "\n"
               "options:\n"
               "  --kubeconfig FILE      default: $KUBECONFIG, else "
               "~/.kube/config\n"
               "  --context NAME         default: the current context\n"
               "  -n, --namespace NS     default: the context's namespace\n"
               "  -A, --all-namespaces\n"
               "  -l, --selector SEL     label selector (a=b,c!=d,e in (f))\n"
               "  -o, --output name|json default: name\n"
               "\n"
               "exit status: 0 success, 1 not found, 2 usage or errors\n");
}

/* The value of option argv[*i] (advancing *i), or NULL if missing. */
static const char *opt_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* Options that take a value: which field they fill, by both names. */
static const char **value_slot(struct kube_args *a, const char *opt)
{
    static const struct {
        const char *lng, *shrt;
        size_t off;
    } opts[] = {
        {"--kubeconfig", NULL, offsetof(struct kube_args, kubeconfig)},
        {"--context", NULL, offsetof(struct kube_args, context)},
        {"--namespace", "-n", offsetof(struct kube_args, ns)},
        {"--selector", "-l", offsetof(struct kube_args, selector)},
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strcmp(opt, opts[i].lng) == 0 ||
            (opts[i].shrt != NULL && strcmp(opt, opts[i].shrt) == 0))
            return (const char **)((char *)a + opts[i].off);
    return NULL;
}

static int parse_output(struct kube_args *a, const char *v)
{
    if (v == NULL || (strcmp(v, "name") != 0 && strcmp(v, "json") != 0))
        return -1;
    a->json = strcmp(v, "json") == 0;
    return 0;
}

/* One argument at argv[*i]: 0, or -1 for a usage error. */
static int parse_one(struct kube_args *a, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char **slot = value_slot(a, arg);
    if (slot != NULL) {
        *slot = opt_value(argc, argv, i);
        return *slot != NULL ? 0 : -1;
    }
    if (strcmp(arg, "-A") == 0 || strcmp(arg, "--all-namespaces") == 0) {
        a->all_ns = true;
        return 0;
    }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        a->help = true;
        return 0;
    }
    if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0)
        return parse_output(a, opt_value(argc, argv, i));
    if (arg[0] == '-')
        return -1;
    if (a->resource == NULL)
        a->resource = arg;
    else if (a->name == NULL && strcmp(a->verb, "get") == 0)
        a->name = arg;
    else
        return -1;
    return 0;
}

static int parse_args(int argc, char **argv, struct kube_args *a)
{
    memset(a, 0, sizeof(*a));
    if (argc < 2 ||
        (strcmp(argv[1], "get") != 0 && strcmp(argv[1], "watch") != 0))
        return -1;
    a->verb = argv[1];
    for (int i = 2; i < argc; i++)
        if (parse_one(a, argc, argv, &i) != 0) {
            fprintf(stderr, "gpufedctl kube: bad argument '%s'\n", argv[i]);
            return -1;
        }
    if (a->help)
        return 0;
    return a->resource != NULL ? 0 : -1;
}

/* ---- output ------------------------------------------------------------- */

/* kubectl's -o name: "kind.group/name", kind lowercased ("pod/x" for the
 * core group). */
static void print_name(const struct kube_run *r, const cJSON *obj,
                       const char *prefix)
{
    const char *kind = gf_json_str(obj, "kind");
    if (kind == NULL || *kind == '\0')
        kind = r->res.kind[0] != '\0' ? r->res.kind : r->res.plural;
    char lower[64];
    size_t i = 0;
    for (; kind[i] != '\0' && i + 1 < sizeof(lower); i++)
        lower[i] = (char)tolower((unsigned char)kind[i]);
    lower[i] = '\0';
    const char *name = gf_json_str(obj, "metadata.name");
    printf("%s%s%s%s/%s\n", prefix, lower, r->res.group[0] ? "." : "",
           r->res.group, name != NULL ? name : "");
}

static void print_json(const cJSON *v, bool formatted)
{
    char *s = formatted ? cJSON_Print(v) : cJSON_PrintUnformatted(v);
    if (s != NULL)
        puts(s);
    cJSON_free(s);
}

/* The server's JSON text with its numbers as written; the parsed tree
 * (numbers as doubles) only if the text is beyond ctl_json. */
static void print_exact(const char *body, size_t len, const cJSON *parsed)
{
    cJSON *j = NULL;
    if (gf_ctl_json_parse(body, len, &j) != 0)
        j = cJSON_Duplicate(parsed, true);
    gf_ctl_json_strip_managed(j);
    print_json(j, true);
    cJSON_Delete(j);
}

/* "Error from server (NotFound): ..." as kubectl prints it. */
static void print_error(const struct gf_kube_result *res)
{
    const struct gf_api_status *st = res->status;
    if (st->code > 0)
        fprintf(stderr, "Error from server (%s): %s\n",
                st->reason[0] ? st->reason : "Unknown", st->message);
    else
        fprintf(stderr, "error: %s: %s\n", gf_strerror(res->err), st->message);
}

/* ---- lifetime ------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_refl_closed(void *data)
{
    struct kube_run *r = data;
    r->refl = NULL;
}

/* Ends the run: everything is closed, the loop then runs dry. */
static void stop(struct kube_run *r)
{
    if (r->stopping)
        return;
    r->stopping = true;
    gf_kube_discover_cancel(r->disc);
    if (r->refl != NULL)
        gf_reflector_close(r->refl, on_refl_closed, r);
    if (r->signals) {
        uv_close((uv_handle_t *)&r->sigint, on_handle_closed);
        uv_close((uv_handle_t *)&r->sigterm, on_handle_closed);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

/* ---- get ------------------------------------------------------------------
 */

static void on_get(void *data, const struct gf_kube_result *res)
{
    struct kube_run *r = data;
    if (res->err != 0) {
        print_error(res);
        r->status = res->err == GF_ENOTFOUND ? 1 : 2;
    } else if (r->a.json) {
        print_exact(res->body, res->body_len, res->json);
    } else {
        print_name(r, res->json, "");
    }
    stop(r);
}

static int list_page(struct kube_run *r, const char *cont);

/* The apiVersion and kind of the items of a list (a FooList of
 * group/version), as kubectl adds them; the resource's when the list
 * says nothing usable. */
static void item_type(struct kube_run *r, const cJSON *list)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(list, "apiVersion");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(list, "kind");
    size_t kl = cJSON_IsString(k) ? strlen(k->valuestring) : 0;
    if (cJSON_IsString(av) && kl > 4 &&
        strcmp(k->valuestring + kl - 4, "List") == 0) {
        snprintf(r->item_api_version, sizeof(r->item_api_version), "%s",
                 av->valuestring);
        snprintf(r->item_kind, sizeof(r->item_kind), "%.*s", (int)(kl - 4),
                 k->valuestring);
        return;
    }
    if (r->res.group[0] != '\0')
        snprintf(r->item_api_version, sizeof(r->item_api_version), "%s/%s",
                 r->res.group, r->res.version);
    else
        snprintf(r->item_api_version, sizeof(r->item_api_version), "%s",
                 r->res.version);
    snprintf(r->item_kind, sizeof(r->item_kind), "%s", r->res.kind);
}

/* get -o json: moves a page's items (numbers as written) into r->items,
 * each with its apiVersion and kind. */
static void keep_items(struct kube_run *r, const struct gf_kube_result *res)
{
    item_type(r, res->json);
    cJSON *page = NULL;
    cJSON *items;
    if (gf_ctl_json_parse(res->body, res->body_len, &page) == 0)
        items = cJSON_GetObjectItemCaseSensitive(page, "items");
    else /* copied: the page's tree lives only for this callback */
        items = cJSON_Duplicate(
            cJSON_GetObjectItemCaseSensitive(res->json, "items"), true);
    cJSON *it = cJSON_IsArray(items) ? items->child : NULL;
    while (it != NULL) {
        cJSON *next = it->next;
        cJSON_DetachItemViaPointer(items, it);
        gf_ctl_json_type_meta(it, r->item_api_version, r->item_kind);
        gf_ctl_json_strip_managed(it);
        cJSON_AddItemToArray(r->items, it);
        it = next;
    }
    if (page != NULL)
        cJSON_Delete(page);
    else
        cJSON_Delete(items);
}

static void on_page(void *data, const struct gf_kube_result *res)
{
    struct kube_run *r = data;
    if (res->err != 0 || res->json == NULL) {
        print_error(res);
        r->status = 2;
        stop(r);
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res->json, "items"))
    {
        if (!r->a.json)
            print_name(r, it, "");
    }
    if (r->a.json)
        keep_items(r, res);
    const char *rv = NULL, *cont = NULL;
    gf_kube_list_meta(res->json, &rv, &cont);
    if (cont != NULL && *cont != '\0' && list_page(r, cont) == 0)
        return;
    if (r->a.json) {
        /* kubectl's List, members in its (sorted) order. */
        cJSON *list = cJSON_CreateObject();
        cJSON_AddStringToObject(list, "apiVersion", "v1");
        cJSON_AddItemToObject(list, "items", r->items);
        cJSON_AddStringToObject(list, "kind", "List");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(list, "metadata"),
                                "resourceVersion", "");
        r->items = NULL;
        print_json(list, true);
        cJSON_Delete(list);
    }
    stop(r);
}

static int list_page(struct kube_run *r, const char *cont)
{
    struct gf_kube_list_opts lo = {
        .ns = r->ns,
        .label_selector = r->a.selector,
        .continue_token = cont,
        .limit = KUBE_PAGE,
    };
    int rc = gf_kube_list(r->client, &r->res, &lo, on_page, r, NULL);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
        r->status = 2;
        stop(r);
    }
    return rc;
}

static int start_get(struct kube_run *r)
{
    if (r->a.name == NULL) {
        r->items = cJSON_CreateArray();
        return list_page(r, NULL);
    }
    int rc = gf_kube_get(r->client, &r->res, r->ns, r->a.name, on_get, r, NULL);
    if (rc != 0)
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
    return rc;
}

/* ---- watch ----------------------------------------------------------------
 */

/* The store keeps each object's compact JSON, to print deletes too. */
static int project_json(void *data, const cJSON *obj, void **out)
{
    struct kube_run *r = data;
    /* The objects of the initial list lack apiVersion and kind; kubectl
     * shows neither managedFields. */
    cJSON *copy = cJSON_Duplicate(obj, true);
    gf_ctl_json_type_meta(copy, r->item_api_version, r->item_kind);
    gf_ctl_json_strip_managed(copy);
    char *s = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    *out = gf_strdup(s);
    cJSON_free(s);
    return 0;
}

static void print_event(struct kube_run *r, const char *type, const char *js)
{
    cJSON *obj = cJSON_Parse(js);
    if (obj == NULL)
        return;
    if (r->a.json) {
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "type", type);
        cJSON_AddItemToObject(ev, "object", obj);
        print_json(ev, false);
        cJSON_Delete(ev);
    } else {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "%-9s ", type);
        print_name(r, obj, prefix);
        cJSON_Delete(obj);
    }
    /* One line per event, as it happens: pipes must not hold them. */
    fflush(stdout);
}

static void on_add(void *data, const struct gf_store_entry *e)
{
    print_event(data, "ADDED", e->proj);
}

static void on_update(void *data, const struct gf_store_entry *old,
                      const struct gf_store_entry *cur)
{
    (void)old;
    print_event(data, "MODIFIED", cur->proj);
}

static void on_delete(void *data, const struct gf_store_entry *old)
{
    print_event(data, "DELETED", old->proj);
}

/* The server refused the watch for good (403, 404 ...): a command
 * exits with its words rather than retry every few minutes. */
static void on_refl_terminal(void *data, int err,
                             const struct gf_api_status *st)
{
    struct kube_run *r = data;
    struct gf_kube_result res = {.err = err, .status = st};
    print_error(&res);
    r->status = 2;
    stop(r);
}

static int start_watch(struct kube_run *r)
{
    static const struct gf_store_handlers h = {
        .on_add = on_add, .on_update = on_update, .on_delete = on_delete};
    struct gf_store_handlers hs = h;
    hs.data = r;
    item_type(r, NULL);
    struct gf_store_opts so = {
        .project = project_json,
        .project_data = r,
        .free_proj = gf_free,
        .handlers = &hs,
    };
    r->store = gf_store_new(&so);
    gf_rand_seed_os(&r->rng);
    struct gf_reflector_opts ro = {
        .client = r->client,
        .store = r->store,
        .rng = &r->rng,
        .res = r->res,
        .ns = r->ns,
        .label_selector = r->a.selector,
        .page_limit = KUBE_PAGE,
        .on_terminal = on_refl_terminal,
        .data = r,
    };
    int rc = gf_reflector_new(&ro, &r->refl);
    if (rc == 0)
        rc = gf_reflector_start(r->refl);
    if (rc != 0)
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
    return rc;
}

/* ---- main -----------------------------------------------------------------
 */

static int load_creds(const struct kube_args *a, struct gf_kube_creds **out)
{
    struct gf_kubeconfig_error err;
    int rc = gf_kubeconfig_load(a->kubeconfig, a->context, out, &err);
    if (rc != 0) {
        char line[600];
        gf_kubeconfig_error_format(&err, line, sizeof(line));
        fprintf(stderr, "gpufedctl kube: %s\n", line);
    }
    return rc;
}

static void on_discovered(void *data, int err, const struct gf_api_status *st,
                          struct gf_kube_discovery *d)
{
    struct kube_run *r = data;
    r->disc = NULL;
    if (err != 0) {
        if (err != GF_ECANCELED) {
            struct gf_kube_result res = {.err = err, .status = st};
            print_error(&res);
            r->status = 2;
        }
        stop(r);
        return;
    }
    int rc = gf_kube_discovery_resolve(d, r->a.resource, &r->res);
    gf_kube_discovery_free(d);
    if (rc != 0) {
        /* kubectl's words, and like a missing object, status 1 */
        fprintf(stderr,
                "error: the server doesn't have a resource type "
                "\"%s\"\n",
                r->a.resource);
        r->status = rc == -ENOENT ? 1 : 2;
        stop(r);
        return;
    }
    if (r->res.namespaced && r->a.all_ns && r->a.name != NULL) {
        /* kubectl's words; a cluster-scoped object is fine with -A */
        fprintf(stderr, "error: a resource cannot be retrieved by name "
                        "across all namespaces\n");
        r->status = 2;
        stop(r);
        return;
    }
    if (r->res.namespaced && !r->a.all_ns)
        r->ns = r->a.ns != NULL ? r->a.ns : gf_kube_client_namespace(r->client);
    rc = strcmp(r->a.verb, "get") == 0 ? start_get(r) : start_watch(r);
    if (rc != 0) {
        r->status = 2;
        stop(r);
    }
}

static int start_discovery(struct kube_run *r)
{
    int rc =
        gf_kube_discover_start(r->client, NULL, on_discovered, r, &r->disc);
    if (rc != 0)
        fprintf(stderr, "error: %s\n", gf_strerror(rc));
    return rc;
}

/* The loop, clock, transfer engine, client and signal handlers. The loop
 * is initialised first; a failure after that is undone by teardown(). */
static int setup(struct kube_run *r, const struct gf_kube_creds *creds)
{
    if (gf_clock_init_uv(&r->clk, &r->loop) != 0 ||
        gf_http_new(&r->loop, &r->clk, &r->http) != 0)
        return -EIO;
    struct gf_kube_client_opts co = {.user_agent = "gpufedctl"};
    int rc = gf_kube_client_new(r->http, &r->clk, creds, &co, &r->client);
    if (rc != 0)
        return rc;
    uv_signal_init(&r->loop, &r->sigint);
    uv_signal_init(&r->loop, &r->sigterm);
    r->sigint.data = r->sigterm.data = r;
    uv_signal_start(&r->sigint, on_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_signal, SIGTERM);
    r->signals = true;
    return 0;
}

static void teardown(struct kube_run *r)
{
    /* Closes first (reflector, signals), then what they used. */
    if (r->signals)
        stop(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    gf_store_free(r->store);
    cJSON_Delete(r->items);
    gf_kube_client_free(r->client);
    if (r->http != NULL)
        gf_http_close(r->http, NULL, NULL);
    gf_clock_close(&r->clk);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
}

int gf_ctl_kube_main(int argc, char **argv)
{
    struct kube_run r = {0};
    if (argc >= 2 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        kube_usage(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &r.a) != 0) {
        kube_usage(stderr);
        return 2;
    }
    if (r.a.help) {
        kube_usage(stdout);
        return 0;
    }
    /* Client logs go to stderr, warnings and up: stdout is the output. */
    gf_log_set_level(GF_LOG_WARN);
    struct gf_kube_creds *creds = NULL;
    if (load_creds(&r.a, &creds) != 0)
        return 2;
    if (uv_loop_init(&r.loop) != 0) {
        gf_kube_creds_free(creds);
        return 2;
    }
    int rc = setup(&r, creds);
    gf_kube_creds_free(creds);
    if (rc == 0)
        rc = start_discovery(&r);
    if (rc == 0)
        uv_run(&r.loop, UV_RUN_DEFAULT);
    else
        r.status = 2;
    teardown(&r);
    return r.status;
}
