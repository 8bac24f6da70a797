/*
 * event: one core/v1 Event about one object, for the people who look at
 * it with kubectl describe. Shared by the hub (steps of a redirect on the
 * origin Job, a refused policy on its ConfigMap) and the agent (a fenced
 * copy).
 *
 * Events are best effort: one that cannot be written is not retried (the
 * log and the objects' own state carry the same facts). Each is created
 * with generateName "<object>." so repeated Events never collide.
 *
 * Loop thread only.
 */
#ifndef GF_CONTROLLER_EVENT_H
#define GF_CONTROLLER_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "kubeclient/request.h"

/* All strings borrowed for the call. uid may be NULL. */
struct gf_event {
    const char *ns, *api_version, *kind, *name, *uid; /* the object */
    const char *reason, *message, *component;
    bool warning;
};

/*
 * Creates the Event through c, stamped with wall_ms. done (may be NULL)
 * follows request.h's contract: when 0 is returned it fires exactly once
 * with the outcome; on an error return it never fires. Returns 0,
 * -EINVAL (no object name) or the call's error.
 */
int gf_event_post(struct gf_kube_client *c, int64_t wall_ms,
                  const struct gf_event *ev, gf_kube_cb done, void *data);

#endif
