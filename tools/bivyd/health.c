/* Health probes and OOM watching. A probe is one fd in the epoll loop: the pidfd of a
 * command run inside the instance (bivy_container_exec, detached), or a non-blocking TCP
 * socket made inside the instance's network namespace (tcp: connect; http: connect, GET,
 * status line). Its deadline and the next probe are timers of the single timerfd. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/bivyd.h"

static int64_t hget(struct bivyd_inst *in, const char *key) {
  return json_integer_value(json_object_get(json_object_get(in->spec, "health"), key));
}

void health_arm(struct bivyd_inst *in, bool first) {
  json_t *h = json_object_get(in->spec, "health");
  if (h == NULL) return;
  if (first) {
    snprintf(in->health, sizeof in->health, "starting");
    in->health_streak = 0;
    in->health_passed_once = false;
  }
  in->due_health = bivy_now_ns() + (uint64_t)hget(in, "interval_ms") * 1000000ull;
}

static void probe_close(struct bivyd_inst *in) {
  if (in->probe_fd >= 0) {
    bivyd_watch_del(in->probe_fd);
    if (in->probe == P_EXEC) {
      /* a probe still running is killed and reaped: it is our child */
      syscall(SYS_pidfd_send_signal, in->probe_fd, SIGKILL, NULL, 0);
      siginfo_t si;
      waitid(P_PIDFD, (id_t)in->probe_fd, &si, WEXITED);
    }
    close(in->probe_fd);
  }
  in->probe_fd = -1;
  in->probe = P_NONE;
  in->probe_sent = false;
  in->probe_len = 0;
  in->due_probe_timeout = 0;
}

void health_stop(struct bivyd_inst *in) {
  probe_close(in);
  in->due_health = 0;
}

static void probe_done(struct bivyd_inst *in, bool ok, const char *why) {
  probe_close(in);
  uint64_t now = bivy_now_ns();
  free(in->probe_output);
  in->probe_output = ok ? NULL : strdup(why);
  bool in_start_period = now - in->started_ns < (uint64_t)hget(in, "start_period_ms") * 1000000ull;
  if (ok) {
    bool changed = strcmp(in->health, "healthy") != 0;
    in->health_streak = 0;
    in->health_passed_once = true;
    snprintf(in->health, sizeof in->health, "healthy");
    if (changed) bivyd_event(in, "health", json_pack("{s:s}", "status", "healthy"));
  } else if (in_start_period && !in->health_passed_once) {
    /* Docker: failures in the start period do not count until a probe has passed */
    if (D.debug) bivyd_log("%s: health probe failed in the start period: %s", in->name, why);
  } else {
    in->health_streak++;
    D.health_fail_total++;
    bivyd_event(in, "health", json_pack("{s:s, s:s, s:i}", "status", "failing", "error", why, "streak",
                                        (int)in->health_streak));
    if (in->health_streak >= (unsigned)hget(in, "retries")) {
      snprintf(in->health, sizeof in->health, "unhealthy");
      bivyd_event(in, "unhealthy", json_pack("{s:s}", "error", why));
      if (in->rp.policy != BIVY_SV_NO && in->state == S_RUNNING) {
        in->kill_unhealthy = true;
        sv_kill(in, SIGKILL);
        return;
      }
    }
  }
  if (in->state == S_RUNNING) health_arm(in, false);
}

static int start_exec(struct bivyd_inst *in, bivy_error_t *err) {
  const char *cmd = json_string_value(json_object_get(json_object_get(in->spec, "health"), "cmd"));
  char *args[] = {"/bin/sh", "-c", (char *)cmd, NULL};
  struct bivy_exec_opts o = {.root = D.root, .id = in->cid, .args = args, .detach = true};
  /* the probe inherits our stdio: point it at /dev/null for the duration of the call */
  int saved[3];
  for (int i = 0; i < 3; i++) {
    saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
    dup2(D.devnull, i);
  }
  pid_t pid = -1;
  int r = bivy_container_exec(&o, &pid, err);
  for (int i = 0; i < 3; i++) {
    if (saved[i] >= 0) {
      dup2(saved[i], i);
      close(saved[i]);
    }
  }
  /* exec joined the instance's pid namespace for our future children: leave it, the
   * next instance must not be created inside this one */
  if (setns(D.self_pidns, CLONE_NEWPID) < 0) bivyd_log("setns back to our pid namespace: %s", strerror(errno));
  if (r < 0) return r;
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return bivy_error_errno(err, "pidfd_open probe %d", (int)pid);
  in->probe_fd = fd;
  in->probe_pid = pid;
  return bivyd_watch_add(fd, EPOLLIN, &in->w_probe);
}

static int start_tcp(struct bivyd_inst *in, int port, bivy_error_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/net", (int)in->pid);
  _cleanup_close_ int target = open(path, O_RDONLY | O_CLOEXEC);
  _cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (target < 0 || self < 0) return bivy_error_errno(err, "open network namespace");
  /* the socket is made inside the instance's network namespace (and stays bound to it),
   * so loopback-only services and isolated namespaces can be probed */
  if (setns(target, CLONE_NEWNET) < 0) return bivy_error_errno(err, "enter network namespace");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int saved = errno;
  if (setns(self, CLONE_NEWNET) < 0) bivyd_log("setns back to our network namespace: %s", strerror(errno));
  if (fd < 0) return bivy_error(err, saved, "socket");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (in->ip[0] == '\0' || inet_pton(AF_INET, in->ip, &sa.sin_addr) != 1) sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  in->probe_fd = fd;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
    return bivy_error_errno(err, "connect port %d", port);
  return bivyd_watch_add(fd, EPOLLOUT | EPOLLIN, &in->w_probe);
}

void health_start_probe(struct bivyd_inst *in) {
  json_t *h = json_object_get(in->spec, "health");
  if (h == NULL || in->probe != P_NONE) return;
  _cleanup_error_ bivy_error_t err = NULL;
  int r;
  if (json_object_get(h, "cmd")) {
    in->probe = P_EXEC;
    r = start_exec(in, &err);
  } else if (json_object_get(h, "tcp")) {
    in->probe = P_TCP;
    r = start_tcp(in, (int)json_integer_value(json_object_get(h, "tcp")), &err);
  } else {
    in->probe = P_HTTP;
    r = start_tcp(in, (int)json_integer_value(json_object_get(h, "http")), &err);
  }
  if (r < 0) {
    probe_done(in, false, err && err->msg ? err->msg : "probe failed");
    return;
  }
  in->due_probe_timeout = bivy_now_ns() + (uint64_t)hget(in, "timeout_ms") * 1000000ull;
}

void health_probe_timeout(struct bivyd_inst *in) {
  if (in->probe != P_NONE) probe_done(in, false, "timed out");
}

static void http_step(struct bivyd_inst *in, uint32_t events) {
  if (!in->probe_sent) {
    if (!(events & EPOLLOUT)) return;
    char req[512];
    const char *path = json_string_value(json_object_get(json_object_get(in->spec, "health"), "path"));
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: bivyd\r\nConnection: close\r\n\r\n",
                     path ? path : "/", in->ip[0] ? in->ip : "localhost");
    if (n < 0 || (size_t)n >= sizeof req || send(in->probe_fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
      probe_done(in, false, "http: send failed");
      return;
    }
    in->probe_sent = true;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &in->w_probe};
    epoll_ctl(D.epfd, EPOLL_CTL_MOD, in->probe_fd, &ev);
    return;
  }
  ssize_t k = recv(in->probe_fd, in->probe_buf + in->probe_len, sizeof in->probe_buf - 1 - in->probe_len, MSG_DONTWAIT);
  if (k < 0 && errno == EAGAIN) return;
  if (k > 0) in->probe_len += (size_t)k;
  in->probe_buf[in->probe_len] = '\0';
  if (k > 0 && in->probe_len < 12) return;
  /* "HTTP/1.x NNN": 2xx and 3xx pass, as in Docker's HTTP checks */
  char *sp = strchr(in->probe_buf, ' ');
  if (strncmp(in->probe_buf, "HTTP/", 5) == 0 && sp && (sp[1] == '2' || sp[1] == '3')) probe_done(in, true, NULL);
  else {
    char why[80];
    snprintf(why, sizeof why, "http: bad answer \"%.12s\"", in->probe_buf);
    for (char *p = why; *p; p++)
      if (*p == '\r' || *p == '\n') *p = ' ';
    probe_done(in, false, why);
  }
}

void health_probe_event(struct bivyd_inst *in, uint32_t events) {
  if (in->probe == P_EXEC) {
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t)in->probe_fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) return;
    bivyd_watch_del(in->probe_fd);
    close(in->probe_fd); /* reaped: nothing left to kill in probe_close */
    in->probe_fd = -1;
    char why[64];
    if (si.si_code == CLD_EXITED) snprintf(why, sizeof why, "command exited %d", si.si_status);
    else snprintf(why, sizeof why, "command killed by signal %d", si.si_status);
    probe_done(in, si.si_code == CLD_EXITED && si.si_status == 0, why);
    return;
  }
  if (in->probe == P_TCP || (in->probe == P_HTTP && !in->probe_sent)) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(in->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
      char why[96];
      snprintf(why, sizeof why, "connect: %s", strerror(soerr));
      probe_done(in, false, why);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    if (in->probe == P_TCP) {
      probe_done(in, true, NULL);
      return;
    }
  }
  http_step(in, events);
}

/* ---- OOM ---- */

/* The instance's cgroup, reopened from the runtime state when needed: kept open it would
 * cost a directory fd per controller per instance. Caller frees. */
struct bivy_cgroup *inst_cgroup(struct bivyd_inst *in) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_json_ json_t *st = NULL;
  struct bivy_cgroup *cg = NULL;
  if (bivy_state_load(D.root, in->cid, &st, &err) < 0) return NULL;
  json_t *cgj = json_object_get(st, "cgroup");
  if (cgj == NULL || bivy_cgroup_from_json(cgj, &cg, &err) < 0) {
    if (err && D.debug) bivyd_log("%s: cgroup: %s", in->name, err->msg);
    return NULL;
  }
  return cg;
}

void oom_watch(struct bivyd_inst *in) {
  oom_unwatch(in);
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_cgroup_ struct bivy_cgroup *cg = inst_cgroup(in);
  if (cg == NULL) return;
  bivy_cgroup_oom_count(cg, &in->oom_base, &err);
  in->oom_last = in->oom_base;
  /* the eventfd / inotify registration outlives the cgroup directory fds */
  int fd = bivy_cgroup_oom_fd(cg, &err);
  if (fd < 0) {
    if (D.debug) bivyd_log("%s: no OOM notification: %s", in->name, err->msg);
    return;
  }
  in->oom_fd = fd;
  bivyd_watch_add(fd, EPOLLIN, &in->w_oom);
}

uint64_t oom_count(struct bivyd_inst *in) {
  _cleanup_cgroup_ struct bivy_cgroup *cg = inst_cgroup(in);
  if (cg == NULL) return in->oom_last;
  _cleanup_error_ bivy_error_t err = NULL;
  uint64_t n = 0;
  if (bivy_cgroup_oom_count(cg, &n, &err) < 0) return in->oom_last;
  return n;
}

void oom_event(struct bivyd_inst *in) {
  bivy_cgroup_oom_drain(in->oom_fd);
  uint64_t n = oom_count(in);
  if (n > in->oom_last) {
    bivyd_event(in, "oom", json_pack("{s:I}", "oom_kills", (json_int_t)(n - in->oom_base)));
    in->oom_last = n;
  }
}

void oom_unwatch(struct bivyd_inst *in) {
  if (in->oom_fd >= 0) {
    bivyd_watch_del(in->oom_fd);
    close(in->oom_fd);
    in->oom_fd = -1;
  }
}
