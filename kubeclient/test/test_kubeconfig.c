/*
 * Tests for kubeclient/kubeconfig: every field a context resolves to,
 * every error with the line and column it must name, token-file reload,
 * and in-cluster credentials from a service-account directory.
 *
 * Files referenced by the kubeconfigs live in a private mkdtemp directory
 * that the group teardown removes. "@DIR@" in a table's YAML is replaced
 * by that directory so absolute references can be tested too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "kubeclient/kubeconfig.h"

static int64_t baseline;
static char tmpdir[256];

/* Files created in tmpdir, removed by the group teardown. */
static const char *const tmpfiles[] = {
    "ca.pem",   "cert.pem",  "key.pem",      "token",     "config",
    "sa/token", "sa/ca.crt", "sa/namespace", "rot-token",
};

static void write_file(const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    assert_int_equal(fclose(f), 0);
}

static void remove_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    (void)unlink(path);
}

static int group_setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/gf-kubeconfig-XXXXXX",
             t && t[0] ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    char sa[300];
    snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
    if (mkdir(sa, 0700) != 0)
        return -1;
    write_file("ca.pem", "FILE-CA\n");
    write_file("cert.pem", "FILE-CERT\n");
    write_file("key.pem", "FILE-KEY\n");
    write_file("token", "  tok-from-file\n");
    write_file("sa/token", "sa-token\n");
    write_file("sa/ca.crt", "SA-CA\n");
    write_file("sa/namespace", "kueue-system\n");
    baseline = gf_alloc_live();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tmpfiles) / sizeof(tmpfiles[0]); i++)
        remove_file(tmpfiles[i]);
    char sa[300];
    snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
    (void)rmdir(sa);
    return rmdir(tmpdir);
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(gf_alloc_live(), baseline);
    return 0;
}

/* yaml with @DIR@ replaced by tmpdir; returned-owned. */
static char *expand(const char *yaml)
{
    struct gf_buf b = GF_BUF_INIT(1 << 20);
    for (const char *p = yaml; *p;) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            assert_int_equal(gf_buf_puts(&b, tmpdir), 0);
            p += 5;
        } else {
            assert_int_equal(gf_buf_putc(&b, *p++), 0);
        }
    }
    return gf_buf_steal(&b);
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static void assert_bytes(const unsigned char *got, size_t len, const char *want)
{
    if (want == NULL) {
        assert_null(got);
        assert_int_equal(len, 0);
        return;
    }
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
}

/* ------------------------------------------------------------------ */
/* fields                                                              */

static const char *const full_config =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: inline\n"
    "preferences: {}\n"
    "clusters:\n"
    "- name: c-inline\n"
    "  cluster:\n"
    "    server: https://10.0.0.1:6443/\n"
    "    certificate-authority-data: Q0EtUEVN\n"
    "    tls-server-name: api.example\n"
    "    proxy-url: http://ignored:3128\n"
    "- name: c-files\n"
    "  cluster:\n"
    "    server: https://files.example\n"
    "    certificate-authority: ca.pem\n"
    "    insecure-skip-tls-verify: true\n"
    "- name: c-both\n"
    "  cluster:\n"
    "    server: http://127.0.0.1:8080\n"
    "    certificate-authority: does-not-matter.pem\n"
    "    certificate-authority-data: REFUQS1DQQ==\n"
    "    insecure-skip-tls-verify: false\n"
    "users:\n"
    "- name: u-inline\n"
    "  user:\n"
    "    client-certificate-data: Q0VSVA==\n"
    "    client-key-data: S0VZ\n"
    "    token: tok-inline\n"
    "- name: u-files\n"
    "  user:\n"
    "    client-certificate: cert.pem\n"
    "    client-key: @DIR@/key.pem\n"
    "    tokenFile: token\n"
    "- name: u-both-tokens\n"
    "  user:\n"
    "    token: wins\n"
    "    tokenFile: token\n"
    "- name: u-empty\n"
    "  user: {}\n"
    "contexts:\n"
    "- name: inline\n"
    "  context:\n"
    "    cluster: c-inline\n"
    "    user: u-inline\n"
    "    namespace: team-a\n"
    "- name: files\n"
    "  context: {cluster: c-files, user: u-files}\n"
    "- name: both\n"
    "  context:\n"
    "    cluster: c-both\n"
    "    user: u-both-tokens\n"
    "- name: anonymous\n"
    "  context:\n"
    "    cluster: c-both\n"
    "- name: empty-user\n"
    "  context:\n"
    "    cluster: c-both\n"
    "    user: u-empty\n";

struct field_case {
    const char *context; /* NULL: current-context */
    const char *server, *tls_server_name, *ns;
    const char *ca, *cert, *key, *token, *token_file_base;
    const char *cluster, *user;
    bool insecure;
};

static const struct field_case field_cases[] = {
    {NULL, "https://10.0.0.1:6443", "api.example", "team-a", "CA-PEM", "CERT",
     "KEY", "tok-inline", NULL, "c-inline", "u-inline", false},
    {"files", "https://files.example", NULL, NULL, "FILE-CA\n", "FILE-CERT\n",
     "FILE-KEY\n", "tok-from-file", "token", "c-files", "u-files", true},
    {"both", "http://127.0.0.1:8080", NULL, NULL, "DATA-CA", NULL, NULL, "wins",
     "token", "c-both", "u-both-tokens", false},
    {"anonymous", "http://127.0.0.1:8080", NULL, NULL, "DATA-CA", NULL, NULL,
     NULL, NULL, "c-both", NULL, false},
    {"empty-user", "http://127.0.0.1:8080", NULL, NULL, "DATA-CA", NULL, NULL,
     NULL, NULL, "c-both", "u-empty", false},
};

static void check_fields(const struct gf_kube_creds *c,
                         const struct field_case *fc)
{
    assert_string_equal(c->context, fc->context ? fc->context : "inline");
    assert_string_equal(c->server, fc->server);
    assert_str_or_null(c->cluster, fc->cluster);
    assert_str_or_null(c->user, fc->user);
    assert_str_or_null(c->tls_server_name, fc->tls_server_name);
    assert_str_or_null(c->namespace, fc->ns);
    assert_bytes(c->ca_pem, c->ca_pem_len, fc->ca);
    assert_bytes(c->cert_pem, c->cert_pem_len, fc->cert);
    assert_bytes(c->key_pem, c->key_pem_len, fc->key);
    assert_str_or_null(c->token, fc->token);
    if (fc->token_file_base == NULL) {
        assert_null(c->token_file);
    } else {
        char want[512];
        snprintf(want, sizeof(want), "%s/%s", tmpdir, fc->token_file_base);
        assert_str_or_null(c->token_file, want);
    }
    assert_int_equal(c->insecure_skip_tls_verify, fc->insecure);
}

static void test_every_field_of_every_context(void **state)
{
    (void)state;
    char *yaml = expand(full_config);
    for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
        const struct field_case *fc = &field_cases[i];
        struct gf_kube_creds *c = NULL;
        struct gf_kubeconfig_error err;
        int rc = gf_kubeconfig_parse("cfg", tmpdir, yaml, strlen(yaml),
                                     fc->context, &c, &err);
        if (rc != 0)
            fail_msg("case %zu: %d %u:%u %s", i, rc, err.line, err.column,
                     err.msg);
        check_fields(c, fc);
        /* A deep copy carries the same fields in fresh memory. */
        struct gf_kube_creds *d = gf_kube_creds_dup(c);
        gf_kube_creds_free(c);
        check_fields(d, fc);
        gf_kube_creds_free(d);
    }
    gf_free(yaml);
}

static void test_load_resolves_relative_to_the_file(void **state)
{
    (void)state;
    char *yaml = expand(full_config);
    write_file("config", yaml);
    gf_free(yaml);
    char path[512];
    snprintf(path, sizeof(path), "%s/config", tmpdir);
    /* Run from elsewhere so relative paths cannot resolve by accident. */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/"), 0);
    struct gf_kube_creds *c = NULL;
    assert_int_equal(gf_kubeconfig_load(path, "files", &c, NULL), 0);
    check_fields(c, &field_cases[1]);
    gf_kube_creds_free(c);
    /* NULL path: the first entry of $KUBECONFIG. */
    struct gf_buf env = GF_BUF_INIT(2048);
    assert_int_equal(gf_buf_printf(&env, "%s:/nonexistent/other", path), 0);
    assert_int_equal(setenv("KUBECONFIG", gf_buf_cstr(&env), 1), 0);
    gf_buf_free(&env);
    assert_int_equal(gf_kubeconfig_load(NULL, NULL, &c, NULL), 0);
    check_fields(c, &field_cases[0]);
    gf_kube_creds_free(c);
    unsetenv("KUBECONFIG");
    assert_int_equal(chdir(cwd), 0);
}

static void test_json_and_aliases_are_yaml_too(void **state)
{
    (void)state;
    static const char json[] =
        "{\"current-context\":\"j\",\"clusters\":[{\"name\":\"c\","
        "\"cluster\":{\"server\":\"https://j.example\"}}],"
        "\"contexts\":[{\"name\":\"j\",\"context\":{\"cluster\":\"c\","
        "\"namespace\":\"ns-j\"}}]}";
    struct gf_kube_creds *c = NULL;
    assert_int_equal(
        gf_kubeconfig_parse("j", NULL, json, strlen(json), NULL, &c, NULL), 0);
    assert_string_equal(c->server, "https://j.example");
    assert_string_equal(c->namespace, "ns-j");
    gf_kube_creds_free(c);

    static const char aliased[] = "clusters:\n"
                                  "- name: a\n"
                                  "  cluster: &shared\n"
                                  "    server: https://shared:443\n"
                                  "- name: b\n"
                                  "  cluster: *shared\n"
                                  "contexts:\n"
                                  "- {name: x, context: {cluster: b}}\n";
    assert_int_equal(
        gf_kubeconfig_parse("a", NULL, aliased, strlen(aliased), "x", &c, NULL),
        0);
    assert_string_equal(c->server, "https://shared:443");
    assert_string_equal(c->cluster, "b");
    gf_kube_creds_free(c);
}

/* ------------------------------------------------------------------ */
/* errors                                                              */

struct error_case {
    const char *what;
    const char *yaml;
    const char *context;
    int rc;
    unsigned line, column;
    const char *msg; /* substring of err.msg */
};

#define CTX_OK "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"

static const struct error_case error_cases[] = {
    {"unclosed flow sequence", "clusters: [a, b\n", NULL, GF_ECONFIG, 2, 1,
     "did not find expected"},
    {"bad indentation", "a: b\n  c: d\n", NULL, GF_ECONFIG, 2, 4,
     "mapping values are not allowed"},
    {"root is a list", "- a\n- b\n", NULL, GF_ECONFIG, 1, 1,
     "a kubeconfig must be a mapping"},
    {"empty file", "", NULL, GF_ECONFIG, 1, 1, "kubeconfig is empty"},
    {"no current context", "kind: Config\nclusters: []\n", NULL, GF_ECONFIG, 1,
     1, "no context given and no current-context"},
    {"current context missing",
     "kind: Config\ncurrent-context: ghost\ncontexts: []\n", NULL, GF_ECONFIG,
     2, 18, "context \"ghost\" not found"},
    {"asked context missing", "kind: Config\ncontexts:\n- name: a\n", "b",
     GF_ECONFIG, 3, 1, "context \"b\" not found"},
    {"context without cluster", "contexts:\n- name: x\n  context: {user: u}\n",
     "x", GF_ECONFIG, 3, 12, "names no cluster"},
    {"cluster missing", CTX_OK "clusters:\n- name: other\n", "x", GF_ECONFIG, 3,
     22, "cluster \"c\" not found"},
    {"user missing",
     CTX_OK "clusters:\n- name: c\n  cluster: {server: https://a}\n", "x",
     GF_ECONFIG, 3, 31, "user \"u\" not found"},
    {"cluster without server",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: "
            "true\n",
     "x", GF_ECONFIG, 7, 5, "has no server"},
    {"server not a URL",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: ftp://a\n", "x",
     GF_ECONFIG, 7, 13, "http:// or https://"},
    {"server with NUL",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: \"https://a\\0b\"\n",
     "x", GF_ECONFIG, 7, 13, "NUL"},
    {"bad base64 CA",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: https://a\n"
            "    certificate-authority-data: '!!notbase64!!'\n",
     "x", GF_ECONFIG, 8, 33, "certificate-authority-data is not valid base64"},
    {"insecure not a bool",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: https://a\n"
            "    insecure-skip-tls-verify: maybe\n",
     "x", GF_ECONFIG, 8, 31, "must be true or false"},
    {"insecure quoted",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: https://a\n"
            "    insecure-skip-tls-verify: \"true\"\n",
     "x", GF_ECONFIG, 8, 31, "must be true or false"},
    {"CA file missing",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: https://a\n"
            "    certificate-authority: nope.pem\n",
     "x", GF_ECONFIG, 8, 28, "cannot read"},
    {"CA is a directory",
     CTX_OK "clusters:\n- name: c\n  cluster:\n    server: https://a\n"
            "    certificate-authority: sa\n",
     "x", GF_ECONFIG, 8, 28, "not a regular file"},
    {"clusters not a list", CTX_OK "clusters: {c: 1}\n", "x", GF_ECONFIG, 4, 11,
     "clusters must be a list"},
    {"cluster not a mapping",
     CTX_OK "clusters:\n- name: c\n  cluster: https://a\n", "x", GF_ECONFIG, 6,
     12, "cluster must be a mapping"},
    {"entry without a name",
     CTX_OK "clusters:\n- cluster: {server: https://a}\n", "x", GF_ECONFIG, 5,
     3, "clusters entry without a name"},
    {"cert without key",
     CTX_OK "clusters:\n- name: c\n  cluster: {server: https://a}\n"
            "users:\n- name: u\n  user:\n    client-certificate-data: "
            "Q0VSVA==\n",
     "x", GF_ECONFIG, 10, 5, "client certificate without a client key"},
    {"exec plugin",
     CTX_OK "clusters:\n- name: c\n  cluster: {server: https://a}\n"
            "users:\n- name: u\n  user:\n    exec:\n      command: aws\n",
     "x", GF_ECONFIG, 11, 7, "\"exec\" is not supported"},
    {"token with a newline",
     CTX_OK "clusters:\n- name: c\n  cluster: {server: https://a}\n"
            "users:\n- name: u\n  user:\n    token: \"S3CRET\\nX\"\n",
     "x", GF_ECONFIG, 10, 12, "token holds control characters"},
    {"token file missing",
     CTX_OK "clusters:\n- name: c\n  cluster: {server: https://a}\n"
            "users:\n- name: u\n  user:\n    tokenFile: gone\n",
     "x", GF_ECONFIG, 10, 16, "cannot be read"},
    {"recursive alias", "a: &x [1, *x]\n", NULL, GF_ECONFIG, 1, 11,
     "recursive YAML alias"},
    {"unknown alias", "a: *nowhere\n", NULL, GF_ECONFIG, 1, 4,
     "unknown YAML alias"},
    {"too deep",
     "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]\n",
     NULL, GF_ECONFIG, 1, 35, "nested deeper"},
};

static void test_every_error_names_line_and_column(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *ec = &error_cases[i];
        struct gf_kube_creds *c = (struct gf_kube_creds *)&c; /* poison */
        struct gf_kubeconfig_error err;
        int rc = gf_kubeconfig_parse("bad.yaml", tmpdir, ec->yaml,
                                     strlen(ec->yaml), ec->context, &c, &err);
        if (rc != ec->rc || err.line != ec->line || err.column != ec->column ||
            strstr(err.msg, ec->msg) == NULL)
            fail_msg("%s: got rc=%d %u:%u \"%s\", want rc=%d %u:%u \"%s\"",
                     ec->what, rc, err.line, err.column, err.msg, ec->rc,
                     ec->line, ec->column, ec->msg);
        assert_null(c);
        assert_string_equal(err.file, "bad.yaml");
        /* Secrets never reach an error message. */
        assert_null(strstr(err.msg, "S3CRET"));
        assert_null(strstr(err.msg, "notbase64"));
    }
}

static void test_size_cap_and_missing_file(void **state)
{
    (void)state;
    size_t n = GF_KUBECONFIG_MAX + 1;
    char *big = gf_malloc(n);
    memset(big, '#', n);
    struct gf_kube_creds *c = NULL;
    struct gf_kubeconfig_error err;
    assert_int_equal(gf_kubeconfig_parse("big", NULL, big, n, NULL, &c, &err),
                     GF_E2BIG);
    assert_null(c);
    assert_int_equal(err.line, 0);
    /* The same cap applies when reading the file. */
    write_file("config", "");
    char path[512];
    snprintf(path, sizeof(path), "%s/config", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    gf_free(big);
    assert_int_equal(gf_kubeconfig_load(path, NULL, &c, &err), GF_E2BIG);
    assert_string_equal(err.file, path);
    assert_null(c);
    snprintf(path, sizeof(path), "%s/absent", tmpdir);
    assert_int_equal(gf_kubeconfig_load(path, NULL, &c, &err), -ENOENT);
    assert_string_equal(err.file, path);
    assert_null(c);
}

static void test_error_format(void **state)
{
    (void)state;
    struct gf_kubeconfig_error e = {.line = 3, .column = 7};
    snprintf(e.file, sizeof(e.file), "%s", "/etc/kube/config");
    snprintf(e.msg, sizeof(e.msg), "%s", "cluster \"c\" not found");
    char out[600];
    gf_kubeconfig_error_format(&e, out, sizeof(out));
    assert_string_equal(out, "/etc/kube/config:3:7: cluster \"c\" not found");
    e.line = e.column = 0;
    gf_kubeconfig_error_format(&e, out, sizeof(out));
    assert_string_equal(out, "/etc/kube/config: cluster \"c\" not found");
    char tiny[8];
    gf_kubeconfig_error_format(&e, tiny, sizeof(tiny));
    assert_string_equal(tiny, "/etc/ku");
}

/* ------------------------------------------------------------------ */
/* token reload                                                        */

static void test_token_reload_changed_unchanged_gone(void **state)
{
    (void)state;
    write_file("rot-token", "one\n");
    static const char yaml[] =
        "current-context: x\n" CTX_OK "clusters:\n- name: c\n"
        "  cluster: {server: https://a}\n"
        "users:\n- name: u\n"
        "  user: {tokenFile: rot-token}\n";
    struct gf_kube_creds *c = NULL;
    assert_int_equal(
        gf_kubeconfig_parse("k", tmpdir, yaml, strlen(yaml), NULL, &c, NULL),
        0);
    assert_string_equal(c->token, "one");
    assert_int_equal(gf_kube_creds_reload_token(c), 1); /* unchanged */
    assert_string_equal(c->token, "one");
    write_file("rot-token", "two\r\n");
    assert_int_equal(gf_kube_creds_reload_token(c), 0); /* changed */
    assert_string_equal(c->token, "two");
    assert_int_equal(gf_kube_creds_reload_token(c), 1);
    /* A rotation caught half-way (empty file) or a vanished file is an
     * error, and the last good token stays in use. */
    write_file("rot-token", "");
    assert_int_equal(gf_kube_creds_reload_token(c), GF_EPARSE);
    remove_file("rot-token");
    assert_int_equal(gf_kube_creds_reload_token(c), -ENOENT);
    assert_string_equal(c->token, "two");
    gf_kube_creds_free(c);

    /* Without a token file there is nothing to reload. */
    static const char inline_tok[] =
        "current-context: x\n" CTX_OK "clusters:\n- name: c\n"
        "  cluster: {server: https://a}\n"
        "users:\n- name: u\n"
        "  user: {token: t}\n";
    assert_int_equal(gf_kubeconfig_parse("k", tmpdir, inline_tok,
                                         strlen(inline_tok), NULL, &c, NULL),
                     0);
    assert_int_equal(gf_kube_creds_reload_token(c), -EINVAL);
    assert_string_equal(c->token, "t");
    gf_kube_creds_free(c);
}

/* ------------------------------------------------------------------ */
/* in-cluster                                                          */

static void test_in_cluster(void **state)
{
    (void)state;
    char sa[300];
    snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
    struct gf_kube_creds *c = NULL;
    struct gf_kubeconfig_error err;

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_int_equal(gf_kubeconfig_in_cluster(sa, &c, &err), GF_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(err.msg, "not running in a pod"));

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(gf_kubeconfig_in_cluster(sa, &c, &err), 0);
    assert_string_equal(c->server, "https://10.96.0.1:443");
    assert_string_equal(c->context, "in-cluster");
    assert_string_equal(c->token, "sa-token");
    char want[512];
    snprintf(want, sizeof(want), "%s/token", sa);
    assert_string_equal(c->token_file, want);
    assert_bytes(c->ca_pem, c->ca_pem_len, "SA-CA\n");
    assert_string_equal(c->namespace, "kueue-system");
    assert_false(c->insecure_skip_tls_verify);
    /* The projected token rotates; a reload picks the new one up. */
    write_file("sa/token", "sa-token-2\n");
    assert_int_equal(gf_kube_creds_reload_token(c), 0);
    assert_string_equal(c->token, "sa-token-2");
    gf_kube_creds_free(c);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    remove_file("sa/namespace");
    assert_int_equal(gf_kubeconfig_in_cluster(sa, &c, &err), 0);
    assert_string_equal(c->server, "https://[fd00::1]:443");
    assert_null(c->namespace);
    gf_kube_creds_free(c);

    setenv("KUBERNETES_SERVICE_HOST", "evil/path", 1);
    assert_int_equal(gf_kubeconfig_in_cluster(sa, &c, &err), GF_ECONFIG);
    assert_null(c);

    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    remove_file("sa/token");
    assert_int_equal(gf_kubeconfig_in_cluster(sa, &c, &err), -ENOENT);
    assert_null(c);
    assert_non_null(strstr(err.file, "/sa/token"));
    write_file("sa/token", "sa-token\n");
    write_file("sa/namespace", "kueue-system\n");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
}

int main(void)
{
    assert_int_equal(gf_alloc_global_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_every_field_of_every_context, teardown),
        cmocka_unit_test_teardown(test_load_resolves_relative_to_the_file,
                                  teardown),
        cmocka_unit_test_teardown(test_json_and_aliases_are_yaml_too, teardown),
        cmocka_unit_test_teardown(test_every_error_names_line_and_column,
                                  teardown),
        cmocka_unit_test_teardown(test_size_cap_and_missing_file, teardown),
        cmocka_unit_test_teardown(test_error_format, teardown),
        cmocka_unit_test_teardown(test_token_reload_changed_unchanged_gone,
                                  teardown),
        cmocka_unit_test_teardown(test_in_cluster, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    gf_alloc_global_cleanup();
    return rc;
}
