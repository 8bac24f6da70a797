/*
 * key: composite lookup keys for policy/'s tables (see internal.h).
 */
#include <string.h>

#include "policy/internal.h"

size_t gf__key(char *out, size_t cap, const char *a, const char *b,
               const char *c, const char *d)
{
    const char *parts[4] = {a, b, c, d};
    size_t len = 0;
    for (int i = 0; i < 4 && parts[i] != NULL; i++) {
        size_t n = strlen(parts[i]);
        if (len + n + 1 > cap)
            return 0;
        memcpy(out + len, parts[i], n);
        len += n;
        out[len++] = '\0';
    }
    return len;
}
