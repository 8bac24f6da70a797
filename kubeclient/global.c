/*
 * global: libuv and libcurl allocate through gf_malloc (see global.h).
 */
#include "kubeclient/global.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/err.h"

static bool libs_ready;

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

int gf_kube_global_init(void)
{
    /* Idempotent so that tests may call it freely. */
    if (libs_ready)
        return 0;
    int rc = gf_alloc_global_init();
    if (rc != 0)
        return rc;
    if (uv_replace_allocator(uv_malloc_hook, uv_realloc_hook, uv_calloc_hook,
                             gf_free) != 0)
        return -EBUSY;
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, gf_malloc, gf_free,
                             gf_realloc, curl_strdup_hook,
                             gf_calloc) != CURLE_OK)
        return GF_ETRANSPORT;
    libs_ready = true;
    return 0;
}

void gf_kube_global_cleanup(void)
{
    if (!libs_ready)
        return;
    curl_global_cleanup();
    libs_ready = false;
    gf_alloc_global_cleanup();
}
