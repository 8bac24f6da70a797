/*
 * file: reading a whole small file (kubeconfigs, credentials, policies).
 *
 * Files read this way are configuration: small, regular, and read on the
 * loop thread. The reader refuses anything that is not a regular file, so
 * a FIFO or a device named by mistake cannot block the loop, and caps the
 * size, so a huge file cannot exhaust memory. Contents may be secrets
 * (tokens, keys): every intermediate copy is wiped.
 */
#ifndef GF_FILE_H
#define GF_FILE_H

#include <stddef.h>

/*
 * Reads path (at most max bytes) into *out, NUL-terminated, length in
 * *len. Returns 0, -errno (open/read failures), -EINVAL (not a regular
 * file) or GF_E2BIG (larger than max). *out is returned-owned (gf_free;
 * wipe it first when it held a secret) and NULL on failure.
 */
int gf_file_read(const char *path, size_t max, char **out, size_t *len);

#endif
