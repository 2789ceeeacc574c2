/* The instance table, its durable state and the event stream.
 * STATE/instances/NAME.json holds what must survive bivyd (and a reboot): the spec, whether
 * the user stopped it, the last pid + start time (for re-adoption) and the counters. It is
 * replaced atomically (temp file + rename) on every change. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/bivyd.h"

char *inst_path(const char *dir, const char *name, const char *suffix) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s/%s%s", D.state_dir, dir, name, suffix ? suffix : "") < 0) return NULL;
  return p;
}

struct bivyd_inst *inst_find(const char *name) {
  for (struct bivyd_inst *in = D.insts; in; in = in->next)
    if (!in->removed && strcmp(in->name, name) == 0) return in;
  return NULL;
}

struct bivyd_inst *inst_new(const char *name, json_t *spec) {
  struct bivyd_inst *in = calloc(1, sizeof *in);
  if (in == NULL) return NULL;
  in->name = strdup(name);
  if (in->name == NULL) {
    free(in);
    return NULL;
  }
  in->spec = json_incref(spec);
  bivy_sv_restart_parse(json_string_value(json_object_get(spec, "restart")), &in->rp);
  in->pidfd = in->oom_fd = in->probe_fd = in->log_fd = in->spare_pidfd = -1;
  in->as_mem_fd = in->as_psi_mem_fd = in->as_psi_cpu_fd = -1;
  snprintf(in->cid, sizeof in->cid, "%s", name);
  in->warm = json_is_true(json_object_get(spec, "warm"));
  in->last_code = -1;
  in->state = S_EXITED;
  in->w_pid = (struct watch){W_PIDFD, in};
  in->w_oom = (struct watch){W_OOM, in};
  in->w_probe = (struct watch){W_PROBE, in};
  in->w_as_mem = (struct watch){W_AS_MEM, in};
  in->w_as_psi_mem = (struct watch){W_AS_PSI_MEM, in};
  in->w_as_psi_cpu = (struct watch){W_AS_PSI_CPU, in};
  in->next = D.insts;
  D.insts = in;
  D.n_insts++;
  return in;
}

void inst_free(struct bivyd_inst *in) {
  health_stop(in);
  as_disarm(in);
  if (in->spare_pidfd >= 0) close(in->spare_pidfd);
  oom_unwatch(in);
  if (in->pidfd >= 0) {
    bivyd_watch_del(in->pidfd);
    close(in->pidfd);
  }
  if (in->log_fd >= 0) close(in->log_fd);
  json_decref(in->spec);
  free(in->last_error);
  free(in->probe_output);
  free(in->name);
  free(in);
}

void insts_reap(void) {
  struct bivyd_inst **pp = &D.insts;
  while (*pp) {
    struct bivyd_inst *in = *pp;
    if (in->removed) {
      *pp = in->next;
      D.n_insts--;
      inst_free(in);
    } else {
      pp = &in->next;
    }
  }
}

const char *inst_state_name(const struct bivyd_inst *in) {
  switch (in->state) {
    case S_STARTING: return "starting";
    case S_RUNNING: return "running";
    case S_BACKOFF: return in->quick_failures >= BIVY_SV_CRASH_LOOP ? "crash-loop" : "backoff";
    case S_STOPPING: return "stopping";
    case S_STOPPED: return "stopped";
    case S_EXITED: return "exited";
  }
  return "unknown";
}

/* the state name as persisted: what to do with the instance when bivyd starts again */
static const char *persist_state(const struct bivyd_inst *in) {
  switch (in->state) {
    case S_STOPPED: return "stopped";
    case S_EXITED: return "exited";
    case S_STOPPING: return "stopping";
    default: return "running";
  }
}

int inst_save(struct bivyd_inst *in) {
  _cleanup_free_ char *path = inst_path("instances", in->name, ".json");
  _cleanup_json_ json_t *j = json_pack(
      "{s:s, s:O, s:s, s:b, s:i, s:I, s:i, s:i, s:i, s:I, s:s, s:i, s:I, s:s}", "name", in->name, "spec", in->spec,
      "state", persist_state(in), "user_stopped", in->user_stopped, "pid", (int)in->pid,
      (const char *)"pid_start", (json_int_t)in->pid_start, "restarts", (int)in->restarts, "failure_restarts",
      (int)in->failure_restarts, "quick_failures", (int)in->quick_failures, "backoff_next_ms",
      (json_int_t)in->backoff_next_ms, "last_exit", in->last_exit, "last_code", in->last_code, "oom_kills",
      (json_int_t)in->oom_kills, "started_at", in->started_at);
  if (j) json_object_set_new(j, "cid", json_string(in->cid));
  _cleanup_free_ char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
  if (path == NULL || txt == NULL) return -ENOMEM;
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_write_file_atomic(path, txt, strlen(txt), 0600, &err);
  if (r < 0) bivyd_log("%s: save state: %s", in->name, err->msg);
  return r;
}

void inst_remove_files(struct bivyd_inst *in) {
  const char *const files[][2] = {{"instances", ".json"}, {"logs", ".log"}, {"logs", ".log.1"}};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    _cleanup_free_ char *p = inst_path(files[i][0], in->name, files[i][1]);
    if (p) unlink(p);
  }
  for (int i = 0; i < 2; i++) {
    _cleanup_free_ char *b = inst_path("bundles", in->name, i ? ".w" : NULL);
    _cleanup_error_ bivy_error_t err = NULL;
    if (b) bivy_rm_rf(b, &err);
  }
}

static int load_one(const char *file, bivy_error_t *err) {
  _cleanup_free_ char *path = NULL, *text = NULL;
  size_t len = 0;
  if (asprintf(&path, "%s/instances/%s", D.state_dir, file) < 0) return bivy_error(err, ENOMEM, "load");
  int r = bivy_read_file_at(AT_FDCWD, path, &text, &len, err);
  if (r < 0) return r;
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(text, len, 0, &je);
  const char *name = json_string_value(json_object_get(j, "name"));
  json_t *spec = json_object_get(j, "spec");
  if (name == NULL || !bivy_id_valid(name) || bivy_sv_spec_check(spec, err) < 0)
    return bivy_error(err, EINVAL, "%s: not a valid instance record", path);
  if (inst_find(name)) return 0;
  struct bivyd_inst *in = inst_new(name, spec);
  if (in == NULL) return bivy_error(err, ENOMEM, "load %s", name);
  in->user_stopped = json_is_true(json_object_get(j, "user_stopped"));
  in->restarts = (unsigned)json_integer_value(json_object_get(j, "restarts"));
  in->failure_restarts = (unsigned)json_integer_value(json_object_get(j, "failure_restarts"));
  in->quick_failures = (unsigned)json_integer_value(json_object_get(j, "quick_failures"));
  in->backoff_next_ms = (uint64_t)json_integer_value(json_object_get(j, "backoff_next_ms"));
  in->oom_kills = (uint64_t)json_integer_value(json_object_get(j, "oom_kills"));
  json_t *lc = json_object_get(j, "last_code");
  in->last_code = lc ? (int)json_integer_value(lc) : -1;
  snprintf(in->last_exit, sizeof in->last_exit, "%s", json_string_value(json_object_get(j, "last_exit")) ?: "");
  snprintf(in->started_at, sizeof in->started_at, "%s", json_string_value(json_object_get(j, "started_at")) ?: "");
  const char *cid = json_string_value(json_object_get(j, "cid"));
  if (cid && bivy_id_valid(cid) && strncmp(cid, name, strlen(name)) == 0) snprintf(in->cid, sizeof in->cid, "%s", cid);
  /* a warm instance's spare (created, never started) from the previous bivyd goes */
  if (in->warm) {
    char other[sizeof in->cid];
    snprintf(other, sizeof other, strcmp(in->cid, name) == 0 ? "%s.w" : "%s", name);
    sv_delete_cid(other);
  }
  const char *st = json_string_value(json_object_get(j, "state")) ?: "running";
  pid_t pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
  unsigned long long start = (unsigned long long)json_integer_value(json_object_get(j, "pid_start"));

  if (strcmp(st, "exited") == 0) {
    in->state = S_EXITED;
    return 0;
  }
  if (strcmp(st, "stopped") == 0) {
    /* Docker: "always" comes back when the daemon starts even after a manual stop;
     * "unless-stopped" (and the others) stay down */
    if (in->rp.policy == BIVY_SV_ALWAYS) {
      in->user_stopped = false;
      bivyd_event(in, "daemon-start", json_pack("{s:s}", "action", "start (always)"));
      sv_start_or_backoff(in);
    } else {
      in->state = S_STOPPED;
    }
    return 0;
  }
  unsigned long long now_start = 0;
  if (pid > 0 && bivy_proc_start_time(pid, &now_start) == 0 && now_start == start) {
    sv_adopt(in, pid, start);
    if (in->state == S_RUNNING && strcmp(st, "stopping") == 0) sv_stop(in, 10000);
    else if (in->state == S_RUNNING) sv_prepare_spare(in);
    return 0;
  }
  /* it died while nobody watched (bivyd down, or a reboot): the policy decides, with the
   * exit status unknown (counted as a failure) */
  sv_cleanup_container(in);
  if (strcmp(st, "stopping") == 0) {
    in->state = S_STOPPED;
    inst_save(in);
    return 0;
  }
  snprintf(in->last_exit, sizeof in->last_exit, "died-unsupervised");
  in->last_code = -1;
  if (bivy_sv_should_restart(&in->rp, true, in->failure_restarts)) {
    in->restarts++;
    in->failure_restarts++;
    bivyd_event(in, "daemon-start", json_pack("{s:s}", "action", "restart (died while unsupervised)"));
    sv_start_or_backoff(in);
  } else {
    in->state = S_EXITED;
    bivyd_event(in, "daemon-start", json_pack("{s:s}", "action", "none (died while unsupervised)"));
    inst_save(in);
  }
  return 0;
}

int insts_load(bivy_error_t *err) {
  _cleanup_free_ char *dir = NULL;
  if (asprintf(&dir, "%s/instances", D.state_dir) < 0) return bivy_error(err, ENOMEM, "load");
  _cleanup_closedir_ DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : bivy_error_errno(err, "open %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
    _cleanup_error_ bivy_error_t e2 = NULL;
    if (load_one(e->d_name, &e2) < 0) bivyd_log("skipping %s: %s", e->d_name, e2->msg);
  }
  return 0;
}

json_t *inst_summary(struct bivyd_inst *in) {
  char rbuf[40];
  json_t *limits = json_object_get(in->spec, "limits");
  json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:O, s:s, s:I, s:I}", "name", in->name, "state",
                        inst_state_name(in), "pid", in->state == S_RUNNING || in->state == S_STOPPING ? (int)in->pid : 0,
                        "restarts", (int)in->restarts, "last_exit", in->last_exit, "health", in->health, "address",
                        in->ip, "limits", limits ? limits : json_null(), "restart",
                        bivy_sv_restart_str(&in->rp, rbuf, sizeof rbuf), "oom_kills", (json_int_t)in->oom_kills,
                        "backoff_ms", (json_int_t)in->last_delay_ms);
  if (j && in->last_code >= 0) json_object_set_new(j, "last_code", json_integer(in->last_code));
  json_t *as = json_object_get(in->spec, "autoscale");
  struct bivy_as_policy p;
  _cleanup_error_ bivy_error_t err = NULL;
  if (j && as && bivy_as_check(as, "autoscale", &p, &err) == 0) {
    char buf[160];
    bivy_as_format(&p, buf, sizeof buf);
    json_object_set(j, "autoscale", as);
    json_object_set_new(j, "autoscale_text", json_string(buf));
  }
  return j;
}

void bivyd_event(struct bivyd_inst *in, const char *type, json_t *extra) {
  char ts[40];
  bivyd_rfc3339(ts, sizeof ts);
  json_t *ev = json_pack("{s:I, s:s, s:I, s:s, s:s}", "seq", (json_int_t)++D.event_seq, "time", ts, "mono_ns",
                         (json_int_t)bivy_now_ns(), "name", in ? in->name : "", "type", type);
  if (ev == NULL) {
    json_decref(extra);
    return;
  }
  if (extra) json_object_update(ev, extra);
  json_decref(extra);
  _cleanup_free_ char *txt = json_dumps(ev, JSON_COMPACT);
  if (txt && (D.debug || strcmp(type, "health") != 0)) bivyd_log("event %s", txt);
  json_array_append(D.events, ev);
  if (json_array_size(D.events) > EVENTS_KEEP) json_array_remove(D.events, 0);
  for (struct bivyd_client *c = D.clients; c; c = c->next)
    if (c->follow_events && !c->dead) bivyd_client_send(c, json_pack("{s:O}", "event", ev));
  json_decref(ev);
}

int inst_resize(struct bivyd_inst *in, json_t *upd, bool *live, bivy_error_t *err) {
  *live = false;
  /* the new desired spec, checked as a whole (autoscale bounds, host budget) */
  _cleanup_json_ json_t *spec = json_deep_copy(in->spec);
  json_t *limits = json_object_get(spec, "limits");
  if (!json_is_object(limits)) {
    limits = json_object();
    json_object_set_new(spec, "limits", limits);
  }
  bivy_sv_limits_merge(limits, upd);
  _cleanup_json_ json_t *res = NULL;
  int r;
  if ((r = bivy_sv_spec_check(spec, err)) < 0 || (r = bivy_sv_limits_to_resources(upd, &res, err)) < 0) return r;
  if (in->state != S_STOPPED && in->state != S_EXITED && (r = as_budget_check(in, limits, err)) < 0) return r;
  _cleanup_cgroup_ struct bivy_cgroup *cg = in->state == S_RUNNING ? inst_cgroup(in) : NULL;
  if (cg) {
    /* the same all-or-nothing path as `bivy update` */
    struct bivy_cgroup_update_opts o = {.reclaim_timeout_ms = 2000};
    if ((r = bivy_cgroup_update(cg, res, &o, err)) < 0) return r;
    *live = true;
    _cleanup_error_ bivy_error_t e2 = NULL;
    _cleanup_close_ int lock = bivy_state_lock(D.root, in->cid, &e2);
    _cleanup_json_ json_t *st = NULL;
    if (lock >= 0 && bivy_state_load(D.root, in->cid, &st, &e2) == 0) {
      bivy_cgroup_record_resources(st, res);
      bivy_state_save(D.root, in->cid, st, &e2);
    }
  }
  json_decref(in->spec);
  in->spec = json_incref(spec);
  inst_save(in);
  if (in->spare_pidfd >= 0) { /* the spare was made with the old limits */
    sv_drop_spare(in);
    sv_prepare_spare(in);
  }
  return 0;
}
