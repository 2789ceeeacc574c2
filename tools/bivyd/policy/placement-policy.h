/* bivyd layer 0 (policy): pure decisions of cluster mode (tools/bivyd/cluster*.c), kept apart so that unit
 * tests check them without etcd: placement, the fencing deadline, the per-call timeout,
 * --cluster URL lists, node names, base64 (etcd's JSON gateway carries keys and values in
 * base64). */
#ifndef BIVYD_PLACEMENT_POLICY_H
#define BIVYD_PLACEMENT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"

/* A live node as placement sees it: declared capacity and what its instances' limits use. */
struct bivy_cl_node {
  const char *name;
  double cpus;          /* declared CPUs (--node-cpus) */
  uint64_t mem;         /* declared memory bytes (--node-memory) */
  double used_cpus;     /* sum of the cpus limits of the instances it owns */
  uint64_t used_mem;    /* sum of their memory limits */
  unsigned count;       /* instances it owns */
  bool drained;         /* takes no new instances */
  bool refuses;         /* its policy refuses the instance being placed (set per instance) */
};

/* Where an instance asking for cpus/mem (0 = no limit) goes: the index of the node whose
 * free capacity fits it, least loaded first (load = the larger of used/declared CPU and
 * memory after placing it), ties by fewer instances, then name; only = a required node name (migrate) or NULL.
 * -1 when nothing fits (the instance stays pending). Deterministic: every node computes the
 * same answer from the same view. */
int bivy_cl_place(const struct bivy_cl_node *nodes, size_t n, double cpus, uint64_t mem, const char *only);

/* Fencing: a node that renews its lease with TTL ttl_ms must have stopped its instances by
 * the returned monotonic time, counted from the send time of its last successful renewal.
 * etcd cannot expire the lease before last_ok_send + ttl (it restarts the TTL when it
 * receives the renewal, which is after we sent it), and the others start an orphan only
 * after expiry; margin_ms covers the kill itself, loop latency and clock rate error. */
uint64_t bivy_cl_fence_at(uint64_t last_ok_send_ms, uint64_t ttl_ms, uint64_t margin_ms);
/* Timeout for one etcd call starting at now_ms: at most max_ms, and ending before the
 * fencing deadline (so that a hung call never delays fencing). 0 = fence first, no call. */
uint64_t bivy_cl_call_timeout(uint64_t now_ms, uint64_t fence_at_ms, uint64_t max_ms);
/* Time for one attempt of a call on one endpoint when left_ms of the call remain and
 * endpoints_left endpoints (this one included) may still be tried: an even share, at least
 * BIVY_CL_ATTEMPT_MIN_MS (a healthy member answers in about a millisecond; a partitioned or
 * stopped one never does, and a dead one refuses at once), all of it for the last one. */
#define BIVY_CL_ATTEMPT_MIN_MS 100
uint64_t bivy_cl_attempt_ms(uint64_t left_ms, size_t endpoints_left);

/* What an instance does when its node loses etcd (per instance, `bivy up --failover`):
 *   fenced     stopped at the node's fencing deadline (TTL - margin after the last renewal);
 *              another node starts it once the lease expired: the quickest failover.
 *   keep       never stopped for the cluster's sake, never started elsewhere by failover (its
 *              home node restarts it by its restart policy; migrate and drain still move it).
 *   relaxed=D  keeps running for D after the last renewal, then stopped; another node starts
 *              it only once it has seen it orphaned (the lease expired) for D, so at the
 *              earliest last renewal + TTL + D, after the owner stopped it (last renewal + D).
 * Never twice, whichever: the owner's deadline always comes before anyone else's start. */
enum bivy_cl_failover_kind { BIVY_CL_FENCED, BIVY_CL_KEEP, BIVY_CL_RELAXED };
struct bivy_cl_failover {
  enum bivy_cl_failover_kind kind;
  uint64_t relaxed_ms;
};
#define BIVY_CL_RELAXED_MAX_MS (3600ull * 1000) /* longer: use keep */
/* "fenced" | "keep" | "relaxed=DURATION" (1s..1h). NULL = the default, fenced. Errors
 * name what (e.g. "--failover" or "spec.failover") and the reason. */
int bivy_cl_failover_parse(const char *s, const char *what, struct bivy_cl_failover *f, bivy_error_t *err);
/* an instance spec's policy (checked specs only; anything else is fenced) */
struct bivy_cl_failover bivy_cl_failover_of(const char *s);

/* "http://h:p[,http://h2:p2...]" -> a NULL-terminated array of URLs without trailing '/'.
 * Errors name --cluster and the bad element. Free with bivy_cl_urls_free. */
int bivy_cl_urls_parse(const char *arg, char ***urls, bivy_error_t *err);
void bivy_cl_urls_free(char **urls);
/* Whether the URL's host is a loopback address (127.x.y.z, [::1], localhost): plain http
 * is accepted there only, since nothing leaves the host. */
bool bivy_cl_url_loopback(const char *url);
/* A node name: 1-63 characters of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool bivy_cl_node_valid(const char *name);

/* base64 (RFC 4648, padded). Encode: returns a malloc'ed string or NULL. Decode: malloc'ed
 * bytes + NUL (*len without it), -EINVAL on bad input. */
char *bivy_b64_encode(const void *data, size_t len);
int bivy_b64_decode(const char *s, char **out, size_t *len);

#endif
