/*
 * metrics: counters and gauges with labels, rendered in the Prometheus text
 * exposition format 0.0.4 (what /metrics serves).
 *
 * A registry holds metric families. A family has a name (validated at
 * registration: [a-zA-Z_:][a-zA-Z0-9_:]*), a help text, a type (counter or
 * gauge) and a fixed list of label names ([a-zA-Z_][a-zA-Z0-9_]*, not
 * starting with "__", which Prometheus reserves, and no duplicates). A
 * series is one combination of label values; it exists from its first
 * add or set. A family without labels has its one series from
 * registration, at 0, as client_golang's plain Counter and Gauge do.
 *
 * Lookup of a series is one hash of its label values (common/htab.h; the
 * key is the values joined with NUL separators, as policy's composite keys
 * are), so an update on a hot path costs no allocation once the series
 * exists.
 *
 * Rendering is deterministic, so tests compare text: families sorted by
 * name, series by label values (value by value, in registration order,
 * bytewise). Each family with at least one series is written as
 *
 *   # HELP name help          (help with \ and newline escaped)
 *   # TYPE name counter|gauge
 *   name{a="x",b="y"} value   (label values with \, " and newline escaped)
 *
 * and a family with no series is left out (client_golang does the same
 * for a vector with no children). Values are written in the shortest form
 * that reads back as the same double ("3", "0.25", "1e+21"), and NaN,
 * +Inf and -Inf as Prometheus spells them.
 *
 * Programmer errors are GF_BUG_ON (STYLE: never for input): an invalid or
 * duplicate name, a negative or NaN add to a counter, set on a counter.
 * Label values come from data (cluster and queue names) and may hold any
 * byte but NUL.
 *
 * Ownership: the registry owns its families and series; handles are
 * borrowed and valid until gf_metrics_free. Loop thread only.
 */
#ifndef GF_CONTROLLER_METRICS_H
#define GF_CONTROLLER_METRICS_H

#include <stddef.h>

#include "common/buf.h"

struct gf_metrics;
struct gf_metric;

/* Returned-owned. */
struct gf_metrics *gf_metrics_new(void);
/* Frees the registry, its families and series. Accepts NULL. */
void gf_metrics_free(struct gf_metrics *m);

/*
 * Registers a family. name and help are copied; labels is a
 * NULL-terminated array of label names (NULL or { NULL } for none), copied.
 * Returns a handle borrowed from the registry. A duplicate or invalid name
 * is a programmer error.
 */
struct gf_metric *gf_metrics_counter(struct gf_metrics *m, const char *name,
                                     const char *help,
                                     const char *const *labels);
struct gf_metric *gf_metrics_gauge(struct gf_metrics *m, const char *name,
                                   const char *help, const char *const *labels);

/*
 * values: exactly as many label values as the family has label names, in
 * the order they were registered (a NULL-terminated array is fine: the
 * terminator is not read); may be NULL for a family without labels.
 * Values are copied when a series is created.
 */
/* Adds v to the series: counters need v >= 0; gauges take any v. */
void gf_metric_add(struct gf_metric *c, double v, const char *const *values);
/* Gauges only: sets the series to v. */
void gf_metric_set(struct gf_metric *g, double v, const char *const *values);
/* Drops every series of the family (e.g. a member removed); the next add or
 * set creates them again. */
void gf_metric_clear(struct gf_metric *g);

/* Series in the family (tests, and a sanity figure for cardinality). */
size_t gf_metric_series(const struct gf_metric *g);

/*
 * Appends the exposition text to out. Returns 0, or GF_E2BIG when out's cap
 * is reached (out is then left as it was on entry).
 */
int gf_metrics_render(const struct gf_metrics *m, struct gf_buf *out);

/* The content type of the rendered text, for the /metrics answer. */
#define GF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
