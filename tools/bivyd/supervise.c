/* bivyd layer 3 (supervision): start, stop, exit detection, restart policy, adoption.
 * The init of every instance is a child of bivyd (bivy_container_create clones it from this
 * process) with a pidfd in the epoll set: its exit is seen without SIGCHLD or a wait thread,
 * and waitid(P_PIDFD) gives the status. An init re-adopted after a bivyd restart is no
 * longer our child: its pidfd still says when it exits, but not how. */
#include "tools/bivyd/supervise.h"

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
#include "tools/bivyd/autoscaler.h"
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/health.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/launch.h"
#include "tools/bivyd/loop.h"
#include "tools/bivyd/oom-watch.h"


static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static uint64_t cap_ms(struct bivyd_inst *in) {
  json_t *m = json_object_get(in->spec, "max_backoff_ms");
  return m ? (uint64_t)json_integer_value(m) : D.max_backoff_ms;
}

static void pid_exited(struct loop_watch *w, uint32_t events);
static void restart_due(struct loop_timer *t, uint64_t now);
static void kill_due(struct loop_timer *t, uint64_t now);
static void (*settled_hook)(struct bivyd_inst *in, const char *error);

void sv_on_settled(void (*fn)(struct bivyd_inst *in, const char *error)) { settled_hook = fn; }
static const char *(*start_gate)(struct bivyd_inst *in);
void sv_set_start_gate(const char *(*gate)(struct bivyd_inst *in)) { start_gate = gate; }

/* fn and data change only here, never while armed with other ones */
static void arm(struct loop_timer *t, loop_timer_fn fn, void *data, uint64_t due) {
  t->fn = fn;
  t->data = data;
  loop_timer_set(t, due);
}

/* the instance's process is ours to watch from now on */
static void watch_pid(struct bivyd_inst *in, pid_t pid, int pidfd, bool adopted) {
  in->pid = pid;
  in->pidfd = pidfd;
  in->adopted = adopted;
  in->w_pid = (struct loop_watch){pid_exited, in};
  loop_watch_add(pidfd, EPOLLIN, &in->w_pid);
}

/* what runs beside a running instance: OOM watch, health probes, autoscaler */
static void arm_running(struct bivyd_inst *in) {
  _cleanup_json_ json_t *st = inst_runtime_state(in); /* read once for both */
  launch_read_ip(in, st);
  oom_watch(in, st);
  health_arm(in, true);
  as_arm(in);
}

int sv_start(struct bivyd_inst *in, bivy_error_t *err) {
  uint64_t t0 = bivy_now_ns();
  char old[sizeof in->cid];
  snprintf(old, sizeof old, "%s", in->cid);
  pid_t pid;
  _cleanup_close_ int pidfd = -1;
  int r;
  bool warm = launch_start_spare(in, &pid, &pidfd) == 0;
  if (!warm) {
    if ((r = launch_create(in, in->cid, &pid, &pidfd, err)) < 0) return r;
    if (D.debug) bivyd_debug("start %s: %.3f ms created", in->name, (double)(bivy_now_ns() - t0) / 1e6);
    if ((r = launch_start(in, in->cid, err)) < 0) {
      launch_delete_cid(in->cid);
      siginfo_t si;
      waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG);
      return r;
    }
  }
  uint64_t t1 = bivy_now_ns();
  if (D.debug) bivyd_debug("start %s: %.3f ms started", in->name, (double)(t1 - t0) / 1e6);
  in->pid_start = 0;
  bivy_proc_start_time(pid, &in->pid_start);
  watch_pid(in, pid, steal_fd(&pidfd), false);
  in->started_ns = t1;
  bivyd_rfc3339(in->started_at, sizeof in->started_at);
  in->state = S_RUNNING;
  in->kill_unhealthy = false;
  free(in->last_error);
  in->last_error = NULL;
  M.starts_total++;
  arm_running(in);
  inst_save(in);
  json_t *ex = json_pack("{s:i, s:f, s:b}", "pid", (int)pid, "start_ms", (double)(t1 - t0) / 1e6, "warm", warm);
  if (in->exit_seen_ns) {
    uint64_t lat = t1 - in->exit_seen_ns;
    M.last_restart_latency_ns = lat;
    json_object_set_new(ex, "restart_latency_ms", json_real((double)lat / 1e6));
    json_object_set_new(ex, "restarts", json_integer(in->restarts));
    in->exit_seen_ns = 0;
  }
  bivyd_event(in->name, "start", ex);
  /* after the restart, off its latency: the old container goes, the next spare is made */
  if (warm) launch_delete_cid(old);
  launch_prepare_spare(in);
  return 0;
}

/* a down or restart finished: the control API answers whoever waits */
static void settled(struct bivyd_inst *in, const char *error) {
  if (settled_hook) settled_hook(in, error);
  in->n_waiters = 0;
}

/* after an exit or a failed start: restart now, later (back-off) or never */
static void apply_policy(struct bivyd_inst *in, bool failed, uint64_t ran_ms) {
  if (ran_ms >= BIVY_SV_BACKOFF_RESET_MS) in->quick_failures = 0;
  else in->quick_failures++;
  if (!bivy_sv_should_restart(&in->rp, failed, in->failure_restarts)) {
    launch_drop_spare(in);
    in->state = S_EXITED;
    in->last_delay_ms = 0;
    bivyd_event(in->name, "give-up", json_pack("{s:s, s:i}", "reason", in->last_exit, "restarts", (int)in->restarts));
    inst_save(in);
    return;
  }
  uint64_t delay = bivy_sv_backoff(&in->backoff_next_ms, ran_ms, cap_ms(in));
  in->last_delay_ms = delay;
  in->restarts++;
  M.restarts_total++;
  if (failed) in->failure_restarts++;
  if (delay == 0) {
    sv_start_or_backoff(in);
    return;
  }
  in->state = S_BACKOFF;
  arm(&in->t_restart, restart_due, in, bivy_now_ns() + delay * 1000000ull);
  bivyd_event(in->name, "backoff", json_pack("{s:I, s:i, s:s}", "delay_ms", (json_int_t)delay, "restarts", (int)in->restarts,
                                       "state", inst_state_name(in)));
  inst_save(in);
}

void sv_start_or_backoff(struct bivyd_inst *in) {
  _cleanup_error_ bivy_error_t err = NULL;
  const char *held = start_gate ? start_gate(in) : NULL;
  if (held) {
    /* the layer above may not let it run now (cluster: our claim's deadline passed while we
     * were stopped or cut off, so another node may run it): ask again shortly; that layer
     * stops or drops it meanwhile if it is no longer ours */
    if (in->state != S_BACKOFF) bivyd_event(in->name, "held", json_pack("{s:s}", "reason", held));
    in->state = S_BACKOFF;
    arm(&in->t_restart, restart_due, in, bivy_now_ns() + BIVY_SV_HOLD_RETRY_MS * 1000000ull);
    return;
  }
  in->state = S_STARTING;
  if (sv_start(in, &err) == 0) return;
  free(in->last_error);
  in->last_error = strdup(err && err->msg ? err->msg : "start failed");
  snprintf(in->last_exit, sizeof in->last_exit, "start-failed");
  in->last_code = -1;
  bivyd_event(in->name, "start-failed", json_pack("{s:s}", "error", in->last_error ? in->last_error : ""));
  if (in->exit_seen_ns == 0) in->exit_seen_ns = bivy_now_ns();
  apply_policy(in, true, 0);
}

static const char *signame(int sig, char *buf, size_t len) {
  const char *n = sigabbrev_np(sig);
  if (n) snprintf(buf, len, "%s", n);
  else snprintf(buf, len, "%d", sig);
  return buf;
}

static void pid_exited(struct loop_watch *w, uint32_t events) {
  (void)events;
  struct bivyd_inst *in = w->data;
  if (in->removed || in->pidfd < 0) return;
  uint64_t now = bivy_now_ns();
  siginfo_t si = {0};
  bool known = false;
  if (!in->adopted && waitid(P_PIDFD, (id_t)in->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) known = true;
  loop_watch_close(&in->pidfd);
  in->exit_seen_ns = now;
  health_stop(in);
  as_disarm(in);
  bool oom = oom_on_exit(in);
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
  loop_timer_stop(&in->t_kill);
  bivyd_event(in->name, "exit", json_pack("{s:s, s:i, s:I, s:i}", "reason", in->last_exit, "code", in->last_code, "ran_ms",
                                    (json_int_t)ran_ms, "pid", (int)in->pid));
  if (stopping) {
    launch_cleanup(in);
    if (in->restart_requested) {
      in->restart_requested = false;
      in->user_stopped = false;
      in->restarts++;
      M.restarts_total++;
      _cleanup_error_ bivy_error_t err = NULL;
      in->state = S_STARTING;
      if (sv_start(in, &err) < 0) {
        in->state = S_EXITED;
        snprintf(in->last_exit, sizeof in->last_exit, "start-failed");
        free(in->last_error);
        in->last_error = strdup(err->msg);
        inst_save(in);
        settled(in, err->msg);
        return;
      }
    } else {
      launch_drop_spare(in);
      in->state = S_STOPPED;
      inst_save(in);
    }
    settled(in, NULL);
    return;
  }
  /* the next start replaces the container (sv_start deletes what is left first): one
   * delete, not two, on the restart path */
  if (!bivy_sv_should_restart(&in->rp, failed, in->failure_restarts)) launch_cleanup(in);
  apply_policy(in, failed, ran_ms);
}

void sv_stop(struct bivyd_inst *in, uint64_t timeout_ms) {
  in->user_stopped = true;
  loop_timer_stop(&in->t_restart);
  switch (in->state) {
    case S_RUNNING:
      health_stop(in);
      in->state = S_STOPPING;
      inst_signal(in, timeout_ms == 0 ? SIGKILL : SIGTERM);
      arm(&in->t_kill, kill_due, in, bivy_now_ns() + (timeout_ms ? timeout_ms : 1) * 1000000ull);
      inst_save(in);
      bivyd_event(in->name, "stopping", json_pack("{s:I}", "timeout_ms", (json_int_t)timeout_ms));
      break;
    case S_STOPPING: break;
    default:
      launch_drop_spare(in);
      in->state = S_STOPPED;
      inst_save(in);
      bivyd_event(in->name, "stopped", NULL);
      break;
  }
}

bool sv_adopt(struct bivyd_inst *in, pid_t pid, unsigned long long start) {
  int fd = pidfd_open_(pid);
  unsigned long long now_start = 0;
  /* the pidfd pins the process: if its start time matches the record's now, it is the
   * instance's init and not a reuse of its pid */
  if (fd < 0 || bivy_proc_start_time(pid, &now_start) < 0 || now_start != start) {
    if (fd >= 0) close(fd);
    return false;
  }
  in->pid_start = start;
  watch_pid(in, pid, fd, true);
  in->started_ns = bivy_now_ns();
  in->state = S_RUNNING;
  arm_running(in);
  inst_save(in);
  bivyd_event(in->name, "adopted", json_pack("{s:i}", "pid", (int)pid));
  return true;
}

void sv_detach(struct bivyd_inst *in) {
  launch_drop_spare(in);
  health_stop(in);
  as_disarm(in);
  oom_unwatch(in);
  loop_watch_close(&in->pidfd);
  loop_timer_stop(&in->t_restart);
  loop_timer_stop(&in->t_kill);
}

static void restart_due(struct loop_timer *t, uint64_t now) {
  (void)now;
  struct bivyd_inst *in = t->data;
  if (!in->removed && in->state == S_BACKOFF) sv_start_or_backoff(in);
}

static void kill_due(struct loop_timer *t, uint64_t now) {
  (void)now;
  struct bivyd_inst *in = t->data;
  if (!in->removed && in->state == S_STOPPING) inst_signal(in, SIGKILL);
}

void sv_start_fresh(struct bivyd_inst *in) {
  in->user_stopped = false;
  loop_timer_stop(&in->t_restart);
  in->failure_restarts = 0;
  in->quick_failures = 0;
  in->backoff_next_ms = 0;
  sv_start_or_backoff(in);
}
