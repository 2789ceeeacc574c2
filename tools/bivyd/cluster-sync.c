/* bivyd layer 4 (cluster): reconciliation, every 250 ms and after each request. The owner
 * applies the records of its instances (up/down generation, limits, moves) and publishes
 * their status. Orphans (a record that should run and has no owner) are placed by a
 * deterministic function every node computes alike (bivy_cl_place); the chosen node claims
 * the orphan with a txn that succeeds only while owner/NAME is absent, so exactly one node
 * gets it, then starts it. Also the loop timer that drives renewals (cluster.c). */
#include "tools/bivyd/cluster-sync.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/cluster-view.h"
#include "tools/bivyd/cluster.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/etcd.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/launch.h"
#include "tools/bivyd/live-resize.h"
#include "tools/bivyd/loop.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivyd/policy/placement-policy.h"
#include "tools/bivyd/supervise.h"

static struct loop_timer t_tick;

/* in the table, even if dropped during this pass (freed at the end of the loop iteration) */
static bool local_seen(const char *name) {
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
    if (strcmp(in->name, name) == 0) return true;
  return false;
}

static bool pass_ok; /* false once a call of this pass failed: the rest waits for the next */


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
  launch_cleanup(in); /* kills whatever is left in its cgroup, removes it */
  inst_remove_files(in);
  in->removed = true;
  cl_loc_drop(in->name);
  bivyd_event(in->name, "dropped", json_pack("{s:s, s:b}", "reason", why, "was_running", was_running));
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
      bivyd_event(in->name, "unfenced", NULL);
      sv_start_fresh(in);
    }
  }
  if (rec_gen(rec) != l->gen) {
    l->gen = rec_gen(rec);
    if (rec_running(rec) && stopped) sv_start_fresh(in);
    else if (!rec_running(rec) && inst_running_like(in)) sv_stop(in, rec_timeout(rec));
  }
  if (rev != l->rev) {
    l->rev = rev;
    json_t *want = json_object_get(json_object_get(rec, "spec"), "limits");
    json_t *have = json_object_get(in->spec, "limits");
    if (json_is_object(want) && json_object_size(want) && !json_equal(want, have)) {
      _cleanup_error_ bivy_error_t err = NULL;
      _cleanup_json_ json_t *next = json_deep_copy(in->spec);
      const char *rule = NULL;
      bool live = false;
      if (next) json_object_set(next, "limits", want);
      /* the node's ceilings hold for a resize as for a claim */
      if (next && cluster_admit(in->name, next, &rule, &err) < 0)
        bivyd_event(in->name, "resize-refused", json_pack("{s:s, s:s, s:s}", "node", C.node, "rule", rule ?: "spec", "detail", err ? err->msg : "?"));
      else if (inst_resize(in, want, &live, &err) < 0)
        bivyd_event(in->name, "resize-failed", json_pack("{s:s}", "error", err->msg));
      else bivyd_event(in->name, "resize", json_pack("{s:O, s:b}", "limits", want, "live", live));
    }
  }
}

/* hand an instance over (migrate, drain): stop it, then give up ownership */
static bool release(struct bivyd_inst *in, struct cl_loc *l, json_t *rec, json_t *drain) {
  const char *to = json_string_value(json_object_get(rec, "move_to"));
  if (inst_running_like(in) && in->state != S_BACKOFF) {
    if (!l->releasing) {
      l->releasing = true;
      _cleanup_error_ bivy_error_t err = NULL;
      json_t *info = NULL;
      if (cluster_hooks.checkpoint && cluster_hooks.checkpoint(in, to, &info, &err) == 0) {
        json_decref(l->move_info); /* goes into the record with the release */
        l->move_info = info;
      } else {
        if (cluster_hooks.checkpoint) bivyd_event(in->name, "checkpoint-failed", json_pack("{s:s}", "error", err ? err->msg : "?"));
        sv_stop(in, drain ? (uint64_t)json_integer_value(drain) : rec_timeout(rec));
      }
      bivyd_event(in->name, "moving", json_pack("{s:s}", "to", to ? to : "(placement)"));
    }
    return false;
  }
  _cleanup_free_ char *ko = cl_key("owner", in->name), *ks = cl_key("status", in->name);
  if (ko == NULL || ks == NULL) return false;
  bool ok = false;
  _cleanup_error_ bivy_error_t err = NULL;
  /* delete our claim only while it is ours; the instance is stopped, so an adopter may start it */
  json_t *cmp = json_pack("[o]", etcd_cmp_value(ko, C.node)), *succ = json_pack("[o, o]", etcd_op_del(ko), etcd_op_del(ks));
  if (l->move_info || json_object_get(rec, "home")) {
    /* what the target's restore hook needs; a keep instance's new home is its claimer */
    _cleanup_json_ json_t *r2 = json_deep_copy(rec);
    json_object_del(r2, "home");
    if (l->move_info) json_object_set(r2, "move_info", l->move_info);
    _cleanup_free_ char *t = json_dumps(r2, JSON_COMPACT);
    _cleanup_free_ char *ki = cl_key("inst", in->name);
    if (t && ki) json_array_append_new(succ, etcd_op_put(ki, t, 0));
  }
  if (!call_ok(etcd_txn(&C.e, cmp, succ, NULL, cl_timeout(), &ok, &err), &err, "release")) return false;
  drop_local(in, "released");
  return true;
}

/* A keep or relaxed instance that ran on through a disconnect long enough for our lease (and
 * the owner key on it) to expire: ours again if nobody took it meanwhile, which the policies
 * guarantee (keep: nobody else claims it; relaxed: nobody before D after the expiry, and we
 * stopped it at D after our last renewal). */
static bool reclaim(struct bivyd_inst *in, json_t *rec) {
  struct bivy_cl_failover f = cl_failover(in);
  if (f.kind == BIVY_CL_FENCED || !pass_ok) return false;
  if (f.kind == BIVY_CL_RELAXED && !inst_running_like(in)) return false;
  const char *home = json_string_value(json_object_get(rec, "home"));
  if (f.kind == BIVY_CL_KEEP && home && strcmp(home, C.node) != 0) return false;
  _cleanup_free_ char *ko = cl_key("owner", in->name);
  if (ko == NULL) return false;
  bool ok = false;
  _cleanup_error_ bivy_error_t err = NULL;
  json_t *cmp = json_pack("[o]", etcd_cmp_absent(ko)), *succ = json_pack("[o]", etcd_op_put(ko, C.node, C.lease));
  if (!call_ok(etcd_txn(&C.e, cmp, succ, NULL, cl_timeout(), &ok, &err), &err, "reclaim") || !ok) return false;
  bivyd_event(in->name, "reclaimed", json_pack("{s:s, s:s}", "node", C.node, "reason", "kept running through a disconnect"));
  return true;
}

static struct bivyd_inst *adopt_start(const char *name, json_t *rec, int64_t rev, const char *how) {
  _cleanup_json_ json_t *spec = json_deep_copy(json_object_get(rec, "spec"));
  _cleanup_error_ bivy_error_t err = NULL;
  if (spec == NULL || bivy_sv_spec_check(spec, &err) < 0) {
    bivyd_event(name, "claim-failed", json_pack("{s:s}", "error", err ? err->msg : "no spec"));
    return NULL;
  }
  struct bivyd_inst *in = inst_new(name, spec);
  struct cl_loc *l = in ? cl_loc_get(name, true) : NULL;
  if (l == NULL) return NULL;
  l->gen = rec_gen(rec);
  l->rev = rev;
  l->fenced = l->releasing = false;
  in->state = S_STOPPED;
  bivyd_event(in->name, how, json_pack("{s:s}", "node", C.node));
  json_t *info = json_object_get(rec, "move_info");
  if (rec_running(rec) && info && cluster_hooks.restore) {
    if (cluster_hooks.restore(in, info, &err) == 0) return in;
    bivyd_event(in->name, "restore-failed", json_pack("{s:s}", "error", err ? err->msg : "?")); /* cold start instead */
  }
  if (rec_running(rec)) sv_start_or_backoff(in);
  else inst_save(in);
  return in;
}

/* drop "home" from an orphan's record, while it is still the record read and unowned */
static void unhome(const char *name, json_t *rec, int64_t rev) {
  _cleanup_free_ char *ko = cl_key("owner", name), *ki = cl_key("inst", name);
  _cleanup_json_ json_t *r2 = json_deep_copy(rec);
  if (ko == NULL || ki == NULL || r2 == NULL) return;
  json_object_del(r2, "home");
  _cleanup_free_ char *t = json_dumps(r2, JSON_COMPACT);
  if (t == NULL) return;
  bool ok = false;
  _cleanup_error_ bivy_error_t err = NULL;
  json_t *cmp = json_pack("[o, o]", etcd_cmp_absent(ko), etcd_cmp_mod(ki, rev));
  if (call_ok(etcd_txn(&C.e, cmp, json_pack("[o]", etcd_op_put(ki, t, 0)), NULL, cl_timeout(), &ok, &err), &err, "unhome") && ok)
    bivyd_event(name, "unhomed", json_pack("{s:s, s:s}", "node", C.node, "reason", "its home node is drained"));
}

/* Admission: does this node's policy (--cluster-policy) let it run rec (at revision rev)?
 * A refusal is published as refused/NAME/NODE on our lease, so that every node's placement
 * skips us for this revision (and the refusal vanishes with us). Answers are remembered per
 * revision: the config is built once, not at every poll. */
static json_t *admitted; /* name -> rev admitted */

/* refused/NAME/NODE: this node's refusal of NAME */
static char *refusal_key(const char *name) {
  char *k = NULL;
  return asprintf(&k, "%srefused/%s/%s", CL_PREFIX, name, C.node) < 0 ? NULL : k;
}

static bool admits(struct cl_view *v, const char *name, json_t *rec, int64_t rev) {
  if (cl_refusal(v, name, C.node, rev)) return false;
  if (admitted == NULL) admitted = json_object();
  if (json_integer_value(json_object_get(admitted, name)) == rev) return true;
  const char *rule = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  if (cluster_admit(name, json_object_get(rec, "spec"), &rule, &err) == 0) {
    json_object_set_new(admitted, name, json_integer((json_int_t)rev));
    return true;
  }
  if (rule == NULL) rule = "spec";
  const char *detail = err ? err->msg : "?";
  _cleanup_free_ char *key = refusal_key(name), *txt = NULL;
  _cleanup_json_ json_t *val = json_pack("{s:I, s:s, s:s}", "rev", (json_int_t)rev, "rule", rule, "detail", detail);
  if (key == NULL || (txt = json_dumps(val, JSON_COMPACT)) == NULL) return false;
  _cleanup_error_ bivy_error_t perr = NULL;
  if (!call_ok(etcd_put(&C.e, key, txt, C.lease, cl_timeout(), &perr), &perr, "refuse")) return false;
  bivyd_log("cluster: %s: refused by this node's policy: %s: %s", name, rule, detail);
  bivyd_event(name, "refused", json_pack("{s:s, s:s, s:s}", "node", C.node, "rule", rule, "detail", detail));
  return false;
}

/* our refusals of records that are gone or have changed since (a new `up` is checked again) */
static void drop_stale_refusals(struct cl_view *v) {
  const char *name;
  json_t *per;
  json_object_foreach(v->refused, name, per) {
    json_t *e = json_object_get(v->insts, name);
    if (!json_object_get(per, C.node) ||
        (e && cl_refusal(v, name, C.node, (int64_t)json_integer_value(json_object_get(e, "rev")))))
      continue;
    _cleanup_free_ char *key = refusal_key(name);
    _cleanup_error_ bivy_error_t err = NULL;
    if (key == NULL || !call_ok(etcd_delete(&C.e, key, cl_timeout(), &err), &err, "refusal")) return;
  }
  if (admitted == NULL) return;
  void *tmp;
  json_t *rv;
  json_object_foreach_safe(admitted, tmp, name, rv) if (!json_object_get(v->insts, name)) json_object_del(admitted, name);
}

static void place_orphans(struct cl_view *v) {
  drop_stale_refusals(v);
  if (!pass_ok) return;
  size_t n;
  struct bivy_cl_node *nodes = cl_nodes(v, &n);
  if (nodes == NULL) return;
  const char *name;
  json_t *e;
  json_object_foreach(v->insts, name, e) {
    if (!pass_ok) break;
    json_t *rec = json_object_get(e, "rec");
    if (cl_owner(v, name) || !rec_running(rec)) {
      json_object_del(C.pending, name);
      json_object_del(C.orphans, name);
      continue;
    }
    struct bivy_cl_failover fo =
        bivy_cl_failover_of(json_string_value(json_object_get(json_object_get(rec, "spec"), "failover")));
    const char *home = json_string_value(json_object_get(rec, "home"));
    bool at_home = fo.kind == BIVY_CL_KEEP && home && !json_object_get(rec, "move_to");
    if (at_home && strcmp(home, C.node) != 0) continue; /* only its home starts it again */
    if (at_home && json_object_get(v->drain, C.node)) {
      /* its home is this node, drained, and it runs nowhere (the local pass above re-owned or
       * dropped every local instance): only we may give it up, so that another node claims it
       * and becomes its home */
      struct bivyd_inst *here = inst_find(name);
      if (here == NULL || here->removed) unhome(name, rec, (int64_t)json_integer_value(json_object_get(e, "rev")));
      continue;
    }
    if (fo.kind == BIVY_CL_RELAXED && home) {
      /* it had an owner (home), who may run it until D after its last renewal: wait D from
       * the first time this node saw it without owner, which is after that lease expired */
      uint64_t now = bivyd_now_ms();
      json_t *seen = json_object_get(C.orphans, name);
      if (seen == NULL) json_object_set_new(C.orphans, name, seen = json_integer((json_int_t)now));
      if (now - (uint64_t)json_integer_value(seen) < fo.relaxed_ms) continue;
    }
    json_t *lim = json_object_get(json_object_get(rec, "spec"), "limits");
    json_int_t m = json_integer_value(json_object_get(lim, "memory"));
    double cpus = json_number_value(json_object_get(lim, "cpus"));
    const char *to = json_string_value(json_object_get(rec, "move_to"));
    if (to && (!json_object_get(v->nodes, to) || json_object_get(v->drain, to))) to = NULL;
    int64_t rev = (int64_t)json_integer_value(json_object_get(e, "rev"));
    /* nodes whose policy refuses this revision of the record are skipped by everyone */
    size_t refusing = 0;
    for (size_t k = 0; k < n; k++) {
      nodes[k].refuses = strcmp(nodes[k].name, C.node) == 0 ? !admits(v, name, rec, rev)
                                                            : cl_refusal(v, name, nodes[k].name, rev) != NULL;
      refusing += nodes[k].refuses;
    }
    if (!pass_ok) break;
    int idx = bivy_cl_place(nodes, n, cpus, m > 0 ? (uint64_t)m : 0, at_home ? home : to);
    if (idx < 0) {
      if (!json_object_get(C.pending, name)) {
        json_object_set_new(C.pending, name, json_true());
        bivyd_event(name, "pending", json_pack("{s:s, s:O}", "reason",
                                               refusing == n ? "refused by every node's policy" : "fits on no node",
                                               "limits", lim ? lim : json_null()));
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
    json_t *cmp = json_pack("[o, o]", etcd_cmp_absent(ko), etcd_cmp_mod(ki, rev));
    json_t *succ = json_pack("[o]", etcd_op_put(ko, C.node, C.lease));
    bool moved = json_object_get(rec, "move_to") != NULL || json_object_get(rec, "move_info") != NULL;
    /* keep and relaxed instances record their owner (home): a keep one lives there, a relaxed
     * one that loses it is waited for (above) */
    bool new_home = fo.kind != BIVY_CL_FENCED && (home == NULL || strcmp(home, C.node) != 0);
    json_object_del(C.orphans, name);
    if (moved || new_home) {
      _cleanup_json_ json_t *r2 = json_deep_copy(rec);
      json_object_del(r2, "move_to");
      json_object_del(r2, "move_info"); /* consumed by this claim's restore */
      if (fo.kind != BIVY_CL_FENCED) json_object_set_new(r2, "home", json_string(C.node));
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
    call_ok(cluster_register(&err), &err, "register");
  }
  json_t *drained = json_object_get(v.drain, C.node);
  for (struct bivyd_inst *in = T.insts; in && pass_ok; in = in->next) {
    if (in->removed) continue;
    json_t *e = json_object_get(v.insts, in->name);
    json_t *rec = json_object_get(e, "rec");
    const char *own = cl_owner(&v, in->name);
    if (rec == NULL) {
      if (own && strcmp(own, C.node) == 0) {
        _cleanup_free_ char *ko = cl_key("owner", in->name), *ks = cl_key("status", in->name);
        bivy_error_release(&err);
        if (ko && ks) etcd_delete(&C.e, ko, cl_timeout(), &err), etcd_delete(&C.e, ks, cl_timeout(), &err);
      }
      drop_local(in, "removed from the cluster");
      continue;
    }
    if (own == NULL && reclaim(in, rec)) own = C.node;
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
  cluster_fence_due(bivyd_now_ms());
}

static void tick(struct loop_timer *t, uint64_t now_ns) {
  (void)t;
  if (!C.on) return;
  uint64_t now = now_ns / 1000000;
  cluster_fence_due(now);
  if (now >= C.next_renew_ms) {
    cluster_renew(now);
    now = bivyd_now_ms();
    cluster_fence_due(now);
  }
  if (now >= C.next_poll_ms) {
    C.next_poll_ms = now + C.poll_ms;
    cluster_reconcile_now();
  }
}

static uint64_t next_due(void) {
  if (!C.on) return 0;
  uint64_t d = C.next_renew_ms < C.next_poll_ms ? C.next_renew_ms : C.next_poll_ms;
  if (C.lease_fresh && C.fence_at_ms < d) d = C.fence_at_ms;
  for (struct bivyd_inst *in = T.insts; in; in = in->next) /* relaxed deadlines, to the ms */
    if (!in->removed && inst_running_like(in) && in->state != S_STOPPING && cl_failover(in).kind == BIVY_CL_RELAXED && cl_deadline(in) < d)
      d = cl_deadline(in);
  return d ? d * 1000000ull : 1; /* 0 would disarm the timer: now */
}

/* after every loop iteration: a deadline passed while callbacks ran fences now; the guard
 * learns the inits as they are now; the timer follows the next renewal, poll or deadline */
static void after_iteration(void) {
  if (!C.on) return;
  cluster_fence_due(bivyd_now_ms());
  cluster_guard_update();
  loop_timer_set(&t_tick, next_due());
}

void cluster_sync_init(void) {
  t_tick.fn = tick;
  loop_idle_add(after_iteration);
  loop_timer_set(&t_tick, next_due());
}
