/* bivyd layer 2 (model): the instance table, durable records, summaries (see instance.h).
 * STATE/instances/NAME.json holds what must survive bivyd (and a reboot): the spec, whether
 * the user stopped it, the last pid + start time (for re-adoption) and the counters. It is
 * replaced atomically (temp file + rename) on every change. */
#include "tools/bivyd/instance.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/policy/scaling-policy.h"

struct inst_table T;
static void (*on_free[4])(struct bivyd_inst *);
static size_t n_on_free;

char *inst_path(const char *dir, const char *name, const char *suffix) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s/%s%s", D.state_dir, dir, name, suffix ? suffix : "") < 0) return NULL;
  return p;
}

struct bivyd_inst *inst_find(const char *name) {
  for (struct bivyd_inst *in = T.insts; in; in = in->next)
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
  in->pidfd = in->oom_fd = in->log_fd = in->spare_pidfd = -1;
  snprintf(in->cid, sizeof in->cid, "%s", name);
  in->warm = json_is_true(json_object_get(spec, "warm"));
  in->last_code = -1;
  in->state = S_EXITED;
  in->next = T.insts;
  T.insts = in;
  T.n_insts++;
  return in;
}

int inst_on_free_add(void (*fn)(struct bivyd_inst *in)) {
  if (n_on_free == sizeof on_free / sizeof on_free[0]) return -ENOSPC;
  on_free[n_on_free++] = fn;
  return 0;
}

static void inst_free(struct bivyd_inst *in) {
  for (size_t i = 0; i < n_on_free; i++) on_free[i](in);
  loop_timer_stop(&in->t_restart);
  loop_timer_stop(&in->t_kill);
  if (in->spare_pidfd >= 0) close(in->spare_pidfd);
  loop_watch_close(&in->oom_fd);
  loop_watch_close(&in->pidfd);
  if (in->log_fd >= 0) close(in->log_fd);
  json_decref(in->spec);
  free(in->last_error);
  free(in->name);
  free(in);
}

void insts_reap(void) {
  struct bivyd_inst **pp = &T.insts;
  while (*pp) {
    struct bivyd_inst *in = *pp;
    if (in->removed) {
      *pp = in->next;
      T.n_insts--;
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

bool inst_running_like(const struct bivyd_inst *in) {
  return in->state == S_RUNNING || in->state == S_STARTING || in->state == S_BACKOFF || in->state == S_STOPPING;
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
  size_t len = strlen(txt);
  uint64_t sum = bivy_fnv1a(txt, len);
  if (sum == in->saved_sum) return 0; /* the file holds this already (a re-adoption, say) */
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_write_file_atomic(path, txt, len, 0600, &err);
  if (r < 0) bivyd_log("%s: save state: %s", in->name, err->msg);
  in->saved_sum = r < 0 ? 0 : sum;
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

int inst_load(const char *file, struct bivyd_inst **out, struct inst_record *rec, bivy_error_t *err) {
  *out = NULL;
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
  snprintf(rec->state, sizeof rec->state, "%s", json_string_value(json_object_get(j, "state")) ?: "running");
  rec->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
  rec->pid_start = (unsigned long long)json_integer_value(json_object_get(j, "pid_start"));
  in->saved_sum = bivy_fnv1a(text, len);
  *out = in;
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
  json_t *fo = json_object_get(in->spec, "failover");
  if (j && fo) json_object_set(j, "failover", fo);
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

json_t *inst_runtime_state(struct bivyd_inst *in) {
  _cleanup_error_ bivy_error_t err = NULL;
  json_t *st = NULL;
  if (bivy_state_load(D.root, in->cid, &st, &err) < 0) return NULL;
  return st;
}

static struct bivy_cgroup *cgroup_of(struct bivyd_inst *in, json_t *st, bool memory_only) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_json_ json_t *own = st ? NULL : inst_runtime_state(in);
  json_t *cgj = json_object_get(st ? st : own, "cgroup");
  struct bivy_cgroup *cg = NULL;
  int r = cgj == NULL ? -ENOENT
          : memory_only ? bivy_cgroup_memory_from_json(cgj, &cg, &err)
                        : bivy_cgroup_from_json(cgj, &cg, &err);
  if (r < 0) {
    if (err && D.debug) bivyd_log("%s: cgroup: %s", in->name, err->msg);
    return NULL;
  }
  return cg;
}

struct bivy_cgroup *inst_cgroup(struct bivyd_inst *in) { return cgroup_of(in, NULL, false); }

struct bivy_cgroup *inst_memory_cgroup(struct bivyd_inst *in, json_t *st) { return cgroup_of(in, st, true); }

void inst_signal(struct bivyd_inst *in, int sig) {
  if (in->pidfd < 0) return;
  if (sig == SIGKILL) {
    /* everything in the cgroup, not only the init (daemonised children) */
    _cleanup_error_ bivy_error_t err = NULL;
    bivy_container_kill(D.root, in->cid, SIGKILL, true, &err);
  }
  syscall(SYS_pidfd_send_signal, in->pidfd, sig, NULL, 0);
}
