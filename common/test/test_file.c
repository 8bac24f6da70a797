/*
 * Tests for common/file: whole small files, the size cap, and refusing
 * what is not a regular file (a FIFO would block the loop thread).
 */
#include <errno.h>
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
#include "common/err.h"
#include "common/file.h"

struct dir {
    char path[64];
    char file[128];
};

static int64_t baseline;

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "/tmp/gf-test-file.XXXXXX");
    if (mkdtemp(d->path) == NULL) {
        free(d);
        return -1;
    }
    *state = d;
    baseline = gf_alloc_live();
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    assert_int_equal(gf_alloc_live(), baseline);
    unlink(d->file);
    rmdir(d->path);
    free(d);
    return 0;
}

static const char *write_file(struct dir *d, const char *name, const char *text,
                              size_t len)
{
    snprintf(d->file, sizeof(d->file), "%s/%s", d->path, name);
    FILE *f = fopen(d->file, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return d->file;
}

static void test_reads_whole_file_terminated(void **state)
{
    struct dir *d = *state;
    const char *p = write_file(d, "a", "abc\0def", 7);
    char *out;
    size_t len;
    assert_int_equal(gf_file_read(p, 64, &out, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(out, "abc\0def", 8);
    gf_free(out);
}

static void test_empty_file_is_empty_string(void **state)
{
    struct dir *d = *state;
    const char *p = write_file(d, "e", "", 0);
    char *out;
    size_t len;
    assert_int_equal(gf_file_read(p, 64, &out, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    gf_free(out);
}

static void test_cap_is_exact(void **state)
{
    struct dir *d = *state;
    const char *p = write_file(d, "c", "0123456789", 10);
    char *out = (char *)1;
    size_t len = 99;
    assert_int_equal(gf_file_read(p, 10, &out, &len), 0);
    gf_free(out);
    assert_int_equal(gf_file_read(p, 9, &out, &len), GF_E2BIG);
    assert_null(out);
    assert_int_equal(len, 0);
}

static void test_missing_file_and_directory(void **state)
{
    struct dir *d = *state;
    char *out;
    size_t len;
    snprintf(d->file, sizeof(d->file), "%s/missing", d->path);
    assert_int_equal(gf_file_read(d->file, 64, &out, &len), -ENOENT);
    assert_null(out);
    assert_int_equal(gf_file_read(d->path, 64, &out, &len), -EINVAL);
    assert_null(out);
}

static void test_fifo_is_refused_without_blocking(void **state)
{
    struct dir *d = *state;
    snprintf(d->file, sizeof(d->file), "%s/fifo", d->path);
    assert_int_equal(mkfifo(d->file, 0600), 0);
    char *out;
    size_t len;
    /* No writer: a blocking open would hang here. */
    assert_int_equal(gf_file_read(d->file, 64, &out, &len), -EINVAL);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_whole_file_terminated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_is_empty_string, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cap_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_and_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fifo_is_refused_without_blocking,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
