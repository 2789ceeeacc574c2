/* OCI hooks: fork+exec each hook with the container state JSON on stdin, collect its output
 * for error messages, and kill it when its timeout expires. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/linux.h"
#include "runtime/util.h"

#define HOOK_OUTPUT_MAX 2048

const char *bivy_hook_kind_name(enum bivy_hook_kind kind) {
  switch (kind) {
    case BIVY_HOOK_PRESTART: return "prestart";
    case BIVY_HOOK_CREATE_RUNTIME: return "createRuntime";
    case BIVY_HOOK_CREATE_CONTAINER: return "createContainer";
    case BIVY_HOOK_START_CONTAINER: return "startContainer";
    case BIVY_HOOK_POSTSTART: return "poststart";
    case BIVY_HOOK_POSTSTOP: return "poststop";
    case BIVY_HOOK_KIND_COUNT: break;
  }
  return "unknown";
}

/* Put the whole state into a pipe before the hook starts, then close the write end: the hook
 * reads it and EOF, and a hook that never reads cannot block us or raise SIGPIPE. */
static int state_pipe(const char *state, int *rfd, bivy_error_t *err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return bivy_error_errno(err, "pipe");
  size_t len = state ? strlen(state) : 0;
  if (len > 65536 && fcntl(p[1], F_SETPIPE_SZ, (int)len) < 0) {
    int saved = errno;
    close(p[0]);
    close(p[1]);
    return bivy_error(err, saved, "state too large for the hook's stdin (%zu bytes)", len);
  }
  while (len > 0) {
    ssize_t w = write(p[1], state, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      close(p[0]);
      close(p[1]);
      return bivy_error(err, saved, "write state to hook stdin");
    }
    state += w;
    len -= (size_t)w;
  }
  close(p[1]);
  *rfd = p[0];
  return 0;
}

static void drain(int fd, char *buf, size_t *n) {
  for (;;) {
    char tmp[1024];
    ssize_t r = read(fd, tmp, sizeof(tmp));
    if (r <= 0) return;
    size_t k = (size_t)r;
    if (*n + k > HOOK_OUTPUT_MAX) k = HOOK_OUTPUT_MAX - *n;
    memcpy(buf + *n, tmp, k);
    *n += k;
  }
}

static int run_hook(const struct bivy_hook *h, const char *kind, size_t idx, const char *state,
                    bivy_error_t *err) {
  if (access(h->path, X_OK) < 0) return bivy_error_errno(err, "hook %s[%zu] %s", kind, idx, h->path);
  _cleanup_close_ int in = -1;
  int r = state_pipe(state, &in, err);
  if (r < 0) return bivy_error_wrap(err, "hook %s[%zu] %s", kind, idx, h->path);
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) return bivy_error_errno(err, "hook %s[%zu] %s: pipe", kind, idx, h->path);
  _cleanup_close_ int out_r = out[0];
  _cleanup_close_ int out_w = out[1];
  char *const default_args[] = {h->path, NULL};
  char *const empty_env[] = {NULL};
  pid_t pid = fork();
  if (pid < 0) return bivy_error_errno(err, "hook %s[%zu] %s: fork", kind, idx, h->path);
  if (pid == 0) {
    /* the hook gets state on stdin and our pipe as stdout/stderr; nothing else leaks (CLOEXEC) */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0) _exit(126);
    execve(h->path, h->args && h->args[0] ? h->args : default_args, h->env ? h->env : empty_env);
    /* only async-signal-safe calls after fork: a fixed message, the errno in the status */
    static const char msg[] = "exec failed";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(errno == ENOENT ? 127 : 126);
  }
  bivy_closep(&out_w);
  bivy_closep(&in);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  _cleanup_close_ int pidfd_c = pidfd;
  fcntl(out_r, F_SETFL, O_NONBLOCK);
  char output[HOOK_OUTPUT_MAX + 1];
  size_t n_out = 0;
  uint64_t deadline = h->timeout > 0 ? bivy_now_ns() + (uint64_t)h->timeout * 1000000000ull : 0;
  bool timed_out = false;
  int status = 0;
  for (;;) {
    /* exited? (poll on the pidfd wakes us; waitpid WNOHANG confirms) */
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return bivy_error_errno(err, "hook %s[%zu] %s: wait", kind, idx, h->path);
    int ms = -1;
    if (deadline) {
      uint64_t now = bivy_now_ns();
      if (now >= deadline) {
        timed_out = true;
        break;
      }
      ms = (int)((deadline - now) / 1000000ull) + 1;
    }
    if (pidfd < 0 && (ms < 0 || ms > 50)) ms = 50; /* no pidfd: poll the child */
    struct pollfd pfd[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = out_r, .events = POLLIN}};
    int pr = poll(pfd, 2, ms);
    if (pr < 0 && errno != EINTR) return bivy_error_errno(err, "hook %s[%zu] %s: poll", kind, idx, h->path);
    if (pr > 0 && (pfd[1].revents & (POLLIN | POLLHUP))) {
      size_t before = n_out;
      drain(out_r, output, &n_out);
      if (n_out == before && (pfd[1].revents & POLLHUP)) bivy_closep(&out_r); /* EOF: stop watching */
    }
  }
  if (timed_out) {
    /* kill only the hook we started, by pid(fd) */
    if (pidfd >= 0) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    else kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return bivy_error(err, ETIMEDOUT, "hook %s[%zu] %s: timed out after %d s", kind, idx, h->path, h->timeout);
  }
  if (out_r >= 0) drain(out_r, output, &n_out);
  while (n_out > 0 && (output[n_out - 1] == '\n' || output[n_out - 1] == ' ')) n_out--;
  output[n_out] = '\0';
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFSIGNALED(status))
    return bivy_error(err, ECHILD, "hook %s[%zu] %s: killed by signal %d%s%s", kind, idx, h->path, WTERMSIG(status),
                      n_out ? ": " : "", output);
  return bivy_error(err, ECHILD, "hook %s[%zu] %s: exit status %d%s%s", kind, idx, h->path, WEXITSTATUS(status),
                    n_out ? ": " : "", output);
}

int bivy_hooks_run(const struct bivy_config *c, enum bivy_hook_kind kind, const char *state_json,
                   bivy_error_t *err) {
  if (c == NULL || kind < 0 || kind >= BIVY_HOOK_KIND_COUNT) return 0;
  for (size_t i = 0; i < c->n_hooks[kind]; i++) {
    int r = run_hook(&c->hooks[kind][i], bivy_hook_kind_name(kind), i, state_json, err);
    if (r < 0) return r;
  }
  return 0;
}
