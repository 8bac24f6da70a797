/*
 * Fuzz target for common's scalar parsers: quantities, durations, RFC 3339
 * times and integers. The first byte selects the parser; the rest is the
 * text. Checks that a time that parses formats back to a parseable value.
 */
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256)
        return 0;
    char text[257];
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    int64_t v;
    switch (data[0] % 4) {
    case 0:
        (void)gf_quantity_parse_milli(text, &v);
        break;
    case 1:
        if (gf_duration_parse_ms(text, &v) == 0)
            GF_BUG_ON(v < 0);
        break;
    case 2:
        if (gf_time_parse_rfc3339(text, &v) == 0 && v > 0 &&
            v < 253402300799000) {
            char out[32];
            int64_t back;
            gf_time_rfc3339(v, out);
            GF_BUG_ON(gf_time_parse_rfc3339(out, &back) != 0);
            GF_BUG_ON(back != v - v % 1000);
        }
        break;
    default:
        (void)gf_parse_i64(text, &v);
        break;
    }
    return 0;
}
