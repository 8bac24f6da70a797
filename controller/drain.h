/*
 * drain: which members an admin has drained, as the ConfigMap
 * `gpufed-drain` in the hub's namespace records it (`gpufedctl drain
 * MEMBER` / `gpufedctl uncordon MEMBER`).
 *
 * The ConfigMap is the whole of the state: a key of `data` is a member's
 * name, its value the RFC 3339 time it was drained. An absent ConfigMap,
 * or one without a member's key, means that member is not drained. The
 * hub reads it with a reflector and feeds gf_ledger_member_drain(); a
 * restarted hub therefore drains exactly what it drained before, and it
 * decides nothing until the ConfigMap has listed (docs/controller.md).
 *
 * This module is pure: projections of the ConfigMap and the bodies
 * gpufedctl writes, no I/O. JSON inputs are borrowed; every struct it
 * returns is owned and freed with the matching _free (which accepts
 * NULL). Loop thread only.
 */
#ifndef GF_CONTROLLER_DRAIN_H
#define GF_CONTROLLER_DRAIN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The ConfigMap's name, in the hub's namespace (gpufed-system). */
#define GF_DRAIN_CONFIGMAP "gpufed-drain"
/* Member names are DNS labels; a longer key is not a member. */
#define GF_DRAIN_NAME_MAX 63

struct gf_drain_entry {
    char *member;
    /* When it was drained (wall ms); 0 when the value is not an RFC 3339
     * time: the key alone drains the member, the time is for people. */
    int64_t since_ms;
};

/* The drained members, in the ConfigMap's key order. */
struct gf_drain_set {
    struct gf_drain_entry *e;
    size_t n;
};

/*
 * Projects a ConfigMap (a JSON object as the API server returns it) into
 * *out, which the caller frees with gf_drain_set_free(). A ConfigMap
 * without `data` drains nothing. Keys whose value is not a string, or
 * that are empty or longer than GF_DRAIN_NAME_MAX, are skipped (the API
 * server never stores such a ConfigMap; a key that names no member is
 * kept, for the caller to report). Returns 0, or -EINVAL when cm is not
 * an object or its `data` is present but not an object (*out is then
 * empty).
 */
int gf_drain_parse(const cJSON *cm, struct gf_drain_set *out);
void gf_drain_set_free(struct gf_drain_set *s);
/* Returned-borrowed: member's entry, or NULL when it is not drained. A
 * NULL set drains nothing. */
const struct gf_drain_entry *gf_drain_find(const struct gf_drain_set *s,
                                           const char *member);

/*
 * The bodies gpufedctl writes, appended to out:
 * - create: the whole ConfigMap in ns, with member drained at since_ms;
 * - patch: a JSON merge patch of `data` that sets member to since_ms
 *   (drained) or removes its key (not drained; null in a merge patch
 *   deletes). A merge patch touches only that key, so two admins who
 *   drain two members at once both win.
 * Returns 0, -EINVAL (member empty or longer than GF_DRAIN_NAME_MAX) or
 * GF_E2BIG.
 */
int gf_drain_create_body(struct gf_buf *out, const char *ns, const char *member,
                         int64_t since_ms);
int gf_drain_patch_body(struct gf_buf *out, const char *member, bool drained,
                        int64_t since_ms);

#endif
