/*
 * Fuzz target for the watch stream framer and event decoder.
 *
 * Input: one byte that seeds how the stream is cut, then the stream. The
 * same stream is fed twice, whole and in pseudo-random pieces (down to
 * one byte), and both runs must agree event for event and on the final
 * result: where the network happens to cut a chunked body must never
 * change what the reflector sees. Every delivered event must also be
 * well formed (a known type, an object, a status error for ERROR).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "kubeclient/watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 64
/* A small cap so that the GF_E2BIG path is reached by short inputs. */
#define MAX_EVENT_BYTES 4096

struct run {
    int rc;
    size_t n;
    int types[MAX_EVENTS];
    char rv[MAX_EVENTS][32];
};

static int on_event(void *data, const struct gf_watch_event *ev)
{
    struct run *r = data;
    GF_BUG_ON(ev->object == NULL);
    GF_BUG_ON(ev->type == GF_WATCH_ERROR && ev->status.err == 0);
    if (r->n < MAX_EVENTS) {
        r->types[r->n] = (int)ev->type;
        const char *rv = ev->rv != NULL ? ev->rv : "";
        snprintf(r->rv[r->n], sizeof(r->rv[0]), "%s", rv);
    }
    r->n++;
    return 0;
}

static void feed(const uint8_t *p, size_t n, uint32_t seed, bool whole,
                 struct run *r)
{
    memset(r, 0, sizeof(*r));
    struct gf_watch_framer f;
    gf_watch_framer_init(&f, MAX_EVENT_BYTES);
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off < n) {
        size_t len = n - off;
        if (!whole) {
            /* xorshift: piece sizes of 1..16 bytes. */
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            size_t piece = 1 + seed % 16;
            len = piece < len ? piece : len;
        }
        rc = gf_watch_framer_feed(&f, (const char *)p + off, len, on_event, r);
        off += len;
    }
    if (rc == 0)
        rc = gf_watch_framer_finish(&f, on_event, r);
    r->rc = rc;
    gf_watch_framer_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = 0x9e3779b9u ^ data[0];
    static struct run a, b;
    feed(data + 1, size - 1, seed, true, &a);
    feed(data + 1, size - 1, seed, false, &b);
    GF_BUG_ON(a.rc != b.rc);
    GF_BUG_ON(a.n != b.n);
    size_t n = a.n < MAX_EVENTS ? a.n : MAX_EVENTS;
    for (size_t i = 0; i < n; i++) {
        GF_BUG_ON(a.types[i] != b.types[i]);
        GF_BUG_ON(strcmp(a.rv[i], b.rv[i]) != 0);
    }
    return 0;
}
