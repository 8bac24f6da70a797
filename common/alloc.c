/*
 * alloc: counting allocator shared by gpufed and the libraries it uses.
 *
 * Each block carries a small header holding its size so that the live-byte
 * counter stays exact across realloc and free. The header is as large as
 * max_align_t so that the pointer handed out keeps malloc's alignment; the
 * size sits in its last word, right before the pointer, where an arena
 * block keeps its tag (below).
 */
#include "common/alloc.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

#define HDR_SIZE (sizeof(max_align_t))

/*
 * The counters, in two parts whose sums are the figures. The loop thread
 * (the one that called gf_alloc_global_init) counts in plain integers that
 * only it writes: the `lock add` of an atomic update after every malloc and
 * free was 12% of kubesim's CPU under a stream of writes (perf annotate:
 * the locked instruction waits for malloc's own stores). Other threads
 * (libuv's pool, curl's resolver) count in the atomics. A block may be
 * freed by another thread than the one that allocated it, so either part
 * may go negative; only the sums mean anything, and they are read on the
 * loop thread (tests, /metrics).
 */
static atomic_llong live_blocks;
static atomic_llong live_bytes;
static atomic_ullong total_blocks;
static long long loop_live_blocks, loop_live_bytes;
static unsigned long long loop_total_blocks;
static _Thread_local bool on_loop_thread;
static bool global_ready;

static void oom(size_t size)
{
    /* Aborting is the documented policy (see alloc.h): state is rebuilt by
     * observation after a restart. */
    GF_LOG(NULL, GF_LOG_ERROR, "out of memory", "size=%zu", size);
    abort();
}

/* Where a block's size (or an arena block's tag) is kept. */
#define SIZE_WORD(ptr) ((unsigned char *)(ptr) - sizeof(size_t))

static void *account(unsigned char *raw, size_t size)
{
    memcpy(SIZE_WORD(raw + HDR_SIZE), &size, sizeof(size));
    if (on_loop_thread) {
        loop_live_blocks++;
        loop_live_bytes += (long long)size;
        loop_total_blocks++;
        return raw + HDR_SIZE;
    }
    atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes, (long long)size,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&total_blocks, 1, memory_order_relaxed);
    return raw + HDR_SIZE;
}

static size_t block_size(const void *ptr)
{
    size_t size;
    memcpy(&size, (const unsigned char *)ptr - sizeof(size), sizeof(size));
    return size;
}

void *gf_malloc(size_t size)
{
    if (size > SIZE_MAX - HDR_SIZE)
        oom(size);
    unsigned char *raw = malloc(HDR_SIZE + size);
    if (raw == NULL)
        oom(size);
    return account(raw, size);
}

void *gf_calloc(size_t nmemb, size_t size)
{
    if (size != 0 && nmemb > (SIZE_MAX - HDR_SIZE) / size)
        oom(SIZE_MAX);
    size_t total = nmemb * size;
    unsigned char *raw = calloc(1, HDR_SIZE + total);
    if (raw == NULL)
        oom(total);
    return account(raw, total);
}

void *gf_realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return gf_malloc(size);
    if (size > SIZE_MAX - HDR_SIZE)
        oom(size);
    size_t old = block_size(ptr);
    unsigned char *raw =
        realloc((unsigned char *)ptr - HDR_SIZE, HDR_SIZE + size);
    if (raw == NULL)
        oom(size);
    memcpy(SIZE_WORD(raw + HDR_SIZE), &size, sizeof(size));
    if (on_loop_thread)
        loop_live_bytes += (long long)size - (long long)old;
    else
        atomic_fetch_add_explicit(&live_bytes, (long long)size - (long long)old,
                                  memory_order_relaxed);
    return raw + HDR_SIZE;
}

char *gf_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *p = gf_malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *gf_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = gf_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void gf_free(void *ptr)
{
    if (ptr == NULL)
        return;
    size_t size = block_size(ptr);
    if (on_loop_thread) {
        loop_live_blocks--;
        loop_live_bytes -= (long long)size;
    } else {
        atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&live_bytes, (long long)size,
                                  memory_order_relaxed);
    }
    free((unsigned char *)ptr - HDR_SIZE);
}

int64_t gf_alloc_live(void)
{
    return atomic_load_explicit(&live_blocks, memory_order_relaxed) +
           loop_live_blocks;
}

int64_t gf_alloc_live_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed) +
           loop_live_bytes;
}

uint64_t gf_alloc_total(void)
{
    return atomic_load_explicit(&total_blocks, memory_order_relaxed) +
           loop_total_blocks;
}

/* ---- arenas for cJSON trees ------------------------------------------- */

/*
 * A block handed out by an arena is preceded by one word holding
 * ARENA_TAG where a gf_malloc block has its size, so that cJSON's free
 * hook can tell the two apart: arena blocks are released all at once by
 * gf_arena_reset, never one by one. Arena blocks are 8-byte aligned,
 * which is all a cJSON node or string needs; a full max_align_t header
 * per node made a parsed event a third larger, and parsing is memory
 * bound.
 */
#define ARENA_TAG SIZE_MAX
#define ARENA_ALIGN sizeof(size_t)
#define ARENA_MIN_CHUNK 4096

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used; /* bytes of data */
    max_align_t data[];
};

struct gf_arena {
    struct arena_chunk *head; /* the chunk being filled; others follow */
    size_t chunk_size;
    size_t bytes; /* bytes handed out since the last reset */
};

/* The arena cJSON allocates from on this thread, or NULL. */
static _Thread_local struct gf_arena *json_arena;

struct gf_arena *gf_arena_new(size_t chunk_size)
{
    struct gf_arena *a = gf_calloc(1, sizeof(*a));
    a->chunk_size = chunk_size < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : chunk_size;
    return a;
}

static struct arena_chunk *arena_chunk_new(size_t cap)
{
    struct arena_chunk *c = gf_malloc(sizeof(*c) + cap);
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

static void *arena_alloc(struct gf_arena *a, size_t size)
{
    /* Tag word plus the block, rounded so the next tag stays aligned. */
    if (size > SIZE_MAX / 2)
        oom(size);
    size_t need =
        ARENA_ALIGN + (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    struct arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = need > a->chunk_size ? need : a->chunk_size;
        c = arena_chunk_new(cap);
        c->next = a->head;
        a->head = c;
    }
    unsigned char *raw = (unsigned char *)c->data + c->used;
    c->used += need;
    a->bytes += need;
    size_t tag = ARENA_TAG;
    memcpy(raw, &tag, sizeof(tag));
    return raw + ARENA_ALIGN;
}

void gf_arena_reset(struct gf_arena *a)
{
    if (a == NULL || a->head == NULL)
        return;
    /* Keep one chunk of the usual size for the next tree; an oversized
     * one (a huge event) is not kept pinned. */
    struct arena_chunk *keep = NULL;
    for (struct arena_chunk *c = a->head, *next; c != NULL; c = next) {
        next = c->next;
        if (keep == NULL && c->cap == a->chunk_size) {
            keep = c;
            keep->next = NULL;
            keep->used = 0;
        } else
            gf_free(c);
    }
    a->head = keep;
    a->bytes = 0;
}

void gf_arena_free(struct gf_arena *a)
{
    if (a == NULL)
        return;
    for (struct arena_chunk *c = a->head, *next; c != NULL; c = next) {
        next = c->next;
        gf_free(c);
    }
    gf_free(a);
}

size_t gf_arena_bytes(const struct gf_arena *a)
{
    return a->bytes;
}

struct gf_arena *gf_arena_json_begin(struct gf_arena *a)
{
    struct gf_arena *prev = json_arena;
    /* Without our hooks cJSON uses malloc directly: nothing to route. */
    if (global_ready)
        json_arena = a;
    return prev;
}

void gf_arena_json_end(struct gf_arena *prev)
{
    json_arena = prev;
}

/* cJSON's hook struct takes plain function pointers of malloc's type. */
static void *cjson_malloc(size_t size)
{
    if (json_arena != NULL)
        return arena_alloc(json_arena, size);
    return gf_malloc(size);
}

static void cjson_free(void *ptr)
{
    if (ptr == NULL || block_size(ptr) == ARENA_TAG)
        return;
    gf_free(ptr);
}

int gf_alloc_global_init(void)
{
    /* Idempotent so that fuzz targets and tests may call it freely. */
    if (global_ready)
        return 0;
    on_loop_thread = true;
    cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = cjson_free};
    cJSON_InitHooks(&hooks);
    global_ready = true;
    return 0;
}

void gf_alloc_global_cleanup(void)
{
    global_ready = false;
}

/* memset through a volatile pointer, as OPENSSL_cleanse does, without
 * linking libcrypto into common/: the compiler cannot prove the call is a
 * dead store, so it stays. */
static void *(*const volatile wipe_memset)(void *, int, size_t) = memset;

void gf_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        wipe_memset(p, 0, n);
}
