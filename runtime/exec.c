/* bivy_container_exec: run a process inside a running container.
 *
 * The runtime joins the container's pid namespace for its children only
 * (setns(pidfd, CLONE_NEWPID)), then clone3s the process straight into the container's
 * cgroup (CLONE_INTO_CGROUP on v2, else it enters it before the child goes on). The child
 * joins the other namespaces in one setns(pidfd, flags) call, takes the init's root,
 * applies the process config (defaults from the container's config) and execs. The sync
 * socket is O_CLOEXEC: EOF means the execve succeeded; an ERROR message says what failed. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/state.h"
#include "runtime/util.h"

struct exec_child {
  const struct bivy_process *p;
  struct bivy_seccomp *sc;
  int sync_fd, lock_fd, pidfd, root_fd;
  int ns_flags;
  int preserve_fds;
};

__attribute__((noreturn)) static void exec_child_main(struct exec_child *a) {
  _cleanup_error_ bivy_error_t err = NULL;
  int sync = a->sync_fd;
  if (a->lock_fd >= 0) close(a->lock_fd); /* the state lock must not outlive the runtime */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* non-dumpable until execve: processes already in the container cannot open
   * /proc/PID/exe (the bivy binary) or our fds, nor ptrace us (CVE-2019-5736 class) */
  prctl(PR_SET_DUMPABLE, 0);
  struct bivy_sync_msg m;
  if (bivy_sync_recv(sync, &m, NULL) < 0 || m.type != BIVY_SYNC_GO) _exit(1);

  /* every namespace of the init at once (the kernel joins the user namespace first) */
  if (a->ns_flags && setns(a->pidfd, a->ns_flags) < 0) {
    bivy_error_errno(&err, "join the container's namespaces (0x%x)", a->ns_flags);
    bivy_sync_die(sync, 1, NULL, &err);
  }
  /* the init's root (pivot_root or chroot): never stay at a host directory */
  if (fchdir(a->root_fd) < 0 || chroot(".") < 0) {
    bivy_error_errno(&err, "enter the container's root");
    bivy_sync_die(sync, 1, NULL, &err);
  }
  close(a->root_fd);
  close(a->pidfd);
  const struct bivy_process *p = a->p;
  if (p->terminal) {
    _cleanup_close_ int master = -1;
    if (bivy_terminal_setup(p, &master, &err) < 0) bivy_sync_die(sync, 1, "--tty", &err);
    if (bivy_sync_send(sync, BIVY_SYNC_PTY, 0, 0, NULL, master) < 0) _exit(1);
  }
  if (bivy_apply_rlimits(p, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
  int notify = -1;
  bool seccomp_done = false;
  /* without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we hold it */
  if (a->sc && !p->no_new_privileges) {
    if (bivy_seccomp_install(a->sc, &notify, &err) < 0) bivy_sync_die(sync, 1, "linux.seccomp", &err);
    seccomp_done = true;
  }
  if (bivy_apply_user_and_caps(p, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
  /* a uid change resets dumpable to fs.suid_dumpable: stay non-dumpable until execve */
  prctl(PR_SET_DUMPABLE, 0);
  _cleanup_free_ char *exe = bivy_find_executable(p->args[0], p->env);
  if (exe == NULL) {
    if (strchr(p->args[0], '/')) bivy_error(&err, errno, "exec \"%s\"", p->args[0]);
    else bivy_error_plain(&err, ENOENT, "exec \"%s\": executable file not found in $PATH", p->args[0]);
    bivy_sync_die(sync, 127, NULL, &err);
  }
  if (bivy_prepare_fds(a->preserve_fds, &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
  if (bivy_chdir_checked(p->cwd ? p->cwd : "/", &err) < 0) bivy_sync_die(sync, 1, NULL, &err);
  /* seccomp last: the steps above may need syscalls the profile forbids */
  if (a->sc && !seccomp_done && bivy_seccomp_install(a->sc, &notify, &err) < 0) bivy_sync_die(sync, 1, "linux.seccomp", &err);
  if (notify >= 0) close(notify); /* exec'd processes do not get their own listener */
  /* a detached process outlives bivy exec */
  prctl(PR_SET_PDEATHSIG, 0);
  bivy_reset_signals();
  execve(exe, p->args, p->env ? p->env : (char *[]){NULL});
  bivy_error_errno(&err, "exec %s", exe);
  bivy_sync_die(sync, 127, NULL, &err);
}

static int add_cap(struct bivy_process *p, const char *name, bivy_error_t *err) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s%s", strncasecmp(name, "CAP_", 4) == 0 ? "" : "CAP_", name);
  cap_value_t v;
  if (cap_from_name(buf, &v) < 0 || v < 0 || v > 63) return bivy_error_plain(err, EINVAL, "--cap: unknown capability \"%s\"", name);
  uint64_t bit = 1ull << v;
  p->has_caps = true;
  p->caps.bounding |= bit;
  p->caps.effective |= bit;
  p->caps.permitted |= bit;
  p->caps.inheritable |= bit;
  p->caps.ambient |= bit;
  return 0;
}

/* The container's env with overrides (K=V replaces K). Strings are borrowed. */
static char **merge_env(char **base, char **over) {
  size_t nb = 0, no = 0;
  while (base && base[nb]) nb++;
  while (over && over[no]) no++;
  char **v = calloc(nb + no + 1, sizeof *v);
  if (v == NULL) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < nb; i++) {
    size_t kl = strcspn(base[i], "=");
    bool replaced = false;
    for (size_t j = 0; j < no; j++)
      if (strncmp(over[j], base[i], kl) == 0 && over[j][kl] == '=') replaced = true;
    if (!replaced) v[n++] = base[i];
  }
  for (size_t j = 0; j < no; j++) v[n++] = over[j];
  return v;
}

static int ns_differs(pid_t pid, const char *name, bool *differs) {
  char a[64], b[64];
  struct stat sa, sb;
  snprintf(a, sizeof a, "/proc/%d/ns/%s", (int)pid, name);
  snprintf(b, sizeof b, "/proc/self/ns/%s", name);
  if (stat(a, &sa) < 0) return errno == ENOENT ? (*differs = false, 0) : -errno;
  if (stat(b, &sb) < 0) return -errno;
  *differs = sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev;
  return 0;
}

static void sc_freep(struct bivy_seccomp **s) {
  if (*s) bivy_seccomp_free(*s);
}
static void proc_clearp(struct bivy_process *p) { bivy_process_clear(p); }

static int kill_wait(int pidfd, int r) {
  bivy_pidfd_send_signal(pidfd, SIGKILL);
  siginfo_t si;
  waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
  return r;
}

int bivy_container_exec(const struct bivy_exec_opts *o, pid_t *pid_out, bivy_error_t *err) {
  uint64_t t0 = bivy_now_ns();
  _cleanup_(proc_clearp) struct bivy_process fileproc = {0};
  _cleanup_(sc_freep) struct bivy_seccomp *sc = NULL;
  _cleanup_close_ int sync = -1, cpidfd = -1;
  _cleanup_free_ char *cache = NULL;
  _cleanup_close_ int lock = bivy_state_lock(o->root, o->id, err);
  if (lock < 0) return lock;
  _cleanup_json_ json_t *st = NULL;
  int r = bivy_state_load(o->root, o->id, &st, err);
  if (r < 0) return r;
  const char *status = bivy_state_refresh(o->root, o->id, st);
  if (strcmp(status, "running") != 0)
    return bivy_error_plain(err, EINVAL, "cannot exec in container %s: it is %s, not running", o->id, status);
  const char *bundle = json_string_value(json_object_get(st, "bundle"));
  _cleanup_config_ struct bivy_config *cfg = NULL;
  r = bivy_saved_config_load(o->root, o->id, bundle ? bundle : "/", &cfg, err);
  if (r < 0) return bivy_error_wrap(err, "exec %s: container config", o->id);

  /* the process: --process FILE, or the container's process with the overrides */
  struct bivy_process proc;
  _cleanup_free_ char **envv = NULL;
  if (o->process_file) {
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    r = bivy_read_file_at(AT_FDCWD, o->process_file, &text, &len, err);
    if (r < 0) return bivy_error_wrap(err, "--process");
    json_error_t je;
    _cleanup_json_ json_t *j = json_loadb(text, len, 0, &je);
    if (j == NULL) return bivy_error_plain(err, EINVAL, "--process %s: line %d: %s", o->process_file, je.line, je.text);
    r = bivy_process_parse(j, "process", &fileproc, err);
    if (r < 0) return bivy_error_wrap(err, "--process %s", o->process_file);
    proc = fileproc;
  } else {
    if (o->args == NULL || o->args[0] == NULL) return bivy_error_plain(err, EINVAL, "exec: no command given");
    if (cfg->has_process) proc = cfg->process;
    else memset(&proc, 0, sizeof proc);
    proc.args = o->args;
    envv = merge_env(proc.env, o->env);
    if (envv == NULL) return bivy_error(err, ENOMEM, "exec env");
    proc.env = envv;
    if (o->cwd) proc.cwd = (char *)o->cwd;
    if (o->has_user) {
      proc.user.uid = o->uid;
      proc.user.gid = o->has_gid ? o->gid : 0;
      proc.user.n_additional_gids = 0;
    }
    proc.terminal = o->tty;
    for (char **c = o->caps; c && *c; c++) {
      r = add_cap(&proc, *c, err);
      if (r < 0) return r;
    }
  }
  if (proc.terminal && o->console_socket == NULL)
    return bivy_error_plain(err, EINVAL, "exec: a terminal needs --console-socket");

  pid_t ipid = (pid_t)json_integer_value(json_object_get(st, "pid"));
  _cleanup_close_ int ipidfd = bivy_pidfd_open(ipid);
  unsigned long long start = 0;
  if (ipidfd < 0 || bivy_proc_start_time(ipid, &start) < 0 ||
      (json_int_t)start != json_integer_value(json_object_get(st, "pid_start")))
    return bivy_error_plain(err, ESRCH, "cannot exec in container %s: its init is gone", o->id);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/root", (int)ipid);
  _cleanup_close_ int rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int nsflags = 0;
  bool join_pid = false;
  static const struct { const char *name; int flag; } nss[] = {
      {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC},
      {"uts", CLONE_NEWUTS},   {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}, {"pid", CLONE_NEWPID}};
  for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
    bool d = false;
    if (ns_differs(ipid, nss[i].name, &d) < 0) continue;
    if (!d) continue;
    if (nss[i].flag == CLONE_NEWPID) join_pid = true;
    else nsflags |= nss[i].flag;
  }
  _cleanup_cgroup_ struct bivy_cgroup *cg = NULL;
  json_t *cgj = json_object_get(st, "cgroup");
  if (cgj && (r = bivy_cgroup_from_json(cgj, &cg, err)) < 0) return r;
  if (asprintf(&cache, "%s/seccomp-cache", o->root) < 0) return bivy_error(err, ENOMEM, "seccomp");
  r = bivy_seccomp_prepare(cfg->seccomp, cache, &sc, err);
  if (r < 0) return r;
  if (rootfd < 0) return bivy_error_errno(err, "open %s", path);
  if (o->preserve_fds < 0) return bivy_error_plain(err, EINVAL, "--preserve-fds: must be >= 0");
  /* children of this process are born in the container's pid namespace (until we switch
   * back right after the clone: later children, e.g. sanitizer helpers, stay ours) */
  _cleanup_close_ int own_pidns = join_pid ? open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC) : -1;
  if (join_pid && own_pidns < 0) return bivy_error_errno(err, "open /proc/self/ns/pid");
  if (join_pid && setns(ipidfd, CLONE_NEWPID) < 0)
    return bivy_error_errno(err, "join the pid namespace of container %s", o->id);
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) return bivy_error_errno(err, "socketpair");
  sync = sp[0];
  int csync = sp[1];
  int lo = 3 + o->preserve_fds;
  /* keep the runtime's fds clear of the preserved range */
  int c_sync = fcntl(csync, F_DUPFD_CLOEXEC, lo), c_pidfd = fcntl(ipidfd, F_DUPFD_CLOEXEC, lo),
      c_root = fcntl(rootfd, F_DUPFD_CLOEXEC, lo);
  close(csync);
  struct exec_child a = {.p = &proc, .sc = sc, .sync_fd = c_sync, .lock_fd = lock, .pidfd = c_pidfd,
                         .root_fd = c_root, .ns_flags = nsflags, .preserve_fds = o->preserve_fds};
  int cgfd = cg ? bivy_cgroup_clone_fd(cg) : -1;
  int pidfd = -1;
  pid_t pid = (c_sync < 0 || c_pidfd < 0 || c_root < 0) ? (errno = EMFILE, -1) : bivy_clone3(0, cgfd, &pidfd);
  if (pid < 0 && errno == EINVAL && cgfd >= 0) {
    cgfd = -1;
    pid = bivy_clone3(0, -1, &pidfd);
  }
  if (pid == 0) {
    close(sync);
    exec_child_main(&a);
  }
  if (join_pid) setns(own_pidns, CLONE_NEWPID);
  if (c_sync >= 0) close(c_sync);
  if (c_pidfd >= 0) close(c_pidfd);
  if (c_root >= 0) close(c_root);
  if (pid < 0) return bivy_error_errno(err, "clone3");
  cpidfd = pidfd;
  if (cg && (r = bivy_cgroup_enter(cg, pid, cgfd >= 0, err)) < 0) return kill_wait(cpidfd, r);
  close(lock); /* the container may be inspected / signalled meanwhile */
  lock = -1;
  if (bivy_sync_send(sync, BIVY_SYNC_GO, 0, pid, NULL, -1) < 0)
    return kill_wait(cpidfd, bivy_error_plain(err, EPIPE, "exec: the process exited during setup"));
  for (;;) {
    struct bivy_sync_msg m;
    int passed = -1;
    int rr = bivy_sync_recv(sync, &m, &passed);
    _cleanup_close_ int pfd = passed;
    if (rr == -EPIPE) break; /* execve succeeded (or the child died: waitid tells) */
    if (rr < 0) return kill_wait(cpidfd, bivy_error(err, -rr, "exec: sync"));
    if (m.type == BIVY_SYNC_ERROR)
      return kill_wait(cpidfd, bivy_error_plain(err, m.code < 0 ? -m.code : EINVAL, "exec: %s", m.text));
    if (m.type == BIVY_SYNC_PTY && pfd >= 0) {
      r = bivy_send_fd(o->console_socket, pfd, err);
      if (r < 0) return kill_wait(cpidfd, bivy_error_wrap(err, "--console-socket %s", o->console_socket));
    }
  }
  if (o->debug) o->debug("exec %s: %.3f ms to execve", o->id, (double)(bivy_now_ns() - t0) / 1e6);
  if (pid_out) *pid_out = pid;
  if (o->pid_file) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%d", (int)pid);
    r = bivy_write_file_atomic(o->pid_file, buf, (size_t)len, 0644, err);
    if (r < 0) return bivy_error_wrap(err, "--pid-file");
  }
  if (o->detach) return 0;
  return bivy_wait_forward(cpidfd, pid, err);
}
