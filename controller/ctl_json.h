/*
 * ctl_json: API objects as gpufedctl prints them with -o json.
 *
 * cJSON keeps every number as a double, so an integer above 2^53 (an
 * int64 field such as a ClusterQueue's status.fairSharing.weightedShare)
 * would print rounded: 9007199254740993 as 9007199254740992. kubectl
 * prints what the server sent, and so must we. gf_ctl_json_parse() builds
 * the tree from libyaml's events instead (JSON is YAML's flow style):
 * every unquoted scalar keeps its text and becomes a cJSON raw node, so
 * cJSON_Print() writes numbers, true, false and null byte for byte.
 */
#ifndef GF_CTL_JSON_H
#define GF_CTL_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * Parses len bytes of JSON text into *out (returned-owned, cJSON_Delete),
 * numbers kept as raw text. Returns 0, or GF_EPARSE when the text is not
 * one JSON document (then *out is NULL).
 */
int gf_ctl_json_parse(const char *text, size_t len, cJSON **out);

/*
 * Gives obj the "apiVersion" and "kind" a list item lacks (list items
 * from the server carry none; kubectl adds them), as its first members.
 * Members already there are kept.
 */
void gf_ctl_json_type_meta(cJSON *obj, const char *api_version,
                           const char *kind);

/* Drops metadata.managedFields, as kubectl does unless asked to show
 * them (--show-managed-fields): bookkeeping, not the object. */
void gf_ctl_json_strip_managed(cJSON *obj);

#endif
