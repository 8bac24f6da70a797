/*
 * event: core/v1 Events (controller/event.h), and the hub's use of them:
 * it counts each one as a write in flight, so a stopping hub waits for
 * them like for its other writes.
 */
#include "controller/event.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "controller/internal.h"

static void ignore_done(void *data, const struct gf_kube_result *res)
{
    (void)data;
    (void)res;
}

int gf_event_post(struct gf_kube_client *c, int64_t wall_ms,
                  const struct gf_event *ev, gf_kube_cb done, void *data)
{
    if (c == NULL || ev->name == NULL || ev->name[0] == '\0')
        return -EINVAL;
    char ts[32], gen[300];
    gf_time_rfc3339(wall_ms, ts);
    snprintf(gen, sizeof(gen), "%s.", ev->name);
    cJSON *e = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(e, "metadata");
    cJSON_AddStringToObject(md, "generateName", gen);
    cJSON_AddStringToObject(md, "namespace", ev->ns);
    cJSON *io = cJSON_AddObjectToObject(e, "involvedObject");
    cJSON_AddStringToObject(io, "apiVersion", ev->api_version);
    cJSON_AddStringToObject(io, "kind", ev->kind);
    cJSON_AddStringToObject(io, "namespace", ev->ns);
    cJSON_AddStringToObject(io, "name", ev->name);
    if (ev->uid != NULL && ev->uid[0] != '\0')
        cJSON_AddStringToObject(io, "uid", ev->uid);
    cJSON_AddStringToObject(e, "reason", ev->reason);
    cJSON_AddStringToObject(e, "message", ev->message);
    cJSON_AddStringToObject(e, "type", ev->warning ? "Warning" : "Normal");
    cJSON *src = cJSON_AddObjectToObject(e, "source");
    cJSON_AddStringToObject(src, "component", ev->component);
    cJSON_AddStringToObject(e, "firstTimestamp", ts);
    cJSON_AddStringToObject(e, "lastTimestamp", ts);
    cJSON_AddNumberToObject(e, "count", 1);
    char *body = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    struct gf_kube_resource r;
    gf_kube_resource_parse("events", &r);
    int rc = gf_kube_create(c, &r, ev->ns, body, strlen(body),
                            done != NULL ? done : ignore_done, data, NULL);
    cJSON_free(body);
    return rc;
}

static void hub_event_done(void *data, const struct gf_kube_result *res)
{
    (void)res;
    struct gf_hub *h = data;
    h->inflight_writes--;
}

void gf__event_post(struct gf_hub *h, struct gf_kube_client *c,
                    const struct gf__event *ev)
{
    /* A write like any other: only the leader records Events (a
     * reconcile's callback may end after leadership was lost). */
    if (!gf__hub_writing(h))
        return;
    const struct gf_event e = {.ns = ev->ns,
                               .api_version = ev->api_version,
                               .kind = ev->kind,
                               .name = ev->name,
                               .uid = ev->uid,
                               .reason = ev->reason,
                               .message = ev->message,
                               .component = ev->component,
                               .warning = ev->warning};
    if (gf_event_post(c, gf_clock_wall_ms(&h->clk), &e, hub_event_done, h) == 0)
        h->inflight_writes++;
}
