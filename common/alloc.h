/*
 * alloc: the one allocator of gpufed.
 *
 * Every allocation in the process (ours, cJSON's, and through
 * kubeclient/global.h libuv's and libcurl's) goes through these functions
 * so that a single live-allocation counter covers everything; tests assert
 * that it returns to zero after teardown.
 *
 * On allocation failure the process logs and aborts, as Redis zmalloc
 * does: controller state is rebuilt by observation, so a restart is a
 * correct recovery. Sizes that come from untrusted input must therefore be
 * checked against a cap *before* they reach these functions.
 *
 * Thread-safety: any thread may allocate and free. Threads other than
 * the loop's (libcurl's threaded resolver, libuv's pool, where kubeclient
 * parses large response bodies into an arena) count in atomics; the loop
 * thread counts in plain integers. The figures below are exact when read
 * on the loop thread after the other threads' work was handed back to it
 * (an after-work callback), as tests do at teardown.
 */
#ifndef GF_ALLOC_H
#define GF_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Returned-owned; free with gf_free(). Never return NULL. */
void *gf_malloc(size_t size);
void *gf_calloc(size_t nmemb, size_t size);
void *gf_realloc(void *ptr, size_t size);
/* The one exception: gf_strdup(NULL) is NULL, so optional fields copy
 * without a test at every call. */
char *gf_strdup(const char *s);

/* Zeroes n bytes that held a secret (tokens, keys) in a way the compiler
 * may not drop as a dead store. */
void gf_wipe(void *p, size_t n);
/* Copies at most n bytes of s and NUL-terminates. */
char *gf_strndup(const char *s, size_t n);
/* Accepts NULL. */
void gf_free(void *ptr);

/* Frees and clears the pointer so no dangling copy stays in a struct. */
#define GF_FREE(p)                                                             \
    do {                                                                       \
        gf_free(p);                                                            \
        (p) = NULL;                                                            \
    } while (0)

/*
 * Number of blocks currently allocated, and their total size in bytes.
 * Read them on the thread that called gf_alloc_global_init (the loop
 * thread), whose own allocations are counted without atomics; any thread
 * may allocate and free.
 */
int64_t gf_alloc_live(void);
int64_t gf_alloc_live_bytes(void);
/* Total number of allocations ever made (a cheap activity counter). */
uint64_t gf_alloc_total(void);

/*
 * Routes cJSON through gf_malloc (and lets it use arenas). Call once at the
 * top of main(). Programs and tests that use libuv or libcurl call
 * gf_kube_global_init() (kubeclient/global.h) instead, which does this and
 * hooks those two as well: common/ links neither. Returns 0 or a negative
 * error. After gf_alloc_global_cleanup() arenas are no longer used. The
 * calling thread becomes the loop thread (see gf_alloc_live).
 */
int gf_alloc_global_init(void);
void gf_alloc_global_cleanup(void);

/*
 * Arenas for cJSON trees that are parsed, read and dropped, such as watch
 * events: between gf_arena_json_begin and gf_arena_json_end every cJSON
 * allocation on this thread is a bump in the arena (no malloc, no atomic
 * counter), and cJSON_Delete of such a tree frees nothing. The memory
 * comes back all at once with gf_arena_reset.
 *
 * Rules: only cJSON calls belong between begin and end (a parse); a tree
 * from the arena must be deleted, or no longer referenced, before the
 * reset, and no part of it may be detached and kept. Trees mixing arena
 * and heap nodes delete correctly; a tree wholly in the arena may simply
 * be dropped (gf_arena_bytes() > 0 after the parse says it is). Without
 * gf_alloc_global_init, begin does nothing and cJSON allocates as usual.
 * Arena blocks are 8-byte aligned: enough for cJSON, not for max_align_t.
 *
 *   struct gf_arena *prev = gf_arena_json_begin(a);
 *   cJSON *ev = cJSON_ParseWithLength(p, n);
 *   gf_arena_json_end(prev);
 *   ... use ev ...
 *   cJSON_Delete(ev);
 *   gf_arena_reset(a);
 */
struct gf_arena;
/* chunk_size: bytes per chunk (at least 4 KiB). Returned-owned. */
struct gf_arena *gf_arena_new(size_t chunk_size);
/* Releases every block at once; keeps one chunk for reuse. NULL ok. */
void gf_arena_reset(struct gf_arena *a);
void gf_arena_free(struct gf_arena *a);
/* Bytes handed out since the last reset (headers included). */
size_t gf_arena_bytes(const struct gf_arena *a);
/* Routes cJSON allocations to a; returns the previous arena (or NULL)
 * to pass to gf_arena_json_end, so that uses may nest. */
struct gf_arena *gf_arena_json_begin(struct gf_arena *a);
void gf_arena_json_end(struct gf_arena *prev);

#endif
