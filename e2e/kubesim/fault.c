/*
 * fault: a small table of active faults with expiry. A cluster rarely
 * has more than a few faults at once, so the table is an array scanned
 * in order; one clock timer fires at the earliest expiry.
 */
#include "e2e/kubesim/fault.h"

#include <errno.h>
#include <string.h>

#include "common/alloc.h"

struct gf_ks_faults {
    struct gf_clock *clk; /* borrowed */
    struct gf_timer timer;
    struct gf_ks_fault *v;
    size_t n, cap;
    uint64_t next_id;
    gf_ks_fault_listener fn;
    void *data;
};

static const char *const kind_names[GF_KS_FAULT_NKINDS] = {
    "blackhole", "reset", "latency", "5xx", "429", "watch-drop", "kueue-frozen",
};

const char *gf_ks_fault_kind_name(enum gf_ks_fault_kind k)
{
    return (unsigned)k < GF_KS_FAULT_NKINDS ? kind_names[k] : NULL;
}

int gf_ks_fault_kind_parse(const char *name, enum gf_ks_fault_kind *out)
{
    for (unsigned i = 0; name != NULL && i < GF_KS_FAULT_NKINDS; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (enum gf_ks_fault_kind)i;
            return 0;
        }
    return -EINVAL;
}

struct gf_ks_faults *gf_ks_faults_new(struct gf_clock *clock)
{
    struct gf_ks_faults *f = gf_calloc(1, sizeof(*f));
    f->clk = clock;
    gf_timer_init(clock, &f->timer);
    f->timer.data = f;
    return f;
}

static void entry_free(struct gf_ks_fault *e)
{
    GF_FREE(e->identity);
}

void gf_ks_faults_free(struct gf_ks_faults *f)
{
    if (f == NULL)
        return;
    gf_timer_stop(&f->timer);
    for (size_t i = 0; i < f->n; i++)
        entry_free(&f->v[i]);
    gf_free(f->v);
    gf_free(f);
}

void gf_ks_faults_listen(struct gf_ks_faults *f, gf_ks_fault_listener fn,
                         void *data)
{
    f->fn = fn;
    f->data = data;
}

static void notify(struct gf_ks_faults *f, enum gf_ks_fault_change ch,
                   const struct gf_ks_fault *e)
{
    if (f->fn != NULL)
        f->fn(f->data, ch, e);
}

static void on_timer(struct gf_timer *t);

/* Re-arms the timer for the earliest expiry, if any. */
static void arm(struct gf_ks_faults *f)
{
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].until_ms < first)
            first = f->v[i].until_ms;
    gf_timer_stop(&f->timer);
    if (first == UINT64_MAX)
        return;
    uint64_t now = gf_clock_now_ms(f->clk);
    gf_timer_start(&f->timer, first > now ? first - now : 0, on_timer);
}

static void remove_at(struct gf_ks_faults *f, size_t i)
{
    entry_free(&f->v[i]);
    memmove(&f->v[i], &f->v[i + 1], (f->n - i - 1) * sizeof(f->v[0]));
    f->n--;
}

/* Drops expired entries; returns true if any went. */
static bool purge(struct gf_ks_faults *f)
{
    uint64_t now = gf_clock_now_ms(f->clk);
    bool any = false;
    for (size_t i = f->n; i-- > 0;)
        if (f->v[i].until_ms <= now) {
            remove_at(f, i);
            any = true;
        }
    return any;
}

static void on_timer(struct gf_timer *t)
{
    struct gf_ks_faults *f = t->data;
    bool any = purge(f);
    arm(f);
    if (any)
        notify(f, GF_KS_FAULT_ENDED, NULL);
}

static bool spec_ok(const struct gf_ks_fault_spec *s)
{
    if ((unsigned)s->kind >= GF_KS_FAULT_NKINDS)
        return false;
    if (s->kind == GF_KS_FAULT_LATENCY && s->latency_ms == 0)
        return false;
    if (s->kind == GF_KS_FAULT_5XX && s->code != 0 &&
        (s->code < 500 || s->code > 599))
        return false;
    return true;
}

int64_t gf_ks_faults_add(struct gf_ks_faults *f,
                         const struct gf_ks_fault_spec *spec)
{
    if (!spec_ok(spec))
        return -EINVAL;
    if (f->n == f->cap) {
        f->cap = f->cap != 0 ? 2 * f->cap : 4;
        f->v = gf_realloc(f->v, f->cap * sizeof(*f->v));
    }
    struct gf_ks_fault *e = &f->v[f->n++];
    memset(e, 0, sizeof(*e));
    e->id = ++f->next_id;
    e->kind = spec->kind;
    if (spec->identity != NULL && spec->identity[0] != '\0')
        e->identity = gf_strdup(spec->identity);
    e->until_ms =
        spec->for_ms != 0 ? gf_clock_now_ms(f->clk) + spec->for_ms : UINT64_MAX;
    e->latency_ms = spec->latency_ms;
    e->code = spec->kind == GF_KS_FAULT_429 ? 429
              : spec->code != 0             ? spec->code
                                            : 503;
    /*
     * As the API server: a 429 always says when to come back; a 5xx only
     * when asked to (a 503 from an overloaded server does, a 500 does not),
     * and clients retry 5xx only when it does.
     */
    e->retry_after_s = spec->retry_after_s != 0        ? spec->retry_after_s
                       : spec->kind == GF_KS_FAULT_429 ? 1
                                                       : 0;
    e->remaining = spec->count;
    int64_t id = (int64_t)e->id;
    arm(f);
    /* Copy: the listener may add faults, which moves the array. */
    struct gf_ks_fault copy = *e;
    notify(f, GF_KS_FAULT_ADDED, &copy);
    return id;
}

void gf_ks_faults_clear(struct gf_ks_faults *f)
{
    bool any = f->n > 0;
    while (f->n > 0)
        remove_at(f, f->n - 1);
    gf_timer_stop(&f->timer);
    if (any)
        notify(f, GF_KS_FAULT_ENDED, NULL);
}

bool gf_ks_fault_applies(const struct gf_ks_fault *ft, const char *identity,
                         const char *user)
{
    if (ft->identity == NULL)
        return true;
    return (identity != NULL && strcmp(ft->identity, identity) == 0) ||
           (user != NULL && strcmp(ft->identity, user) == 0);
}

static long find(const struct gf_ks_faults *f, enum gf_ks_fault_kind kind,
                 const char *identity, const char *user)
{
    uint64_t now = gf_clock_now_ms(f->clk);
    for (size_t i = 0; i < f->n; i++) {
        const struct gf_ks_fault *e = &f->v[i];
        /* An entry past its time but not yet purged no longer counts. */
        if (e->kind == kind && e->until_ms > now &&
            gf_ks_fault_applies(e, identity, user))
            return (long)i;
    }
    return -1;
}

const struct gf_ks_fault *gf_ks_faults_match(const struct gf_ks_faults *f,
                                             enum gf_ks_fault_kind kind,
                                             const char *identity,
                                             const char *user)
{
    long i = find(f, kind, identity, user);
    return i >= 0 ? &f->v[i] : NULL;
}

bool gf_ks_faults_take(struct gf_ks_faults *f, enum gf_ks_fault_kind kind,
                       const char *identity, const char *user,
                       struct gf_ks_fault *out)
{
    long i = find(f, kind, identity, user);
    if (i < 0)
        return false;
    *out = f->v[i];
    out->identity = NULL; /* the copy does not own the string */
    if (f->v[i].remaining > 0 && --f->v[i].remaining == 0) {
        remove_at(f, (size_t)i);
        arm(f);
        notify(f, GF_KS_FAULT_ENDED, NULL);
    }
    return true;
}

bool gf_ks_faults_kueue_frozen(const struct gf_ks_faults *f)
{
    return f != NULL &&
           gf_ks_faults_match(f, GF_KS_FAULT_KUEUE_FROZEN, NULL, NULL) != NULL;
}

size_t gf_ks_faults_count(const struct gf_ks_faults *f)
{
    return f->n;
}

static int num_field(const cJSON *j, const char *key, double max,
                     unsigned long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max)
        return -EINVAL;
    *out = (unsigned long long)v->valuedouble;
    return 0;
}

int gf_ks_fault_spec_from_json(const cJSON *j, struct gf_ks_fault_spec *spec,
                               const char **why)
{
    memset(spec, 0, sizeof(*spec));
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "identity");
    if (!cJSON_IsString(kind) ||
        gf_ks_fault_kind_parse(kind->valuestring, &spec->kind) != 0) {
        *why = "unknown or missing kind";
        return -EINVAL;
    }
    if (id != NULL && !cJSON_IsNull(id) && !cJSON_IsString(id)) {
        *why = "identity must be a string";
        return -EINVAL;
    }
    spec->identity = cJSON_IsString(id) ? id->valuestring : NULL;
    unsigned long long for_ms, lat, code, ra, count;
    /* A week is longer than any test; larger values are typos. */
    if (num_field(j, "forMs", 7 * 86400e3, &for_ms) ||
        num_field(j, "latencyMs", 3600e3, &lat) ||
        num_field(j, "code", 599, &code) ||
        num_field(j, "retryAfterSeconds", 86400, &ra) ||
        num_field(j, "count", 1e9, &count)) {
        *why = "a number is negative, too large or not a number";
        return -EINVAL;
    }
    spec->for_ms = for_ms;
    spec->latency_ms = (unsigned)lat;
    spec->code = (int)code;
    spec->retry_after_s = (unsigned)ra;
    spec->count = (unsigned)count;
    if (!spec_ok(spec)) {
        *why = spec->kind == GF_KS_FAULT_LATENCY
                   ? "latency needs latencyMs > 0"
                   : "code must be within 500..599";
        return -EINVAL;
    }
    return 0;
}

cJSON *gf_ks_faults_to_json(const struct gf_ks_faults *f)
{
    cJSON *arr = cJSON_CreateArray();
    uint64_t now = gf_clock_now_ms(f->clk);
    for (size_t i = 0; i < f->n; i++) {
        const struct gf_ks_fault *e = &f->v[i];
        if (e->until_ms <= now)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)e->id);
        cJSON_AddStringToObject(o, "kind", kind_names[e->kind]);
        if (e->identity != NULL)
            cJSON_AddStringToObject(o, "identity", e->identity);
        if (e->until_ms != UINT64_MAX)
            cJSON_AddNumberToObject(o, "remainingMs",
                                    (double)(e->until_ms - now));
        if (e->kind == GF_KS_FAULT_LATENCY)
            cJSON_AddNumberToObject(o, "latencyMs", e->latency_ms);
        if (e->kind == GF_KS_FAULT_5XX || e->kind == GF_KS_FAULT_429) {
            cJSON_AddNumberToObject(o, "code", e->code);
            cJSON_AddNumberToObject(o, "retryAfterSeconds", e->retry_after_s);
            if (e->remaining > 0)
                cJSON_AddNumberToObject(o, "count", e->remaining);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
