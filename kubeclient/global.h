/*
 * global: process-wide set-up of the libraries that kubeclient and the
 * modules above it run on (libuv, libcurl), as curl_global_init is for
 * curl.
 *
 * gf_kube_global_init() does what gf_alloc_global_init() does (cJSON
 * through gf_malloc) and also routes libuv's and libcurl's allocations
 * through gf_malloc and runs curl_global_init, so the one allocation
 * counter covers the whole process. It lives here rather than in
 * common/alloc.c because common/ links neither library.
 *
 * Call it once at the top of main() of any program or test that uses
 * libuv or libcurl, before any other libuv or libcurl call (libuv requires
 * uv_replace_allocator to run first). Idempotent. Returns 0 or a negative
 * error (-EBUSY: libuv has allocated already; GF_ETRANSPORT: libcurl
 * failed to initialise). gf_kube_global_cleanup() undoes curl_global_init
 * and gf_alloc_global_init().
 */
#ifndef GF_KUBECLIENT_GLOBAL_H
#define GF_KUBECLIENT_GLOBAL_H

int gf_kube_global_init(void);
void gf_kube_global_cleanup(void);

#endif
