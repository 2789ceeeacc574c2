/* bivyd layer 4 (cluster): membership, lease renewal and fencing, joining and leaving.
 * etcd (v3, through its JSON gateway) holds, under /bivy/:
 *   nodes/NODE    {"name","cpus","memory"}, attached to NODE's lease (TTL --lease-ttl, 3 s):
 *                 the live members
 *   drain/NODE    present while NODE is drained (no lease: survives restarts)
 *   inst/NAME     the desired instance {"spec", "desired": "running"|"stopped", "gen",
 *                 "timeout_ms", "move_to"?}, no lease: the cluster's durable truth
 *   owner/NAME    the node that owns NAME, attached to that node's lease: it vanishes when
 *                 the owner's lease expires, which is what makes NAME an orphan
 *   status/NAME   the owner's summary of NAME (what ls shows), attached to its lease
 * Each node renews its lease every TTL/3 and polls the whole prefix every 250 ms
 * (cluster-sync.c: reconciliation, claims, placement).
 *
 * Never twice: a node whose renewals fail stops (SIGKILL) its instances at
 * fence_at = send time of the last successful renewal + TTL - margin. etcd restarted the
 * lease's TTL when it received that renewal, after we sent it, so the lease (and with it
 * owner/NAME) cannot expire before send + TTL; others claim NAME only once owner/NAME is
 * gone. Each etcd call's timeout ends before fence_at, so a hung call never delays fencing. */
#include "tools/bivyd/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/fence-guard.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/launch.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivyd/policy/placement-policy.h"
#include "tools/bivyd/readopt.h"
#include "tools/bivyd/supervise.h"

struct cluster C;
struct cluster_hooks cluster_hooks;

bool cluster_on(void) { return C.on; }

uint64_t cl_timeout(void) { return bivy_cl_call_timeout(bivyd_now_ms(), C.fence_at_ms, C.call_ms); }

char *cl_key(const char *kind, const char *name) {
  char *k = NULL;
  if (asprintf(&k, "%s%s/%s", CL_PREFIX, kind, name) < 0) return NULL;
  return k;
}

struct cl_loc *cl_loc_get(const char *name, bool create) {
  for (struct cl_loc *l = C.locs; l; l = l->next)
    if (strcmp(l->name, name) == 0) return l;
  if (!create) return NULL;
  struct cl_loc *l = calloc(1, sizeof *l);
  if (l == NULL || (l->name = strdup(name)) == NULL) {
    free(l);
    return NULL;
  }
  l->next = C.locs;
  C.locs = l;
  return l;
}

void cl_loc_drop(const char *name) {
  for (struct cl_loc **pp = &C.locs; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->name, name) == 0) {
      struct cl_loc *l = *pp;
      *pp = l->next;
      free(l->status);
      json_decref(l->move_info);
      free(l->name);
      free(l);
      return;
    }
}

int cluster_config(const struct cluster_opts *o, bivy_error_t *err) {
  const char *node = o->node, *cpus = o->cpus, *mem = o->mem, *ttl = o->ttl;
  C = (struct cluster){.ttl_ms = 3000, .call_ms = 500, .poll_ms = 250};
  if (node == NULL) return bivy_error(err, 0, "--cluster needs --node NAME");
  if (!bivy_cl_node_valid(node))
    return bivy_error(err, 0, "--node: invalid name \"%s\" (1-63 characters of [A-Za-z0-9_.-])", node);
  C.node = node;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  C.cpus = ncpu > 0 ? (double)ncpu : 1;
  if (cpus) {
    char *end;
    errno = 0;
    C.cpus = strtod(cpus, &end);
    if (errno || end == cpus || *end || !(C.cpus >= 0.01 && C.cpus <= 4096))
      return bivy_error(err, 0, "--node-cpus: invalid number of CPUs \"%s\" (0.01-4096)", cpus);
  }
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  C.mem = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 1ull << 30;
  if (mem) {
    int64_t v;
    if (bivy_parse_size(mem, &v) < 0 || v < 4 * 1024 * 1024)
      return bivy_error(err, 0, "--node-memory: invalid size \"%s\" (at least 4M)", mem);
    C.mem = (uint64_t)v;
  }
  if (ttl && (bivy_parse_duration(ttl, &C.ttl_ms) < 0 || C.ttl_ms < 1000 || C.ttl_ms % 1000))
    return bivy_error(err, 0, "--lease-ttl: invalid duration \"%s\" (whole seconds, at least 1s)", ttl);
  /* renew three times per TTL; stop our instances a third of the TTL (at least 1 s when the
   * TTL allows) before the lease could expire */
  C.renew_ms = C.ttl_ms / 3;
  C.margin_ms = C.ttl_ms / 3 > 1000 ? C.ttl_ms / 3 : (C.ttl_ms >= 2000 ? 1000 : C.ttl_ms / 2);
  struct etcd_auth a;
  int r = cluster_trust_config(o, &a, err);
  if (r < 0 || (r = etcd_open(&C.e, o->urls, &a, err)) < 0) return r;
  C.pending = json_object();
  C.orphans = json_object();
  C.on = true;
  return 0;
}

/* ---- lease and fencing ---- */

static void save_lease(void) {
  _cleanup_free_ char *p = NULL, *txt = NULL;
  if (asprintf(&p, "%s/cluster.json", D.state_dir) < 0) return;
  _cleanup_json_ json_t *j = json_pack("{s:s, s:I}", "node", C.node, "lease", (json_int_t)C.lease);
  txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  if (txt) bivy_write_file_atomic(p, txt, strlen(txt), 0600, &err);
}

static int64_t saved_lease(void) {
  _cleanup_free_ char *p = NULL, *txt = NULL;
  size_t len = 0;
  _cleanup_error_ bivy_error_t err = NULL;
  if (asprintf(&p, "%s/cluster.json", D.state_dir) < 0 || bivy_read_file_at(AT_FDCWD, p, &txt, &len, &err) < 0) return 0;
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(txt, len, 0, &je);
  if (strcmp(json_string_value(json_object_get(j, "node")) ?: "", C.node) != 0) return 0;
  return (int64_t)json_integer_value(json_object_get(j, "lease"));
}

static void set_error(const bivy_error_t *err) {
  free(C.last_error);
  C.last_error = err && *err ? strdup((*err)->msg) : NULL;
  if (C.disconnected_since_ms == 0) C.disconnected_since_ms = bivyd_now_ms();
}

const char *cluster_state(void) {
  if (!C.joined) return "joining";
  return C.lease_fresh && C.last_error == NULL ? "joined" : "disconnected";
}

json_t *cluster_state_json(void) {
  json_t *j = json_pack("{s:s, s:s}", "state", cluster_state(), "node", C.node);
  if (j && C.last_error) json_object_set_new(j, "last_error", json_string(C.last_error));
  if (j && C.disconnected_since_ms)
    json_object_set_new(j, "disconnected_ms", json_integer((json_int_t)(bivyd_now_ms() - C.disconnected_since_ms)));
  return j;
}

static void renewed(uint64_t sent_ms) {
  free(C.last_error);
  C.last_error = NULL;
  C.disconnected_since_ms = 0;
  if (C.lease_fresh && sent_ms - C.last_ok_send_ms > C.renew_gap_max_ms) C.renew_gap_max_ms = sent_ms - C.last_ok_send_ms;
  C.renewals++;
  C.last_ok_send_ms = sent_ms;
  C.fence_at_ms = bivy_cl_fence_at(sent_ms, C.ttl_ms, C.margin_ms);
  C.lease_fresh = true;
}

struct bivy_cl_failover cl_failover(struct bivyd_inst *in) {
  return bivy_cl_failover_of(json_string_value(json_object_get(in->spec, "failover")));
}

uint64_t cl_deadline(struct bivyd_inst *in) {
  struct bivy_cl_failover f = cl_failover(in);
  if (f.kind == BIVY_CL_KEEP) return UINT64_MAX;
  if (f.kind == BIVY_CL_RELAXED) return C.last_ok_send_ms + f.relaxed_ms;
  return bivy_cl_fence_at(C.last_ok_send_ms, C.ttl_ms, C.margin_ms);
}

/* stop the running instances whose deadline passed (all = every fenced one, whatever the
 * time); the count */
static unsigned fence_some(uint64_t now, bool all_fenced) {
  unsigned n = 0;
  for (struct bivyd_inst *in = T.insts; in; in = in->next) {
    if (in->removed || !inst_running_like(in)) continue;
    struct cl_loc *l = cl_loc_get(in->name, true);
    if (l && l->fenced && in->state == S_STOPPING) continue; /* being killed already */
    bool fenced = cl_failover(in).kind == BIVY_CL_FENCED;
    if (!(fenced && all_fenced) && cl_deadline(in) > now) continue;
    if (l) l->fenced = true;
    if (in->state == S_RUNNING || in->state == S_STOPPING) n++;
    /* SIGKILL to the whole cgroup now: our claim on it may expire from here on, after
     * which another node starts it */
    bool was_stopping = in->state == S_STOPPING;
    sv_stop(in, 0);
    if (was_stopping) inst_signal(in, SIGKILL);
    if (!fenced) bivyd_event(in->name, "fenced", json_pack("{s:s}", "reason", "relaxed deadline passed"));
  }
  return n;
}

void cluster_fence(const char *why) {
  C.lease_fresh = false;
  if (C.fenced) return;
  C.fenced = true;
  unsigned n = fence_some(bivyd_now_ms(), true);
  bivyd_log("cluster: fencing (%s): stopped %u instances before our lease can expire", why, n);
  bivyd_event("", "fenced", json_pack("{s:s, s:i}", "reason", why, "instances", (int)n));
}

void cluster_fence_due(uint64_t now) {
  if (!C.joined) return;
  if (C.lease_fresh && now >= C.fence_at_ms) cluster_fence("lease not renewed");
  unsigned n = fence_some(now, false);
  if (n) bivyd_log("cluster: fencing: stopped %u relaxed instances at their deadline", n);
}

int cluster_register(bivy_error_t *err) {
  _cleanup_free_ char *k = cl_key("nodes", C.node);
  _cleanup_json_ json_t *j = json_pack("{s:s, s:f, s:I}", "name", C.node, "cpus", C.cpus, "memory", (json_int_t)C.mem);
  _cleanup_free_ char *v = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (k == NULL || v == NULL) return bivy_error(err, ENOMEM, "cluster: register");
  /* another live bivyd with the same --node would fight over the same instances */
  bool ok;
  _cleanup_json_ json_t *cmp = json_pack("[o]", etcd_cmp_absent(k)), *succ = json_pack("[o]", etcd_op_put(k, v, C.lease));
  int r = etcd_txn(&C.e, steal_pointer(&cmp), steal_pointer(&succ), NULL, cl_timeout(), &ok, err);
  if (r < 0) return r;
  if (ok) return 0;
  _cleanup_json_ json_t *kvs = NULL;
  if ((r = etcd_range_prefix(&C.e, k, cl_timeout(), &kvs, err)) < 0) return r;
  json_t *kv = json_array_get(kvs, 0);
  if (kv && json_integer_value(json_object_get(kv, "lease")) != C.lease)
    return bivy_error_plain(err, EEXIST, "--node %s: a live node of that name is already in the cluster", C.node);
  return etcd_put(&C.e, k, v, C.lease, cl_timeout(), err);
}

static int grant(bivy_error_t *err) {
  uint64_t sent = bivyd_now_ms();
  C.fence_at_ms = sent + C.call_ms + 10; /* only bounds the call */
  int r = etcd_lease_grant(&C.e, (int64_t)(C.ttl_ms / 1000), C.call_ms, &C.lease, err);
  if (r < 0) return r;
  renewed(sent);
  C.fenced = false;
  save_lease();
  for (struct cl_loc *l = C.locs; l; l = l->next) {
    free(l->status);
    l->status = NULL;
  }
  return cluster_register(err);
}

static int join(bivy_error_t *err);
static void try_join(uint64_t now);

void cluster_renew(uint64_t now) {
  if (!C.joined) {
    try_join(now);
    return;
  }
  _cleanup_error_ bivy_error_t err = NULL;
  int64_t ttl = 0;
  C.next_renew_ms = now + 200; /* retry soon unless renewed */
  if (C.lease_fresh) {
    uint64_t to = cl_timeout();
    if (to == 0) {
      cluster_fence("lease not renewed");
      return;
    }
    if (etcd_lease_keepalive(&C.e, C.lease, to, &ttl, &err) < 0) {
      C.renew_failures++;
      set_error(&err);
      if (D.debug) bivyd_debug("cluster: renew: %s", err->msg);
      return;
    }
    if (ttl > 0) {
      renewed(now);
      C.next_renew_ms = now + C.renew_ms;
      return;
    }
    cluster_fence("lease expired");
  }
  /* not fresh: fenced, or no lease. The call is bounded by call_ms (nothing runs to fence). */
  C.fence_at_ms = now + C.call_ms + 10;
  if (C.lease) {
    bivy_error_release(&err);
    if (etcd_lease_keepalive(&C.e, C.lease, C.call_ms, &ttl, &err) < 0) {
      set_error(&err);
      return;
    }
    if (ttl > 0) { /* etcd came back before the lease expired (e.g. an etcd restart) */
      renewed(now);
      C.next_renew_ms = now + C.renew_ms;
      C.fenced = false;
      bivyd_log("cluster: lease %llx still alive: back in service", (unsigned long long)C.lease);
      return;
    }
    C.lease = 0;
  }
  bivy_error_release(&err);
  if (grant(&err) < 0) {
    C.lease_fresh = false;
    set_error(&err);
    if (D.debug) bivyd_debug("cluster: join: %s", err->msg);
    return;
  }
  C.next_renew_ms = now + C.renew_ms;
  bivyd_log("cluster: joined as %s with lease %llx", C.node, (unsigned long long)C.lease);
}

/* The fence guard learns the inits as they are now (restarts change them), each with its
 * policy's deadline (keep ones are no target): a bivyd that dies or hangs is fenced for as
 * its policies say. */
void cluster_guard_update(void) {
  if (!C.joined) return;
  struct fence_target t[256];
  size_t n = 0;
  for (struct bivyd_inst *in = T.insts; in && n < sizeof t / sizeof t[0]; in = in->next) {
    if (in->removed || in->pidfd < 0) continue;
    uint64_t d = cl_deadline(in);
    /* relaxed: a third of the TTL after bivyd's own deadline, so that a live bivyd stops
     * (and reports) it first; nobody else may start it before its deadline + TTL */
    if (d != UINT64_MAX && cl_failover(in).kind == BIVY_CL_RELAXED) d += C.ttl_ms / 3;
    if (d != UINT64_MAX) t[n++] = (struct fence_target){in->pid, in->pid_start, d};
  }
  fence_guard_update(true, t, n);
}

/* ---- start and stop ---- */

/* a local record whose failover policy is keep: nobody else starts it, so it stays ours */
static bool local_keep(const char *dir, const char *file) {
  _cleanup_free_ char *p = NULL, *txt = NULL;
  size_t len = 0;
  _cleanup_error_ bivy_error_t err = NULL;
  if (asprintf(&p, "%s/%s", dir, file) < 0 || bivy_read_file_at(AT_FDCWD, p, &txt, &len, &err) < 0) return false;
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(txt, len, 0, &je);
  const char *f = json_string_value(json_object_get(json_object_get(j, "spec"), "failover"));
  return bivy_cl_failover_of(f).kind == BIVY_CL_KEEP;
}

/* the local instances of a previous bivyd whose lease expired: others own them now, except
 * keep instances (re-adopted, and claimed again by reconciliation) */
static void wipe_local(void) {
  _cleanup_free_ char *dir = NULL;
  if (asprintf(&dir, "%s/instances", D.state_dir) < 0) return;
  _cleanup_closedir_ DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n - 5), de->d_name);
    if (!bivy_id_valid(name) || local_keep(dir, de->d_name)) continue;
    char w[300];
    snprintf(w, sizeof w, "%s.w", name);
    /* our claim expired with our lease: another node may run it already */
    launch_delete_cid(name);
    launch_delete_cid(w);
    struct bivyd_inst tmp = {.name = name};
    inst_remove_files(&tmp);
    bivyd_log("cluster: %s: removed (our previous lease expired)", name);
  }
}

/* Until this succeeds nothing of the cluster runs here: the local records of a previous
 * bivyd stay untouched (its fence guard kills their inits at its deadline if nobody renews),
 * and no orphan is claimed. */
static int join(bivy_error_t *err) {
  int64_t old = saved_lease();
  uint64_t now = bivyd_now_ms();
  C.fence_at_ms = now + C.call_ms + 10;
  C.join_attempts++;
  int r;
  if (old) {
    int64_t ttl = 0;
    if ((r = etcd_lease_keepalive(&C.e, old, C.call_ms, &ttl, err)) < 0) return r;
    if (ttl > 0) {
      C.lease = old;
      renewed(now);
      if ((r = cluster_register(err)) < 0) {
        C.lease_fresh = false;
        return r;
      }
      if ((r = insts_load(err)) < 0) return r;
      bivyd_log("cluster: %s rejoined with its previous lease %llx", C.node, (unsigned long long)C.lease);
    }
  }
  if (C.lease == 0) {
    /* probe first: the local instances are removed only once etcd answers */
    _cleanup_json_ json_t *kvs = NULL;
    _cleanup_free_ char *k = cl_key("nodes", C.node);
    if ((r = etcd_range_prefix(&C.e, k ? k : CL_PREFIX, C.call_ms, &kvs, err)) < 0) return r;
    wipe_local();
    if ((r = grant(err)) < 0) {
      C.lease_fresh = false;
      return r;
    }
    if ((r = insts_load(err)) < 0) return r; /* what wipe_local kept: keep instances */
    bivyd_log("cluster: joined as %s with lease %llx (TTL %llu ms, fencing %llu ms after a renewal)", C.node,
              (unsigned long long)C.lease, (unsigned long long)C.ttl_ms, (unsigned long long)(C.ttl_ms - C.margin_ms));
  }
  C.joined = true;
  C.next_renew_ms = bivyd_now_ms() + C.renew_ms;
  C.next_poll_ms = 0;
  cluster_guard_update();
  fence_guard_retire_old();
  return 0;
}

static void try_join(uint64_t now) {
  _cleanup_error_ bivy_error_t err = NULL;
  if (join(&err) == 0) {
    bivyd_event("", "joined", json_pack("{s:s, s:I}", "node", C.node, "attempts", (json_int_t)C.join_attempts));
    return;
  }
  bool changed = C.last_error == NULL || strcmp(C.last_error, err->msg) != 0;
  set_error(&err);
  /* back-off: 250 ms doubling to 5 s, so a cluster that boots together joins quickly and a
   * long outage costs one attempt every 5 s */
  C.join_backoff_ms = C.join_backoff_ms ? (C.join_backoff_ms * 2 > 5000 ? 5000 : C.join_backoff_ms * 2) : 250;
  C.next_renew_ms = now + C.join_backoff_ms;
  if (changed) bivyd_log("cluster: joining: %s (retrying every %llu ms at most)", err->msg, 5000ull);
  else if (D.debug) bivyd_debug("cluster: joining: %s", err->msg);
}

/* no start once the instance's deadline passed: a bivyd that wakes up from SIGSTOP (or gets
 * its first event after a long stall) must not restart what another node may own by now */
static const char *start_gate(struct bivyd_inst *in) {
  return bivyd_now_ms() < cl_deadline(in) ? NULL : "the claim's deadline passed (lease not renewed in time)";
}

int cluster_start(bivy_error_t *err) {
  int r;
  sv_set_start_gate(start_gate);
  cluster_trust_log();
  if ((r = fence_guard_start(err)) < 0) return r;
  _cleanup_error_ bivy_error_t jerr = NULL;
  if ((r = join(&jerr)) == -EEXIST) {
    bivy_error_release(err);
    *err = steal_pointer(&jerr);
    return r;
  }
  if (r < 0) {
    set_error(&jerr);
    C.join_backoff_ms = 250;
    C.next_renew_ms = bivyd_now_ms() + C.join_backoff_ms;
    bivyd_log("cluster: joining: %s (bivyd serves its local view and joins when etcd answers)", jerr->msg);
    bivyd_event("", "joining", json_pack("{s:s}", "error", jerr->msg));
  }
  return 0;
}

/* a relaxed instance we stopped on a clean leave: drop "home" from its record (while we
 * still own it), so that nobody waits D for a copy that cannot be running any more */
static void strip_home(const char *name) {
  _cleanup_free_ char *ki = cl_key("inst", name), *ko = cl_key("owner", name);
  _cleanup_json_ json_t *kvs = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  if (ki == NULL || ko == NULL || etcd_range_prefix(&C.e, ki, C.call_ms, &kvs, &err) < 0) return;
  size_t i;
  json_t *kv;
  json_array_foreach(kvs, i, kv) {
    if (strcmp(json_string_value(json_object_get(kv, "key")) ?: "", ki) != 0) continue;
    json_error_t je;
    _cleanup_json_ json_t *rec = json_loads(json_string_value(json_object_get(kv, "value")) ?: "", 0, &je);
    const char *home = json_string_value(json_object_get(rec, "home"));
    if (home == NULL || strcmp(home, C.node) != 0) return;
    json_object_del(rec, "home");
    _cleanup_free_ char *t = json_dumps(rec, JSON_COMPACT);
    if (t == NULL) return;
    bool ok = false;
    json_t *cmp = json_pack("[o, o]", etcd_cmp_value(ko, C.node), etcd_cmp_mod(ki, json_integer_value(json_object_get(kv, "mod_revision"))));
    etcd_txn(&C.e, cmp, json_pack("[o]", etcd_op_put(ki, t, 0)), NULL, C.call_ms, &ok, &err);
    return;
  }
}

void cluster_shutdown(void) {
  if (!C.on) return;
  /* nobody fences for a stopped bivyd: hand everything over now instead of leaving
   * instances that others would start again once our lease expires */
  for (struct bivyd_inst *in = T.insts; in; in = in->next) {
    if (in->removed) continue;
    bool relaxed = cl_failover(in).kind == BIVY_CL_RELAXED;
    sv_detach(in);
    launch_cleanup(in);
    inst_remove_files(in);
    if (relaxed && C.joined && C.lease) strip_home(in->name);
  }
  fence_guard_update(false, NULL, 0);
  _cleanup_error_ bivy_error_t err = NULL;
  C.fence_at_ms = bivyd_now_ms() + C.call_ms + 10;
  if (C.lease && etcd_lease_revoke(&C.e, C.lease, C.call_ms, &err) == 0) {
    _cleanup_free_ char *p = NULL;
    if (asprintf(&p, "%s/cluster.json", D.state_dir) >= 0) unlink(p);
  }
  bivyd_log("cluster: left (instances stopped, ownership released)");
  while (C.locs) cl_loc_drop(C.locs->name);
  json_decref(C.pending);
  json_decref(C.orphans);
  free(C.last_error);
  etcd_close(&C.e);
  C.on = false;
}

void cluster_metrics(FILE *f) {
  static const char *const states[] = {"joining", "joined", "disconnected"};
  fprintf(f, "# HELP bivyd_cluster_state 1 for the node's cluster state.\n# TYPE bivyd_cluster_state gauge\n");
  for (size_t i = 0; i < 3; i++)
    fprintf(f, "bivyd_cluster_state{state=\"%s\"} %d\n", states[i], strcmp(cluster_state(), states[i]) == 0);
  fprintf(f, "# HELP bivyd_cluster_lease_renewals_total Successful lease renewals.\n"
             "# TYPE bivyd_cluster_lease_renewals_total counter\nbivyd_cluster_lease_renewals_total %llu\n",
          (unsigned long long)C.renewals);
  fprintf(f, "# HELP bivyd_cluster_lease_renew_failures_total Renewal calls that failed (no etcd member answered in time).\n"
             "# TYPE bivyd_cluster_lease_renew_failures_total counter\nbivyd_cluster_lease_renew_failures_total %llu\n",
          (unsigned long long)C.renew_failures);
  fprintf(f, "# HELP bivyd_cluster_lease_renew_gap_max_seconds Longest time between two successful renewals.\n"
             "# TYPE bivyd_cluster_lease_renew_gap_max_seconds gauge\nbivyd_cluster_lease_renew_gap_max_seconds %.3f\n",
          (double)C.renew_gap_max_ms / 1e3);
  fprintf(f, "# HELP bivyd_cluster_etcd_attempts_total etcd requests sent, one per endpoint tried.\n"
             "# TYPE bivyd_cluster_etcd_attempts_total counter\nbivyd_cluster_etcd_attempts_total %llu\n",
          (unsigned long long)C.e.calls);
  fprintf(f, "# TYPE bivyd_cluster_etcd_failed_attempts_total counter\nbivyd_cluster_etcd_failed_attempts_total %llu\n",
          (unsigned long long)C.e.failed_attempts);
  fprintf(f, "# HELP bivyd_cluster_etcd_failovers_total Moves to the next etcd endpoint within a call.\n"
             "# TYPE bivyd_cluster_etcd_failovers_total counter\nbivyd_cluster_etcd_failovers_total %llu\n",
          (unsigned long long)C.e.failovers);
  fprintf(f, "# HELP bivyd_cluster_etcd_auth_total etcd auth tokens obtained (--etcd-user; again after etcd dropped one).\n"
             "# TYPE bivyd_cluster_etcd_auth_total counter\nbivyd_cluster_etcd_auth_total %llu\n",
          (unsigned long long)C.e.auths);
  fprintf(f, "# HELP bivyd_cluster_etcd_endpoint The etcd endpoint in use.\n# TYPE bivyd_cluster_etcd_endpoint gauge\n"
             "bivyd_cluster_etcd_endpoint{url=\"%s\"} 1\n",
          etcd_url(&C.e));
}
