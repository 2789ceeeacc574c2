/* The runtime <-> container-process sync protocol and small process helpers shared by
 * create and exec (see runtime/container-internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int bivy_sync_send(int sock, enum bivy_sync_type type, int code, int pid, const char *text, int fd) {
  struct bivy_sync_msg m = {.type = type, .code = code, .pid = pid};
  size_t len = offsetof(struct bivy_sync_msg, text);
  if (text) {
    snprintf(m.text, sizeof m.text, "%s", text);
    len += strlen(m.text) + 1;
  }
  struct iovec iov = {.iov_base = &m, .iov_len = len};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (n >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

int bivy_sync_recv(int sock, struct bivy_sync_msg *m, int *fd) {
  if (fd) *fd = -1;
  memset(m, 0, sizeof *m);
  struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n;
  do n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno == ECONNRESET ? -EPIPE : -errno;
  if (n == 0) return -EPIPE;
  m->text[sizeof m->text - 1] = '\0';
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      memcpy(&got, CMSG_DATA(c), sizeof got);
      if (fd && *fd < 0) *fd = got;
      else close(got);
    }
  }
  if ((size_t)n < offsetof(struct bivy_sync_msg, text)) return -EPROTO;
  return 0;
}

void bivy_sync_die(int sock, int status, const char *what, bivy_error_t *err) {
  char buf[2048];
  const char *msg = err && *err && (*err)->msg ? (*err)->msg : "unknown error";
  if (what) snprintf(buf, sizeof buf, "%s: %s", what, msg);
  else snprintf(buf, sizeof buf, "%s", msg);
  bivy_sync_send(sock, BIVY_SYNC_ERROR, err && *err ? -(*err)->status : -EINVAL, 0, buf, -1);
  _exit(status);
}

pid_t bivy_clone3(uint64_t flags, int cgroup_fd, int *pidfd) {
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = (uint64_t)(uintptr_t)pidfd;
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

int bivy_pidfd_open(pid_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -errno : fd;
}

void bivy_reset_signals(void) {
  /* the raw call: glibc's sigaction() refuses its reserved real-time signals (32, 33), which a
   * caller may still have ignored and would otherwise pass on */
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
  } dfl = {.handler = SIG_DFL};
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

int bivy_pidfd_send_signal(int pidfd, int sig) {
  return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

json_t *bivy_oci_state(const char *id, const char *status, pid_t pid, const char *bundle,
                       const struct bivy_config *cfg) {
  json_t *ann = json_object();
  for (size_t i = 0; cfg && i < cfg->n_annotations; i++)
    json_object_set_new(ann, cfg->annotations[i].key, json_string(cfg->annotations[i].value));
  json_t *s = json_object();
  json_object_set_new(s, "ociVersion", json_string(cfg && cfg->oci_version ? cfg->oci_version : "1.2.0"));
  json_object_set_new(s, "id", json_string(id));
  json_object_set_new(s, "status", json_string(status));
  if (pid > 0) json_object_set_new(s, "pid", json_integer(pid));
  json_object_set_new(s, "bundle", json_string(bundle ? bundle : ""));
  json_object_set_new(s, "annotations", ann);
  return s;
}

static const char *env_get(char *const *env, const char *key) {
  size_t kl = strlen(key);
  for (; env && *env; env++)
    if (strncmp(*env, key, kl) == 0 && (*env)[kl] == '=') return *env + kl + 1;
  return NULL;
}

static bool is_executable_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

char *bivy_find_executable(const char *name, char *const *env) {
  if (name == NULL || *name == '\0') {
    errno = ENOENT;
    return NULL;
  }
  if (strchr(name, '/')) {
    if (!is_executable_file(name)) {
      if (errno == 0) errno = EACCES;
      return NULL;
    }
    return strdup(name);
  }
  const char *path = env_get(env, "PATH");
  if (path == NULL) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int last = ENOENT;
  for (const char *p = path;;) {
    const char *e = strchrnul(p, ':');
    char *cand = NULL;
    int dl = (int)(e - p);
    if (asprintf(&cand, "%.*s/%s", dl ? dl : 1, dl ? p : ".", name) < 0) {
      errno = ENOMEM;
      return NULL;
    }
    if (is_executable_file(cand)) return cand;
    if (errno == EACCES) last = EACCES;
    free(cand);
    if (*e == '\0') break;
    p = e + 1;
  }
  errno = last;
  return NULL;
}

int bivy_prepare_fds(int preserve_fds, bivy_error_t *err) {
  unsigned first = 3u + (unsigned)preserve_fds;
  /* nothing of the runtime may leak into the container: every other fd closes at execve */
  if (syscall(SYS_close_range, first, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
    return bivy_error_errno(err, "close_range");
  for (int fd = 3; fd < (int)first; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0) continue;
    if (fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0) return bivy_error_errno(err, "--preserve-fds: fd %d", fd);
  }
  return 0;
}

int bivy_chdir_checked(const char *cwd, bivy_error_t *err) {
  if (chdir(cwd) < 0) return bivy_error_errno(err, "process.cwd: chdir %s", cwd);
  char buf[PATH_MAX];
  /* getcwd fails (ENOENT) or yields "(unreachable)..." when the cwd lies outside our root:
   * refuse it so a leaked host directory fd cannot become the container's cwd
   * (CVE-2024-21626) */
  if (getcwd(buf, sizeof buf) == NULL)
    return bivy_error(err, errno == ENOENT ? EPERM : errno, "process.cwd: %s is outside the container's root", cwd);
  if (buf[0] != '/') return bivy_error(err, EPERM, "process.cwd: %s is outside the container's root", cwd);
  return 0;
}

int bivy_saved_config_load(const char *root, const char *id, const char *bundle, struct bivy_config **out,
                           bivy_error_t *err) {
  _cleanup_free_ char *path = NULL;
  if (asprintf(&path, "%s/%s/config.json", root, id) < 0) return bivy_error(err, ENOMEM, "config");
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = bivy_read_file_at(AT_FDCWD, path, &text, &len, err);
  if (r < 0) return r;
  return bivy_config_parse(text, len, bundle, out, err);
}
