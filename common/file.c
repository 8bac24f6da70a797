#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"

static void wipe(void *p, size_t n)
{
    gf_wipe(p, n);
}

int gf_file_read(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    /* O_NONBLOCK and the regular-file check keep a FIFO or a device from
     * blocking the loop thread. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    struct gf_buf b = GF_BUF_INIT(max);
    char chunk[16384];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        rc = gf_buf_append(&b, chunk, (size_t)n);
        if (rc != 0)
            break;
    }
    close(fd);
    wipe(chunk, sizeof(chunk));
    if (rc != 0) {
        if (b.data != NULL)
            wipe(b.data, b.cap);
        gf_buf_free(&b);
        return rc;
    }
    *len = b.len;
    *out = b.data == NULL ? gf_strdup("") : gf_buf_steal(&b);
    return 0;
}
