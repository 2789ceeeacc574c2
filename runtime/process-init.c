/* The container init: the child of clone3 in bivy_container_create. It runs in the
 * runtime's memory image (no re-exec of any binary), sets the container up step by step
 * under the parent's control (sync protocol, runtime/container-internal.h), then blocks on
 * the exec fifo until `bivy start`, and finally execs the user program. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container-internal.h"

#define KEYCTL_JOIN_SESSION_KEYRING 1

/* Write an error into the exec fifo (read by `bivy start`) and exit. */
__attribute__((noreturn)) static void fifo_die(int fifo, int status, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 && fifo >= 0) {
    ssize_t w = write(fifo, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    (void)w;
  }
  _exit(status);
}

static void expect(int sync, enum bivy_sync_type want, struct bivy_sync_msg *m) {
  int r = bivy_sync_recv(sync, m, NULL);
  /* the parent went away or broke the protocol: nothing sensible is left to do */
  if (r < 0 || m->type != (uint32_t)want) _exit(1);
}

void bivy_init_main(struct bivy_init_args *a) {
  const struct bivy_config *c = a->cfg;
  int sync = a->sync_fd;
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_sync_msg m;

  if (a->lock_fd >= 0) close(a->lock_fd);

  /* die with the runtime while it still drives us (cleared before READY) */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* non-dumpable until execve: container processes cannot open /proc/PID/exe (the bivy
   * binary) or our fds, nor ptrace us (CVE-2019-5736 class) */
  prctl(PR_SET_DUMPABLE, 0);

  expect(sync, BIVY_SYNC_GO, &m);
  pid_t host_pid = m.pid;
  /* caller-supplied stdio (bivyd's log files): dup2 clears O_CLOEXEC on 0-2 only, the
   * originals are closed at execve by bivy_prepare_fds */
  for (int i = 0; a->stdio && i < 3; i++)
    if (a->stdio[i] != i && dup2(a->stdio[i], i) < 0) {
      bivy_error_errno(&err, "stdio: dup2 fd %d", a->stdio[i]);
      bivy_sync_die(sync, 1, NULL, &err);
    }

  /* Join namespaces given by path: the user namespace first so that the others (and the
   * ones we unshare next) are owned by it. */
  if (a->user_ns_fd >= 0 && setns(a->user_ns_fd, CLONE_NEWUSER) < 0) {
    bivy_error_errno(&err, "linux.namespaces: join user namespace");
    bivy_sync_die(sync, 1, NULL, &err);
  }
  /* the runtime's uid is not mapped in the container's user namespace: become the
   * namespace's root (mapped by now) so that files we create get a valid owner */
  if (a->userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
    bivy_error_errno(&err, "become root in the user namespace (is uid/gid 0 mapped?)");
    bivy_sync_die(sync, 1, NULL, &err);
  }
  if (a->unshare_flags && unshare(a->unshare_flags) < 0) {
    bivy_error_errno(&err, "unshare namespaces");
    bivy_sync_die(sync, 1, NULL, &err);
  }
  for (int t = 0; t < BIVY_NS_COUNT; t++) {
    if (a->ns_fds[t] < 0) continue;
    if (setns(a->ns_fds[t], bivy_ns_clone_flag((enum bivy_ns_type)t)) < 0) {
      const struct bivy_namespace *ns = bivy_config_ns(c, (enum bivy_ns_type)t);
      bivy_error_errno(&err, "linux.namespaces: join %s namespace %s", bivy_ns_name((enum bivy_ns_type)t),
                       ns && ns->path ? ns->path : "");
      bivy_sync_die(sync, 1, NULL, &err);
    }
    close(a->ns_fds[t]);
  }
  if (a->user_ns_fd >= 0) close(a->user_ns_fd);
  /* a new cgroup namespace is rooted at the cgroup we are in: unshare it only now that the
   * runtime has moved us into the container's cgroup */
  if (a->unshare_cgroupns && unshare(CLONE_NEWCGROUP) < 0) {
    bivy_error_errno(&err, "unshare cgroup namespace");
    bivy_sync_die(sync, 1, NULL, &err);
  }
  /* a fresh session keyring: the container must not see the runtime's keys */
  if (!a->no_new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS &&
      errno != EPERM) {
    bivy_error_errno(&err, "join a new session keyring");
    bivy_sync_die(sync, 1, NULL, &err);
  }

  if (bivy_plan_run(a->plan, c->root_path, 0, &err) < 0) bivy_sync_die(sync, 1, "rootfs", &err);
  if (bivy_sync_send(sync, BIVY_SYNC_PHASE0_DONE, 0, 0, NULL, -1) < 0) _exit(1);
  expect(sync, BIVY_SYNC_HOOKS_DONE, &m);

  if (c->n_hooks[BIVY_HOOK_CREATE_CONTAINER] > 0) {
    _cleanup_json_ json_t *st = bivy_oci_state(a->id, "creating", host_pid, c->bundle, c);
    _cleanup_free_ char *txt = json_dumps(st, JSON_COMPACT);
    if (bivy_hooks_run(c, BIVY_HOOK_CREATE_CONTAINER, txt, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
  }
  if (bivy_plan_run(a->plan, c->root_path, 1, &err) < 0) bivy_sync_die(sync, 1, "rootfs", &err);
  if (bivy_set_hostname(c, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);

  const struct bivy_process *p = c->has_process ? &c->process : NULL;
  int notify = -1;
  bool seccomp_done = false;
  _cleanup_free_ char *exe = NULL;
  if (p) {
    if (p->terminal) {
      _cleanup_close_ int master = -1;
      if (bivy_terminal_setup(p, &master, &err) < 0) bivy_sync_die(sync, 1, "process.terminal", &err);
      if (bivy_sync_send(sync, BIVY_SYNC_PTY, 0, 0, NULL, master) < 0) _exit(1);
    } else {
      /* a session of its own, as runc does: the caller's terminal cannot signal it directly,
       * and CRIU can checkpoint the pid namespace (its session leader must be inside) */
      setsid();
    }
    if (bivy_apply_rlimits(p, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
    /* without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still
     * hold it (as runc does); with no_new_privs it waits until the very end */
    if (a->seccomp && !p->no_new_privileges) {
      if (bivy_seccomp_install(a->seccomp, &notify, &err) < 0) bivy_sync_die(sync, 1, "linux.seccomp", &err);
      seccomp_done = true;
    }
    if (bivy_apply_user_and_caps(p, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
    /* a uid change resets dumpable to fs.suid_dumpable: stay non-dumpable until execve */
    prctl(PR_SET_DUMPABLE, 0);
    /* look the program up now, as the container user, so that a missing binary fails
     * create (and leaves nothing) instead of surfacing only at start */
    exe = bivy_find_executable(p->args[0], p->env);
    if (exe == NULL) {
      if (strchr(p->args[0], '/')) bivy_error(&err, errno, "process.args[0]: exec \"%s\"", p->args[0]);
      else bivy_error_plain(&err, ENOENT, "process.args[0]: exec \"%s\": executable file not found in $PATH", p->args[0]);
      bivy_sync_die(sync, 127, NULL, &err);
    }
  }
  if (bivy_prepare_fds(a->preserve_fds, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
  if (p && bivy_chdir_checked(p->cwd ? p->cwd : "/", &err) < 0) bivy_sync_die(sync, 1, NULL, &err);

  /* seccomp last: every setup step above may need syscalls the profile forbids */
  if (a->seccomp && !seccomp_done && bivy_seccomp_install(a->seccomp, &notify, &err) < 0) bivy_sync_die(sync, 1, "linux.seccomp", &err);
  if (notify >= 0) {
    if (bivy_sync_send(sync, BIVY_SYNC_SECCOMP, 0, 0, NULL, notify) < 0) _exit(1);
    close(notify);
  }

  /* from here on we outlive the runtime */
  prctl(PR_SET_PDEATHSIG, 0);
  if (bivy_sync_send(sync, BIVY_SYNC_READY, 0, 0, NULL, -1) < 0) _exit(1);
  close(sync);

  /* Block until `bivy start` opens the fifo for reading. Reopening through /proc/self/fd
   * works after pivot_root, where the state directory is out of reach. */
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", a->fifo_fd);
  int fifo = open(path, O_WRONLY | O_CLOEXEC);
  if (fifo < 0) _exit(1);
  close(a->fifo_fd);

  if (p == NULL) fifo_die(fifo, 1, "config.json has no process to start");
  if (c->n_hooks[BIVY_HOOK_START_CONTAINER] > 0) {
    _cleanup_json_ json_t *st = bivy_oci_state(a->id, "running", host_pid, c->bundle, c);
    _cleanup_free_ char *txt = json_dumps(st, JSON_COMPACT);
    if (bivy_hooks_run(c, BIVY_HOOK_START_CONTAINER, txt, &err) < 0) fifo_die(fifo, 1, "%s", err->msg);
  }
  bivy_reset_signals();
  execve(exe, p->args, p->env ? p->env : (char *[]){NULL});
  fifo_die(fifo, 127, "exec %s: %s", exe, strerror(errno));
}
