/* bivyd layer 5 (control API): the verbs in cluster mode: up, down, rm, resize and ls go through etcd (the owner applies
 * them; when the owner is this node the local handler runs too), plus migrate, drain and
 * undrain. inspect, logs and restart of an instance on another node say where it runs. */
#include "tools/bivyd/cluster-verbs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "runtime/util.h"
#include "tools/bivyd/clients.h"
#include "tools/bivyd/cluster-sync.h"
#include "tools/bivyd/cluster-view.h"
#include "tools/bivyd/cluster.h"
#include "tools/bivyd/etcd.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/live-resize.h"
#include "tools/bivyd/policy/placement-policy.h"

#define reply bivyd_client_ok

/* the record of name, or an error answered */
static json_t *need_rec(struct bivyd_client *c, struct cl_view *v, const char *verb, const char *name, int64_t *rev) {
  json_t *e = json_object_get(v->insts, name);
  if (e == NULL) {
    bivyd_client_send_error(c, "%s: no instance named \"%s\"", verb, name);
    return NULL;
  }
  *rev = (int64_t)json_integer_value(json_object_get(e, "rev"));
  return json_object_get(e, "rec");
}

/* write a record if it did not change since rev (0 = must not exist) */
static int put_rec(const char *name, json_t *rec, int64_t rev, bivy_error_t *err) {
  _cleanup_free_ char *k = cl_key("inst", name);
  _cleanup_free_ char *txt = json_dumps(rec, JSON_COMPACT);
  if (k == NULL || txt == NULL) return bivy_error(err, ENOMEM, "record");
  bool ok = false;
  json_t *cmp = json_pack("[o]", rev ? etcd_cmp_mod(k, rev) : etcd_cmp_absent(k));
  json_t *succ = json_pack("[o]", etcd_op_put(k, txt, 0));
  int r = etcd_txn(&C.e, cmp, succ, NULL, cl_timeout(), &ok, err);
  if (r < 0) return r;
  if (!ok) return bivy_error_plain(err, EAGAIN, "the instance changed at the same time: try again");
  return 0;
}

static bool mine(struct cl_view *v, const char *name) {
  const char *o = cl_owner(v, name);
  return o && strcmp(o, C.node) == 0;
}

static char *node_list(struct cl_view *v) {
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&s, &len);
  if (f == NULL) return NULL;
  const char *name;
  json_t *x;
  bool first = true;
  json_object_foreach(v->nodes, name, x) {
    fprintf(f, "%s%s", first ? "" : ", ", name);
    first = false;
  }
  if (first) fputs("none", f);
  fclose(f);
  return s;
}

/* what this node runs: its own summary, fresher than the status it published, with what
 * only the record knows (home, move_to) */
static json_t *local_summary(struct bivyd_inst *in, json_t *rec) {
  json_t *s = inst_summary(in);
  if (s == NULL) return NULL;
  json_object_set_new(s, "node", json_string(C.node));
  if (!json_object_get(s, "failover")) json_object_set_new(s, "failover", json_string("fenced"));
  const char *keys[] = {"home", "move_to"};
  for (size_t i = 0; i < 2; i++) {
    json_t *x = json_object_get(rec, keys[i]);
    if (json_is_string(x)) json_object_set(s, keys[i], x);
  }
  return s;
}

/* the instance as ls shows it, after this node had a chance to act */
static json_t *fresh_summary(const char *name) {
  struct bivyd_inst *in = inst_find(name);
  if (in) return local_summary(in, NULL);
  struct cl_view v;
  _cleanup_error_ bivy_error_t err = NULL;
  if (cl_view_load(&v, &err) < 0) return json_pack("{s:s, s:s}", "name", name, "state", "unknown");
  json_t *s = cl_summary(&v, name);
  cl_view_free(&v);
  return s ? s : json_pack("{s:s, s:s}", "name", name, "state", "unknown");
}

static uint64_t timeout_of(json_t *req) {
  json_t *t = json_object_get(req, "timeout_ms");
  return json_is_integer(t) && json_integer_value(t) >= 0 ? (uint64_t)json_integer_value(t) : 10000;
}

bool cl_verb_up(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  const char *name = json_string_value(json_object_get(req, "name"));
  if (name == NULL || !bivy_id_valid(name) || strlen(name) > 128) {
    bivyd_client_send_error(c, "up: name: must be 1-128 characters of [A-Za-z0-9_.+-]");
    return true;
  }
  _cleanup_error_ bivy_error_t err = NULL;
  json_t *spec = json_object_get(req, "spec");
  json_t *e = json_object_get(v->insts, name);
  json_t *old = json_object_get(e, "rec");
  int64_t rev = e ? (int64_t)json_integer_value(json_object_get(e, "rev")) : 0;
  _cleanup_json_ json_t *copy = spec ? json_deep_copy(spec) : NULL;
  if (copy && bivy_sv_spec_check(copy, &err) < 0) {
    bivyd_client_send_error(c, "up %s: %s", name, err->msg);
    return true;
  }
  if (old == NULL && copy == NULL) {
    bivyd_client_send_error(c, "up %s: no such instance: give --bundle or --rootfs -- CMD", name);
    return true;
  }
  json_t *st = json_object_get(v->status, name);
  const char *state = json_string_value(json_object_get(st, "state"));
  if (old && strcmp(json_string_value(json_object_get(old, "desired")) ?: "", "running") == 0 && cl_owner(v, name) && state &&
      (strcmp(state, "running") == 0 || strcmp(state, "starting") == 0 || strcmp(state, "stopping") == 0)) {
    bivyd_client_send_error(c, "up %s: the instance is already %s on node %s", name, state, cl_owner(v, name));
    return true;
  }
  _cleanup_json_ json_t *rec = json_pack("{s:O, s:s, s:I}", "spec", copy ? copy : json_object_get(old, "spec"),
                                         "desired", "running", "gen",
                                         (json_int_t)json_integer_value(json_object_get(old, "gen")) + 1);
  json_t *home = json_object_get(old, "home"); /* a keep instance stays where it lives */
  if (rec && home) json_object_set(rec, "home", home);
  if (put_rec(name, rec, rev, &err) < 0) {
    bivyd_client_send_error(c, "up %s: %s", name, err->msg);
    return true;
  }
  cluster_reconcile_now();
  json_t *s = fresh_summary(name);
  if (strcmp(json_string_value(json_object_get(s, "state")) ?: "", "pending") == 0) {
    /* where placement sends it (that node claims it at its next poll), or pending */
    json_t *lim = json_object_get(json_object_get(rec, "spec"), "limits");
    json_int_t m = json_integer_value(json_object_get(lim, "memory"));
    size_t n;
    struct bivy_cl_node *nd = cl_nodes(v, &n);
    int idx = nd ? bivy_cl_place(nd, n, json_number_value(json_object_get(lim, "cpus")), m > 0 ? (uint64_t)m : 0, NULL) : -1;
    if (idx >= 0) {
      json_object_set_new(s, "state", json_string("scheduled"));
      json_object_set_new(s, "node", json_string(nd[idx].name));
    }
    free(nd);
  }
  reply(c, json_pack("{s:o}", "instance", s));
  return true;
}

/* down and rm: false = the local handler answers (the instance is here) */
bool cl_verb_down(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  const char *name = json_string_value(json_object_get(req, "name"));
  int64_t rev;
  json_t *old = name ? need_rec(c, v, "down", name, &rev) : NULL;
  if (name == NULL) bivyd_client_send_error(c, "down: \"name\" is required (a string)");
  if (old == NULL) return true;
  _cleanup_json_ json_t *rec = json_deep_copy(old);
  json_int_t gen = json_integer_value(json_object_get(old, "gen")) + 1;
  json_object_set_new(rec, "desired", json_string("stopped"));
  json_object_set_new(rec, "gen", json_integer(gen));
  json_object_set_new(rec, "timeout_ms", json_integer((json_int_t)timeout_of(req)));
  _cleanup_error_ bivy_error_t err = NULL;
  if (put_rec(name, rec, rev, &err) < 0) {
    bivyd_client_send_error(c, "down %s: %s", name, err->msg);
    return true;
  }
  struct cl_loc *l = cl_loc_get(name, false);
  if (mine(v, name) && inst_find(name) && l) {
    l->gen = (int64_t)gen;
    return false;
  }
  json_t *s = cl_summary(v, name);
  if (s && strcmp(json_string_value(json_object_get(s, "state")) ?: "", "running") == 0)
    json_object_set_new(s, "state", json_string("stopping"));
  reply(c, json_pack("{s:o}", "instance", s));
  return true;
}

bool cl_verb_rm(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  const char *name = json_string_value(json_object_get(req, "name"));
  int64_t rev;
  json_t *old = name ? need_rec(c, v, "rm", name, &rev) : NULL;
  if (name == NULL) bivyd_client_send_error(c, "rm: \"name\" is required (a string)");
  if (old == NULL) return true;
  _cleanup_json_ json_t *s = cl_summary(v, name);
  const char *state = json_string_value(json_object_get(s, "state")) ?: "";
  if (strcmp(json_string_value(json_object_get(old, "desired")) ?: "", "stopped") != 0 || strcmp(state, "running") == 0 ||
      strcmp(state, "stopping") == 0 || strcmp(state, "starting") == 0) {
    bivyd_client_send_error(c, "rm %s: the instance is %s (bivy down it first)", name, state);
    return true;
  }
  _cleanup_free_ char *ki = cl_key("inst", name), *ko = cl_key("owner", name), *ks = cl_key("status", name);
  _cleanup_error_ bivy_error_t err = NULL;
  bool ok = false;
  json_t *cmp = json_pack("[o]", etcd_cmp_mod(ki, rev));
  json_t *succ = json_pack("[o, o, o]", etcd_op_del(ki), etcd_op_del(ko), etcd_op_del(ks));
  if (etcd_txn(&C.e, cmp, succ, NULL, cl_timeout(), &ok, &err) < 0 || !ok) {
    bivyd_client_send_error(c, "rm %s: %s", name, err ? err->msg : "the instance changed at the same time: try again");
    return true;
  }
  cl_loc_drop(name);
  if (inst_find(name)) return false;
  reply(c, NULL);
  return true;
}

bool cl_verb_resize(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  const char *name = json_string_value(json_object_get(req, "name"));
  int64_t rev;
  json_t *old = name ? need_rec(c, v, "resize", name, &rev) : NULL;
  if (name == NULL) bivyd_client_send_error(c, "resize: \"name\" is required (a string)");
  if (old == NULL) return true;
  json_t *upd = json_object_get(req, "limits");
  if (!json_is_object(upd) || json_object_size(upd) == 0) {
    bivyd_client_send_error(c, "resize %s: \"limits\" must be a non-empty object", name);
    return true;
  }
  _cleanup_json_ json_t *rec = json_deep_copy(old), *res = NULL;
  json_t *spec = json_object_get(rec, "spec");
  json_t *limits = json_object_get(spec, "limits");
  if (!json_is_object(limits)) {
    limits = json_object();
    json_object_set_new(spec, "limits", limits);
  }
  bivy_sv_limits_merge(limits, upd);
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_sv_spec_check(spec, &err) < 0 || bivy_sv_limits_to_resources(upd, &res, &err) < 0) {
    bivyd_client_send_error(c, "resize %s: %s", name, err->msg);
    return true;
  }
  bool live = false;
  struct bivyd_inst *in = mine(v, name) ? inst_find(name) : NULL;
  /* the owner applies it first (all or nothing), the record follows */
  if (in && inst_resize(in, upd, &live, &err) < 0) {
    bivyd_client_send_error(c, "resize %s: %s", name, err->msg);
    return true;
  }
  if (put_rec(name, rec, rev, &err) < 0) {
    bivyd_client_send_error(c, "resize %s: %s", name, err->msg);
    return true;
  }
  if (in) bivyd_event(in->name, "resize", json_pack("{s:O, s:b}", "limits", limits, "live", live));
  json_t *out = json_pack("{s:o, s:b, s:s}", "instance", fresh_summary(name), "live", live, "node", cl_owner(v, name) ?: "");
  /* what is in force, read back (the owner is this node) */
  _cleanup_cgroup_ struct bivy_cgroup *cg = live ? inst_cgroup(in) : NULL;
  json_t *now = NULL;
  _cleanup_error_ bivy_error_t e2 = NULL;
  if (cg && bivy_cgroup_limits(cg, &now, &e2) == 0) json_object_set_new(out, "limits_now", now);
  reply(c, out);
  return true;
}

bool cl_verb_ls(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  (void)req;
  json_t *arr = json_array(), *nodes = json_array();
  const char *name;
  json_t *x;
  json_object_foreach(v->insts, name, x) {
    struct bivyd_inst *in = inst_find(name);
    json_array_append_new(arr, in && !in->removed ? local_summary(in, json_object_get(x, "rec")) : cl_summary(v, name));
  }
  /* running here, not in the view (joining: no view read yet) */
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
    if (!in->removed && !json_object_get(v->insts, in->name)) json_array_append_new(arr, local_summary(in, NULL));
  if (v->stale) {
    size_t i;
    json_array_foreach(arr, i, x) json_object_set_new(x, "stale_ms", json_integer((json_int_t)v->stale_ms));
  }
  size_t n;
  struct bivy_cl_node *nd = cl_nodes(v, &n);
  for (size_t i = 0; nd && i < n; i++)
    json_array_append_new(nodes, json_pack("{s:s, s:f, s:I, s:f, s:I, s:i, s:b}", "name", nd[i].name, "cpus", nd[i].cpus,
                                           "memory", (json_int_t)nd[i].mem, "used_cpus", nd[i].used_cpus, "used_memory",
                                           (json_int_t)nd[i].used_mem, "instances", (int)nd[i].count, "drained",
                                           nd[i].drained));
  free(nd);
  json_t *cl = cluster_state_json();
  if (cl && v->stale) json_object_set_new(cl, "stale_ms", json_integer((json_int_t)v->stale_ms));
  reply(c, json_pack("{s:o, s:o, s:o*}", "instances", arr, "nodes", nodes, "cluster", cl));
  return true;
}

bool cl_verb_migrate(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  const char *name = json_string_value(json_object_get(req, "name"));
  const char *to = json_string_value(json_object_get(req, "to"));
  int64_t rev;
  if (name == NULL || to == NULL) {
    bivyd_client_send_error(c, "migrate: \"name\" and \"to\" are required (strings)");
    return true;
  }
  json_t *old = need_rec(c, v, "migrate", name, &rev);
  if (old == NULL) return true;
  if (!json_object_get(v->nodes, to)) {
    _cleanup_free_ char *l = node_list(v);
    bivyd_client_send_error(c, "migrate %s: --to: unknown node \"%s\" (live nodes: %s)", name, to, l ? l : "?");
    return true;
  }
  if (json_object_get(v->drain, to)) {
    bivyd_client_send_error(c, "migrate %s: --to: node %s is drained (bivy undrain %s)", name, to, to);
    return true;
  }
  const char *from = cl_owner(v, name);
  if (from && strcmp(from, to) == 0) {
    bivyd_client_send_error(c, "migrate %s: already on node %s", name, to);
    return true;
  }
  const char *home = json_string_value(json_object_get(old, "home"));
  if (from == NULL && home &&
      bivy_cl_failover_of(json_string_value(json_object_get(json_object_get(old, "spec"), "failover"))).kind == BIVY_CL_KEEP) {
    /* nobody could stop the copy that may still run there: starting one on TO could make two */
    bivyd_client_send_error(c, "migrate %s: a keep instance whose node %s is unreachable may still run there; migrate it once %s is back", name, home, home);
    return true;
  }
  json_t *lim = json_object_get(json_object_get(old, "spec"), "limits");
  json_int_t m = json_integer_value(json_object_get(lim, "memory"));
  size_t n;
  struct bivy_cl_node *nd = cl_nodes(v, &n);
  int idx = nd ? bivy_cl_place(nd, n, json_number_value(json_object_get(lim, "cpus")), m > 0 ? (uint64_t)m : 0, to) : -1;
  free(nd);
  if (idx < 0) {
    bivyd_client_send_error(c, "migrate %s: --to: the instance's limits do not fit in node %s's free capacity", name, to);
    return true;
  }
  _cleanup_json_ json_t *rec = json_deep_copy(old);
  json_object_set_new(rec, "move_to", json_string(to));
  json_object_set_new(rec, "timeout_ms", json_integer((json_int_t)timeout_of(req)));
  _cleanup_error_ bivy_error_t err = NULL;
  if (put_rec(name, rec, rev, &err) < 0) {
    bivyd_client_send_error(c, "migrate %s: %s", name, err->msg);
    return true;
  }
  cluster_reconcile_now();
  reply(c, json_pack("{s:s, s:s, s:s}", "name", name, "from", from ? from : "", "to", to));
  return true;
}

static bool drain_verb(struct bivyd_client *c, json_t *req, struct cl_view *v, bool drain) {
  const char *verb = drain ? "drain" : "undrain";
  const char *node = json_string_value(json_object_get(req, "node"));
  if (node == NULL) {
    bivyd_client_send_error(c, "%s: \"node\" is required (a string)", verb);
    return true;
  }
  bool live = json_object_get(v->nodes, node) != NULL, drained = json_object_get(v->drain, node) != NULL;
  if (!live && !drained) {
    _cleanup_free_ char *l = node_list(v);
    bivyd_client_send_error(c, "%s: unknown node \"%s\" (live nodes: %s)", verb, node, l ? l : "?");
    return true;
  }
  _cleanup_free_ char *k = cl_key("drain", node);
  _cleanup_error_ bivy_error_t err = NULL;
  char grace[32];
  snprintf(grace, sizeof grace, "%llu", (unsigned long long)timeout_of(req));
  int r = drain ? etcd_put(&C.e, k, grace, 0, cl_timeout(), &err) : etcd_delete(&C.e, k, cl_timeout(), &err);
  if (r < 0) {
    bivyd_client_send_error(c, "%s %s: %s", verb, node, err->msg);
    return true;
  }
  json_t *moving = json_array();
  const char *name;
  json_t *o;
  json_object_foreach(v->owner, name, o) if (strcmp(json_string_value(o), node) == 0) json_array_append_new(moving, json_string(name));
  if (drain) cluster_reconcile_now();
  reply(c, json_pack("{s:s, s:b, s:o}", "node", node, "drained", drain, "instances", moving));
  return true;
}

bool cl_verb_drain(struct bivyd_client *c, json_t *req, struct cl_view *v) { return drain_verb(c, req, v, true); }
bool cl_verb_undrain(struct bivyd_client *c, json_t *req, struct cl_view *v) { return drain_verb(c, req, v, false); }

/* inspect, logs, restart of an instance that is not here: say where it runs */
bool cl_verb_elsewhere(struct bivyd_client *c, json_t *req, struct cl_view *v) {
  const char *verb = json_string_value(json_object_get(req, "verb"));
  const char *name = json_string_value(json_object_get(req, "name"));
  const char *o = name ? cl_owner(v, name) : NULL;
  if (o == NULL) return false;
  if (v->stale)
    bivyd_client_send_error(c, "%s %s: the instance ran on node %s %.1f s ago (etcd unreachable since): ask that node's bivyd",
                            verb, name, o, (double)v->stale_ms / 1e3);
  else bivyd_client_send_error(c, "%s %s: the instance runs on node %s: ask that node's bivyd", verb, name, o);
  return true;
}
