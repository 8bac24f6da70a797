/*
 * lease: QuotaLease plain structs (see lease.h).
 */
#include "policy/lease.h"

#include <errno.h>
#include <string.h>

#include "common/alloc.h"

void gf_lease_copy(struct gf_lease *dst, const struct gf_lease *src)
{
    *dst = *src;
    dst->name = gf_strdup(src->name);
    dst->group = gf_strdup(src->group);
    dst->origin_member = gf_strdup(src->origin_member);
    dst->origin_namespace = gf_strdup(src->origin_namespace);
    dst->origin_name = gf_strdup(src->origin_name);
    dst->origin_uid = gf_strdup(src->origin_uid);
    dst->origin_job = gf_strdup(src->origin_job);
    dst->origin_cq = gf_strdup(src->origin_cq);
    dst->lender_member = gf_strdup(src->lender_member);
    dst->lender_cq = gf_strdup(src->lender_cq);
    dst->lender_flavor = gf_strdup(src->lender_flavor);
    dst->reason = gf_strdup(src->reason);
}

void gf_lease_clear(struct gf_lease *l)
{
    gf_free(l->name);
    gf_free(l->group);
    gf_free(l->origin_member);
    gf_free(l->origin_namespace);
    gf_free(l->origin_name);
    gf_free(l->origin_uid);
    gf_free(l->origin_job);
    gf_free(l->origin_cq);
    gf_free(l->lender_member);
    gf_free(l->lender_cq);
    gf_free(l->lender_flavor);
    gf_free(l->reason);
    memset(l, 0, sizeof(*l));
}

static const char *const phase_names[GF_LEASE_PHASE_COUNT] = {
    "Pending", "Active", "Releasing", "Reclaiming", "Released",
    "Suspect", "Fenced", "Expired",   "Failed"};

const char *gf_lease_phase_name(enum gf_lease_phase p)
{
    return (unsigned)p < GF_LEASE_PHASE_COUNT ? phase_names[p] : "Unknown";
}

int gf_lease_phase_parse(const char *s, enum gf_lease_phase *out)
{
    for (int i = 0; i < GF_LEASE_PHASE_COUNT; i++)
        if (strcmp(s, phase_names[i]) == 0) {
            *out = (enum gf_lease_phase)i;
            return 0;
        }
    return -EINVAL;
}

const char *gf_lease_mode_name(enum gf_lease_mode m)
{
    return m == GF_LEASE_LOAN ? "loan" : "redirect";
}

int gf_lease_mode_parse(const char *s, enum gf_lease_mode *out)
{
    if (strcmp(s, "redirect") == 0)
        *out = GF_LEASE_REDIRECT;
    else if (strcmp(s, "loan") == 0)
        *out = GF_LEASE_LOAN;
    else
        return -EINVAL;
    return 0;
}

bool gf_lease_holds_quota(enum gf_lease_phase p)
{
    return p != GF_LEASE_RELEASED && p != GF_LEASE_FENCED &&
           p != GF_LEASE_FAILED;
}
