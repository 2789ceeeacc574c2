/* bivy_container_create: the runtime side of creating a container (see container.h and
 * the sync protocol in container-internal.h). The init is cloned straight from this
 * process with clone3 (no re-exec of the bivy binary, no helper programs). */
#include "runtime/container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "netns/netns.h"
#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/linux.h"
#include "runtime/seccomp.h"
#include "runtime/state.h"
#include "runtime/util.h"

struct create_ctx {
  const struct bivy_create_opts *o;
  uint64_t t0;
  char *bundle;
  struct bivy_config *cfg;
  struct bivy_cgroup *cg;
  struct bivy_seccomp *sc;
  struct bivy_plan *plan;
  json_t *net;
  int lock_fd;
  int ns_fds[BIVY_NS_COUNT]; /* namespaces joined by path (user included) */
  bool state_made;
  pid_t pid;
  int pidfd;
};

static void stamp(struct create_ctx *x, const char *what) {
  if (x->o->debug)
    x->o->debug("create %s: %.3f ms %s", x->o->id, (double)(bivy_now_ns() - x->t0) / 1e6, what);
}

/* Undo everything create did so far: a failed create leaves nothing behind. */
static void rollback(struct create_ctx *x) {
  _cleanup_error_ bivy_error_t e = NULL;
  if (x->pidfd >= 0) {
    bivy_pidfd_send_signal(x->pidfd, SIGKILL);
    siginfo_t si;
    waitid(P_PIDFD, (id_t)x->pidfd, &si, WEXITED);
    close(x->pidfd);
    x->pidfd = -1;
  }
  if (x->net) {
    bivy_net_teardown(x->o->root, x->o->id, x->net, &e);
    json_decref(x->net);
    x->net = NULL;
  }
  if (x->cg) {
    if (bivy_cgroup_destroy(x->cg, &e) < 0 && x->o->debug) x->o->debug("rollback: %s", e->msg);
  }
  if (x->state_made) bivy_state_remove(x->o->root, x->o->id, &e);
}

static void ctx_free(struct create_ctx *x) {
  for (int t = 0; t < BIVY_NS_COUNT; t++)
    if (x->ns_fds[t] >= 0) close(x->ns_fds[t]);
  if (x->pidfd >= 0) close(x->pidfd);
  if (x->lock_fd >= 0) close(x->lock_fd);
  json_decref(x->net);
  if (x->plan) bivy_plan_free(x->plan);
  if (x->sc) bivy_seccomp_free(x->sc);
  if (x->cg) bivy_cgroup_free(x->cg);
  if (x->cfg) bivy_config_free(x->cfg);
  free(x->bundle);
}

static int write_id_map(pid_t pid, const char *file, const struct bivy_id_mapping *m, size_t n, bivy_error_t *err) {
  char buf[4096];
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    int w = snprintf(buf + off, sizeof buf - off, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
    if (w < 0 || (size_t)w >= sizeof buf - off) return bivy_error(err, E2BIG, "linux.%sMappings: too many", file[0] == 'u' ? "uid" : "gid");
    off += (size_t)w;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  int r = bivy_write_file_at(AT_FDCWD, path, buf, off, err);
  if (r < 0) return bivy_error_wrap(err, "linux.%sMappings", file[0] == 'u' ? "uid" : "gid");
  return 0;
}

static int run_hooks_parent(struct create_ctx *x, enum bivy_hook_kind kind, bivy_error_t *err) {
  if (x->cfg->n_hooks[kind] == 0) return 0;
  _cleanup_json_ json_t *st = bivy_oci_state(x->o->id, "creating", x->pid, x->bundle, x->cfg);
  _cleanup_free_ char *txt = json_dumps(st, JSON_COMPACT);
  return bivy_hooks_run(x->cfg, kind, txt, err);
}

json_t *bivy_state_record(const char *id, const char *status, pid_t pid, const char *bundle,
                          const struct bivy_config *cfg, struct bivy_cgroup *cg, bool has_process, const char *what,
                          bivy_error_t *err) {
  unsigned long long start = 0;
  if (bivy_proc_start_time(pid, &start) < 0) {
    bivy_error_plain(err, ESRCH, "%s (pid %d)", what, (int)pid);
    return NULL;
  }
  char created[64];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(created + n, sizeof created - n, ".%09ldZ", ts.tv_nsec);
  json_t *st = bivy_oci_state(id, status, pid, bundle, cfg);
  if (st == NULL) {
    bivy_error(err, ENOMEM, "state");
    return NULL;
  }
  /* the start time tells a later command whether pid is still our init (pids are reused) */
  json_object_set_new(st, "pid_start", json_integer((json_int_t)start));
  json_object_set_new(st, "created", json_string(created));
  json_object_set_new(st, "rootfs", json_string(cfg->root_path ? cfg->root_path : ""));
  json_object_set_new(st, "has_process", json_boolean(has_process));
  json_object_set_new(st, "paused", json_false());
  /* the hook kinds run after create (poststart, poststop): start and delete read config.json
   * back only when they have something to run */
  json_t *later = json_array();
  for (int k = BIVY_HOOK_POSTSTART; k <= BIVY_HOOK_POSTSTOP; k++)
    if (cfg->n_hooks[k]) json_array_append_new(later, json_string(bivy_hook_kind_name((enum bivy_hook_kind)k)));
  json_object_set_new(st, "later_hooks", later);
  if (cg) json_object_set_new(st, "cgroup", bivy_cgroup_to_json(cg));
  if (cfg->resources) json_object_set(st, "resources", cfg->resources);
  return st;
}

int bivy_state_record_save(const char *root, const char *id, json_t *st, const struct bivy_config *cfg, pid_t pid,
                           const char *pid_file, bivy_error_t *err) {
  /* the config as created: delete (poststop hooks) and exec (defaults) read it back */
  _cleanup_free_ char *cfgp = bivy_state_path(root, id, "config.json");
  _cleanup_free_ char *cfgtxt = json_dumps(cfg->json_root, JSON_COMPACT);
  if (cfgp == NULL || cfgtxt == NULL) return bivy_error(err, ENOMEM, "save config");
  int r = bivy_write_file_atomic(cfgp, cfgtxt, strlen(cfgtxt), 0600, err);
  if (r < 0) return r;
  r = bivy_state_save(root, id, st, err);
  if (r < 0) return r;
  if (pid_file) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%d", (int)pid);
    r = bivy_write_file_atomic(pid_file, buf, (size_t)len, 0644, err);
    if (r < 0) return bivy_error_wrap(err, "--pid-file");
  }
  return 0;
}

static int save_state(struct create_ctx *x, bivy_error_t *err) {
  _cleanup_json_ json_t *st = bivy_state_record(x->o->id, "created", x->pid, x->bundle, x->cfg, x->cg,
                                                x->cfg->has_process, "container init exited during setup", err);
  if (st == NULL) return bivy_error_code(err);
  if (x->net) json_object_set(st, "net", x->net);
  return bivy_state_record_save(x->o->root, x->o->id, st, x->cfg, x->pid, x->o->pid_file, err);
}

/* Check --preserve-fds: each fd must exist and must not hand the container a host path. */
static int check_preserved_fds(int n, bivy_error_t *err) {
  for (int fd = 3; fd < 3 + n; fd++) {
    struct stat st;
    if (fstat(fd, &st) < 0) return bivy_error_errno(err, "--preserve-fds: fd %d", fd);
    /* a directory fd would let the container walk the host filesystem via fchdir/openat */
    if (S_ISDIR(st.st_mode)) return bivy_error_plain(err, EPERM, "--preserve-fds: fd %d is a directory (a host path)", fd);
  }
  return 0;
}

/* The network's /etc/hosts and /etc/resolv.conf: bivy_net_setup writes them into ROOT/ID before
 * the init mounts anything; the plan (built before clone) binds them read-only over the
 * image's files, so a container cannot rewrite the runtime's copies. */
static int add_net_etc_mounts(struct bivy_config *c, const char *root, const char *id, bivy_error_t *err) {
  bool hosts, resolv;
  int r = bivy_net_etc_files(c, &hosts, &resolv, err);
  if (r < 0) return r;
  const char *files[2][2] = {{BIVY_NET_HOSTS_FILE, "/etc/hosts"}, {BIVY_NET_RESOLV_FILE, "/etc/resolv.conf"}};
  bool want[2] = {hosts, resolv};
  for (int i = 0; i < 2; i++) {
    if (!want[i]) continue;
    struct bivy_mount *nm = realloc(c->mounts, (c->n_mounts + 1) * sizeof(*nm));
    if (nm == NULL) return bivy_error(err, ENOMEM, "mounts");
    c->mounts = nm;
    struct bivy_mount *m = &c->mounts[c->n_mounts];
    *m = (struct bivy_mount){.destination = strdup(files[i][1]), .type = strdup("bind"),
                             .source = bivy_state_path(root, id, files[i][0]),
                             .flags = MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, .bind = true};
    c->n_mounts++;
    if (m->destination == NULL || m->type == NULL || m->source == NULL) return bivy_error(err, ENOMEM, "mounts");
  }
  return 0;
}

static int do_create(struct create_ctx *x, bivy_error_t *err) {
  const struct bivy_create_opts *o = x->o;
  int r;
  char cwd[PATH_MAX];
  const char *b = o->bundle;
  if (b == NULL) {
    if (getcwd(cwd, sizeof cwd) == NULL) return bivy_error_errno(err, "getcwd");
    b = cwd;
  }
  x->bundle = realpath(b, NULL);
  if (x->bundle == NULL) return bivy_error_errno(err, "--bundle %s", b);
  if (o->preserve_fds < 0) return bivy_error_plain(err, EINVAL, "--preserve-fds: must be >= 0");
  r = check_preserved_fds(o->preserve_fds, err);
  if (r < 0) return r;

  r = bivy_config_load(x->bundle, &x->cfg, err);
  if (r < 0) return r;
  stamp(x, "config loaded");
  struct bivy_config *c = x->cfg;
  if (c->has_process) {
    r = bivy_caps_check_available(&c->process, err);
    if (r < 0) return r;
    if (c->process.terminal && o->console_socket == NULL)
      return bivy_error_plain(err, EINVAL, "process.terminal is true: --console-socket is required");
  }
  const struct bivy_namespace *user = bivy_config_ns(c, BIVY_NS_USER);
  const struct bivy_namespace *pidns = bivy_config_ns(c, BIVY_NS_PID);
  if (user && user->path && pidns && pidns->path == NULL)
    return bivy_error_plain(err, ENOTSUP, "linux.namespaces: a new pid namespace inside a joined user namespace is not supported");

  r = bivy_state_create(o->root, o->id, err);
  if (r < 0) return r;
  x->lock_fd = r;
  x->state_made = true;
  _cleanup_free_ char *fifo_path = bivy_state_path(o->root, o->id, "exec.fifo");
  if (fifo_path == NULL) return bivy_error(err, ENOMEM, "exec fifo");
  /* writable by the container's user, who opens it after switching uid; only reachable
   * through the init's O_PATH fd since ROOT/ID is 0700 */
  if (mkfifo(fifo_path, 0622) < 0 || chmod(fifo_path, 0622) < 0) return bivy_error_errno(err, "mkfifo %s", fifo_path);
  stamp(x, "state dir");

  r = bivy_cgroup_create(c->cgroups_path, o->id, c->resources, &x->cg, err);
  if (r < 0) return r;
  stamp(x, "cgroup created");
  _cleanup_free_ char *cache = NULL;
  if (asprintf(&cache, "%s/seccomp-cache", o->root) < 0) return bivy_error(err, ENOMEM, "seccomp");
  r = bivy_seccomp_prepare(c->seccomp, cache, &x->sc, err);
  if (r < 0) return r;
  r = add_net_etc_mounts(x->cfg, o->root, o->id, err);
  if (r < 0) return r;
  r = bivy_plan_build(c, o->no_pivot, &x->plan, err);
  if (r < 0) return r;
  stamp(x, "seccomp + plan ready");

  /* namespaces: create the ones without a path, join the others in the child */
  struct bivy_init_args a = {.cfg = c, .plan = x->plan, .seccomp = x->sc, .id = o->id,
                             .preserve_fds = o->preserve_fds, .no_new_keyring = o->no_new_keyring,
                             .user_ns_fd = -1, .stdio = o->stdio};
  for (int t = 0; t < BIVY_NS_COUNT; t++) a.ns_fds[t] = -1;
  uint64_t flags = 0;
  int unshare_flags = 0;
  int cgfd = bivy_cgroup_clone_fd(x->cg);
  for (size_t i = 0; i < c->n_namespaces; i++) {
    const struct bivy_namespace *ns = &c->namespaces[i];
    if (ns->path) {
      int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return bivy_error_errno(err, "linux.namespaces: %s namespace path %s", bivy_ns_name(ns->type), ns->path);
      x->ns_fds[ns->type] = fd;
      if (ns->type == BIVY_NS_USER) a.user_ns_fd = fd;
      else if (ns->type != BIVY_NS_PID) a.ns_fds[ns->type] = fd; /* pid: joined by the runtime */
    } else if (ns->type == BIVY_NS_CGROUP) {
      a.unshare_cgroupns = true;
    } else if (user && user->path) {
      unshare_flags |= bivy_ns_clone_flag(ns->type);
    } else {
      flags |= (uint64_t)bivy_ns_clone_flag(ns->type);
    }
  }
  /* --net container:ID / ns:PATH: join that network namespace instead of making one
   * (bivy_net_ns_path also validates every network annotation before anything exists) */
  _cleanup_free_ char *netns_path = NULL;
  r = bivy_net_ns_path(o->root, c, &netns_path, err);
  if (r < 0) return r;
  if (netns_path && x->ns_fds[BIVY_NS_NET] < 0) {
    int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bivy_error_errno(err, "annotations.%s: network namespace %s", BIVY_NET_ANNOTATION, netns_path);
    x->ns_fds[BIVY_NS_NET] = fd;
    a.ns_fds[BIVY_NS_NET] = fd;
    flags &= ~(uint64_t)CLONE_NEWNET;
    unshare_flags &= ~CLONE_NEWNET;
  }
  a.unshare_flags = unshare_flags;
  a.userns = user != NULL;

  int sp[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) return bivy_error_errno(err, "socketpair");
  _cleanup_close_ int sync = sp[0];
  _cleanup_close_ int child_sync = sp[1];
  _cleanup_close_ int fifo = open(fifo_path, O_PATH | O_CLOEXEC);
  if (fifo < 0) return bivy_error_errno(err, "open %s", fifo_path);
  a.sync_fd = child_sync;
  a.lock_fd = x->lock_fd;
  a.fifo_fd = fifo;
  /* keep the runtime's own fds clear of the preserved range 3..3+N-1 */
  if (o->preserve_fds > 0) {
    int lo = 3 + o->preserve_fds;
    int nf = fcntl(child_sync, F_DUPFD_CLOEXEC, lo), nfi = fcntl(fifo, F_DUPFD_CLOEXEC, lo);
    if (nf < 0 || nfi < 0) {
      if (nf >= 0) close(nf);
      if (nfi >= 0) close(nfi);
      return bivy_error_errno(err, "dup");
    }
    close(child_sync);
    close(fifo);
    a.sync_fd = child_sync = nf;
    a.fifo_fd = fifo = nfi;
  }

  /* a pid namespace given by path: setns() only moves our future children, so the runtime
   * joins it for the clone and switches back right after */
  _cleanup_close_ int own_pidns = -1;
  int join_pid = x->ns_fds[BIVY_NS_PID];
  if (join_pid >= 0) {
    own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (own_pidns < 0) return bivy_error_errno(err, "open /proc/self/ns/pid");
    if (setns(join_pid, CLONE_NEWPID) < 0)
      return bivy_error_errno(err, "linux.namespaces: join pid namespace %s", pidns->path);
  }
  stamp(x, "clone3");
  int pidfd = -1;
  pid_t pid = bivy_clone3(flags, cgfd, &pidfd);
  if (pid < 0 && errno == EINVAL && cgfd >= 0) {
    /* CLONE_INTO_CGROUP refused (e.g. threaded cgroup): enter after clone */
    cgfd = -1;
    pid = bivy_clone3(flags, -1, &pidfd);
  }
  int clone_errno = errno;
  if (pid != 0 && own_pidns >= 0) setns(own_pidns, CLONE_NEWPID);
  errno = clone_errno;
  if (pid < 0) return bivy_error_errno(err, "clone3 (namespaces 0x%llx)", (unsigned long long)flags);
  if (pid == 0) {
    close(sync);
    bivy_init_main(&a); /* never returns */
  }
  x->pid = pid;
  x->pidfd = pidfd;
  close(child_sync);
  child_sync = -1;
  for (int t = 0; t < BIVY_NS_COUNT; t++)
    if (x->ns_fds[t] >= 0) close(steal_fd(&x->ns_fds[t]));
  stamp(x, "cloned");

  if ((r = bivy_cgroup_enter(x->cg, pid, cgfd >= 0, err)) < 0) return r;
  if (user && user->path == NULL) {
    r = write_id_map(pid, "uid_map", c->uid_mappings, c->n_uid_mappings, err);
    if (r < 0) return r;
    /* setgroups deny: nobody in the container may change supplementary groups (e.g. drop
     * one to get past a "group may not read" permission); kept allowed only when the
     * config itself asks for additionalGids, which need setgroups */
    if (!(c->has_process && c->process.user.n_additional_gids > 0)) {
      char sg[64];
      snprintf(sg, sizeof sg, "/proc/%d/setgroups", (int)pid);
      r = bivy_write_file_at(AT_FDCWD, sg, "deny", 4, err);
      if (r < 0) return bivy_error_wrap(err, "user namespace");
    }
    r = write_id_map(pid, "gid_map", c->gid_mappings, c->n_gid_mappings, err);
    if (r < 0) return r;
  }
  if (c->has_process && c->process.has_oom_score_adj) {
    char path[64], val[16];
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
    int n = snprintf(val, sizeof val, "%d", c->process.oom_score_adj);
    r = bivy_write_file_at(AT_FDCWD, path, val, (size_t)n, err);
    if (r < 0) return bivy_error_wrap(err, "process.oomScoreAdj");
  }
  r = bivy_net_setup(o->root, o->id, c, pid, &x->net, err);
  if (r < 0) return r;
  stamp(x, "cgroup, id maps, network");
  if (bivy_sync_send(sync, BIVY_SYNC_GO, 0, pid, NULL, -1) < 0)
    return bivy_error_plain(err, EPIPE, "container init exited during setup");

  for (;;) {
    struct bivy_sync_msg m;
    int passed = -1;
    r = bivy_sync_recv(sync, &m, &passed);
    _cleanup_close_ int pfd = passed;
    if (r == -EPIPE) return bivy_error_plain(err, EPIPE, "container init exited during setup");
    if (r < 0) return bivy_error(err, -r, "sync with container init");
    switch (m.type) {
      case BIVY_SYNC_ERROR:
        return bivy_error(err, m.code < 0 ? -m.code : 0, "%s", m.text);
      case BIVY_SYNC_PHASE0_DONE:
        stamp(x, "rootfs phase 0");
        r = run_hooks_parent(x, BIVY_HOOK_CREATE_RUNTIME, err);
        if (r == 0) r = run_hooks_parent(x, BIVY_HOOK_PRESTART, err);
        if (r < 0) return r;
        if (bivy_sync_send(sync, BIVY_SYNC_HOOKS_DONE, 0, 0, NULL, -1) < 0)
          return bivy_error_plain(err, EPIPE, "container init exited during setup");
        break;
      case BIVY_SYNC_PTY:
        if (pfd < 0) return bivy_error(err, EPROTO, "sync: no pty fd");
        r = bivy_send_fd(o->console_socket, pfd, err);
        if (r < 0) return bivy_error_wrap(err, "--console-socket %s", o->console_socket);
        break;
      case BIVY_SYNC_SECCOMP: {
        if (pfd < 0) return bivy_error(err, EPROTO, "sync: no seccomp fd");
        _cleanup_json_ json_t *st = bivy_oci_state(o->id, "creating", pid, x->bundle, c);
        _cleanup_free_ char *txt = json_dumps(st, JSON_COMPACT);
        r = bivy_seccomp_send_listener(x->sc, pfd, txt, pid, err);
        if (r < 0) return bivy_error_wrap(err, "linux.seccomp.listenerPath");
        break;
      }
      case BIVY_SYNC_READY:
        stamp(x, "init ready");
        r = save_state(x, err);
        if (r < 0) return r;
        stamp(x, "state saved");
        return 0;
      default:
        return bivy_error(err, EPROTO, "sync: unexpected message %u", m.type);
    }
  }
}

int bivy_container_create(const struct bivy_create_opts *o, pid_t *pid, int *pidfd, bivy_error_t *err) {
  struct create_ctx x = {.o = o, .t0 = bivy_now_ns(), .lock_fd = -1, .pidfd = -1};
  for (int t = 0; t < BIVY_NS_COUNT; t++) x.ns_fds[t] = -1;
  int r = do_create(&x, err);
  if (r < 0) {
    rollback(&x);
    ctx_free(&x);
    return bivy_error_wrap(err, "create %s", o->id);
  }
  *pid = x.pid;
  if (pidfd) *pidfd = steal_fd(&x.pidfd);
  ctx_free(&x);
  return 0;
}
