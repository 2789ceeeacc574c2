/* bivyd layer 5 (control API): the local verbs (single node, or an instance on this node).
 * Every request is {"verb": "...", ...}; every answer {"ok": true, ...}
 * or {"ok": false, "error": "..."}. down and restart answer once the instance stopped. */
#include "tools/bivyd/verbs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/autoscaler.h"
#include "tools/bivyd/budget.h"
#include "tools/bivyd/clients.h"
#include "tools/bivyd/cluster.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/health.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/launch.h"
#include "tools/bivyd/live-resize.h"
#include "tools/bivyd/logfile.h"
#include "tools/bivyd/policy/scaling-policy.h"
#include "tools/bivyd/supervise.h"

#ifndef BIVY_VERSION
#define BIVY_VERSION "0.1.0"
#endif

#define ok bivyd_client_ok

static struct bivyd_inst *need_inst(struct bivyd_client *c, json_t *req, const char *verb) {
  const char *name = json_string_value(json_object_get(req, "name"));
  if (name == NULL) {
    bivyd_client_send_error(c, "%s: \"name\" is required (a string)", verb);
    return NULL;
  }
  struct bivyd_inst *in = inst_find(name);
  if (in == NULL) bivyd_client_send_error(c, "%s: no instance named \"%s\"", verb, name);
  return in;
}

static void add_waiter(struct bivyd_inst *in, struct bivyd_client *c) {
  if (in->n_waiters < (int)(sizeof in->waiters / sizeof in->waiters[0])) in->waiters[in->n_waiters++] = c->id;
  else ok(c, json_pack("{s:o}", "instance", inst_summary(in)));
}

void verb_up(struct bivyd_client *c, json_t *req) {
  const char *name = json_string_value(json_object_get(req, "name"));
  if (name == NULL || !bivy_id_valid(name) || strlen(name) > 128) {
    bivyd_client_send_error(c, "up: name: must be 1-128 characters of [A-Za-z0-9_.+-]");
    return;
  }
  json_t *spec = json_object_get(req, "spec");
  struct bivyd_inst *in = inst_find(name);
  _cleanup_error_ bivy_error_t err = NULL;
  if (spec) {
    _cleanup_json_ json_t *copy = json_deep_copy(spec);
    if (bivy_sv_spec_check(copy, &err) < 0) {
      bivyd_client_send_error(c, "up %s: %s", name, err->msg);
      return;
    }
    /* what bivyd would create, checked now so that a bad spec fails here */
    _cleanup_json_ json_t *cfg = NULL;
    if (bivy_sv_make_config(copy, name, D.cgroup_parent, &cfg, &err) < 0) {
      bivyd_client_send_error(c, "up %s: %s", name, err->msg);
      return;
    }
    if (in && (in->state == S_RUNNING || in->state == S_STOPPING || in->state == S_STARTING)) {
      bivyd_client_send_error(c, "up %s: the instance is %s (bivy down it first)", name, inst_state_name(in));
      return;
    }
    if (budget_check(in, json_object_get(copy, "limits"), &err) < 0) {
      bivyd_client_send_error(c, "up %s: %s", name, err->msg);
      return;
    }
    if (in) { /* a new spec for a stopped instance: same name, same address lease */
      launch_drop_spare(in);
      json_decref(in->spec);
      in->spec = json_incref(copy);
      in->warm = json_is_true(json_object_get(copy, "warm"));
      bivy_sv_restart_parse(json_string_value(json_object_get(copy, "restart")), &in->rp);
    } else {
      in = inst_new(name, copy);
      if (in == NULL) {
        bivyd_client_send_error(c, "up %s: out of memory", name);
        return;
      }
      bivyd_event(in->name, "up", NULL);
      in->state = S_STOPPED;
      if (sv_start(in, &err) < 0) { /* a failed up leaves nothing behind */
        bivyd_client_send_error(c, "up %s: %s", name, err->msg);
        in->removed = true;
        inst_remove_files(in);
        return;
      }
      ok(c, json_pack("{s:o}", "instance", inst_summary(in)));
      return;
    }
  } else if (in == NULL) {
    bivyd_client_send_error(c, "up %s: no such instance: give --bundle or --rootfs -- CMD", name);
    return;
  }
  if (in->state == S_RUNNING || in->state == S_STOPPING || in->state == S_STARTING) {
    bivyd_client_send_error(c, "up %s: the instance is already %s", name, inst_state_name(in));
    return;
  }
  if (budget_check(in, json_object_get(in->spec, "limits"), &err) < 0) {
    bivyd_client_send_error(c, "up %s: %s", name, err->msg);
    return;
  }
  in->user_stopped = false;
  loop_timer_stop(&in->t_restart);
  in->failure_restarts = 0;
  in->quick_failures = 0;
  in->backoff_next_ms = 0;
  in->state = S_STARTING;
  if (sv_start(in, &err) < 0) {
    in->state = S_EXITED;
    snprintf(in->last_exit, sizeof in->last_exit, "start-failed");
    inst_save(in);
    bivyd_client_send_error(c, "up %s: %s", name, err->msg);
    return;
  }
  ok(c, json_pack("{s:o}", "instance", inst_summary(in)));
}

static uint64_t timeout_of(json_t *req) {
  json_t *t = json_object_get(req, "timeout_ms");
  return json_is_integer(t) && json_integer_value(t) >= 0 ? (uint64_t)json_integer_value(t) : 10000;
}

void verb_down(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "down");
  if (in == NULL) return;
  in->restart_requested = false;
  sv_stop(in, timeout_of(req));
  if (in->state == S_STOPPING) add_waiter(in, c);
  else ok(c, json_pack("{s:o}", "instance", inst_summary(in)));
}

void verb_rm(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "rm");
  if (in == NULL) return;
  if (in->state == S_RUNNING || in->state == S_STOPPING || in->state == S_STARTING) {
    bivyd_client_send_error(c, "rm %s: the instance is %s (bivy down it first)", in->name, inst_state_name(in));
    return;
  }
  launch_drop_spare(in);
  launch_cleanup(in);
  inst_remove_files(in);
  bivyd_event(in->name, "removed", NULL);
  in->removed = true;
  ok(c, NULL);
}

void verb_restart(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "restart");
  if (in == NULL) return;
  if (in->state == S_RUNNING || in->state == S_STOPPING) {
    sv_stop(in, timeout_of(req));
    in->restart_requested = true;
    add_waiter(in, c);
    return;
  }
  _cleanup_error_ bivy_error_t err = NULL;
  in->user_stopped = false;
  loop_timer_stop(&in->t_restart);
  in->state = S_STARTING;
  if (sv_start(in, &err) < 0) {
    in->state = S_EXITED;
    inst_save(in);
    bivyd_client_send_error(c, "restart %s: %s", in->name, err->msg);
    return;
  }
  ok(c, json_pack("{s:o}", "instance", inst_summary(in)));
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(struct bivyd_inst *const *)a)->name, (*(struct bivyd_inst *const *)b)->name);
}

void verb_ls(struct bivyd_client *c, json_t *req) {
  (void)req;
  json_t *arr = json_array();
  struct bivyd_inst **v = calloc(T.n_insts + 1, sizeof *v);
  size_t n = 0;
  for (struct bivyd_inst *in = T.insts; in && v; in = in->next)
    if (!in->removed) v[n++] = in;
  if (v) qsort(v, n, sizeof *v, cmp_name);
  for (size_t i = 0; i < n; i++) json_array_append_new(arr, inst_summary(v[i]));
  free(v);
  ok(c, json_pack("{s:o}", "instances", arr));
}

void verb_inspect(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "inspect");
  if (in == NULL) return;
  json_t *j = inst_summary(in);
  _cleanup_free_ char *log = inst_path("logs", in->name, ".log");
  json_object_set(j, "spec", in->spec);
  json_object_set_new(j, "started_at", json_string(in->started_at));
  json_object_set_new(j, "failure_restarts", json_integer(in->failure_restarts));
  json_object_set_new(j, "quick_failures", json_integer(in->quick_failures));
  json_object_set_new(j, "next_backoff_ms", json_integer((json_int_t)in->backoff_next_ms));
  json_object_set_new(j, "adopted", json_boolean(in->adopted));
  json_object_set_new(j, "user_stopped", json_boolean(in->user_stopped));
  json_object_set_new(j, "log", json_string(log ? log : ""));
  json_object_set_new(j, "root", json_string(D.root));
  json_object_set_new(j, "container", json_string(in->cid));
  json_object_set_new(j, "warm", json_boolean(in->warm));
  json_object_set_new(j, "spare_ready", json_boolean(in->spare_pidfd >= 0));
  if (cluster_on()) json_object_set_new(j, "cluster", cluster_state_json());
  if (in->state == S_RUNNING) {
    json_object_set_new(j, "pid_start", json_integer((json_int_t)in->pid_start));
    json_object_set_new(j, "uptime_ms", json_integer((json_int_t)((bivy_now_ns() - in->started_ns) / 1000000)));
  }
  if (in->last_error) json_object_set_new(j, "last_error", json_string(in->last_error));
  if (json_object_get(in->spec, "health")) json_object_set_new(j, "health_detail", health_detail(in));
  _cleanup_cgroup_ struct bivy_cgroup *cg = in->state == S_RUNNING ? inst_cgroup(in) : NULL;
  if (cg) {
    _cleanup_error_ bivy_error_t err = NULL;
    json_t *lim = NULL;
    if (bivy_cgroup_limits(cg, &lim, &err) == 0) json_object_set_new(j, "limits_now", lim);
    json_object_set_new(j, "cgroup", json_string(bivy_cgroup_dir(cg)));
  }
  json_t *evs = json_array();
  size_t i;
  json_t *e;
  json_array_foreach(events_recent(), i, e) if (strcmp(json_string_value(json_object_get(e, "name")), in->name) == 0)
      json_array_append(evs, e);
  while (json_array_size(evs) > 50) json_array_remove(evs, 0);
  json_object_set_new(j, "events", evs);
  ok(c, json_pack("{s:o}", "instance", j));
}

void verb_logs(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "logs");
  if (in == NULL) return;
  json_t *t = json_object_get(req, "tail");
  long tail = json_is_integer(t) ? (long)json_integer_value(t) : -1;
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  _cleanup_error_ bivy_error_t err = NULL;
  if (logs_tail(in->name, tail, &data, &len, &err) < 0) {
    bivyd_client_send_error(c, "logs %s: %s", in->name, err->msg);
    return;
  }
  ok(c, json_pack("{s:o}", "data", json_text(data, len)));
  if (json_is_true(json_object_get(req, "follow"))) {
    _cleanup_free_ char *p = inst_path("logs", in->name, ".log");
    struct stat st;
    c->follow_logs = strdup(in->name);
    if (p && stat(p, &st) == 0) {
      c->log_off = st.st_size;
      c->log_ino = st.st_ino;
    }
  }
}

void verb_resize(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "resize");
  if (in == NULL) return;
  json_t *upd = json_object_get(req, "limits");
  _cleanup_error_ bivy_error_t err = NULL;
  if (!json_is_object(upd) || json_object_size(upd) == 0) {
    bivyd_client_send_error(c, "resize %s: \"limits\" must be a non-empty object", in->name);
    return;
  }
  bool live = false;
  if (inst_resize(in, upd, &live, &err) < 0) {
    bivyd_client_send_error(c, "resize %s: %s", in->name, err->msg);
    return;
  }
  bivyd_event(in->name, "resize", json_pack("{s:O, s:b}", "limits", json_object_get(in->spec, "limits"), "live", live));
  json_t *out = json_pack("{s:o, s:b}", "instance", inst_summary(in), "live", live);
  _cleanup_cgroup_ struct bivy_cgroup *cg = live ? inst_cgroup(in) : NULL;
  json_t *lim = NULL;
  _cleanup_error_ bivy_error_t e3 = NULL;
  if (cg && bivy_cgroup_limits(cg, &lim, &e3) == 0) json_object_set_new(out, "limits_now", lim);
  ok(c, out);
}

void verb_autoscale(struct bivyd_client *c, json_t *req) {
  struct bivyd_inst *in = need_inst(c, req, "autoscale");
  if (in == NULL) return;
  json_t *pol = json_object_get(req, "autoscale");
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_as_policy p = {0};
  if (pol == NULL || (!json_is_null(pol) && bivy_as_check(pol, "autoscale", &p, &err) < 0)) {
    bivyd_client_send_error(c, "autoscale %s: %s", in->name, err ? err->msg : "\"autoscale\" must be a policy or null");
    return;
  }
  /* a current limit outside the new bounds moves to the nearest bound, live */
  _cleanup_json_ json_t *upd = json_object();
  json_t *lim = json_object_get(in->spec, "limits");
  json_t *m = json_object_get(lim, "memory"), *cp = json_object_get(lim, "cpus");
  if (p.mem) {
    json_int_t v = json_is_integer(m) && json_integer_value(m) > 0 ? json_integer_value(m) : (json_int_t)p.mem_min;
    if (v < (json_int_t)p.mem_min) v = (json_int_t)p.mem_min;
    if (v > (json_int_t)p.mem_max) v = (json_int_t)p.mem_max;
    if (!json_is_integer(m) || v != json_integer_value(m)) json_object_set_new(upd, "memory", json_integer(v));
  }
  if (p.cpu) {
    double v = json_is_number(cp) ? json_number_value(cp) : p.cpu_min;
    v = v < p.cpu_min ? p.cpu_min : v > p.cpu_max ? p.cpu_max : v;
    if (!json_is_number(cp) || v != json_number_value(cp)) json_object_set_new(upd, "cpus", json_real(v));
  }
  bool live = false;
  if (json_object_size(upd) && inst_resize(in, upd, &live, &err) < 0) {
    bivyd_client_send_error(c, "autoscale %s: %s", in->name, err->msg);
    return;
  }
  if (json_is_null(pol)) json_object_del(in->spec, "autoscale");
  else json_object_set(in->spec, "autoscale", pol);
  inst_save(in);
  if (json_is_null(pol)) as_off(in);
  else as_arm(in);
  bivyd_event(in->name, "autoscale-policy", json_pack("{s:O}", "autoscale", pol));
  ok(c, json_pack("{s:o}", "instance", inst_summary(in)));
}

void verb_metrics(struct bivyd_client *c, json_t *req) {
  (void)req;
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f == NULL) {
    bivyd_client_send_error(c, "metrics: out of memory");
    return;
  }
  static const char *const states[] = {"starting", "running", "backoff", "crash-loop", "stopping", "stopped", "exited"};
  fprintf(f, "# HELP bivyd_instances Instances by state.\n# TYPE bivyd_instances gauge\n");
  for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
    unsigned n = 0;
    for (struct bivyd_inst *in = T.insts; in; in = in->next)
      if (!in->removed && strcmp(inst_state_name(in), states[s]) == 0) n++;
    fprintf(f, "bivyd_instances{state=\"%s\"} %u\n", states[s], n);
  }
  fprintf(f, "# HELP bivyd_instance_up 1 when the instance's init is running.\n# TYPE bivyd_instance_up gauge\n");
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
    if (!in->removed) fprintf(f, "bivyd_instance_up{name=\"%s\"} %d\n", in->name, in->state == S_RUNNING);
  fprintf(f, "# HELP bivyd_instance_restarts_total Restarts of the instance.\n# TYPE bivyd_instance_restarts_total counter\n");
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
    if (!in->removed) fprintf(f, "bivyd_instance_restarts_total{name=\"%s\"} %u\n", in->name, in->restarts);
  fprintf(f, "# HELP bivyd_instance_oom_kills_total OOM kills seen in the instance's cgroup.\n# TYPE bivyd_instance_oom_kills_total counter\n");
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
    if (!in->removed) fprintf(f, "bivyd_instance_oom_kills_total{name=\"%s\"} %llu\n", in->name, (unsigned long long)in->oom_kills);
  fprintf(f, "# HELP bivyd_instance_healthy 1 healthy, 0 unhealthy or starting (instances with a health check).\n# TYPE bivyd_instance_healthy gauge\n");
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
    if (!in->removed && in->health[0]) fprintf(f, "bivyd_instance_healthy{name=\"%s\"} %d\n", in->name, strcmp(in->health, "healthy") == 0);
  fprintf(f, "# TYPE bivyd_restarts_total counter\nbivyd_restarts_total %llu\n", (unsigned long long)M.restarts_total);
  fprintf(f, "# TYPE bivyd_starts_total counter\nbivyd_starts_total %llu\n", (unsigned long long)M.starts_total);
  fprintf(f, "# TYPE bivyd_oom_kills_total counter\nbivyd_oom_kills_total %llu\n", (unsigned long long)M.oom_total);
  fprintf(f, "# TYPE bivyd_health_failures_total counter\nbivyd_health_failures_total %llu\n",
          (unsigned long long)M.health_fail_total);
  fprintf(f, "# TYPE bivyd_autoscale_actions_total counter\nbivyd_autoscale_actions_total %llu\n",
          (unsigned long long)M.autoscale_total);
  fprintf(f, "# TYPE bivyd_autoscale_refused_total counter\nbivyd_autoscale_refused_total %llu\n",
          (unsigned long long)M.autoscale_refused_total);
  fprintf(f, "# HELP bivyd_last_restart_latency_seconds From an exit seen to the new init running (last restart).\n"
             "# TYPE bivyd_last_restart_latency_seconds gauge\nbivyd_last_restart_latency_seconds %.6f\n",
          (double)M.last_restart_latency_ns / 1e9);
  long rss_pages = 0;
  FILE *sm = fopen("/proc/self/statm", "re");
  if (sm) {
    long size;
    if (fscanf(sm, "%ld %ld", &size, &rss_pages) != 2) rss_pages = 0;
    fclose(sm);
  }
  fprintf(f, "# TYPE bivyd_resident_memory_bytes gauge\nbivyd_resident_memory_bytes %ld\n", rss_pages * sysconf(_SC_PAGESIZE));
  if (cluster_on()) cluster_metrics(f);
  fclose(f);
  ok(c, json_pack("{s:s}", "text", buf));
}

void verb_events(struct bivyd_client *c, json_t *req) {
  const char *name = json_string_value(json_object_get(req, "name"));
  json_t *arr = json_array();
  size_t i;
  json_t *e;
  json_array_foreach(events_recent(), i, e) if (name == NULL || strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
      json_array_append(arr, e);
  ok(c, json_pack("{s:o}", "events", arr));
  if (json_is_true(json_object_get(req, "follow"))) c->follow_events = true;
}

void verb_ping(struct bivyd_client *c, json_t *req) {
  (void)req;
  ok(c, json_pack("{s:s, s:i, s:i}", "version", BIVY_VERSION, "pid", (int)getpid(), "instances", (int)T.n_insts));
}

/* a down or restart finished: answer the clients that wait for it */
static void answer_waiters(struct bivyd_inst *in, const char *error) {
  for (int i = 0; i < in->n_waiters; i++) {
    struct bivyd_client *c = bivyd_client_find(in->waiters[i]);
    if (c == NULL) continue;
    if (error) bivyd_client_send_error(c, "%s", error);
    else bivyd_client_send(c, json_pack("{s:b, s:o}", "ok", 1, "instance", inst_summary(in)));
  }
}

void verbs_init(void) { sv_on_settled(answer_waiters); }
