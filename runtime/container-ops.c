/* start, state, kill, delete, pids of an existing container, and waiting with signal
 * forwarding (run, exec). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "netns/netns.h"
#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/state.h"
#include "runtime/util.h"

int bivy_signal_parse(const char *s) {
  if (s == NULL || *s == '\0') return -EINVAL;
  int64_t n;
  if (isdigit((unsigned char)*s)) {
    if (bivy_parse_i64(s, &n) < 0 || n < 1 || n > SIGRTMAX) return -EINVAL;
    return (int)n;
  }
  char up[32];
  size_t i;
  for (i = 0; s[i] && i < sizeof up - 1; i++) up[i] = (char)toupper((unsigned char)s[i]);
  up[i] = '\0';
  if (s[i]) return -EINVAL;
  const char *name = strncmp(up, "SIG", 3) == 0 ? up + 3 : up;
  for (int sig = 1; sig < SIGRTMIN; sig++) {
    const char *ab = sigabbrev_np(sig);
    if (ab && strcmp(ab, name) == 0) return sig;
  }
  if (strncmp(name, "RTMIN", 5) == 0 || strncmp(name, "RTMAX", 5) == 0) {
    bool min = strncmp(name, "RTMIN", 5) == 0;
    int base = min ? SIGRTMIN : SIGRTMAX;
    if (name[5] == '\0') return base;
    if ((name[5] == '+' && min) || (name[5] == '-' && !min)) {
      if (bivy_parse_i64(name + 6, &n) < 0 || n < 0) return -EINVAL;
      int sig = min ? base + (int)n : base - (int)n;
      if (sig >= SIGRTMIN && sig <= SIGRTMAX) return sig;
    }
  }
  return -EINVAL;
}

/* Locked, loaded state with its live status. */
struct held {
  int lock;
  json_t *st;
  const char *status;
};
static void held_release(struct held *h) {
  if (h->lock >= 0) close(h->lock);
  json_decref(h->st);
}
#define _cleanup_held_ _cleanup_(held_release)

static int hold(const char *root, const char *id, struct held *h, bivy_error_t *err) {
  h->lock = -1;
  h->st = NULL;
  int r = bivy_state_lock(root, id, err);
  if (r < 0) return r;
  h->lock = r;
  r = bivy_state_load(root, id, &h->st, err);
  if (r < 0) return r;
  h->status = bivy_state_refresh(root, id, h->st);
  return 0;
}

static pid_t st_pid(json_t *st) { return (pid_t)json_integer_value(json_object_get(st, "pid")); }
static const char *st_str(json_t *st, const char *k) {
  const char *v = json_string_value(json_object_get(st, k));
  return v ? v : "";
}

/* A pidfd for the container init that is guaranteed to be the recorded process (not a
 * reused pid): open the pidfd first, then check the start time. -ESRCH when gone. */
static int init_pidfd(json_t *st) {
  pid_t pid = st_pid(st);
  if (pid <= 0) return -ESRCH;
  int fd = bivy_pidfd_open(pid);
  if (fd < 0) return fd;
  unsigned long long start = 0;
  if (bivy_proc_start_time(pid, &start) < 0 ||
      (json_int_t)start != json_integer_value(json_object_get(st, "pid_start"))) {
    close(fd);
    return -ESRCH;
  }
  return fd;
}

static json_t *oci_view(json_t *st) {
  json_t *o = json_object();
  json_object_set(o, "ociVersion", json_object_get(st, "ociVersion"));
  json_object_set(o, "id", json_object_get(st, "id"));
  json_object_set(o, "status", json_object_get(st, "status"));
  bool stopped = strcmp(st_str(st, "status"), "stopped") == 0;
  json_object_set_new(o, "pid", json_integer(stopped ? 0 : st_pid(st)));
  json_object_set(o, "bundle", json_object_get(st, "bundle"));
  json_object_set(o, "rootfs", json_object_get(st, "rootfs"));
  json_object_set(o, "created", json_object_get(st, "created"));
  json_object_set_new(o, "owner", json_string(""));
  json_t *ann = json_object_get(st, "annotations");
  json_object_set_new(o, "annotations", ann ? json_incref(ann) : json_object());
  return o;
}

int bivy_container_state(const char *root, const char *id, json_t **out, bivy_error_t *err) {
  _cleanup_held_ struct held h;
  int r = hold(root, id, &h, err);
  if (r < 0) return r;
  *out = oci_view(h.st);
  return 0;
}

/* Whether the state says that config.json has no hooks of this kind (states of older bivy
 * versions do not say: then config.json decides). */
static bool surely_no_hooks(json_t *st, enum bivy_hook_kind kind) {
  json_t *later = json_object_get(st, "later_hooks");
  if (!json_is_array(later)) return false;
  size_t i;
  json_t *v;
  json_array_foreach(later, i, v) if (strcmp(json_string_value(v) ?: "", bivy_hook_kind_name(kind)) == 0) return false;
  return true;
}

static void run_hooks_warn(const char *root, const char *id, json_t *st, enum bivy_hook_kind kind) {
  if (surely_no_hooks(st, kind)) return;
  _cleanup_config_ struct bivy_config *c = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (bivy_saved_config_load(root, id, st_str(st, "bundle"), &c, &e) < 0) {
    fprintf(stderr, "bivy: warning: %s: hooks skipped: %s\n", id, e->msg);
    return;
  }
  if (c->n_hooks[kind] == 0) return;
  _cleanup_json_ json_t *o = oci_view(st);
  _cleanup_free_ char *txt = json_dumps(o, JSON_COMPACT);
  /* the spec makes poststart/poststop failures warnings, not errors */
  if (bivy_hooks_run(c, kind, txt, &e) < 0) fprintf(stderr, "bivy: warning: %s: %s\n", id, e->msg);
}

int bivy_container_start(const char *root, const char *id, bivy_error_t *err) {
  _cleanup_held_ struct held h;
  int r = hold(root, id, &h, err);
  if (r < 0) return r;
  if (strcmp(h.status, "created") != 0)
    return bivy_error_plain(err, EINVAL, "cannot start container %s: it is %s, not created", id, h.status);
  if (!json_is_true(json_object_get(h.st, "has_process")))
    return bivy_error_plain(err, EINVAL, "cannot start container %s: config.json has no process", id);
  _cleanup_free_ char *fifo_path = bivy_state_path(root, id, "exec.fifo");
  if (fifo_path == NULL) return bivy_error(err, ENOMEM, "start %s", id);
  _cleanup_close_ int pidfd = init_pidfd(h.st);
  if (pidfd < 0) return bivy_error_plain(err, ESRCH, "cannot start container %s: its init is gone", id);
  /* O_NONBLOCK: never hang if the init died; poll tells when it has exec'd (EOF) */
  _cleanup_close_ int fifo = open(fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0) return bivy_error_errno(err, "start %s: open %s", id, fifo_path);
  char msg[2048];
  size_t got = 0;
  bool done = false;
  while (!done) {
    struct pollfd pf[2] = {{.fd = fifo, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return bivy_error_errno(err, "start %s: poll", id);
    }
    if (pf[0].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(fifo, msg + got, sizeof msg - 1 - got);
      if (n > 0) got += (size_t)n;
      if (n == 0 || got >= sizeof msg - 1) done = true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) done = true;
    } else if (pf[1].revents) {
      ssize_t n = read(fifo, msg + got, sizeof msg - 1 - got);
      if (n > 0) got += (size_t)n;
      done = true;
    }
  }
  msg[got] = '\0';
  unlink(fifo_path);
  if (got > 0) return bivy_error_plain(err, EINVAL, "start %s: %s", id, msg);
  json_object_set_new(h.st, "status", json_string("running"));
  r = bivy_state_save(root, id, h.st, err);
  if (r < 0) return r;
  run_hooks_warn(root, id, h.st, BIVY_HOOK_POSTSTART);
  return 0;
}

int bivy_container_kill(const char *root, const char *id, int sig, bool all, bivy_error_t *err) {
  _cleanup_held_ struct held h;
  int r = hold(root, id, &h, err);
  if (r < 0) return r;
  if (all) {
    json_t *cgj = json_object_get(h.st, "cgroup");
    _cleanup_cgroup_ struct bivy_cgroup *cg = NULL;
    if (cgj == NULL) return bivy_error_plain(err, ENOENT, "kill --all %s: no cgroup recorded", id);
    r = bivy_cgroup_from_json(cgj, &cg, err);
    if (r < 0) return bivy_error_wrap(err, "kill %s", id);
    r = bivy_cgroup_kill(cg, sig, err);
    if (r < 0) return bivy_error_wrap(err, "kill %s", id);
    return 0;
  }
  if (strcmp(h.status, "stopped") == 0) return bivy_error_plain(err, ESRCH, "cannot kill container %s: it is not running", id);
  /* a pidfd, checked against the recorded start time: never signal a reused pid */
  _cleanup_close_ int pidfd = init_pidfd(h.st);
  if (pidfd < 0) return bivy_error_plain(err, ESRCH, "cannot kill container %s: it is not running", id);
  r = bivy_pidfd_send_signal(pidfd, sig);
  if (r < 0) return bivy_error(err, -r, "kill %s: signal %d", id, sig);
  return 0;
}

/* Wait (bounded) until the pidfd's process has exited. */
static void wait_gone(int pidfd, int ms) {
  struct pollfd pf = {.fd = pidfd, .events = POLLIN};
  while (poll(&pf, 1, ms) < 0 && errno == EINTR) {
  }
}

int bivy_container_delete(const char *root, const char *id, bool force, bivy_error_t *err) {
  _cleanup_held_ struct held h;
  int r = hold(root, id, &h, err);
  if (r == -ENOENT && force && h.lock >= 0) {
    /* locked, yet no state.json: a create whose process was killed before it saved the
     * state (bivyd SIGKILLed mid-create). Nothing runs from it, but it blocks the ID. */
    bivy_error_release(err);
    return bivy_state_remove(root, id, err);
  }
  if (r < 0) return r;
  if (strcmp(h.status, "stopped") != 0 && !force)
    return bivy_error_plain(err, EBUSY, "cannot delete container %s: it is %s (stop it first or use --force)", id, h.status);
  _cleanup_cgroup_ struct bivy_cgroup *cg = NULL;
  json_t *cgj = json_object_get(h.st, "cgroup");
  if (cgj && bivy_cgroup_from_json(cgj, &cg, err) < 0) {
    fprintf(stderr, "bivy: warning: delete %s: %s\n", id, (*err)->msg);
    cg = NULL;
  }
  if (strcmp(h.status, "stopped") != 0) {
    _cleanup_close_ int pidfd = init_pidfd(h.st);
    if (cg) {
      _cleanup_error_ bivy_error_t e = NULL;
      bivy_cgroup_kill(cg, SIGKILL, &e);
      /* frozen tasks only die once thawed */
      if (strcmp(h.status, "paused") == 0) bivy_cgroup_freeze(cg, false, &e);
    }
    if (pidfd >= 0) {
      bivy_pidfd_send_signal(pidfd, SIGKILL);
      wait_gone(pidfd, 10000);
    }
  }
  if (cg) {
    r = bivy_cgroup_destroy(cg, err);
    if (r < 0) return bivy_error_wrap(err, "delete %s", id);
  }
  json_t *net = json_object_get(h.st, "net");
  if (net) {
    r = bivy_net_teardown(root, id, net, err);
    if (r < 0) return bivy_error_wrap(err, "delete %s", id);
  }
  json_object_set_new(h.st, "status", json_string("stopped"));
  run_hooks_warn(root, id, h.st, BIVY_HOOK_POSTSTOP);
  r = bivy_state_remove(root, id, err);
  if (r < 0) return bivy_error_wrap(err, "delete %s", id);
  return 0;
}

int bivy_container_pids(const char *root, const char *id, pid_t **pids, size_t *n, bivy_error_t *err) {
  _cleanup_held_ struct held h;
  int r = hold(root, id, &h, err);
  if (r < 0) return r;
  json_t *cgj = json_object_get(h.st, "cgroup");
  if (cgj == NULL) return bivy_error_plain(err, ENOENT, "container %s: no cgroup recorded", id);
  _cleanup_cgroup_ struct bivy_cgroup *cg = NULL;
  r = bivy_cgroup_from_json(cgj, &cg, err);
  if (r < 0) return r;
  return bivy_cgroup_pids(cg, pids, n, err);
}

int bivy_wait_forward(int pidfd, pid_t pid, bivy_error_t *err) {
  (void)pid;
  static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  sigset_t set, old;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) sigaddset(&set, fwd[i]);
  if (sigprocmask(SIG_BLOCK, &set, &old) < 0) return bivy_error_errno(err, "sigprocmask");
  _cleanup_close_ int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    int r = bivy_error_errno(err, "signalfd");
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
  }
  int status = -1;
  for (;;) {
    struct pollfd pf[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      status = bivy_error_errno(err, "poll");
      break;
    }
    if (pf[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) bivy_pidfd_send_signal(pidfd, (int)si.ssi_signo);
    }
    if (pf[0].revents) {
      siginfo_t si = {0};
      if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0) {
        if (errno == EINTR) continue;
        status = bivy_error_errno(err, "waitid");
        break;
      }
      status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
      break;
    }
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  return status;
}
