/*
 * replay: runs a libFuzzer target over its committed corpus as a plain
 * test, so every build checks what the fuzzer has found so far.
 *
 * Usage: replay_NAME DIR_OR_FILE...
 * Each input runs once; after each, the live-allocation counter must be
 * back where it was, so a leak on any corpus input fails the replay.
 * An empty or missing corpus fails too: a target without seeds tests
 * nothing.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (16u << 20)

static int run_file(const char *path, int64_t baseline)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        GF_LOG(NULL, GF_LOG_ERROR, "cannot open corpus file", "path=%s", path);
        return -1;
    }
    struct gf_buf b = GF_BUF_INIT(INPUT_MAX);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (gf_buf_append(&b, chunk, n) != 0) {
            GF_LOG(NULL, GF_LOG_ERROR, "corpus file too large", "path=%s",
                   path);
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0) {
        /* Copy into an exact-size block so that ASan catches reads one
         * byte past the input, as libFuzzer would. */
        uint8_t *exact = gf_malloc(b.len ? b.len : 1);
        if (b.len > 0)
            memcpy(exact, b.data, b.len);
        gf_buf_free(&b);
        LLVMFuzzerTestOneInput(exact, b.len);
        gf_free(exact);
        if (gf_alloc_live() != baseline) {
            GF_LOG(NULL, GF_LOG_ERROR, "allocation leaked by input",
                   "path=%s live=%lld baseline=%lld", path,
                   (long long)gf_alloc_live(), (long long)baseline);
            rc = -1;
        }
    }
    gf_buf_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (gf_alloc_global_init() != 0)
        return 2;
    int failures = 0, inputs = 0;
    int64_t baseline = gf_alloc_live();
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            GF_LOG(NULL, GF_LOG_ERROR, "corpus missing", "path=%s", argv[i]);
            failures++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            inputs++;
            failures += run_file(argv[i], baseline) != 0;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            failures++;
            continue;
        }
        const struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            inputs++;
            failures += run_file(path, baseline) != 0;
        }
        closedir(d);
    }
    if (inputs == 0) {
        GF_LOG(NULL, GF_LOG_ERROR, "empty corpus", "");
        failures++;
    }
    GF_LOG(NULL, GF_LOG_INFO, "corpus replayed", "inputs=%d failures=%d",
           inputs, failures);
    gf_alloc_global_cleanup();
    return failures == 0 ? 0 : 1;
}
