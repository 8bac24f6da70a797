/*
 * alloc: counting allocator shared by gpufed and the libraries it uses.
 *
 * Each block carries a small header holding its size so that the live-byte
 * counter stays exact across realloc and free. The header is as large as
 * max_align_t so that the pointer handed out keeps malloc's alignment.
 */
#include "common/alloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/err.h"
#include "common/log.h"

#define HDR_SIZE (sizeof(max_align_t))

static atomic_llong live_blocks;
static atomic_llong live_bytes;
static atomic_ullong total_blocks;
static bool global_ready;

static void oom(size_t size)
{
    /* Aborting is the documented policy (see alloc.h): state is rebuilt by
     * observation after a restart. */
    GF_LOG(NULL, GF_LOG_ERROR, "out of memory", "size=%zu", size);
    abort();
}

static void *account(unsigned char *raw, size_t size)
{
    memcpy(raw, &size, sizeof(size));
    atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes, (long long)size,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&total_blocks, 1, memory_order_relaxed);
    return raw + HDR_SIZE;
}

static size_t block_size(const void *ptr)
{
    size_t size;
    memcpy(&size, (const unsigned char *)ptr - HDR_SIZE, sizeof(size));
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
    memcpy(raw, &size, sizeof(size));
    atomic_fetch_add_explicit(&live_bytes, (long long)size - (long long)old,
                              memory_order_relaxed);
    return raw + HDR_SIZE;
}

char *gf_strdup(const char *s)
{
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
    atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&live_bytes, (long long)size,
                              memory_order_relaxed);
    free((unsigned char *)ptr - HDR_SIZE);
}

int64_t gf_alloc_live(void)
{
    return atomic_load_explicit(&live_blocks, memory_order_relaxed);
}

int64_t gf_alloc_live_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

uint64_t gf_alloc_total(void)
{
    return atomic_load_explicit(&total_blocks, memory_order_relaxed);
}

/* cJSON's hook struct takes plain function pointers of malloc's type. */
static void *cjson_malloc(size_t size)
{
    return gf_malloc(size);
}

/* libuv passes size 0 to realloc only through its own wrapper, which frees
 * instead; calloc/malloc of 0 bytes are valid here and return a block. */
static void *uv_malloc_hook(size_t size)
{
    return gf_malloc(size);
}

static void *uv_realloc_hook(void *ptr, size_t size)
{
    return gf_realloc(ptr, size);
}

static void *uv_calloc_hook(size_t nmemb, size_t size)
{
    return gf_calloc(nmemb, size);
}

static char *curl_strdup_hook(const char *s)
{
    return gf_strdup(s);
}

int gf_alloc_global_init(void)
{
    /* Idempotent so that fuzz targets and tests may call it freely. */
    if (global_ready)
        return 0;
    cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = gf_free};
    cJSON_InitHooks(&hooks);
    if (uv_replace_allocator(uv_malloc_hook, uv_realloc_hook, uv_calloc_hook,
                             gf_free) != 0)
        return -EBUSY;
    CURLcode rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, gf_malloc, gf_free,
                                       gf_realloc, curl_strdup_hook, gf_calloc);
    if (rc != CURLE_OK)
        return GF_ETRANSPORT;
    global_ready = true;
    return 0;
}

void gf_alloc_global_cleanup(void)
{
    if (!global_ready)
        return;
    curl_global_cleanup();
    global_ready = false;
}
