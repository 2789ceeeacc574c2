/* bivyd layer 4 (cluster): the cluster view: one range read over CL_PREFIX, split by kind. */
#ifndef BIVYD_CLUSTER_VIEW_H
#define BIVYD_CLUSTER_VIEW_H

#include <jansson.h>
#include <stddef.h>

#include "runtime/error.h"
#include "tools/bivyd/policy/placement-policy.h"

struct cl_view {
  json_t *nodes;   /* name -> node value (live members) */
  json_t *drain;   /* name -> stop grace in ms (drained nodes) */
  json_t *insts;   /* name -> {"rec": record, "rev": mod_revision} */
  json_t *owner;   /* name -> node */
  json_t *status;  /* name -> summary */
  json_t *refused; /* name -> {node -> {"rev", "rule", "detail"}}: nodes whose policy refuses it */
  bool stale;      /* from cl_view_last: etcd did not answer */
  uint64_t stale_ms; /* its age then */
};
/* the view now (one range read); remembered for cl_view_last */
int cl_view_load(struct cl_view *v, bivy_error_t *err);
/* the last view read (stale set, stale_ms its age), or an empty one (-ENOENT, stale not
 * set) when none was ever read: what reads answer while etcd is unreachable */
int cl_view_last(struct cl_view *v);
void cl_view_free(struct cl_view *v);
const char *cl_owner(struct cl_view *v, const char *name); /* NULL = none */
/* node's refusal of name's record at revision rev, NULL = none */
json_t *cl_refusal(struct cl_view *v, const char *name, const char *node, int64_t rev);
json_t *cl_summary(struct cl_view *v, const char *name);    /* what ls shows for it */
/* live nodes with what their instances use (placement input; names point into v) */
struct bivy_cl_node *cl_nodes(struct cl_view *v, size_t *n);

#endif
