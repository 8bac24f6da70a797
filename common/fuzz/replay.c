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

/* Reads a whole file into b; 0 or -1 (logged). */
static int read_file(const char *path, struct gf_buf *b)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        GF_LOG(NULL, GF_LOG_ERROR, "cannot open corpus file", "path=%s", path);
        return -1;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (gf_buf_append(b, chunk, n) != 0) {
            GF_LOG(NULL, GF_LOG_ERROR, "corpus file too large", "path=%s",
                   path);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static int run_file(const char *path, int64_t baseline)
{
    struct gf_buf b = GF_BUF_INIT(INPUT_MAX);
    if (read_file(path, &b) != 0) {
        gf_buf_free(&b);
        return -1;
    }
    /* Copy into an exact-size block so that ASan catches reads one byte
     * past the input, as libFuzzer would. */
    size_t len = b.len;
    uint8_t *exact = gf_malloc(len ? len : 1);
    if (len > 0)
        memcpy(exact, b.data, len);
    gf_buf_free(&b);
    LLVMFuzzerTestOneInput(exact, len);
    gf_free(exact);
    if (gf_alloc_live() != baseline) {
        GF_LOG(NULL, GF_LOG_ERROR, "allocation leaked by input",
               "path=%s live=%lld baseline=%lld", path,
               (long long)gf_alloc_live(), (long long)baseline);
        return -1;
    }
    return 0;
}

/* Runs every file of a directory (hidden files skipped); counts inputs. */
static int run_dir(const char *dir, int64_t baseline, int *inputs)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 1;
    int failures = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        (*inputs)++;
        failures += run_file(path, baseline) != 0;
    }
    closedir(d);
    return failures;
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
        } else if (S_ISDIR(st.st_mode)) {
            failures += run_dir(argv[i], baseline, &inputs);
        } else {
            inputs++;
            failures += run_file(argv[i], baseline) != 0;
        }
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
