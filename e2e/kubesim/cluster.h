/*
 * cluster: the simulated clusters of one kubesim process and their admin
 * endpoint.
 *
 * A struct gf_ks_cluster is one simulated Kubernetes cluster: its REST
 * layer and store (api.h), its RBAC authorizer wired into the REST layer,
 * its token table with kubesim's three identities, its fault table, and
 * its HTTPS listener on 127.0.0.1. Kueue-lite and the job runner attach
 * to a cluster through gf_ks_cluster_api() (the store) and
 * gf_ks_cluster_faults() (gf_ks_faults_kueue_frozen).
 *
 * A struct gf_ks_world is the process: the TLS identity (certs.h), the
 * catalog shared by the clusters, the clusters, and the admin endpoint, a
 * plain-HTTP listener on 127.0.0.1 that the `kubesim fault` CLI talks to,
 * with the bearer token from DIR/admin-token (mode 0600, so only the user
 * who runs kubesim can inject faults):
 *   GET    /clusters              [{"name":..,"port":..}]
 *   GET    /faults                {"<cluster>":[fault..]}
 *   POST   /faults/<cluster|*>    body: fault.h's JSON spec, or
 *                                 {"kind":"restart","forMs":N} for an
 *                                 API server restart (down N ms);
 *                                 201 {"ids":[..]}
 *   DELETE /faults[/<cluster>]    clears faults
 *
 * Ownership: the world owns its clusters, and each cluster owns its
 * parts. Closing is synchronous for everything but the libuv handles,
 * which are freed as the loop runs on (run it until it is empty).
 * Loop thread only.
 */
#ifndef GF_KS_CLUSTER_H
#define GF_KS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/clock.h"
#include "e2e/kubesim/api.h"
#include "e2e/kubesim/auth.h"
#include "e2e/kubesim/fault.h"
#include "e2e/kubesim/server.h"

struct gf_ks_cluster;
struct gf_ks_world;

/* An identity added to every cluster besides the three standard ones. */
struct gf_ks_identity_spec {
    const char *identity;      /* file and fault name: "team-a" */
    const char *user;          /* user name RBAC sees */
    const char *const *groups; /* NULL-terminated, may be NULL */
};

struct gf_ks_world_opts {
    uv_loop_t *loop;        /* required */
    struct gf_clock *clock; /* required */
    /* Cluster names (DNS labels), n_clusters of them. Copied. */
    const char *const *clusters;
    size_t n_clusters;
    int base_port;       /* 0 = ephemeral ports; else base, base+1, ... */
    int admin_port;      /* 0 = ephemeral */
    uint64_t seed;       /* 0 = random uids; else repeatable per cluster */
    double time_scale;   /* simulated seconds per real second; 0 = 1 */
    const char *crd_dir; /* YAML files installed in every cluster; NULL */
    size_t watch_cache;  /* per type; 0 = the store's default */
    unsigned bookmark_s; /* watch bookmark interval; 0 = the API's (60 s) */
    /* The hard cap on bytes queued per watching connection (watches are
     * paced by their client at a quarter of it); 0 = the server's default
     * (8 MiB). */
    size_t watch_queue;
    /* Extra identities (copied into every cluster, each with its token). */
    const struct gf_ks_identity_spec *identities;
    size_t n_identities;
    /*
     * In-process controllers per cluster (Kueue-lite, the job runner):
     * attach runs once per cluster after it is set up and listening, before
     * the loop serves anything; an error from it fails gf_ks_world_new. detach
     * runs before the cluster is freed, for every cluster whose attach
     * succeeded. Keep per-cluster state with gf_ks_cluster_set_user(). Either
     * may be NULL.
     */
    int (*attach)(void *data, struct gf_ks_cluster *c);
    void (*detach)(void *data, struct gf_ks_cluster *c);
    void *hook_data;
};

/*
 * Creates every cluster, binds every listener and the admin endpoint.
 * Returns 0 and *out, or a negative error (logged: a port in use, a bad
 * cluster name, an unreadable CRD) with nothing left behind once the loop
 * has run.
 */
int gf_ks_world_new(const struct gf_ks_world_opts *o, struct gf_ks_world **out);
/*
 * Closes every listener and connection (cancelling watches), frees the
 * clusters; the struct itself is freed now. Run the loop afterwards so
 * libuv finishes closing. Accepts NULL.
 */
void gf_ks_world_close(struct gf_ks_world *w);

/*
 * Writes DIR/<cluster>/kubeconfig-<identity>.yaml (mode 0600) for every
 * cluster and identity, DIR/admin ("127.0.0.1:PORT"), DIR/admin-token,
 * DIR/ca.crt and, last, DIR/ready
 * (one "<cluster> <port>" line per cluster), each atomically (temporary
 * file and rename). Returns 0 or a negative errno (logged).
 */
int gf_ks_world_write_files(const struct gf_ks_world *w, const char *dir);

size_t gf_ks_world_count(const struct gf_ks_world *w);
/* Returned-borrowed cluster by index or name (NULL when unknown). */
struct gf_ks_cluster *gf_ks_world_cluster(const struct gf_ks_world *w,
                                          size_t i);
struct gf_ks_cluster *gf_ks_world_find(const struct gf_ks_world *w,
                                       const char *name);
int gf_ks_world_admin_port(const struct gf_ks_world *w);
/* Returned-borrowed bearer token the admin endpoint requires. */
const char *gf_ks_world_admin_token(const struct gf_ks_world *w);
/* Returned-borrowed PEM of the CA every cluster's certificate chains to. */
const char *gf_ks_world_ca_pem(const struct gf_ks_world *w);

/* ---- one cluster ------------------------------------------------------- */

const char *gf_ks_cluster_name(const struct gf_ks_cluster *c);
int gf_ks_cluster_port(const struct gf_ks_cluster *c);
/* Returned-borrowed parts, valid while the cluster lives. */
struct gf_ks_api *gf_ks_cluster_api(struct gf_ks_cluster *c);
struct gf_ks_faults *gf_ks_cluster_faults(struct gf_ks_cluster *c);
const struct gf_ks_auth *gf_ks_cluster_auth(const struct gf_ks_cluster *c);
struct gf_ks_server *gf_ks_cluster_server(struct gf_ks_cluster *c);
double gf_ks_cluster_time_scale(const struct gf_ks_cluster *c);
/* The clock every part of the cluster runs on (borrowed). */
struct gf_clock *gf_ks_cluster_clock(const struct gf_ks_cluster *c);
/* A slot for the attach hook's per-cluster state (never freed by us). */
void gf_ks_cluster_set_user(struct gf_ks_cluster *c, void *user);
void *gf_ks_cluster_user(const struct gf_ks_cluster *c);

/*
 * The "API server restart" fault: every connection is cut, every watch
 * ends and the watch caches are emptied (clients that resume from an old
 * resourceVersion get 410 and relist); the data stays. With down_ms > 0
 * the cluster also refuses connections for that long, as a restarting
 * API server does.
 */
void gf_ks_cluster_restart(struct gf_ks_cluster *c, uint64_t down_ms);

#endif
