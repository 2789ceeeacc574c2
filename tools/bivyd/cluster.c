/* bivyd cluster mode. etcd (v3, through its JSON gateway) holds, under /bivy/:
 *   nodes/NODE    {"name","cpus","memory"}, attached to NODE's lease (TTL --lease-ttl, 3 s):
 *                 the live members
 *   drain/NODE    present while NODE is drained (no lease: survives restarts)
 *   inst/NAME     the desired instance {"spec", "desired": "running"|"stopped", "gen",
 *                 "timeout_ms", "move_to"?}, no lease: the cluster's durable truth
 *   owner/NAME    the node that owns NAME, attached to that node's lease: it vanishes when
 *                 the owner's lease expires, which is what makes NAME an orphan
 *   status/NAME   the owner's summary of NAME (what ls shows), attached to its lease
 * Each node renews its lease every TTL/3 and polls the whole prefix every 250 ms (one range
 * call; no watch stream to re-establish after an etcd restart). The owner applies the
 * records of its instances (up/down generation, limits, moves). Orphans (a record that
 * should run and has no owner) are placed by a deterministic function every node computes
 * alike (bivy_cl_place); the chosen node claims the orphan with a txn that succeeds only
 * while owner/NAME is absent, so exactly one node gets it, then starts it.
 *
 * Never twice: a node whose renewals fail stops (SIGKILL) its instances at
 * fence_at = send time of the last successful renewal + TTL - margin. etcd restarted the
 * lease's TTL when it received that renewal, after we sent it, so the lease (and with it
 * owner/NAME) cannot expire before send + TTL; others claim NAME only once owner/NAME is
 * gone. Each etcd call's timeout ends before fence_at, so a hung call never delays fencing. */
#include "tools/bivyd/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/cluster.h"
#include "runtime/supervise.h"
#include "runtime/util.h"
#include "tools/bivyd/bivyd.h"

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

int cluster_config(const char *urls, const char *node, const char *cpus, const char *mem, const char *ttl,
                   bivy_error_t *err) {
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
  if (ttl && (bivy_sv_duration_parse(ttl, &C.ttl_ms) < 0 || C.ttl_ms < 1000 || C.ttl_ms % 1000))
    return bivy_error(err, 0, "--lease-ttl: invalid duration \"%s\" (whole seconds, at least 1s)", ttl);
  /* renew three times per TTL; stop our instances a third of the TTL (at least 1 s when the
   * TTL allows) before the lease could expire */
  C.renew_ms = C.ttl_ms / 3;
  C.margin_ms = C.ttl_ms / 3 > 1000 ? C.ttl_ms / 3 : (C.ttl_ms >= 2000 ? 1000 : C.ttl_ms / 2);
  int r = etcd_open(&C.e, urls, err);
  if (r < 0) return r;
  C.pending = json_object();
  C.on = true;
  return 0;
}

/* ---- the view ---- */

void cl_view_free(struct cl_view *v) {
  json_decref(v->nodes);
  json_decref(v->drain);
  json_decref(v->insts);
  json_decref(v->owner);
  json_decref(v->status);
  *v = (struct cl_view){0};
}

int cl_view_load(struct cl_view *v, bivy_error_t *err) {
  *v = (struct cl_view){json_object(), json_object(), json_object(), json_object(), json_object()};
  _cleanup_json_ json_t *kvs = NULL;
  int r = etcd_range_prefix(&C.e, CL_PREFIX, cl_timeout(), &kvs, err);
  if (r < 0) {
    cl_view_free(v);
    return r;
  }
  size_t i;
  json_t *kv;
  size_t pl = strlen(CL_PREFIX);
  json_array_foreach(kvs, i, kv) {
    const char *k = json_string_value(json_object_get(kv, "key")) + pl;
    const char *val = json_string_value(json_object_get(kv, "value"));
    const char *slash = strchr(k, '/');
    if (slash == NULL) continue;
    const char *name = slash + 1;
    size_t kl = (size_t)(slash - k);
    json_error_t je;
    if (kl == 5 && strncmp(k, "nodes", 5) == 0) {
      json_t *j = json_loads(val, 0, &je);
      if (json_is_object(j)) json_object_set_new(v->nodes, name, j);
      else json_decref(j);
    } else if (kl == 5 && strncmp(k, "drain", 5) == 0) {
      json_object_set_new(v->drain, name, json_integer(strtoll(val, NULL, 10))); /* stop grace, ms */
    } else if (kl == 4 && strncmp(k, "inst", 4) == 0) {
      json_t *j = json_loads(val, 0, &je);
      if (json_is_object(j))
        json_object_set_new(v->insts, name, json_pack("{s:o, s:O}", "rec", j, "rev", json_object_get(kv, "mod_revision")));
      else json_decref(j);
    } else if (kl == 5 && strncmp(k, "owner", 5) == 0) {
      json_object_set_new(v->owner, name, json_string(val));
    } else if (kl == 6 && strncmp(k, "status", 6) == 0) {
      json_t *j = json_loads(val, 0, &je);
      if (json_is_object(j)) json_object_set_new(v->status, name, j);
      else json_decref(j);
    }
  }
  return 0;
}

static const char *owner_of(struct cl_view *v, const char *name) {
  return json_string_value(json_object_get(v->owner, name));
}

json_t *cl_summary(struct cl_view *v, const char *name) {
  json_t *rec = json_object_get(json_object_get(v->insts, name), "rec");
  const char *own = owner_of(v, name);
  json_t *st = json_object_get(v->status, name);
  const char *desired = json_string_value(json_object_get(rec, "desired"));
  json_t *j;
  if (own && st && strcmp(json_string_value(json_object_get(st, "node")) ?: "", own) == 0) {
    j = json_deep_copy(st);
  } else {
    const char *state = desired && strcmp(desired, "stopped") == 0 ? "stopped" : own ? "starting" : "pending";
    json_t *spec = json_object_get(rec, "spec");
    json_t *lim = json_object_get(spec, "limits");
    j = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:O, s:s}", "name", name, "state", state, "pid", 0, "restarts", 0,
                  "last_exit", "", "health", "", "address", "", "limits", lim ? lim : json_null(), "restart",
                  json_string_value(json_object_get(spec, "restart")) ?: "no");
  }
  if (j == NULL) return NULL;
  json_object_set_new(j, "node", json_string(own ? own : ""));
  json_object_set_new(j, "desired", json_string(desired ? desired : "running"));
  const char *mv = json_string_value(json_object_get(rec, "move_to"));
  if (mv) json_object_set_new(j, "move_to", json_string(mv));
  return j;
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

static void renewed(uint64_t sent_ms) {
  C.last_ok_send_ms = sent_ms;
  C.fence_at_ms = bivy_cl_fence_at(sent_ms, C.ttl_ms, C.margin_ms);
  C.lease_fresh = true;
}

static bool running_like(struct bivyd_inst *in) {
  return in->state == S_RUNNING || in->state == S_STARTING || in->state == S_BACKOFF || in->state == S_STOPPING;
}

/* Our lease may expire from now on: nothing of ours may run any more. */
static void fence(const char *why) {
  C.lease_fresh = false;
  if (C.fenced) return;
  C.fenced = true;
  unsigned n = 0;
  for (struct bivyd_inst *in = D.insts; in; in = in->next) {
    if (in->removed) continue;
    struct cl_loc *l = cl_loc_get(in->name, true);
    if (l && running_like(in)) l->fenced = true;
    if (!running_like(in)) continue;
    if (in->state == S_RUNNING || in->state == S_STOPPING) n++;
    /* SIGKILL to the whole cgroup now: the lease (and our claim on these instances) may
     * expire within the margin, after which another node starts them */
    bool was_stopping = in->state == S_STOPPING;
    sv_stop(in, 0);
    if (was_stopping) sv_kill(in, SIGKILL);
  }
  bivyd_log("cluster: fencing (%s): stopped %u instances before our lease can expire", why, n);
  bivyd_event(NULL, "fenced", json_pack("{s:s, s:i}", "reason", why, "instances", (int)n));
}

static int register_node(bivy_error_t *err) {
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
  return register_node(err);
}

static void renew(uint64_t now) {
  _cleanup_error_ bivy_error_t err = NULL;
  int64_t ttl = 0;
  C.next_renew_ms = now + 200; /* retry soon unless renewed */
  if (C.lease_fresh) {
    uint64_t to = cl_timeout();
    if (to == 0) {
      fence("lease not renewed");
      return;
    }
    if (etcd_lease_keepalive(&C.e, C.lease, to, &ttl, &err) < 0) {
      if (D.debug) bivyd_debug("cluster: renew: %s", err->msg);
      return;
    }
    if (ttl > 0) {
      renewed(now);
      C.next_renew_ms = now + C.renew_ms;
      return;
    }
    fence("lease expired");
  }
  /* not fresh: fenced, or no lease. The call is bounded by call_ms (nothing runs to fence). */
  C.fence_at_ms = now + C.call_ms + 10;
  if (C.lease) {
    bivy_error_release(&err);
    if (etcd_lease_keepalive(&C.e, C.lease, C.call_ms, &ttl, &err) < 0) return;
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
    if (D.debug) bivyd_debug("cluster: join: %s", err->msg);
    return;
  }
  C.next_renew_ms = now + C.renew_ms;
  bivyd_log("cluster: joined as %s with lease %llx", C.node, (unsigned long long)C.lease);
}

void cluster_tick(uint64_t now_ns) {
  if (!C.on) return;
  uint64_t now = now_ns / 1000000;
  if (C.lease_fresh && now >= C.fence_at_ms) fence("lease not renewed");
  if (now >= C.next_renew_ms) {
    renew(now);
    now = bivyd_now_ms();
    if (C.lease_fresh && now >= C.fence_at_ms) fence("lease not renewed");
  }
  if (now >= C.next_poll_ms) {
    C.next_poll_ms = now + C.poll_ms;
    cluster_reconcile_now();
  }
  /* the new deadline, and the inits as they are now (restarts change them) */
  if (C.lease_fresh) fence_guard_update(C.fence_at_ms);
}

uint64_t cluster_next_due(void) {
  if (!C.on) return 0;
  uint64_t d = C.next_renew_ms < C.next_poll_ms ? C.next_renew_ms : C.next_poll_ms;
  if (C.lease_fresh && C.fence_at_ms < d) d = C.fence_at_ms;
  return d * 1000000ull;
}

/* ---- reconciliation ---- */

/* in the table, even if dropped during this pass (freed at the end of the loop iteration) */
static bool local_seen(const char *name) {
  for (struct bivyd_inst *in = D.insts; in; in = in->next)
    if (strcmp(in->name, name) == 0) return true;
  return false;
}

static bool pass_ok; /* false once a call of this pass failed: the rest waits for the next */

static void cl_event(const char *name, const char *type, json_t *extra) {
  struct bivyd_inst tmp = {.name = (char *)name};
  bivyd_event(&tmp, type, extra);
}

static bool call_ok(int r, bivy_error_t *err, const char *what) {
  if (r >= 0) return true;
  pass_ok = false;
  if (D.debug) bivyd_debug("cluster: %s: %s", what, *err ? (*err)->msg : "failed");
  return false;
}

static void publish(struct bivyd_inst *in, struct cl_loc *l) {
  if (!pass_ok) return;
  _cleanup_json_ json_t *s = inst_summary(in);
  if (s == NULL) return;
  json_object_set_new(s, "node", json_string(C.node));
  char *txt = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
  if (txt == NULL) return;
  if (l->status && strcmp(l->status, txt) == 0) {
    free(txt);
    return;
  }
  _cleanup_free_ char *k = cl_key("status", in->name);
  _cleanup_error_ bivy_error_t err = NULL;
  if (k && call_ok(etcd_put(&C.e, k, txt, C.lease, cl_timeout(), &err), &err, "publish status")) {
    free(l->status);
    l->status = txt;
  } else {
    free(txt);
  }
}

/* forget a local instance that is not (or no longer) ours: nothing of it may run here */
static void drop_local(struct bivyd_inst *in, const char *why) {
  bool was_running = in->state == S_RUNNING || in->state == S_STOPPING;
  sv_detach(in);
  sv_cleanup_container(in); /* kills whatever is left in its cgroup, removes it */
  inst_remove_files(in);
  in->removed = true;
  cl_loc_drop(in->name);
  bivyd_event(in, "dropped", json_pack("{s:s, s:b}", "reason", why, "was_running", was_running));
}

static void start_again(struct bivyd_inst *in) {
  in->user_stopped = false;
  in->due_restart = 0;
  in->failure_restarts = 0;
  in->quick_failures = 0;
  in->backoff_next_ms = 0;
  sv_start_or_backoff(in);
}

static int64_t rec_gen(json_t *rec) { return (int64_t)json_integer_value(json_object_get(rec, "gen")); }
static bool rec_running(json_t *rec) {
  return strcmp(json_string_value(json_object_get(rec, "desired")) ?: "running", "running") == 0;
}
static uint64_t rec_timeout(json_t *rec) {
  json_t *t = json_object_get(rec, "timeout_ms");
  return json_is_integer(t) && json_integer_value(t) >= 0 ? (uint64_t)json_integer_value(t) : 10000;
}

static void apply(struct bivyd_inst *in, struct cl_loc *l, json_t *rec, int64_t rev) {
  bool stopped = in->state == S_STOPPED || in->state == S_EXITED;
  if (l->fenced && stopped) {
    l->fenced = false;
    if (rec_running(rec)) {
      bivyd_event(in, "unfenced", NULL);
      start_again(in);
    }
  }
  if (rec_gen(rec) != l->gen) {
    l->gen = rec_gen(rec);
    if (rec_running(rec) && stopped) start_again(in);
    else if (!rec_running(rec) && running_like(in)) sv_stop(in, rec_timeout(rec));
  }
  if (rev != l->rev) {
    l->rev = rev;
    json_t *want = json_object_get(json_object_get(rec, "spec"), "limits");
    json_t *have = json_object_get(in->spec, "limits");
    if (json_is_object(want) && json_object_size(want) && !json_equal(want, have)) {
      _cleanup_error_ bivy_error_t err = NULL;
      bool live = false;
      if (inst_resize(in, want, &live, &err) < 0)
        bivyd_event(in, "resize-failed", json_pack("{s:s}", "error", err->msg));
      else bivyd_event(in, "resize", json_pack("{s:O, s:b}", "limits", want, "live", live));
    }
  }
}

/* hand an instance over (migrate, drain): stop it, then give up ownership */
static bool release(struct bivyd_inst *in, struct cl_loc *l, json_t *rec, json_t *drain) {
  const char *to = json_string_value(json_object_get(rec, "move_to"));
  if (running_like(in) && in->state != S_BACKOFF) {
    if (!l->releasing) {
      l->releasing = true;
      _cleanup_error_ bivy_error_t err = NULL;
      json_t *info = NULL;
      if (cluster_hooks.checkpoint && cluster_hooks.checkpoint(in, to, &info, &err) == 0) {
        json_decref(l->move_info); /* goes into the record with the release */
        l->move_info = info;
      } else {
        if (cluster_hooks.checkpoint) bivyd_event(in, "checkpoint-failed", json_pack("{s:s}", "error", err ? err->msg : "?"));
        sv_stop(in, drain ? (uint64_t)json_integer_value(drain) : rec_timeout(rec));
      }
      bivyd_event(in, "moving", json_pack("{s:s}", "to", to ? to : "(placement)"));
    }
    return false;
  }
  _cleanup_free_ char *ko = cl_key("owner", in->name), *ks = cl_key("status", in->name);
  if (ko == NULL || ks == NULL) return false;
  bool ok = false;
  _cleanup_error_ bivy_error_t err = NULL;
  /* delete our claim only while it is ours; the instance is stopped, so an adopter may start it */
  json_t *cmp = json_pack("[o]", etcd_cmp_value(ko, C.node)), *succ = json_pack("[o, o]", etcd_op_del(ko), etcd_op_del(ks));
  if (l->move_info) { /* what the target's restore hook needs */
    _cleanup_json_ json_t *r2 = json_deep_copy(rec);
    json_object_set(r2, "move_info", l->move_info);
    _cleanup_free_ char *t = json_dumps(r2, JSON_COMPACT);
    _cleanup_free_ char *ki = cl_key("inst", in->name);
    if (t && ki) json_array_append_new(succ, etcd_op_put(ki, t, 0));
  }
  if (!call_ok(etcd_txn(&C.e, cmp, succ, NULL, cl_timeout(), &ok, &err), &err, "release")) return false;
  drop_local(in, "released");
  return true;
}

static struct bivyd_inst *adopt_start(const char *name, json_t *rec, int64_t rev, const char *how) {
  _cleanup_json_ json_t *spec = json_deep_copy(json_object_get(rec, "spec"));
  _cleanup_error_ bivy_error_t err = NULL;
  if (spec == NULL || bivy_sv_spec_check(spec, &err) < 0) {
    cl_event(name, "claim-failed", json_pack("{s:s}", "error", err ? err->msg : "no spec"));
    return NULL;
  }
  struct bivyd_inst *in = inst_new(name, spec);
  struct cl_loc *l = in ? cl_loc_get(name, true) : NULL;
  if (l == NULL) return NULL;
  l->gen = rec_gen(rec);
  l->rev = rev;
  l->fenced = l->releasing = false;
  in->state = S_STOPPED;
  bivyd_event(in, how, json_pack("{s:s}", "node", C.node));
  json_t *info = json_object_get(rec, "move_info");
  if (rec_running(rec) && info && cluster_hooks.restore) {
    if (cluster_hooks.restore(in, info, &err) == 0) return in;
    bivyd_event(in, "restore-failed", json_pack("{s:s}", "error", err ? err->msg : "?")); /* cold start instead */
  }
  if (rec_running(rec)) sv_start_or_backoff(in);
  else inst_save(in);
  return in;
}

struct bivy_cl_node *cl_nodes(struct cl_view *v, size_t *np) {
  size_t n = json_object_size(v->nodes), k = 0;
  struct bivy_cl_node *nodes = calloc(n + 1, sizeof *nodes);
  *np = n;
  if (nodes == NULL) return NULL;
  const char *name;
  json_t *val;
  json_object_foreach(v->nodes, name, val) {
    nodes[k++] = (struct bivy_cl_node){.name = name,
                                       .cpus = json_number_value(json_object_get(val, "cpus")),
                                       .mem = (uint64_t)json_integer_value(json_object_get(val, "memory")),
                                       .drained = json_object_get(v->drain, name) != NULL};
  }
  /* what every node's instances use */
  json_object_foreach(v->owner, name, val) {
    json_t *lim = json_object_get(json_object_get(json_object_get(json_object_get(v->insts, name), "rec"), "spec"), "limits");
    for (size_t i = 0; i < n; i++)
      if (strcmp(nodes[i].name, json_string_value(val)) == 0) {
        json_int_t m = json_integer_value(json_object_get(lim, "memory"));
        nodes[i].used_mem += m > 0 ? (uint64_t)m : 0;
        nodes[i].used_cpus += json_number_value(json_object_get(lim, "cpus"));
        nodes[i].count++;
      }
  }
  return nodes;
}

static void place_orphans(struct cl_view *v) {
  size_t n;
  struct bivy_cl_node *nodes = cl_nodes(v, &n);
  if (nodes == NULL) return;
  const char *name;
  json_t *e;
  json_object_foreach(v->insts, name, e) {
    if (!pass_ok) break;
    json_t *rec = json_object_get(e, "rec");
    if (owner_of(v, name) || !rec_running(rec)) {
      json_object_del(C.pending, name);
      continue;
    }
    json_t *lim = json_object_get(json_object_get(rec, "spec"), "limits");
    json_int_t m = json_integer_value(json_object_get(lim, "memory"));
    double cpus = json_number_value(json_object_get(lim, "cpus"));
    const char *to = json_string_value(json_object_get(rec, "move_to"));
    if (to && (!json_object_get(v->nodes, to) || json_object_get(v->drain, to))) to = NULL;
    int idx = bivy_cl_place(nodes, n, cpus, m > 0 ? (uint64_t)m : 0, to);
    if (idx < 0) {
      if (!json_object_get(C.pending, name)) {
        json_object_set_new(C.pending, name, json_true());
        cl_event(name, "pending", json_pack("{s:s, s:O}", "reason", "fits on no node", "limits", lim ? lim : json_null()));
      }
      continue;
    }
    json_object_del(C.pending, name);
    nodes[idx].used_mem += m > 0 ? (uint64_t)m : 0;
    nodes[idx].used_cpus += cpus;
    nodes[idx].count++;
    if (strcmp(nodes[idx].name, C.node) != 0) continue;
    /* claim: exactly one node wins, and only while the record is the one placed */
    _cleanup_free_ char *ko = cl_key("owner", name), *ki = cl_key("inst", name);
    if (ko == NULL || ki == NULL) break;
    int64_t rev = (int64_t)json_integer_value(json_object_get(e, "rev"));
    json_t *cmp = json_pack("[o, o]", etcd_cmp_absent(ko), etcd_cmp_mod(ki, rev));
    json_t *succ = json_pack("[o]", etcd_op_put(ko, C.node, C.lease));
    bool moved = json_object_get(rec, "move_to") != NULL || json_object_get(rec, "move_info") != NULL;
    if (moved) {
      _cleanup_json_ json_t *r2 = json_deep_copy(rec);
      json_object_del(r2, "move_to");
      json_object_del(r2, "move_info"); /* consumed by this claim's restore */
      _cleanup_free_ char *t = json_dumps(r2, JSON_COMPACT);
      if (t) json_array_append_new(succ, etcd_op_put(ki, t, 0));
    }
    bool ok = false;
    _cleanup_error_ bivy_error_t err = NULL;
    if (!call_ok(etcd_txn(&C.e, cmp, succ, NULL, cl_timeout(), &ok, &err), &err, "claim") || !ok) continue;
    struct bivyd_inst *in = adopt_start(name, rec, rev, moved ? "moved-in" : "claimed");
    struct cl_loc *l = in ? cl_loc_get(name, false) : NULL;
    if (l) publish(in, l);
  }
  free(nodes);
}

void cluster_reconcile_now(void) {
  if (!C.on || !C.lease_fresh || cl_timeout() == 0) return;
  struct cl_view v;
  _cleanup_error_ bivy_error_t err = NULL;
  if (cl_view_load(&v, &err) < 0) {
    if (D.debug) bivyd_debug("cluster: poll: %s", err->msg);
    return;
  }
  pass_ok = true;
  if (!json_object_get(v.nodes, C.node)) {
    bivy_error_release(&err);
    call_ok(register_node(&err), &err, "register");
  }
  json_t *drained = json_object_get(v.drain, C.node);
  for (struct bivyd_inst *in = D.insts; in && pass_ok; in = in->next) {
    if (in->removed) continue;
    json_t *e = json_object_get(v.insts, in->name);
    json_t *rec = json_object_get(e, "rec");
    const char *own = owner_of(&v, in->name);
    if (rec == NULL) {
      if (own && strcmp(own, C.node) == 0) {
        _cleanup_free_ char *ko = cl_key("owner", in->name), *ks = cl_key("status", in->name);
        bivy_error_release(&err);
        if (ko && ks) etcd_delete(&C.e, ko, cl_timeout(), &err), etcd_delete(&C.e, ks, cl_timeout(), &err);
      }
      drop_local(in, "removed from the cluster");
      continue;
    }
    if (own == NULL || strcmp(own, C.node) != 0) {
      drop_local(in, own ? "owned by another node" : "not owned");
      continue;
    }
    struct cl_loc *l = cl_loc_get(in->name, true);
    if (l == NULL) continue;
    const char *to = json_string_value(json_object_get(rec, "move_to"));
    if (drained || (to && strcmp(to, C.node) != 0)) {
      /* released: the rest of this pass must not see it as ours any more */
      if (release(in, l, rec, drained)) json_object_del(v.owner, in->name);
      continue;
    }
    l->releasing = false;
    apply(in, l, rec, (int64_t)json_integer_value(json_object_get(e, "rev")));
    publish(in, l);
  }
  /* ours in etcd, not here (a bivyd restart that lost its files): start it */
  const char *name;
  json_t *own;
  json_object_foreach(v.owner, name, own) {
    if (!pass_ok) break;
    json_t *e = json_object_get(v.insts, name);
    if (strcmp(json_string_value(own), C.node) != 0 || e == NULL || local_seen(name)) continue;
    struct bivyd_inst *in = adopt_start(name, json_object_get(e, "rec"), (int64_t)json_integer_value(json_object_get(e, "rev")), "reclaimed");
    struct cl_loc *l = in ? cl_loc_get(name, false) : NULL;
    if (l) publish(in, l);
  }
  if (pass_ok) place_orphans(&v);
  cl_view_free(&v);
  if (C.lease_fresh && bivyd_now_ms() >= C.fence_at_ms) fence("lease not renewed");
}

/* ---- start and stop ---- */

/* the local instances of a previous bivyd whose lease expired: others own them now */
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
    if (!bivy_id_valid(name)) continue;
    char w[300];
    snprintf(w, sizeof w, "%s.w", name);
    /* our claim expired with our lease: another node may run it already */
    sv_delete_cid(name);
    sv_delete_cid(w);
    struct bivyd_inst tmp = {.name = name};
    inst_remove_files(&tmp);
    bivyd_log("cluster: %s: removed (our previous lease expired)", name);
  }
}

int cluster_start(bivy_error_t *err) {
  int64_t old = saved_lease();
  uint64_t now = bivyd_now_ms();
  C.fence_at_ms = now + C.call_ms + 10;
  int r;
  if (old) {
    int64_t ttl = 0;
    if ((r = etcd_lease_keepalive(&C.e, old, C.call_ms, &ttl, err)) < 0) return bivy_error_wrap(err, "--cluster");
    if (ttl > 0) {
      C.lease = old;
      renewed(now);
      if ((r = register_node(err)) < 0) return bivy_error_wrap(err, "--cluster");
      if ((r = insts_load(err)) < 0) return r;
      bivyd_log("cluster: %s rejoined with its previous lease %llx", C.node, (unsigned long long)C.lease);
    }
  }
  if (C.lease == 0) {
    wipe_local();
    if ((r = grant(err)) < 0) return bivy_error_wrap(err, "--cluster");
    bivyd_log("cluster: joined as %s with lease %llx (TTL %llu ms, fencing %llu ms after a renewal)", C.node,
              (unsigned long long)C.lease, (unsigned long long)C.ttl_ms, (unsigned long long)(C.ttl_ms - C.margin_ms));
  }
  if ((r = fence_guard_start(err)) < 0) return r;
  fence_guard_update(C.fence_at_ms);
  C.next_renew_ms = bivyd_now_ms() + C.renew_ms;
  C.next_poll_ms = 0;
  return 0;
}

void cluster_shutdown(void) {
  if (!C.on) return;
  /* nobody fences for a stopped bivyd: hand everything over now instead of leaving
   * instances that others would start again once our lease expires */
  for (struct bivyd_inst *in = D.insts; in; in = in->next) {
    if (in->removed) continue;
    sv_detach(in);
    sv_cleanup_container(in);
    inst_remove_files(in);
  }
  fence_guard_update(0);
  _cleanup_error_ bivy_error_t err = NULL;
  C.fence_at_ms = bivyd_now_ms() + C.call_ms + 10;
  if (C.lease && etcd_lease_revoke(&C.e, C.lease, C.call_ms, &err) == 0) {
    _cleanup_free_ char *p = NULL;
    if (asprintf(&p, "%s/cluster.json", D.state_dir) >= 0) unlink(p);
  }
  bivyd_log("cluster: left (instances stopped, ownership released)");
  while (C.locs) cl_loc_drop(C.locs->name);
  json_decref(C.pending);
  etcd_close(&C.e);
  C.on = false;
}
