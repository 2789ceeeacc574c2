/* bivyd layer 4 (cluster): cluster mode (--cluster URL --node NAME): the desired instances,
 * node membership and instance ownership live in etcd; cluster.c has the design and the
 * keys. This is the node's cluster state, its lease and fencing, joining and leaving;
 * cluster-view.c reads the prefix, cluster-sync.c reconciles, fence-guard.c fences for a
 * bivyd that died, and the control API's cluster-verbs.c routes requests through etcd. */
#ifndef BIVYD_CLUSTER_H
#define BIVYD_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/error.h"
#include "tools/bivyd/cluster-trust.h"
#include "tools/bivyd/etcd.h"
#include "tools/bivyd/policy/placement-policy.h"

struct bivyd_inst;

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
  json_t *orphans;      /* relaxed orphans: name -> when this node first saw it without owner (ms) */
  /* joining: bivyd starts whether etcd answers or not, and joins (with back-off) once it does */
  bool joined;          /* joined since start (a lease granted or the previous one confirmed) */
  char *last_error;     /* the last failed join or renewal, NULL after a success */
  uint64_t join_attempts, join_backoff_ms, disconnected_since_ms;
  /* renewals: successful ones, failed calls, the longest time between two successful sends */
  uint64_t renewals, renew_failures, renew_gap_max_ms;
};
extern struct cluster C;

bool cluster_on(void);
/* options, checked (errors name the flag) */
int cluster_config(const struct cluster_opts *o, bivy_error_t *err);
/* join: lease (reusing the previous one when it is still alive), membership, then the local
 * instances (insts_load when we still own them, else they are removed). When etcd does not
 * answer, bivyd starts anyway in the "joining" state and cluster_renew joins later; only a
 * refusal (another live node of the same name) fails the start. */
int cluster_start(bivy_error_t *err);
/* "joining" (not joined since start), "joined", or "disconnected" (joined, but the last
 * renewal failed or the lease is no longer fresh) */
const char *cluster_state(void);
/* {"state", "node", "last_error"?, "disconnected_ms"?} for ls, inspect */
json_t *cluster_state_json(void);
/* bivyd stopping: hand every instance over (stop, release ownership, revoke the lease) */
void cluster_shutdown(void);

/* our lease may expire from here on: stop every instance whose failover policy says so
 * (fenced ones at once, relaxed ones past their own deadline; keep ones never) */
void cluster_fence(const char *why);
/* stop the relaxed instances whose deadline (last renewal + D) passed */
void cluster_fence_due(uint64_t now_ms);
/* an instance's policy (spec.failover) and its own deadline: monotonic ms after which it may
 * not run without a renewal, UINT64_MAX for keep */
struct bivy_cl_failover cl_failover(struct bivyd_inst *in);
uint64_t cl_deadline(struct bivyd_inst *in);
/* renew the lease (or rejoin) now */
void cluster_renew(uint64_t now_ms);
/* the node's membership key, on our lease (refused while another live node has the name) */
int cluster_register(bivy_error_t *err);
/* hand the fence guard the deadline and this node's inits */
void cluster_guard_update(void);

/* the cluster section of `metrics` (Prometheus text) */
void cluster_metrics(FILE *f);

/* shared by the cluster files */
uint64_t cl_timeout(void);
char *cl_key(const char *kind, const char *name);
struct cl_loc *cl_loc_get(const char *name, bool create);
void cl_loc_drop(const char *name);

#endif
