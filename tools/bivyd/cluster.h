/* bivyd cluster mode (--cluster URL --node NAME): the desired instances, node membership
 * and instance ownership live in etcd; see cluster.c for the design and the keys.
 *   cluster.c        membership lease, fencing, reconciliation (ownership, placement, adoption)
 *   cluster-verbs.c  up/down/rm/resize/ls routed through etcd, migrate, drain, undrain
 *   fence-guard.c    a child that fences for a bivyd that died */
#ifndef BIVYD_CLUSTER_H
#define BIVYD_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/error.h"
#include "runtime/cluster.h"
#include "tools/bivyd/etcd.h"

struct bivyd_inst;
struct bivyd_client;

#define CL_PREFIX "/bivy/"

/* Hooks for a planned move (migrate, drain). NULL = cold move: the source stops the
 * instance, the target starts it from its spec. A checkpoint/restore implementation (CRIU)
 * sets them: checkpoint runs on the source instead of the stop (it leaves the instance
 * stopped and may add fields, e.g. an image location, to *move_info, stored in the
 * instance record as "move_info"); restore runs on the target instead of the start, given
 * that info (the claim removes it from the record), and must leave the instance running as
 * sv_start does (pidfd watched, state S_RUNNING); on failure the target starts it cold. */
struct cluster_hooks {
  int (*checkpoint)(struct bivyd_inst *in, const char *to, json_t **move_info, bivy_error_t *err);
  int (*restore)(struct bivyd_inst *in, json_t *move_info, bivy_error_t *err);
};
extern struct cluster_hooks cluster_hooks;

/* per-instance bookkeeping of the instances this node owns */
struct cl_loc {
  char *name;
  int64_t gen;          /* the record's up/down generation last applied */
  int64_t rev;          /* the record's mod_revision last applied (limits) */
  bool fenced;          /* stopped by fencing: started again if the lease survived */
  bool releasing;       /* being stopped to hand it over (migrate, drain) */
  json_t *move_info;    /* from the checkpoint hook, for the target's restore hook */
  char *status;         /* last status published */
  struct cl_loc *next;
};

struct cluster {
  bool on;
  struct etcd e;
  const char *node;
  double cpus;
  uint64_t mem;
  uint64_t ttl_ms, margin_ms, renew_ms, poll_ms, call_ms;
  int64_t lease;        /* 0 = none */
  bool lease_fresh;     /* the last renewal succeeded and fence_at is in the future */
  uint64_t last_ok_send_ms, fence_at_ms, next_renew_ms, next_poll_ms; /* monotonic ms */
  bool fenced;          /* instances stopped by fencing, lease not confirmed since */
  struct cl_loc *locs;
  json_t *pending;      /* names reported pending (one event each) */
};
extern struct cluster C;

bool cluster_on(void);
/* options, checked (errors name the flag) */
int cluster_config(const char *urls, const char *node, const char *cpus, const char *mem, const char *ttl,
                   bivy_error_t *err);
/* join: lease (reusing the previous one when it is still alive), membership, then the local
 * instances (insts_load when we still own them, else they are removed). */
int cluster_start(bivy_error_t *err);
void cluster_tick(uint64_t now_ns);
uint64_t cluster_next_due(void); /* monotonic ns, 0 = none */
/* bivyd stopping: hand every instance over (stop, release ownership, revoke the lease) */
void cluster_shutdown(void);
/* one reconciliation pass now (after a request), when the lease is fresh */
void cluster_reconcile_now(void);

/* fence-guard.c: a child that SIGKILLs our instances at the fencing deadline if bivyd
 * dies or hangs; update after each renewal and instance change (0 = disarm) */
int fence_guard_start(bivy_error_t *err);
void fence_guard_update(uint64_t deadline_ms);

/* verbs (cluster-verbs.c): true when handled (answered) */
bool cluster_handle(struct bivyd_client *c, const char *verb, json_t *req);

/* shared by cluster.c and cluster-verbs.c */
uint64_t cl_timeout(void);
char *cl_key(const char *kind, const char *name);
struct cl_loc *cl_loc_get(const char *name, bool create);
void cl_loc_drop(const char *name);
/* the cluster view: one range over CL_PREFIX, split by kind */
struct cl_view {
  json_t *nodes;   /* name -> node value (live members) */
  json_t *drain;   /* name -> stop grace in ms (drained nodes) */
  json_t *insts;   /* name -> {"rec": record, "rev": mod_revision} */
  json_t *owner;   /* name -> node */
  json_t *status;  /* name -> summary */
};
int cl_view_load(struct cl_view *v, bivy_error_t *err);
void cl_view_free(struct cl_view *v);
json_t *cl_summary(struct cl_view *v, const char *name); /* what ls shows for it */
/* live nodes with what their instances use (placement input; names point into v) */
struct bivy_cl_node *cl_nodes(struct cl_view *v, size_t *n);

#endif
