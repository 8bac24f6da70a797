/*
 * event: core/v1 Events the hub records, on an origin Job for each step of
 * a redirect a submitter cares about, and on the policy ConfigMap for a
 * refused or applied policy. Best effort: an Event that cannot be written
 * is not retried (the lease's status and the log carry the same facts).
 */
#include "controller/internal.h"

#include <string.h>

#include "common/alloc.h"

static void event_done(void *data, const struct gf_kube_result *res)
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
    if (c == NULL || ev->name == NULL || ev->name[0] == '\0' ||
        !gf__hub_writing(h))
        return;
    char ts[32], gen[300];
    gf_time_rfc3339(gf_clock_wall_ms(&h->clk), ts);
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
    if (gf_kube_create(c, &r, ev->ns, body, strlen(body), event_done, h,
                       NULL) == 0)
        h->inflight_writes++;
    cJSON_free(body);
}
