/* Start, stop, exit detection, restart policy and re-adoption of instances.
 * The init of every instance is a child of bivyd (bivy_container_create clones it from this
 * process) with a pidfd in the epoll set: its exit is seen without SIGCHLD or a wait thread,
 * and waitid(P_PIDFD) gives the status. An init re-adopted after a bivyd restart is no
 * longer our child: its pidfd still says when it exits, but not how. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/bivyd.h"

#define HOUSEKEEPING_NS (250ull * 1000000)
static uint64_t next_housekeeping;

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static int pidfd_signal(int fd, int sig) { return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); }

static uint64_t cap_ms(struct bivyd_inst *in) {
  json_t *m = json_object_get(in->spec, "max_backoff_ms");
  return m ? (uint64_t)json_integer_value(m) : D.max_backoff_ms;
}

void sv_delete_cid(const char *cid) {
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_container_delete(D.root, cid, true, &err) < 0 && bivy_error_code(&err) != -ENOENT && D.debug)
    bivyd_log("%s: delete: %s", cid, err->msg);
}

void sv_cleanup_container(struct bivyd_inst *in) { sv_delete_cid(in->cid); }

/* the container ID a warm instance's spare uses: the one of NAME and NAME.w not in use */
static const char *other_cid(struct bivyd_inst *in, char *buf, size_t len) {
  if (strcmp(in->cid, in->name) == 0) snprintf(buf, len, "%s.w", in->name);
  else snprintf(buf, len, "%s", in->name);
  return buf;
}

/* the address from the runtime state (bridge mode), for ls and health probes */
static void read_ip(struct bivyd_inst *in) {
  in->ip[0] = '\0';
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_json_ json_t *st = NULL;
  if (bivy_state_load(D.root, in->cid, &st, &err) < 0) return;
  const char *ip = json_string_value(json_object_get(json_object_get(st, "net"), "ip"));
  if (ip) snprintf(in->ip, sizeof in->ip, "%s", ip);
}

static int write_bundle(struct bivyd_inst *in, const char *cid, char **dir_out, bivy_error_t *err) {
  _cleanup_json_ json_t *cfg = NULL;
  int r = bivy_sv_make_config(in->spec, cid, D.cgroup_parent, &cfg, err);
  if (r < 0) return r;
  _cleanup_free_ char *dir = inst_path("bundles", cid, NULL);
  _cleanup_free_ char *file = inst_path("bundles", cid, "/config.json");
  _cleanup_free_ char *txt = json_dumps(cfg, JSON_COMPACT);
  if (dir == NULL || file == NULL || txt == NULL) return bivy_error(err, ENOMEM, "bundle");
  if ((r = bivy_mkdir_p(dir, 0700, err)) < 0) return r;
  if ((r = bivy_write_file_atomic(file, txt, strlen(txt), 0600, err)) < 0) return r;
  *dir_out = steal_pointer(&dir);
  return 0;
}

/* Create (not start) container cid for the instance: its init is our child, blocked on
 * the exec fifo, its stdout/stderr the instance's log file. */
static int create_cid(struct bivyd_inst *in, const char *cid, pid_t *pid, int *pidfd, bivy_error_t *err) {
  _cleanup_free_ char *bundle = NULL;
  int r = write_bundle(in, cid, &bundle, err);
  if (r < 0) return r;
  if ((r = logs_open(in, err)) < 0) return r;
  /* a leftover container of the same name (a crash, a reboot with a persistent root) */
  sv_delete_cid(cid);
  int stdio[3] = {D.devnull, in->log_fd, in->log_fd};
  struct bivy_create_opts o = {.root = D.root, .id = cid, .bundle = bundle, .stdio = stdio,
                               .debug = D.debug ? bivyd_debug : NULL};
  r = bivy_container_create(&o, pid, pidfd, err);
  /* the init has its copy: ours would cost an fd per instance */
  close(in->log_fd);
  in->log_fd = -1;
  return r;
}

void sv_drop_spare(struct bivyd_inst *in) {
  if (in->spare_pidfd < 0) return;
  pidfd_signal(in->spare_pidfd, SIGKILL);
  siginfo_t si;
  waitid(P_PIDFD, (id_t)in->spare_pidfd, &si, WEXITED);
  close(in->spare_pidfd);
  in->spare_pidfd = -1;
  char other[sizeof in->cid];
  sv_delete_cid(other_cid(in, other, sizeof other));
}

/* Warm instances: create the next container now, so that a restart is only `start`. */
void sv_prepare_spare(struct bivyd_inst *in) {
  if (!in->warm || in->spare_pidfd >= 0) return;
  char other[sizeof in->cid];
  other_cid(in, other, sizeof other);
  _cleanup_error_ bivy_error_t err = NULL;
  int fd = -1;
  if (create_cid(in, other, &in->spare_pid, &fd, &err) < 0) {
    bivyd_event(in, "spare-failed", json_pack("{s:s}", "error", err && err->msg ? err->msg : "create"));
    return;
  }
  in->spare_pidfd = fd;
}

/* Start the spare: ~1 ms instead of a whole create. */
static int start_spare(struct bivyd_inst *in, pid_t *pid, int *pidfd) {
  if (in->spare_pidfd < 0) return -ENOENT;
  char other[sizeof in->cid];
  other_cid(in, other, sizeof other);
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_container_start(D.root, other, &err) < 0) {
    bivyd_log("%s: spare %s did not start (%s): creating anew", in->name, other, err->msg);
    sv_drop_spare(in);
    return -EIO;
  }
  *pid = in->spare_pid;
  *pidfd = in->spare_pidfd;
  in->spare_pidfd = -1;
  snprintf(in->cid, sizeof in->cid, "%s", other);
  return 0;
}

int sv_start(struct bivyd_inst *in, bivy_error_t *err) {
  uint64_t t0 = bivy_now_ns();
  char old[sizeof in->cid];
  snprintf(old, sizeof old, "%s", in->cid);
  pid_t pid;
  _cleanup_close_ int pidfd = -1;
  int r;
  bool warm = start_spare(in, &pid, &pidfd) == 0;
  if (!warm) {
    if ((r = create_cid(in, in->cid, &pid, &pidfd, err)) < 0) return r;
    if (D.debug) bivyd_debug("start %s: %.3f ms created", in->name, (double)(bivy_now_ns() - t0) / 1e6);
    if ((r = bivy_container_start(D.root, in->cid, err)) < 0) {
      sv_delete_cid(in->cid);
      siginfo_t si;
      waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG);
      return r;
    }
  }
  uint64_t t1 = bivy_now_ns();
  if (D.debug) bivyd_debug("start %s: %.3f ms started", in->name, (double)(t1 - t0) / 1e6);
  in->pid = pid;
  in->pid_start = 0;
  bivy_proc_start_time(pid, &in->pid_start);
  in->pidfd = steal_fd(&pidfd);
  in->adopted = false;
  bivyd_watch_add(in->pidfd, EPOLLIN, &in->w_pid);
  in->started_ns = t1;
  bivyd_rfc3339(in->started_at, sizeof in->started_at);
  in->state = S_RUNNING;
  in->kill_unhealthy = false;
  free(in->last_error);
  in->last_error = NULL;
  D.starts_total++;
  read_ip(in);
  oom_watch(in);
  health_arm(in, true);
  as_arm(in);
  inst_save(in);
  json_t *ex = json_pack("{s:i, s:f, s:b}", "pid", (int)pid, "start_ms", (double)(t1 - t0) / 1e6, "warm", warm);
  if (in->exit_seen_ns) {
    uint64_t lat = t1 - in->exit_seen_ns;
    D.last_restart_latency_ns = lat;
    json_object_set_new(ex, "restart_latency_ms", json_real((double)lat / 1e6));
    json_object_set_new(ex, "restarts", json_integer(in->restarts));
    in->exit_seen_ns = 0;
  }
  bivyd_event(in, "start", ex);
  /* after the restart, off its latency: the old container goes, the next spare is made */
  if (warm) sv_delete_cid(old);
  sv_prepare_spare(in);
  return 0;
}

static void answer_waiters(struct bivyd_inst *in, const char *error) {
  for (int i = 0; i < in->n_waiters; i++) {
    struct bivyd_client *c = bivyd_client_find(in->waiters[i]);
    if (c == NULL) continue;
    if (error) bivyd_client_send_error(c, "%s", error);
    else bivyd_client_send(c, json_pack("{s:b, s:o}", "ok", 1, "instance", inst_summary(in)));
  }
  in->n_waiters = 0;
}

/* after an exit or a failed start: restart now, later (back-off) or never */
static void apply_policy(struct bivyd_inst *in, bool failed, uint64_t ran_ms) {
  if (ran_ms >= BIVY_SV_BACKOFF_RESET_MS) in->quick_failures = 0;
  else in->quick_failures++;
  if (!bivy_sv_should_restart(&in->rp, failed, in->failure_restarts)) {
    sv_drop_spare(in);
    in->state = S_EXITED;
    in->last_delay_ms = 0;
    bivyd_event(in, "give-up", json_pack("{s:s, s:i}", "reason", in->last_exit, "restarts", (int)in->restarts));
    inst_save(in);
    return;
  }
  uint64_t delay = bivy_sv_backoff(&in->backoff_next_ms, ran_ms, cap_ms(in));
  in->last_delay_ms = delay;
  in->restarts++;
  D.restarts_total++;
  if (failed) in->failure_restarts++;
  if (delay == 0) {
    sv_start_or_backoff(in);
    return;
  }
  in->state = S_BACKOFF;
  in->due_restart = bivy_now_ns() + delay * 1000000ull;
  bivyd_event(in, "backoff", json_pack("{s:I, s:i, s:s}", "delay_ms", (json_int_t)delay, "restarts", (int)in->restarts,
                                       "state", inst_state_name(in)));
  inst_save(in);
}

void sv_start_or_backoff(struct bivyd_inst *in) {
  _cleanup_error_ bivy_error_t err = NULL;
  in->state = S_STARTING;
  if (sv_start(in, &err) == 0) return;
  free(in->last_error);
  in->last_error = strdup(err && err->msg ? err->msg : "start failed");
  snprintf(in->last_exit, sizeof in->last_exit, "start-failed");
  in->last_code = -1;
  bivyd_event(in, "start-failed", json_pack("{s:s}", "error", in->last_error ? in->last_error : ""));
  if (in->exit_seen_ns == 0) in->exit_seen_ns = bivy_now_ns();
  apply_policy(in, true, 0);
}

static const char *signame(int sig, char *buf, size_t len) {
  const char *n = sigabbrev_np(sig);
  if (n) snprintf(buf, len, "%s", n);
  else snprintf(buf, len, "%d", sig);
  return buf;
}

void sv_exited(struct bivyd_inst *in) {
  uint64_t now = bivy_now_ns();
  siginfo_t si = {0};
  bool known = false;
  if (!in->adopted && waitid(P_PIDFD, (id_t)in->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) known = true;
  bivyd_watch_del(in->pidfd);
  close(in->pidfd);
  in->pidfd = -1;
  in->exit_seen_ns = now;
  health_stop(in);
  as_disarm(in);
  uint64_t oc = oom_count(in);
  bool oom = oc > in->oom_base;
  if (oom) {
    in->oom_kills += oc - in->oom_base;
    D.oom_total += oc - in->oom_base;
  }
  oom_unwatch(in);
  bool failed = true;
  char sb[16];
  if (known && si.si_code == CLD_EXITED) {
    in->last_code = si.si_status;
    failed = si.si_status != 0;
    snprintf(in->last_exit, sizeof in->last_exit, "exited(%d)", si.si_status);
  } else if (known) {
    in->last_code = 128 + si.si_status;
    snprintf(in->last_exit, sizeof in->last_exit, "killed(%s)", signame(si.si_status, sb, sizeof sb));
  } else {
    in->last_code = -1;
    snprintf(in->last_exit, sizeof in->last_exit, "exited(unknown)");
  }
  /* the cause matters more than the signal: OOM and failed health checks end in SIGKILL */
  if (oom) snprintf(in->last_exit, sizeof in->last_exit, "oom-killed");
  else if (in->kill_unhealthy) snprintf(in->last_exit, sizeof in->last_exit, "unhealthy");
  if (oom || in->kill_unhealthy) failed = true;
  in->kill_unhealthy = false;
  uint64_t ran_ms = in->started_ns && now > in->started_ns ? (now - in->started_ns) / 1000000 : 0;
  bool stopping = in->state == S_STOPPING;
  in->due_kill = 0;
  bivyd_event(in, "exit", json_pack("{s:s, s:i, s:I, s:i}", "reason", in->last_exit, "code", in->last_code, "ran_ms",
                                    (json_int_t)ran_ms, "pid", (int)in->pid));
  if (stopping) {
    sv_cleanup_container(in);
    if (in->restart_requested) {
      in->restart_requested = false;
      in->user_stopped = false;
      in->restarts++;
      D.restarts_total++;
      _cleanup_error_ bivy_error_t err = NULL;
      in->state = S_STARTING;
      if (sv_start(in, &err) < 0) {
        in->state = S_EXITED;
        snprintf(in->last_exit, sizeof in->last_exit, "start-failed");
        free(in->last_error);
        in->last_error = strdup(err->msg);
        inst_save(in);
        answer_waiters(in, err->msg);
        return;
      }
    } else {
      sv_drop_spare(in);
      in->state = S_STOPPED;
      inst_save(in);
    }
    answer_waiters(in, NULL);
    return;
  }
  /* the next start replaces the container (sv_start deletes what is left first): one
   * delete, not two, on the restart path */
  if (!bivy_sv_should_restart(&in->rp, failed, in->failure_restarts)) sv_cleanup_container(in);
  apply_policy(in, failed, ran_ms);
}

void sv_kill(struct bivyd_inst *in, int sig) {
  if (in->pidfd < 0) return;
  if (sig == SIGKILL) {
    /* everything in the cgroup, not only the init (daemonised children) */
    _cleanup_error_ bivy_error_t err = NULL;
    bivy_container_kill(D.root, in->cid, SIGKILL, true, &err);
  }
  pidfd_signal(in->pidfd, sig);
}

void sv_stop(struct bivyd_inst *in, uint64_t timeout_ms) {
  in->user_stopped = true;
  in->due_restart = 0;
  switch (in->state) {
    case S_RUNNING:
      health_stop(in);
      in->state = S_STOPPING;
      sv_kill(in, timeout_ms == 0 ? SIGKILL : SIGTERM);
      in->due_kill = bivy_now_ns() + (timeout_ms ? timeout_ms : 1) * 1000000ull;
      inst_save(in);
      bivyd_event(in, "stopping", json_pack("{s:I}", "timeout_ms", (json_int_t)timeout_ms));
      break;
    case S_STOPPING: break;
    default:
      sv_drop_spare(in);
      in->state = S_STOPPED;
      inst_save(in);
      bivyd_event(in, "stopped", NULL);
      break;
  }
}

void sv_adopt(struct bivyd_inst *in, pid_t pid, unsigned long long start) {
  int fd = pidfd_open_(pid);
  unsigned long long now_start = 0;
  /* the pid may have been reused between the check and pidfd_open: check again */
  if (fd < 0 || bivy_proc_start_time(pid, &now_start) < 0 || now_start != start) {
    if (fd >= 0) close(fd);
    in->state = S_EXITED;
    return;
  }
  in->pid = pid;
  in->pid_start = start;
  in->pidfd = fd;
  in->adopted = true;
  bivyd_watch_add(fd, EPOLLIN, &in->w_pid);
  in->started_ns = bivy_now_ns();
  in->state = S_RUNNING;
  read_ip(in);
  oom_watch(in);
  health_arm(in, true);
  as_arm(in);
  inst_save(in);
  bivyd_event(in, "adopted", json_pack("{s:i}", "pid", (int)pid));
}

void sv_detach(struct bivyd_inst *in) {
  sv_drop_spare(in);
  health_stop(in);
  as_disarm(in);
  oom_unwatch(in);
  if (in->pidfd >= 0) {
    bivyd_watch_del(in->pidfd);
    close(in->pidfd);
    in->pidfd = -1;
  }
}

void sv_timers(uint64_t now) {
  for (struct bivyd_inst *in = D.insts; in; in = in->next) {
    if (in->removed) continue;
    if (in->due_restart && in->due_restart <= now) {
      in->due_restart = 0;
      if (in->state == S_BACKOFF) sv_start_or_backoff(in);
    }
    if (in->due_kill && in->due_kill <= now) {
      in->due_kill = 0;
      if (in->state == S_STOPPING) sv_kill(in, SIGKILL);
    }
    if (in->due_probe_timeout && in->due_probe_timeout <= now) {
      in->due_probe_timeout = 0;
      health_probe_timeout(in);
    }
    if (in->due_health && in->due_health <= now) {
      in->due_health = 0;
      if (in->state == S_RUNNING) health_start_probe(in);
    }
    if (in->due_autoscale && in->due_autoscale <= now) as_tick(in, now);
  }
  if (now >= next_housekeeping) {
    next_housekeeping = now + HOUSEKEEPING_NS;
    logs_rotate_all();
    logs_follow_tick();
  }
}

uint64_t sv_next_due(void) {
  uint64_t due = next_housekeeping ? next_housekeeping : bivy_now_ns() + HOUSEKEEPING_NS;
  for (struct bivyd_inst *in = D.insts; in; in = in->next) {
    uint64_t d[] = {in->due_restart, in->due_kill, in->due_health, in->due_probe_timeout, in->due_autoscale};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
      if (d[i] && d[i] < due) due = d[i];
  }
  return due;
}
