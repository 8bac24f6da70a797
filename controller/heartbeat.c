/*
 * heartbeat: the hub's heartbeat Lease in each member (DESIGN.md §4).
 *
 * The hub renews `gpufed-heartbeat` in every member's gpufed-system every
 * D/3; the member's agent fences borrowed work when it has not moved for
 * D. What the hub must know to fence safely is when its last renewal MAY
 * have landed (hb_sent): the agent's timer can only have been reset by a
 * renewal the hub sent, and each is sent with a client timeout and the
 * API server's `?timeout=` of Tw, so it lands within Tw of being sent or
 * never. A definite refusal (any 4xx) cannot have landed and does not
 * move hb_sent; a timeout, a reset or a 5xx might have.
 *
 * A member whose renewal fails, or whose watches stop after they had
 * synced, is suspect: no more renewals (one landing late would reset the
 * agent's timer without the hub knowing), only a plain GET of the Lease
 * every D/3. It is healthy again when a probe has succeeded and its
 * watches are all synced, and is renewed at once. A replica standing by
 * renews nothing, but probes a member whose watches are down the same way
 * (standby_probe) to keep its caches warm.
 *
 * The per-member part (struct gf__hb) reaches its member only through
 * struct gf__hb_io, so controller/test/test_heartbeat.c drives it with
 * scripted answers on the manual clock; the hub's io (at the end of this
 * file) is the member's kube client. Loop thread only.
 */
#include "controller/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "controller/fence.h"

#define HB_NAME "gpufed-heartbeat"
#define HB_NS "gpufed-system"

void gf__hb_microtime(int64_t wall_ms, char out[GF__HB_TIME_MAX])
{
    int64_t s = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
    time_t secs = (time_t)s;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    /* MicroTime: a real API server refuses anything but six digits. */
    snprintf(out, GF__HB_TIME_MAX, "%s.%06dZ", base,
             (int)(wall_ms - s * 1000) * 1000);
}

/* --- the per-member machine --------------------------------------------- */

static uint64_t period(const struct gf__hb *hb)
{
    return (uint64_t)(hb->d_ms / 3 > 0 ? hb->d_ms / 3 : 1);
}

/* d * (1 + rho), rounded up: a bound must not come out short. */
static int64_t drifted(int64_t d, int32_t ppm)
{
    return d + (d * ppm + GF_PPM - 1) / GF_PPM;
}

/* What the Lease carries: whole seconds, rounded up. */
static int64_t whole_secs_ms(int64_t d)
{
    return (d + 999) / 1000 * 1000;
}

/*
 * One step of a lowered term (gf__hb_set_timing). Why steps: the agent
 * polls every D/6 of the term it last read and, when it sees the
 * heartbeat move, gives credit only from its read before; with the term
 * lowered from D to D' in one go, its first read of D' comes up to D/6
 * after its last one and fences at once when D/6 >= D' (30 s to 3 s).
 * A step at most 3 times shorter leaves it D/6 of slack for its read.
 * Why hold each step for a term: an agent that has not read the new term
 * yet fences by the old one, so the hub's bound keeps the old term until
 * every agent has either read the new one or fenced (docs/failure-
 * semantics.md, "Changing D").
 */
static void step(struct gf__hb *hb)
{
    int64_t want = hb->want_d_ms;
    if (!hb->term_known) {
        hb->d_ms = want;
        return;
    }
    if (hb->old_d_ms != 0 && hb->step_ack_ms != 0) {
        /* The agent counts the old term as the Lease carried it. */
        int64_t old = whole_secs_ms(hb->old_d_ms);
        uint64_t held =
            (uint64_t)drifted(drifted(old, hb->drift_ppm), hb->drift_ppm);
        if (hb->sent_ms >= hb->step_ack_ms + held) {
            hb->old_d_ms = 0; /* every agent has read d_ms, or fenced */
            hb->step_ack_ms = 0;
        }
    }
    if (want >= hb->d_ms) {
        /* Longer: at once, and the bound is the longer term anyway. */
        if (want != hb->d_ms) {
            GF_LOG(hb->lc, GF_LOG_INFO, "heartbeat term raised",
                   "from_ms=%lld to_ms=%lld", (long long)hb->d_ms,
                   (long long)want);
            hb->d_ms = want;
            hb->step_ack_ms = 0;
        }
        if (hb->old_d_ms <= want)
            hb->old_d_ms = 0;
        return;
    }
    if (hb->old_d_ms != 0)
        return; /* the step under way is not over */
    int64_t next = whole_secs_ms(hb->d_ms / 3);
    if (next < want)
        next = want;
    GF_LOG(hb->lc, GF_LOG_INFO, "heartbeat term lowered a step",
           "from_ms=%lld to_ms=%lld want_ms=%lld", (long long)hb->d_ms,
           (long long)next, (long long)want);
    hb->old_d_ms = hb->d_ms;
    hb->d_ms = next;
    hb->step_ack_ms = 0;
}

void gf__hb_set_timing(struct gf__hb *hb, int64_t d_ms, int64_t margin_ms,
                       int32_t drift_ppm)
{
    hb->want_d_ms = d_ms > 0 ? d_ms : 30000;
    hb->drift_ppm = drift_ppm > 0 ? drift_ppm : 0;
    step(hb);
    /* Tw from the shorter term: a shorter timeout is always safe. */
    int64_t d = hb->d_ms < hb->want_d_ms ? hb->d_ms : hb->want_d_ms;
    int64_t tw = d / 6;
    if (margin_ms > 0 && margin_ms / 2 < tw)
        tw = margin_ms / 2;
    hb->tw_ms = tw > 0 ? tw : 1;
}

int64_t gf__hb_bound_d_ms(const struct gf__hb *hb)
{
    if (!hb->term_known)
        return GF__HB_MAX_TERM_MS;
    int64_t d = hb->old_d_ms > hb->d_ms ? hb->old_d_ms : hb->d_ms;
    /* The agent reads the term in whole seconds, rounded up. */
    return whole_secs_ms(d);
}

int64_t gf__hb_recovering_until_wall_ms(const struct gf__hb *hb)
{
    if (hb->recovering)
        return INT64_MAX;
    uint64_t now = gf_clock_now_ms(hb->clk);
    if (hb->recover_until_ms <= now)
        return 0;
    return gf_clock_wall_ms(hb->clk) + (int64_t)(hb->recover_until_ms - now);
}

/*
 * The first renewal after a heal was acknowledged at now: a still-fenced
 * agent polls at least every min(D/6, 1 s) (fence.h), so it has read
 * that renewal and left the fenced state by one poll, drifted, plus Tw
 * for its read's round trip. D is the longest term it may believe.
 */
static void recovered(struct gf__hb *hb, uint64_t now)
{
    int64_t poll = gf__hb_bound_d_ms(hb) / 6;
    if (poll > GF_FENCE_FENCED_POLL_MS)
        poll = GF_FENCE_FENCED_POLL_MS;
    if (poll < 50)
        poll = 50;
    hb->recovering = false;
    hb->recover_until_ms =
        now + (uint64_t)drifted(poll, hb->drift_ppm) + (uint64_t)hb->tw_ms;
    if (hb->io->changed != NULL)
        hb->io->changed(hb);
}

static void on_tick(struct gf_timer *t);

void gf__hb_init(struct gf__hb *hb, struct gf_clock *clk,
                 const struct gf__hb_io *io, void *data,
                 const struct gf_log_ctx *lc, const char *holder)
{
    memset(hb, 0, sizeof(*hb));
    hb->clk = clk;
    hb->io = io;
    hb->data = data;
    hb->lc = lc;
    snprintf(hb->holder, sizeof(hb->holder), "%s", holder);
    gf__hb_set_timing(hb, 30000, 0, 0);
    gf_timer_init(clk, &hb->timer);
    hb->timer.data = hb;
    /* The previous process may have renewed just before it stopped. */
    hb->sent_ms = gf_clock_now_ms(clk);
}

/*
 * stale: only the member's watches are down. The hub must not read its
 * caches, but its API server still answers, and stopping the renewals
 * would make the agent fence every copy there after D although nothing
 * is partitioned (an API server restart of a second, whose relists wait
 * out a grown backoff, came close to D). Renewals go on, and each sets
 * sent as usual; the first that fails stops them (sent then covers it),
 * so the fencing argument is unchanged.
 */
static void turn_suspect(struct gf__hb *hb, const char *why, bool stale)
{
    if (hb->suspect) {
        if (!stale && hb->stale_only) {
            hb->stale_only = false;
            snprintf(hb->why, sizeof(hb->why), "%s", why);
            GF_LOG(hb->lc, GF_LOG_WARN, "member suspect", "why=%s", why);
        }
        return;
    }
    hb->suspect = true;
    hb->stale_only = stale;
    hb->probe_ok = false;
    hb->recovering = false;
    hb->recover_until_ms = 0;
    snprintf(hb->why, sizeof(hb->why), "%s", why);
    GF_LOG(hb->lc, hb->ok_ms != 0 ? GF_LOG_WARN : GF_LOG_DEBUG,
           "member suspect", "why=%s", why);
    if (hb->io->changed != NULL)
        hb->io->changed(hb);
}

static void hb_send(struct gf__hb *hb, enum gf__hb_call call)
{
    char now_s[GF__HB_TIME_MAX];
    gf__hb_microtime(gf_clock_wall_ms(hb->clk), now_s);
    cJSON *o = NULL;
    if (call != GF__HB_GET) {
        o = cJSON_CreateObject();
        cJSON *spec = cJSON_AddObjectToObject(o, "spec");
        cJSON_AddStringToObject(spec, "holderIdentity", hb->holder);
        /* Whole seconds, rounded up: the agent must not fence early. */
        int64_t secs = (hb->d_ms + 999) / 1000;
        cJSON_AddNumberToObject(spec, "leaseDurationSeconds", (double)secs);
        if (call == GF__HB_CREATE) {
            cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
            cJSON_AddStringToObject(o, "kind", "Lease");
            cJSON *md = cJSON_AddObjectToObject(o, "metadata");
            cJSON_AddStringToObject(md, "name", HB_NAME);
            cJSON_AddStringToObject(md, "namespace", HB_NS);
            cJSON *lb = cJSON_AddObjectToObject(md, "labels");
            cJSON_AddStringToObject(lb, "app.kubernetes.io/managed-by",
                                    "gpufed");
            cJSON_AddStringToObject(spec, "acquireTime", now_s);
        }
        cJSON_AddStringToObject(spec, "renewTime", now_s);
    }
    char *body = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    hb->call = call;
    hb->call_d_ms = hb->d_ms;
    hb->call_sent_ms = gf_clock_now_ms(hb->clk);
    int rc = hb->io->send(hb, call, body, body != NULL ? strlen(body) : 0,
                          (uint64_t)hb->tw_ms);
    cJSON_free(body);
    if (rc == 0) {
        hb->inflight = true;
        return;
    }
    /* Not sent (no client yet, or a bad request): it cannot have landed. */
    if (call != GF__HB_GET) {
        hb->n_err++;
        char why[96];
        snprintf(why, sizeof(why), "renewal not sent: %s", gf_strerror(rc));
        if (hb->ever_synced)
            turn_suspect(hb, why, false);
    } else {
        hb->probe_ok = false;
    }
}

static void renew(struct gf__hb *hb)
{
    hb_send(hb, hb->rv[0] != '\0' ? GF__HB_PATCH : GF__HB_CREATE);
}

void gf__hb_check(struct gf__hb *hb)
{
    if (hb->paused || !hb->running)
        return;
    bool synced = hb->io->synced(hb);
    if (synced && !hb->ever_synced) {
        hb->ever_synced = true;
        /* The first renewal need not wait for the next tick. */
        if (!hb->suspect && !hb->inflight)
            renew(hb);
        return;
    }
    if (!synced && hb->ever_synced && !hb->suspect) {
        turn_suspect(hb, "watches not synced", true);
        return;
    }
    if (synced && hb->suspect && hb->probe_ok && !hb->inflight) {
        /* The renewals stopped: the agent may have fenced, and leaves
         * that state only once it has read one of the renewals that
         * start now (gf__hb_recovering_until_wall_ms). */
        hb->recovering = !hb->stale_only;
        hb->recover_until_ms = 0;
        hb->suspect = false;
        hb->stale_only = false;
        hb->why[0] = '\0';
        GF_LOG(hb->lc, GF_LOG_INFO, "member healthy again", "");
        renew(hb);
        /* Often a probe's answer, not a pass, finds the member healthy
         * (its watches relisted first): without a word the leases that
         * wait on it would sit out the rest of the pass period. */
        if (hb->io->changed != NULL)
            hb->io->changed(hb);
    }
}

static void tick(struct gf__hb *hb)
{
    hb->retried = false;
    if (hb->inflight)
        return; /* still out: it answers within Tw, well before D/3 */
    gf__hb_check(hb);
    if (hb->inflight)
        return; /* check renewed */
    if (hb->suspect && !hb->stale_only)
        hb_send(hb, GF__HB_GET);
    else
        renew(hb);
}

/*
 * A replica standing by writes nothing, but its caches are the ones a
 * failover starts from and its /metrics show its ledger: they must stay
 * warm. Its watches of a member that was cut off back off like the
 * leader's (up to 30 s), and only a probe's answer cuts that short, so it
 * reads the Lease (a GET) while the member's watches are not all up. The
 * answer is evidence of reachability only: it neither makes the member
 * suspect nor healthy nor counts as sent; that is the leader's business.
 */
static void standby_probe(struct gf__hb *hb)
{
    if (hb->inflight || hb->io->synced(hb))
        return;
    hb->call = GF__HB_GET;
    hb->call_sent_ms = gf_clock_now_ms(hb->clk);
    if (hb->io->send(hb, GF__HB_GET, NULL, 0, (uint64_t)hb->tw_ms) == 0) {
        hb->inflight = true;
        hb->standby_call = true;
    }
}

static void on_tick(struct gf_timer *t)
{
    struct gf__hb *hb = t->data;
    gf_timer_start(&hb->timer, period(hb), on_tick);
    if (hb->paused)
        standby_probe(hb);
    else
        tick(hb);
}

void gf__hb_start(struct gf__hb *hb)
{
    hb->running = true;
    gf_timer_start(&hb->timer, period(hb), on_tick);
}

void gf__hb_stop(struct gf__hb *hb)
{
    hb->running = false;
    gf_timer_stop(&hb->timer);
}

void gf__hb_pause(struct gf__hb *hb)
{
    hb->paused = true;
}

void gf__hb_resume(struct gf__hb *hb, uint64_t now_ms)
{
    hb->paused = false;
    /* Another leader may have written any term while this one stood by:
     * what it knew is no longer known (learn_term). */
    hb->term_known = false;
    hb->old_d_ms = 0;
    hb->step_ack_ms = 0;
    hb->d_ms = hb->want_d_ms;
    gf__hb_reset(hb, now_ms);
}

void gf__hb_reset(struct gf__hb *hb, uint64_t now_ms)
{
    hb->sent_ms = now_ms;
}

bool gf__hb_healthy(const struct gf__hb *hb)
{
    return hb->ever_synced && !hb->suspect;
}

int64_t gf__hb_sent_wall_ms(const struct gf__hb *hb)
{
    uint64_t now = gf_clock_now_ms(hb->clk);
    uint64_t ago = now > hb->sent_ms ? now - hb->sent_ms : 0;
    return gf_clock_wall_ms(hb->clk) - (int64_t)ago;
}

static void keep_rv(struct gf__hb *hb, const cJSON *json)
{
    const char *rv =
        gf_json_as_str(GF_JSON_AT(json, "metadata", "resourceVersion"));
    if (rv != NULL)
        snprintf(hb->rv, sizeof(hb->rv), "%s", rv);
}

/*
 * A read of the Lease: its term is what the agent may believe, but not
 * all of it. The writer of a term this process did not write itself (a
 * predecessor: the same --id restarted, or a leader a standby took over
 * from; or such a one's renewal landing late) may have been holding a
 * longer one while it stepped down to it, and an agent whose reads fail
 * still fences by that longer term. Steps are at most 3 times shorter,
 * rounded up to whole seconds, so that term is at most 3 times the one
 * found; after a raise it is shorter, so assuming 3 times is never short.
 * So the found term is held as a step under way from 3 times it: written
 * on, counted at 3 times, until (1+rho)^2 of that after this process's
 * own first acknowledged renewal of it (step), and only then stepped down
 * from. The cost: after a restart or a failover the hub may take up to 3
 * times longer to count a cut-off member fenced, for one such hold.
 */
static void learn_term(struct gf__hb *hb, int err, const cJSON *json)
{
    if (err == GF_ENOTFOUND) {
        /* No Lease: an agent that reads it absent fences at once (a
         * deleted Lease, fence.c), as one that never read it does; one
         * whose reads fail keeps a term no one here can know, a stated
         * residual (docs/failure-semantics.md, "Changing D"): counting
         * a day for it would leave a first install unable to fence. */
        hb->term_known = true;
        return;
    }
    int64_t secs = 0;
    if (err != 0 ||
        gf_json_as_int(GF_JSON_AT(json, "spec", "leaseDurationSeconds"),
                       &secs) != 0 ||
        secs < 1 || secs > GF__HB_MAX_TERM_MS / 1000)
        return;
    int64_t seen = secs * 1000;
    if (hb->term_known && seen <= gf__hb_bound_d_ms(hb))
        return; /* ours, or covered by what we count */
    int64_t held = 3 * seen;
    if (held > GF__HB_MAX_TERM_MS)
        held = GF__HB_MAX_TERM_MS; /* no agent believes longer */
    GF_LOG(hb->lc, GF_LOG_INFO, "heartbeat term found",
           "found_ms=%lld ours_ms=%lld held_ms=%lld", (long long)seen,
           (long long)hb->d_ms, (long long)held);
    hb->term_known = true;
    hb->d_ms = seen;
    if (hb->old_d_ms < held)
        hb->old_d_ms = held;
    hb->step_ack_ms = 0;
}

static void probe_answer(struct gf__hb *hb, int err, const cJSON *json)
{
    if (err == 0 || err == GF_ENOTFOUND) {
        /* The API server answered: reachable. Absent: create next. */
        hb->rv[0] = '\0';
        if (err == 0)
            keep_rv(hb, json);
        hb->probe_ok = true;
        if (hb->io->reachable != NULL)
            hb->io->reachable(hb);
        gf__hb_check(hb);
        return;
    }
    hb->probe_ok = false;
}

/* A GET: a probe of a suspect member, or the re-read after a conflict. */
static void read_answer(struct gf__hb *hb, int err, const cJSON *json)
{
    learn_term(hb, err, json);
    if (hb->suspect && !hb->stale_only) {
        probe_answer(hb, err, json);
        return;
    }
    /* The re-read after a conflict: renew on what it showed. */
    if (err == 0 || err == GF_ENOTFOUND) {
        hb->rv[0] = '\0';
        if (err == 0)
            keep_rv(hb, json);
        if (hb->running && !hb->paused)
            renew(hb);
        return;
    }
    hb->n_err++;
    char why[96];
    snprintf(why, sizeof(why), "heartbeat read failed: %s", gf_strerror(err));
    turn_suspect(hb, why, false);
}

/* A stale resourceVersion (another writer, or a previous process), or a
 * Lease deleted by hand: read or create once, then renew. These are
 * refusals: nothing landed. True when that was started. */
static bool retry_once(struct gf__hb *hb, int err)
{
    bool stale = err == GF_ECONFLICT || err == GF_EEXIST;
    bool gone = err == GF_ENOTFOUND && hb->call == GF__HB_PATCH;
    if (hb->retried || !hb->running || hb->paused || !(stale || gone))
        return false;
    hb->retried = true;
    if (gone) {
        hb->rv[0] = '\0';
        hb_send(hb, GF__HB_CREATE);
    } else {
        hb_send(hb, GF__HB_GET);
    }
    return true;
}

void gf__hb_answer(struct gf__hb *hb, int err, long code, const cJSON *json)
{
    hb->inflight = false;
    if (hb->standby_call) {
        /* Sent while standing by (we may lead by now): reachability only. */
        hb->standby_call = false;
        if ((err == 0 || err == GF_ENOTFOUND) && hb->io->reachable != NULL)
            hb->io->reachable(hb);
        return;
    }
    if (err == GF_ECANCELED) {
        /* Stopped or paused: a renewal cut off may still have landed. */
        if (hb->call != GF__HB_GET)
            hb->sent_ms = hb->call_sent_ms;
        return;
    }
    if (hb->call == GF__HB_GET) {
        read_answer(hb, err, json);
        return;
    }
    if (err == 0) {
        hb->sent_ms = hb->call_sent_ms;
        hb->ok_ms = gf_clock_now_ms(hb->clk);
        hb->n_ok++;
        keep_rv(hb, json);
        /* Acknowledged: the Lease carries the term we wrote. */
        hb->term_known = true;
        if (hb->old_d_ms != 0 && hb->step_ack_ms == 0 &&
            hb->call_d_ms == hb->d_ms)
            hb->step_ack_ms = hb->call_sent_ms;
        if (hb->recovering && !hb->suspect)
            recovered(hb, hb->ok_ms);
        if (hb->suspect) {
            /* stale_only: the renewal is the probe. */
            hb->probe_ok = true;
            if (hb->io->reachable != NULL)
                hb->io->reachable(hb);
            gf__hb_check(hb);
        }
        return;
    }
    if (retry_once(hb, err))
        return;
    hb->n_err++;
    /* A 4xx is a definite refusal; anything else (a timeout, a reset, a
     * 5xx) may have landed and counts as sent. */
    if (!(code >= 400 && code < 500))
        hb->sent_ms = hb->call_sent_ms;
    char why[96];
    snprintf(why, sizeof(why), "renewal failed: %s", gf_strerror(err));
    turn_suspect(hb, why, false);
}

/* --- the hub's members --------------------------------------------------- */

/* One call on the wire: the answer goes to its heartbeat. */
struct hb_call {
    struct gf_hub *h;
    struct gf__hb *hb;
};

static struct gf__member *hb_member(const struct gf__hb *hb)
{
    return hb->data;
}

static void kube_answer(void *data, const struct gf_kube_result *res)
{
    struct hb_call *c = data;
    c->h->inflight_writes--;
    c->hb->call_handle = NULL;
    gf__hb_answer(c->hb, res->err, res->http_code, res->json);
    gf_free(c);
}

static int kube_send(struct gf__hb *hb, enum gf__hb_call call, const char *body,
                     size_t len, uint64_t timeout_ms)
{
    struct gf__member *m = hb_member(hb);
    if (m->client == NULL)
        return -ENOTCONN;
    struct gf_kube_resource r;
    gf_kube_resource_parse("leases.coordination.k8s.io", &r);
    char query[48];
    snprintf(query, sizeof(query), "timeout=%" PRIu64 "ms", timeout_ms);
    struct gf_buf b = GF_BUF_INIT(1 << 16);
    struct gf_kube_op op = {
        .res = &r, .ns = HB_NS, .query = query, .timeout_ms = timeout_ms};
    int rc = 0;
    switch (call) {
    case GF__HB_GET:
        op.method = "GET";
        op.name = HB_NAME;
        break;
    case GF__HB_CREATE:
        op.method = "POST";
        op.content_type = "application/json";
        op.body = body;
        op.body_len = len;
        break;
    case GF__HB_PATCH:
        /* A merge patch of the fields we own, with the resourceVersion of
         * the last answer: a second writer makes it fail with 409. */
        rc = gf_kube_patch_body(&b, GF_PATCH_MERGE, body, len, hb->rv);
        op.method = "PATCH";
        op.name = HB_NAME;
        op.content_type = "application/merge-patch+json";
        op.body = gf_buf_cstr(&b);
        op.body_len = strlen(gf_buf_cstr(&b));
        break;
    }
    struct hb_call *c = gf_calloc(1, sizeof(*c));
    c->h = m->hub;
    c->hb = hb;
    if (rc == 0)
        rc = gf_kube_call(m->client, &op, kube_answer, c, &hb->call_handle);
    gf_buf_free(&b);
    if (rc != 0) {
        hb->call_handle = NULL;
        gf_free(c);
        return rc;
    }
    m->hub->inflight_writes++;
    return 0;
}

static bool kube_synced(struct gf__hb *hb)
{
    return gf__member_synced(hb_member(hb));
}

bool gf__member_observed(const struct gf__member *m)
{
    const struct gf_hub *h = m->hub;
    return gf__member_synced(m) && (h->hb == NULL || !h->hb[m->index].suspect);
}

/* The watches grew their backoff through the partition (up to 30 s);
 * the probe's answer is better evidence than the backoff's guess. */
static void kube_reachable(struct gf__hb *hb)
{
    gf__member_retry_now(hb_member(hb));
}

/* A pass now: it records the member's freshness in the ledger and, when
 * the member is healthy again, wakes every lease (pass.c,
 * refresh_members). */
static void kube_changed(struct gf__hb *hb)
{
    gf__hub_kick_pass(hb_member(hb)->hub);
}

static const struct gf__hb_io kube_io = {.send = kube_send,
                                         .synced = kube_synced,
                                         .reachable = kube_reachable,
                                         .changed = kube_changed};

void gf__heartbeat_start(struct gf_hub *h, const char *holder)
{
    char host[64] = "gpufed-hub";
    if (holder == NULL) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "gpufed-hub");
        host[sizeof(host) - 1] = '\0';
        holder = host;
    }
    h->hb = gf_calloc(h->n_members ? h->n_members : 1, sizeof(*h->hb));
    for (size_t i = 0; i < h->n_members; i++) {
        struct gf__hb *hb = &h->hb[i];
        gf__hb_init(hb, &h->clk, &kube_io, h->members[i], &h->members[i]->lc,
                    holder);
        gf__hb_set_timing(hb, h->policy->timing.lease_duration_ms,
                          h->policy->timing.fence_margin_ms,
                          h->policy->timing.clock_drift_ppm);
        gf__hb_start(hb);
    }
}

void gf__heartbeat_stop(struct gf_hub *h)
{
    for (size_t i = 0; h->hb != NULL && i < h->n_members; i++) {
        gf__hb_stop(&h->hb[i]);
        gf_kube_call_cancel(h->hb[i].call_handle);
    }
}

void gf__heartbeat_free(struct gf_hub *h)
{
    GF_FREE(h->hb);
}

void gf__heartbeat_reset(struct gf_hub *h, int64_t now_ms)
{
    for (size_t i = 0; h->hb != NULL && i < h->n_members; i++)
        gf__hb_reset(&h->hb[i], (uint64_t)now_ms);
}

void gf__heartbeat_pause(struct gf_hub *h)
{
    for (size_t i = 0; h->hb != NULL && i < h->n_members; i++) {
        gf__hb_pause(&h->hb[i]);
        gf_kube_call_cancel(h->hb[i].call_handle);
    }
}

void gf__heartbeat_resume(struct gf_hub *h)
{
    uint64_t now = gf_clock_now_ms(&h->clk);
    for (size_t i = 0; h->hb != NULL && i < h->n_members; i++)
        gf__hb_resume(&h->hb[i], now);
}
