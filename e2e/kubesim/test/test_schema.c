/*
 * Tests for kubesim/schema against the real Kueue CRDs (an unchanged copy
 * under e2e/testdata/kueue/): every upstream sample validates; mutated
 * objects (wrong type, missing required field, value outside an enum)
 * fail with 422 and a cause naming the field path as the API server
 * writes it; unknown fields are pruned; defaults are set; equal schemas
 * are interned once.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "e2e/kubesim/patch.h"
#include "e2e/kubesim/schema.h"
#include "e2e/kubesim/test/api_testkit.h"
#include "kubeclient/global.h"

static int64_t baseline;

/* ---- YAML to JSON (test support) --------------------------------------- */

/* Plain scalars are typed as sigs.k8s.io/yaml types them; quoted are strings.
 */
static cJSON *yaml_scalar(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cJSON_CreateString(v);
    if (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
        strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0)
        return cJSON_CreateNull();
    if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 ||
        strcmp(v, "TRUE") == 0)
        return cJSON_CreateTrue();
    if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 ||
        strcmp(v, "FALSE") == 0)
        return cJSON_CreateFalse();
    char *end = NULL;
    double d = strtod(v, &end);
    bool numeric = (v[0] >= '0' && v[0] <= '9') ||
                   ((v[0] == '-' || v[0] == '+' || v[0] == '.') &&
                    v[1] >= '0' && v[1] <= '9');
    if (numeric && end != NULL && *end == '\0')
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(v);
}

static cJSON *yaml_node(yaml_document_t *doc, const yaml_node_t *n, int depth)
{
    assert_true(depth < 200);
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return yaml_scalar(n);
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             i < n->data.sequence.items.top; i++)
            cJSON_AddItemToArray(
                a, yaml_node(doc, yaml_document_get_node(doc, *i), depth + 1));
        return a;
    }
    case YAML_MAPPING_NODE: {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            const yaml_node_t *k = yaml_document_get_node(doc, p->key);
            assert_int_equal(k->type, YAML_SCALAR_NODE);
            cJSON_AddItemToObject(
                o, (const char *)k->data.scalar.value,
                yaml_node(doc, yaml_document_get_node(doc, p->value),
                          depth + 1));
        }
        return o;
    }
    case YAML_NO_NODE:
        break;
    }
    return cJSON_CreateNull();
}

/* Every document of a YAML file, as a JSON array (empty docs skipped). */
/* rel: a file under the upstream Kueue folder (ks_apitk_kueue_dir). */
static cJSON *load_yaml(const char *rel)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", ks_apitk_kueue_dir(), rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    yaml_parser_t parser;
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    cJSON *all = cJSON_CreateArray();
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc))
            fail_msg("%s: %s", path, parser.problem);
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) {
            yaml_document_delete(&doc);
            break;
        }
        cJSON *j = yaml_node(&doc, root, 0);
        if (cJSON_IsObject(j))
            cJSON_AddItemToArray(all, j);
        else
            cJSON_Delete(j);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return all;
}

/* ---- fixture: one schema per (kind, version) --------------------------- */

#define MAX_SCHEMAS 32

struct crdset {
    struct gf_ks_schema_cache *cache;
    int n;
    char kind[MAX_SCHEMAS][64];
    char version[MAX_SCHEMAS][16];
    struct gf_ks_schema *schema[MAX_SCHEMAS];
};

static const char *const crd_files[] = {
    "admissionchecks", "clusterqueues",      "cohorts",
    "localqueues",     "multikueueclusters", "multikueueconfigs",
    "resourceflavors", "topologies",         "workloadpriorityclasses",
    "workloads",
};

static void crdset_load(struct crdset *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->cache = gf_ks_schema_cache_new();
    for (size_t i = 0; i < sizeof(crd_files) / sizeof(crd_files[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "crds/kueue.x-k8s.io_%s.yaml",
                 crd_files[i]);
        cJSON *docs = load_yaml(path);
        const cJSON *crd = cJSON_GetArrayItem(docs, 0);
        assert_string_equal(gf_json_str(crd, "kind"),
                            "CustomResourceDefinition");
        const char *kind = gf_json_str(crd, "spec.names.kind");
        const cJSON *v;
        cJSON_ArrayForEach(v, gf_json_path(crd, "spec.versions"))
        {
            const cJSON *sch = gf_json_path(v, "schema.openAPIV3Schema");
            assert_non_null(sch);
            assert_true(cs->n < MAX_SCHEMAS);
            snprintf(cs->kind[cs->n], 64, "%s", kind);
            snprintf(cs->version[cs->n], 16, "%s", gf_json_str(v, "name"));
            cs->schema[cs->n++] = gf_ks_schema_intern(cs->cache, sch);
        }
        cJSON_Delete(docs);
    }
}

static void crdset_free(struct crdset *cs)
{
    for (int i = 0; i < cs->n; i++)
        gf_ks_schema_unref(cs->schema[i]);
    gf_ks_schema_cache_free(cs->cache);
}

static const struct gf_ks_schema *
crdset_find(const struct crdset *cs, const char *kind, const char *version)
{
    for (int i = 0; i < cs->n; i++)
        if (strcmp(cs->kind[i], kind) == 0 &&
            strcmp(cs->version[i], version) == 0)
            return cs->schema[i];
    return NULL;
}

static int validate(const struct crdset *cs, cJSON *obj,
                    struct gf_ks_status *err)
{
    const char *api = gf_json_str(obj, "apiVersion");
    const char *kind = gf_json_str(obj, "kind");
    assert_non_null(api);
    assert_non_null(kind);
    const char *slash = strchr(api, '/');
    assert_non_null(slash);
    const struct gf_ks_schema *s = crdset_find(cs, kind, slash + 1);
    if (s == NULL)
        fail_msg("no schema for %s %s", api, kind);
    const char *name = gf_json_str(obj, "metadata.name");
    return gf_ks_schema_validate(s, obj, kind, "kueue.x-k8s.io",
                                 name != NULL ? name : "", err);
}

/* ---- tests ------------------------------------------------------------- */

static void test_interning(void **state)
{
    (void)state;
    struct crdset cs;
    crdset_load(&cs);
    size_t n = gf_ks_schema_cache_size(cs.cache);
    assert_true(n >= 10);
    /* A second cluster installing the same CRDs shares every schema. */
    cJSON *docs = load_yaml("crds/kueue.x-k8s.io_workloads.yaml");
    const cJSON *v;
    cJSON_ArrayForEach(
        v, gf_json_path(cJSON_GetArrayItem(docs, 0), "spec.versions"))
    {
        struct gf_ks_schema *s = gf_ks_schema_intern(
            cs.cache, gf_json_path(v, "schema.openAPIV3Schema"));
        assert_ptr_equal(s,
                         crdset_find(&cs, "Workload", gf_json_str(v, "name")));
        assert_true(gf_json_equal(gf_ks_schema_root(s),
                                  gf_json_path(v, "schema.openAPIV3Schema")));
        gf_ks_schema_unref(s);
    }
    cJSON_Delete(docs);
    assert_int_equal(gf_ks_schema_cache_size(cs.cache), n);
    crdset_free(&cs);
    assert_int_equal(gf_alloc_live(), baseline);
}

/* dir: relative to the upstream Kueue folder, as load_yaml takes it. */
static int validate_samples_in(const struct crdset *cs, const char *dir)
{
    char abs[2048];
    snprintf(abs, sizeof(abs), "%s/%s", ks_apitk_kueue_dir(), dir);
    DIR *d = opendir(abs);
    if (d == NULL)
        fail_msg("cannot open %s", abs);
    int checked = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".yaml") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        cJSON *docs = load_yaml(path);
        cJSON *obj;
        cJSON_ArrayForEach(obj, docs)
        {
            const char *api = gf_json_str(obj, "apiVersion");
            if (api == NULL || strncmp(api, "kueue.x-k8s.io/", 15) != 0)
                continue; /* Jobs, Namespaces, Secrets: built-in types */
            struct gf_ks_status err;
            gf_ks_status_init(&err);
            int rc = validate(cs, obj, &err);
            if (rc != 0)
                fail_msg("%s: %s %s: %s", path, gf_json_str(obj, "kind"),
                         gf_json_str(obj, "metadata.name"), err.message);
            gf_ks_status_clear(&err);
            checked++;
        }
        cJSON_Delete(docs);
    }
    closedir(d);
    return checked;
}

static void test_upstream_samples_validate(void **state)
{
    (void)state;
    struct crdset cs;
    crdset_load(&cs);
    static const char *const dirs[] = {"single-cluster", "gpu", "multikueue",
                                       "cohort-borrowing"};
    int checked = 0;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "samples/%s", dirs[i]);
        checked += validate_samples_in(&cs, dir);
    }
    print_message("validated %d upstream Kueue objects\n", checked);
    assert_true(checked >= 30);
    crdset_free(&cs);
    assert_int_equal(gf_alloc_live(), baseline);
}

/* A Workload as Kueue creates it for the upstream sample Job. */
static const char workload_json[] =
    "{\"apiVersion\":\"kueue.x-k8s.io/v1beta2\",\"kind\":\"Workload\","
    "\"metadata\":{\"name\":\"job-sample-job-abcde\",\"namespace\":"
    "\"default\"},"
    "\"spec\":{\"queueName\":\"user-queue\",\"priority\":0,"
    "\"podSets\":[{\"name\":\"main\",\"count\":3,\"template\":{\"spec\":{"
    "\"containers\":[{\"name\":\"dummy-job\",\"image\":"
    "\"registry.k8s.io/e2e-test-images/agnhost:2.53\",\"command\":["
    "\"/bin/sh\"],\"args\":[\"-c\",\"sleep 60\"],\"resources\":{"
    "\"requests\":{\"cpu\":\"1\",\"memory\":\"200Mi\"}}}],"
    "\"restartPolicy\":\"Never\"}}}]},"
    "\"status\":{\"conditions\":[{\"type\":\"QuotaReserved\",\"status\":"
    "\"True\",\"reason\":\"QuotaReserved\",\"message\":\"Quota reserved in "
    "ClusterQueue cluster-queue\",\"lastTransitionTime\":"
    "\"2026-11-24T10:00:00Z\",\"observedGeneration\":1}]}}";

struct mcase {
    const char *kind; /* "Workload", "ClusterQueue", "LocalQueue" */
    const char *set;  /* JSON merged into the object (RFC 7386 style) */
    const char *del;  /* a dotted path removed first, or NULL */
    const char *field, *reason, *msg_part;
};

static cJSON *base_object(const struct crdset *cs, const char *kind)
{
    (void)cs;
    if (strcmp(kind, "Workload") == 0)
        return cJSON_Parse(workload_json);
    /* ClusterQueue and LocalQueue come from the upstream setup sample. */
    cJSON *docs = load_yaml("samples/single-cluster/"
                            "single-clusterqueue-setup.yaml");
    cJSON *obj;
    cJSON_ArrayForEach(obj, docs)
    {
        if (strcmp(gf_json_str(obj, "kind"), kind) == 0) {
            cJSON *d = cJSON_Duplicate(obj, true);
            cJSON_Delete(docs);
            return d;
        }
    }
    cJSON_Delete(docs);
    fail_msg("no %s sample", kind);
    return NULL;
}

/* Removes the node at a dotted path with [i] indexes ("a.b[0].c"). */
static void del_path(cJSON *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    cJSON *cur = root;
    char *tok = buf;
    char *last = NULL;
    cJSON *parent = NULL;
    while (tok != NULL) {
        char *dot = strchr(tok, '.');
        if (dot != NULL)
            *dot = '\0';
        char *br = strchr(tok, '[');
        int idx = -1;
        if (br != NULL) {
            *br = '\0';
            idx = (int)strtol(br + 1, NULL, 10);
        }
        parent = cur;
        last = tok;
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        if (idx >= 0) {
            parent = cur;
            cur = cJSON_GetArrayItem(cur, idx);
            last = NULL;
        }
        assert_non_null(cur);
        tok = dot != NULL ? dot + 1 : NULL;
    }
    assert_non_null(last);
    cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
}

static void merge_into(cJSON *dst, const cJSON *src)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, src)
    {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, s->string);
        if (cJSON_IsObject(s) && cJSON_IsObject(d)) {
            merge_into(d, s);
            continue;
        }
        if (cJSON_IsArray(s) && cJSON_IsArray(d)) {
            /* Arrays merge element-wise so one deep field can change. */
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, s)
            {
                cJSON *de = cJSON_GetArrayItem(d, i++);
                if (cJSON_IsObject(e) && cJSON_IsObject(de))
                    merge_into(de, e);
            }
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(dst, s->string);
        cJSON_AddItemToObject(dst, s->string, cJSON_Duplicate(s, true));
    }
}

static void test_mutated_objects_fail_naming_the_field(void **state)
{
    (void)state;
    struct crdset cs;
    crdset_load(&cs);
    static const struct mcase cases[] = {
        {"Workload", "{\"spec\":{\"active\":\"yes\"}}", NULL, "spec.active",
         "FieldValueTypeInvalid",
         "Workload.kueue.x-k8s.io \"job-sample-job-abcde\" is invalid: "
         "spec.active: Invalid value: \"string\": spec.active in body must "
         "be of type boolean: \"string\""},
        {"Workload", "{\"spec\":{\"podSets\":[{\"count\":\"3\"}]}}", NULL,
         "spec.podSets[0].count", "FieldValueTypeInvalid",
         "must be of type integer"},
        {"Workload", "{\"spec\":{\"podSets\":[{\"count\":1.5}]}}", NULL,
         "spec.podSets[0].count", "FieldValueTypeInvalid",
         "must be of type integer: \"number\""},
        {"Workload", "{}", "spec.podSets[0].template",
         "spec.podSets[0].template", "FieldValueRequired",
         "spec.podSets[0].template: Required value"},
        {"Workload", "{\"status\":{\"conditions\":[{\"status\":\"Maybe\"}]}}",
         NULL, "status.conditions[0].status", "FieldValueNotSupported",
         "Unsupported value: \"Maybe\": supported values: \"True\", "
         "\"False\", \"Unknown\""},
        {"ClusterQueue", "{\"spec\":{\"queueingStrategy\":\"Random\"}}", NULL,
         "spec.queueingStrategy", "FieldValueNotSupported",
         "supported values: \"StrictFIFO\", \"BestEffortFIFO\""},
        {"ClusterQueue",
         "{\"spec\":{\"resourceGroups\":[{\"flavors\":[{\"resources\":[{"
         "\"nominalQuota\":true}]}]}]}}",
         NULL, "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota",
         "FieldValueTypeInvalid", "must be of type integer,string"},
        {"ClusterQueue", "{}", "spec.resourceGroups[0].coveredResources",
         "spec.resourceGroups[0].coveredResources", "FieldValueRequired",
         "Required value"},
        {"ClusterQueue", "{\"spec\":{\"resourceGroups\":{}}}", NULL,
         "spec.resourceGroups", "FieldValueTypeInvalid",
         "must be of type array: \"object\""},
        {"LocalQueue", "{\"spec\":{\"clusterQueue\":5}}", NULL,
         "spec.clusterQueue", "FieldValueTypeInvalid",
         "must be of type string: \"integer\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *obj = base_object(&cs, cases[i].kind);
        assert_non_null(obj);
        /* The unmutated object is valid. */
        cJSON *copy = cJSON_Duplicate(obj, true);
        assert_int_equal(validate(&cs, copy, NULL), 0);
        cJSON_Delete(copy);
        if (cases[i].del != NULL)
            del_path(obj, cases[i].del);
        cJSON *set = cJSON_Parse(cases[i].set);
        merge_into(obj, set);
        cJSON_Delete(set);
        struct gf_ks_status err;
        gf_ks_status_init(&err);
        int rc = validate(&cs, obj, &err);
        print_message("case %zu: %d %s\n", i, err.code, err.message);
        assert_int_equal(rc, GF_EINVALID);
        assert_int_equal(err.code, 422);
        assert_string_equal(err.reason, "Invalid");
        assert_string_equal(err.kind, cases[i].kind);
        assert_string_equal(err.group, "kueue.x-k8s.io");
        assert_non_null(strstr(err.message, cases[i].msg_part));
        const cJSON *c = cJSON_GetArrayItem(err.causes, 0);
        assert_string_equal(gf_json_str(c, "field"), cases[i].field);
        assert_string_equal(gf_json_str(c, "reason"), cases[i].reason);
        /* The Status body carries the causes. */
        cJSON *body = gf_ks_status_to_json(&err);
        assert_string_equal(
            gf_json_str(
                cJSON_GetArrayItem(gf_json_path(body, "details.causes"), 0),
                "field"),
            cases[i].field);
        cJSON_Delete(body);
        gf_ks_status_clear(&err);
        cJSON_Delete(obj);
    }
    crdset_free(&cs);
    assert_int_equal(gf_alloc_live(), baseline);
}

static void test_prune_default_and_many_errors(void **state)
{
    (void)state;
    struct crdset cs;
    crdset_load(&cs);
    cJSON *obj = cJSON_Parse(workload_json);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    cJSON_AddStringToObject(spec, "bogus", "x");
    cJSON_AddStringToObject(obj, "extra", "x");
    assert_int_equal(validate(&cs, obj, NULL), 0);
    /* Unknown fields are pruned, metadata is left alone. */
    assert_null(gf_json_path(obj, "spec.bogus"));
    assert_null(gf_json_path(obj, "extra"));
    assert_string_equal(gf_json_str(obj, "metadata.name"),
                        "job-sample-job-abcde");
    /* spec.active defaults to true; the pod template keeps its fields. */
    bool active = false;
    assert_int_equal(gf_json_bool(obj, "spec.active", &active), 0);
    assert_true(active);
    const cJSON *c = cJSON_GetArrayItem(gf_json_path(obj, "spec.podSets"), 0);
    assert_non_null(gf_json_path(c, "template.spec.restartPolicy"));
    cJSON_Delete(obj);
    /* Several errors: one message in brackets, one cause each. */
    obj = cJSON_Parse(workload_json);
    cJSON *bad = cJSON_Parse("{\"spec\":{\"active\":1,\"queueName\":[]}}");
    merge_into(obj, bad);
    cJSON_Delete(bad);
    struct gf_ks_status err;
    gf_ks_status_init(&err);
    assert_int_equal(validate(&cs, obj, &err), GF_EINVALID);
    assert_int_equal(cJSON_GetArraySize(err.causes), 2);
    assert_non_null(strstr(err.message, "is invalid: ["));
    gf_ks_status_clear(&err);
    cJSON_Delete(obj);
    crdset_free(&cs);
    assert_int_equal(gf_alloc_live(), baseline);
}

int main(void)
{
    gf_kube_global_init();
    baseline = gf_alloc_live();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interning),
        cmocka_unit_test(test_upstream_samples_validate),
        cmocka_unit_test(test_mutated_objects_fail_naming_the_field),
        cmocka_unit_test(test_prune_default_and_many_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gf_kube_global_cleanup();
    return rc;
}
