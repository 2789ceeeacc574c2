/* bivyd layer 4 (cluster): the cluster view: one range read over /bivy/, split by kind,
 * and what ls shows of an instance from it. */
#include "tools/bivyd/cluster-view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/cluster.h"
#include "tools/bivyd/etcd.h"

void cl_view_free(struct cl_view *v) {
  json_decref(v->nodes);
  json_decref(v->drain);
  json_decref(v->insts);
  json_decref(v->owner);
  json_decref(v->status);
  json_decref(v->refused);
  *v = (struct cl_view){0};
}

static json_t *last_kvs; /* the last range read, never modified (views are split from it) */
static uint64_t last_ms;

static void split(struct cl_view *v, json_t *kvs);

int cl_view_load(struct cl_view *v, bivy_error_t *err) {
  _cleanup_json_ json_t *kvs = NULL;
  int r = etcd_range_prefix(&C.e, CL_PREFIX, cl_timeout(), &kvs, err);
  if (r < 0) {
    *v = (struct cl_view){0};
    return r;
  }
  split(v, kvs);
  json_decref(last_kvs);
  last_kvs = json_incref(kvs);
  last_ms = bivyd_now_ms();
  return 0;
}

int cl_view_last(struct cl_view *v) {
  _cleanup_json_ json_t *none = json_array();
  split(v, last_kvs ? last_kvs : none);
  v->stale = last_kvs != NULL;
  v->stale_ms = last_kvs ? bivyd_now_ms() - last_ms : 0;
  return last_kvs ? 0 : -ENOENT;
}

static void split(struct cl_view *v, json_t *kvs) {
  *v = (struct cl_view){.nodes = json_object(), .drain = json_object(), .insts = json_object(), .owner = json_object(), .status = json_object(), .refused = json_object()};
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
    } else if (kl == 7 && strncmp(k, "refused", 7) == 0) {
      /* refused/NAME/NODE */
      const char *sl = strrchr(name, '/');
      json_t *j = sl ? json_loads(val, 0, &je) : NULL;
      if (json_is_object(j)) {
        _cleanup_free_ char *iname = strndup(name, (size_t)(sl - name));
        json_t *per = iname ? json_object_get(v->refused, iname) : NULL;
        if (iname && per == NULL) json_object_set_new(v->refused, iname, per = json_object());
        if (per) json_object_set(per, sl + 1, j);
      }
      json_decref(j);
    } else if (kl == 6 && strncmp(k, "status", 6) == 0) {
      json_t *j = json_loads(val, 0, &je);
      if (json_is_object(j)) json_object_set_new(v->status, name, j);
      else json_decref(j);
    }
  }
}

const char *cl_owner(struct cl_view *v, const char *name) {
  return json_string_value(json_object_get(v->owner, name));
}

json_t *cl_refusal(struct cl_view *v, const char *name, const char *node, int64_t rev) {
  json_t *r = json_object_get(json_object_get(v->refused, name), node);
  return r && json_integer_value(json_object_get(r, "rev")) == rev ? r : NULL;
}

json_t *cl_summary(struct cl_view *v, const char *name) {
  json_t *rec = json_object_get(json_object_get(v->insts, name), "rec");
  const char *own = cl_owner(v, name);
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
  json_t *fo = json_object_get(json_object_get(rec, "spec"), "failover");
  json_object_set_new(j, "failover", json_string(fo ? json_string_value(fo) : "fenced"));
  const char *home = json_string_value(json_object_get(rec, "home"));
  if (home) json_object_set_new(j, "home", json_string(home));
  const char *mv = json_string_value(json_object_get(rec, "move_to"));
  if (mv) json_object_set_new(j, "move_to", json_string(mv));
  /* not running: say which nodes' policies refuse it, and why */
  json_t *refs = json_object_get(v->refused, name);
  if (own == NULL && refs && json_object_size(refs)) {
    int64_t rev = (int64_t)json_integer_value(json_object_get(json_object_get(v->insts, name), "rev"));
    json_t *out = json_object();
    const char *nd;
    json_t *r;
    json_object_foreach(refs, nd, r) if (cl_refusal(v, name, nd, rev))
      json_object_set_new(out, nd, json_pack("{s:O, s:O}", "rule", json_object_get(r, "rule"), "detail", json_object_get(r, "detail")));
    if (json_object_size(out)) json_object_set_new(j, "refused_by", out);
    else json_decref(out);
  }
  return j;
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

