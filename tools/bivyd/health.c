/* bivyd layer 3 (supervision): health probes (exec, tcp, http). A probe is one fd in the epoll loop: the pidfd of a
 * command run inside the instance (bivy_container_exec, detached), or a non-blocking TCP
 * socket made inside the instance's network namespace (tcp: connect; http: connect, GET,
 * status line). Its deadline and the next probe are timers of the single timerfd. */
#include <arpa/inet.h>
#include "tools/bivyd/health.h"

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
#include "tools/bivyd/conf.h"
#include "tools/bivyd/daemon-log.h"
#include "tools/bivyd/event-stream.h"
#include "tools/bivyd/instance.h"
#include "tools/bivyd/loop.h"

enum probe_kind { P_NONE, P_EXEC, P_TCP, P_HTTP };

/* per instance, while it has a health check */
struct health_state {
  struct bivyd_inst *in;
  unsigned streak;          /* consecutive failures */
  bool passed_once;
  enum probe_kind probe;
  int probe_fd;             /* pidfd (exec) or socket (tcp/http) */
  pid_t probe_pid;
  struct loop_watch w_probe;
  bool probe_sent;          /* http: request written */
  char probe_buf[32];
  size_t probe_len;
  char *probe_output;       /* last failure reason */
  struct loop_timer t_next, t_timeout; /* next probe, probe deadline */
};

static int64_t hget(struct bivyd_inst *in, const char *key) {
  return json_integer_value(json_object_get(json_object_get(in->spec, "health"), key));
}

static void probe_due(struct loop_timer *t, uint64_t now);
static void probe_timed_out(struct loop_timer *t, uint64_t now);

static struct health_state *state_of(struct bivyd_inst *in) {
  if (in->hs) return in->hs;
  struct health_state *h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->in = in;
  h->probe_fd = -1;
  h->t_next = (struct loop_timer){.fn = probe_due, .data = h};
  h->t_timeout = (struct loop_timer){.fn = probe_timed_out, .data = h};
  in->hs = h;
  return h;
}

void health_arm(struct bivyd_inst *in, bool first) {
  if (json_object_get(in->spec, "health") == NULL) return;
  struct health_state *h = state_of(in);
  if (h == NULL) return;
  if (first) {
    snprintf(in->health, sizeof in->health, "starting");
    h->streak = 0;
    h->passed_once = false;
  }
  loop_timer_set(&h->t_next, bivy_now_ns() + (uint64_t)hget(in, "interval_ms") * 1000000ull);
}

static void probe_close(struct health_state *h) {
  if (h->probe_fd >= 0) {
    loop_watch_del(h->probe_fd);
    if (h->probe == P_EXEC) {
      /* a probe still running is killed and reaped: it is our child */
      syscall(SYS_pidfd_send_signal, h->probe_fd, SIGKILL, NULL, 0);
      siginfo_t si;
      waitid(P_PIDFD, (id_t)h->probe_fd, &si, WEXITED);
    }
    close(h->probe_fd);
  }
  h->probe_fd = -1;
  h->probe = P_NONE;
  h->probe_sent = false;
  h->probe_len = 0;
  loop_timer_stop(&h->t_timeout);
}

void health_stop(struct bivyd_inst *in) {
  struct health_state *h = in->hs;
  if (h == NULL) return;
  probe_close(h);
  loop_timer_stop(&h->t_next);
}

static void health_free(struct bivyd_inst *in) {
  health_stop(in);
  if (in->hs) free(in->hs->probe_output);
  free(in->hs);
  in->hs = NULL;
}

json_t *health_detail(struct bivyd_inst *in) {
  struct health_state *h = in->hs;
  return json_pack("{s:s, s:i, s:s?}", "status", in->health, "failing_streak", h ? (int)h->streak : 0, "last_error",
                   h ? h->probe_output : NULL);
}

static void probe_done(struct health_state *h, bool ok, const char *why) {
  struct bivyd_inst *in = h->in;
  probe_close(h);
  uint64_t now = bivy_now_ns();
  free(h->probe_output);
  h->probe_output = ok ? NULL : strdup(why);
  bool in_start_period = now - in->started_ns < (uint64_t)hget(in, "start_period_ms") * 1000000ull;
  if (ok) {
    bool changed = strcmp(in->health, "healthy") != 0;
    h->streak = 0;
    h->passed_once = true;
    snprintf(in->health, sizeof in->health, "healthy");
    if (changed) bivyd_event(in->name, "health", json_pack("{s:s}", "status", "healthy"));
  } else if (in_start_period && !h->passed_once) {
    /* Docker: failures in the start period do not count until a probe has passed */
    if (D.debug) bivyd_log("%s: health probe failed in the start period: %s", in->name, why);
  } else {
    h->streak++;
    M.health_fail_total++;
    bivyd_event(in->name, "health",
                json_pack("{s:s, s:s, s:i}", "status", "failing", "error", why, "streak", (int)h->streak));
    if (h->streak >= (unsigned)hget(in, "retries")) {
      snprintf(in->health, sizeof in->health, "unhealthy");
      bivyd_event(in->name, "unhealthy", json_pack("{s:s}", "error", why));
      if (in->rp.policy != BIVY_SV_NO && in->state == S_RUNNING) {
        /* supervision sees the exit (pidfd) and reads the reason from kill_unhealthy */
        in->kill_unhealthy = true;
        inst_signal(in, SIGKILL);
        return;
      }
    }
  }
  if (in->state == S_RUNNING) health_arm(in, false);
}

static int start_exec(struct health_state *h, bivy_error_t *err) {
  struct bivyd_inst *in = h->in;
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
  h->probe_fd = fd;
  h->probe_pid = pid;
  return loop_watch_add(fd, EPOLLIN, &h->w_probe);
}

static int start_tcp(struct health_state *h, int port, bivy_error_t *err) {
  struct bivyd_inst *in = h->in;
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
  h->probe_fd = fd;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
    return bivy_error_errno(err, "connect port %d", port);
  return loop_watch_add(fd, EPOLLOUT | EPOLLIN, &h->w_probe);
}

static void http_step(struct health_state *h, uint32_t events) {
  struct bivyd_inst *in = h->in;
  if (!h->probe_sent) {
    if (!(events & EPOLLOUT)) return;
    char req[512];
    const char *path = json_string_value(json_object_get(json_object_get(in->spec, "health"), "path"));
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: bivyd\r\nConnection: close\r\n\r\n",
                     path ? path : "/", in->ip[0] ? in->ip : "localhost");
    if (n < 0 || (size_t)n >= sizeof req || send(h->probe_fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
      probe_done(h, false, "http: send failed");
      return;
    }
    h->probe_sent = true;
    loop_watch_mod(h->probe_fd, EPOLLIN, &h->w_probe);
    return;
  }
  ssize_t k = recv(h->probe_fd, h->probe_buf + h->probe_len, sizeof h->probe_buf - 1 - h->probe_len, MSG_DONTWAIT);
  if (k < 0 && errno == EAGAIN) return;
  if (k > 0) h->probe_len += (size_t)k;
  h->probe_buf[h->probe_len] = '\0';
  if (k > 0 && h->probe_len < 12) return;
  /* "HTTP/1.x NNN": 2xx and 3xx pass, as in Docker's HTTP checks */
  char *sp = strchr(h->probe_buf, ' ');
  if (strncmp(h->probe_buf, "HTTP/", 5) == 0 && sp && (sp[1] == '2' || sp[1] == '3')) probe_done(h, true, NULL);
  else {
    char why[80];
    snprintf(why, sizeof why, "http: bad answer \"%.12s\"", h->probe_buf);
    for (char *p = why; *p; p++)
      if (*p == '\r' || *p == '\n') *p = ' ';
    probe_done(h, false, why);
  }
}

static void probe_ready(struct loop_watch *w, uint32_t events) {
  struct health_state *h = w->data;
  if (h->in->removed || h->probe == P_NONE) return;
  if (h->probe == P_EXEC) {
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t)h->probe_fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) return;
    loop_watch_del(h->probe_fd);
    close(h->probe_fd); /* reaped: nothing left to kill in probe_close */
    h->probe_fd = -1;
    char why[64];
    if (si.si_code == CLD_EXITED) snprintf(why, sizeof why, "command exited %d", si.si_status);
    else snprintf(why, sizeof why, "command killed by signal %d", si.si_status);
    probe_done(h, si.si_code == CLD_EXITED && si.si_status == 0, why);
    return;
  }
  if (h->probe == P_TCP || (h->probe == P_HTTP && !h->probe_sent)) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(h->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
      char why[96];
      snprintf(why, sizeof why, "connect: %s", strerror(soerr));
      probe_done(h, false, why);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    if (h->probe == P_TCP) {
      probe_done(h, true, NULL);
      return;
    }
  }
  http_step(h, events);
}

static void probe_due(struct loop_timer *t, uint64_t now) {
  struct health_state *h = t->data;
  struct bivyd_inst *in = h->in;
  json_t *hc = json_object_get(in->spec, "health");
  if (in->removed || in->state != S_RUNNING || hc == NULL || h->probe != P_NONE) return;
  _cleanup_error_ bivy_error_t err = NULL;
  int r;
  h->w_probe = (struct loop_watch){probe_ready, h};
  if (json_object_get(hc, "cmd")) {
    h->probe = P_EXEC;
    r = start_exec(h, &err);
  } else if (json_object_get(hc, "tcp")) {
    h->probe = P_TCP;
    r = start_tcp(h, (int)json_integer_value(json_object_get(hc, "tcp")), &err);
  } else {
    h->probe = P_HTTP;
    r = start_tcp(h, (int)json_integer_value(json_object_get(hc, "http")), &err);
  }
  if (r < 0) {
    probe_done(h, false, err && err->msg ? err->msg : "probe failed");
    return;
  }
  loop_timer_set(&h->t_timeout, now + (uint64_t)hget(in, "timeout_ms") * 1000000ull);
}

static void probe_timed_out(struct loop_timer *t, uint64_t now) {
  (void)now;
  struct health_state *h = t->data;
  if (h->probe != P_NONE) probe_done(h, false, "timed out");
}

void health_init(void) { inst_on_free_add(health_free); }
