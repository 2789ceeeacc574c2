/* Restore through CRIU: bivy_container_restore (see checkpoint.h). A new container ID is
 * made from a bundle (state directory, cgroup with the bundle's limits) and its init is the
 * process tree CRIU restores from the image directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "netns/netns.h"
#include "runtime/checkpoint-internal.h"
#include "runtime/checkpoint.h"
#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/state.h"
#include "runtime/util.h"

struct rst_ctx {
  const struct bivy_restore_opts *o;
  char *bundle, *img, *work;
  struct bivy_config *cfg;
  json_t *meta;
  struct bivy_cgroup *cg;
  int lock;
  bool state_made;
  char *criu_root;
  bool mounted;
  pid_t pid;
  int pidfd;
};

static void unmount_root(struct rst_ctx *x) {
  if (x->mounted) {
    /* the restored tree has its own mount namespace: our view of the rootfs goes */
    umount2(x->criu_root, MNT_DETACH);
    x->mounted = false;
  }
  if (x->criu_root) rmdir(x->criu_root);
}

/* Undo everything: a failed restore leaves no process, mount, cgroup or state behind. */
static void rollback(struct rst_ctx *x) {
  _cleanup_error_ bivy_error_t e = NULL;
  if (x->pidfd >= 0) {
    bivy_pidfd_send_signal(x->pidfd, SIGKILL);
    siginfo_t si;
    if (waitid(P_PIDFD, (id_t)x->pidfd, &si, WEXITED) < 0) {
      struct pollfd pf = {.fd = x->pidfd, .events = POLLIN};
      poll(&pf, 1, 10000);
    }
  }
  unmount_root(x);
  if (x->cg) bivy_cgroup_destroy(x->cg, &e); /* kills what is left in it */
  if (x->state_made) bivy_state_remove(x->o->root, x->o->id, &e);
}

static void ctx_free(struct rst_ctx *x) {
  if (x->pidfd >= 0) close(x->pidfd);
  if (x->lock >= 0) close(x->lock);
  if (x->cg) bivy_cgroup_free(x->cg);
  if (x->cfg) bivy_config_free(x->cfg);
  json_decref(x->meta);
  free(x->bundle);
  free(x->img);
  free(x->work);
  free(x->criu_root);
}

static int load_meta(struct rst_ctx *x, bivy_error_t *err) {
  const char *flag = x->o->image_path;
  x->img = realpath(flag, NULL);
  if (x->img == NULL) return bivy_error_errno(err, "--image-path %s", flag);
  _cleanup_free_ char *inv = NULL, *metap = NULL;
  if (asprintf(&inv, "%s/inventory.img", x->img) < 0 || asprintf(&metap, "%s/" BIVY_CKPT_META, x->img) < 0)
    return bivy_error(err, ENOMEM, "restore");
  if (access(inv, F_OK) < 0) return bivy_error_plain(err, ENOENT, "--image-path %s: not a checkpoint (no inventory.img)", flag);
  json_error_t je;
  x->meta = json_load_file(metap, 0, &je);
  if (x->meta == NULL || !json_is_object(x->meta))
    return bivy_error_plain(err, EINVAL, "--image-path %s: no " BIVY_CKPT_META " (not made by bivy checkpoint): %s", flag, je.text);
  json_t *stdio = json_object_get(x->meta, "stdio");
  if (!json_is_array(stdio) || json_array_size(stdio) != 3)
    return bivy_error_plain(err, EINVAL, "--image-path %s: " BIVY_CKPT_META ": stdio: expected 3 entries", flag);
  return 0;
}

/* Host sources of the config's bind mounts, as {destination, source} pairs; every bind
 * mount the checkpoint recorded must be in the bundle's config. */
static int bind_pairs(struct rst_ctx *x, char ***out, bivy_error_t *err) {
  size_t nb = 0;
  for (size_t i = 0; i < x->cfg->n_mounts; i++) nb += bivy_ckpt_is_bind(&x->cfg->mounts[i]);
  _cleanup_strv_ char **v = calloc(2 * nb + 1, sizeof *v);
  if (v == NULL) return bivy_error(err, ENOMEM, "restore");
  size_t n = 0;
  for (size_t i = 0; i < x->cfg->n_mounts; i++) {
    const struct bivy_mount *m = &x->cfg->mounts[i];
    if (!bivy_ckpt_is_bind(m)) continue;
    if (m->source == NULL) return bivy_error_plain(err, EINVAL, "config.json: mounts[%zu].source: missing", i);
    v[n] = strdup(m->destination);
    if (m->source[0] == '/') v[n + 1] = strdup(m->source);
    else if (asprintf(&v[n + 1], "%s/%s", x->bundle, m->source) < 0) v[n + 1] = NULL;
    if (v[n] == NULL || v[n + 1] == NULL) return bivy_error(err, ENOMEM, "restore");
    n += 2;
  }
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(x->meta, "bindMounts"), i, d) {
    const char *dest = json_string_value(d);
    bool found = false;
    for (size_t k = 0; k < n && dest; k += 2) found |= strcmp(v[k], dest) == 0;
    if (!found)
      return bivy_error_plain(err, EINVAL, "config.json: mounts: the checkpoint has a bind mount on %s, the bundle does not",
                              dest ? dest : "?");
  }
  *out = steal_pointer(&v);
  return 0;
}

static int save_state(struct rst_ctx *x, bivy_error_t *err) {
  const struct bivy_restore_opts *o = x->o;
  _cleanup_json_ json_t *st = bivy_state_record(o->id, "running", x->pid, x->bundle, x->cfg, x->cg, true,
                                                "restored init exited right after restore", err);
  if (st == NULL) return bivy_error_code(err);
  json_object_set_new(st, "restored", json_pack("{s:s}", "imagePath", x->img));
  return bivy_state_record_save(o->root, o->id, st, x->cfg, x->pid, o->pid_file, err);
}

static int do_restore(struct rst_ctx *x, bivy_error_t *err) {
  const struct bivy_restore_opts *o = x->o;
  char cwd[PATH_MAX];
  const char *b = o->bundle;
  if (b == NULL) {
    if (getcwd(cwd, sizeof cwd) == NULL) return bivy_error_errno(err, "getcwd");
    b = cwd;
  }
  x->bundle = realpath(b, NULL);
  if (x->bundle == NULL) return bivy_error_errno(err, "--bundle %s", b);
  int r = load_meta(x, err);
  if (r < 0) return r;
  if (o->work_path) {
    x->work = bivy_ckpt_abspath(o->work_path);
    if (x->work == NULL) return bivy_error_errno(err, "--work-path %s", o->work_path);
    if (mkdir(x->work, 0700) < 0 && errno != EEXIST) return bivy_error_errno(err, "--work-path %s", o->work_path);
  }
  r = bivy_config_load(x->bundle, &x->cfg, err);
  if (r < 0) return r;
  struct bivy_config *c = x->cfg;
  if (!c->has_process) return bivy_error_plain(err, EINVAL, "config.json: process: missing (a restored container runs one)");
  if (c->process.terminal) return bivy_error_plain(err, ENOTSUP, "config.json: process.terminal: not supported by restore");
  if (bivy_config_ns(c, BIVY_NS_USER))
    return bivy_error_plain(err, ENOTSUP, "config.json: linux.namespaces: a user namespace is not supported by restore");
  if (bivy_config_annotation(c, BIVY_NET_ANNOTATION))
    return bivy_error_plain(err, ENOTSUP, "config.json: annotations.%s: bivy networks are not supported by restore",
                            BIVY_NET_ANNOTATION);
  if (c->root_path == NULL) return bivy_error_plain(err, EINVAL, "config.json: root.path: missing");
  _cleanup_strv_ char **pairs = NULL;
  r = bind_pairs(x, &pairs, err);
  if (r < 0) return r;

  r = bivy_criu_check(o->root, err);
  if (r < 0) return r;

  r = bivy_state_create(o->root, o->id, err);
  if (r < 0) return r;
  x->lock = r;
  x->state_made = true;
  r = bivy_cgroup_create(c->cgroups_path, o->id, c->resources, &x->cg, err);
  if (r < 0) return r;

  /* CRIU's --root must be a mount point: a private bind of the rootfs in the state dir */
  x->criu_root = bivy_state_path(o->root, o->id, "criu-root");
  if (x->criu_root == NULL) return bivy_error(err, ENOMEM, "restore");
  if (mkdir(x->criu_root, 0700) < 0) return bivy_error_errno(err, "mkdir %s", x->criu_root);
  if (mount(c->root_path, x->criu_root, NULL, MS_BIND | MS_REC, NULL) < 0)
    return bivy_error_errno(err, "root.path %s: bind on %s", c->root_path, x->criu_root);
  x->mounted = true;
  /* private: the host must not see mounts CRIU makes below it, nor it the host's */
  if (mount(NULL, x->criu_root, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
    return bivy_error_errno(err, "make %s private", x->criu_root);

  _cleanup_free_ char *pidp = bivy_state_path(o->root, o->id, "criu.pid");
  _cleanup_json_ json_t *cgj = bivy_cgroup_to_json(x->cg);
  const char *cgpath = json_string_value(json_object_get(cgj, "path"));
  json_t *stdio = json_object_get(x->meta, "stdio");
  struct bivy_criu_restore rr = {.image_dir = x->img, .work_dir = x->work, .root_dir = x->criu_root, .pid_file = pidp,
                                 .cgroup_root = cgpath,
                                 .shell_job = json_is_true(json_object_get(x->meta, "shellJob")),
                                 .tcp_established = json_is_true(json_object_get(x->meta, "tcpEstablished")),
                                 .ext_mounts = pairs};
  /* pipes and sockets: the restorer's stdio; host files: reopened by path (criu wants the same
   * kind of file). The path comes from bivy's own record in the image: no create, no truncate. */
  int fds[6] = {-1, -1, -1, -1, -1, -1};
  _cleanup_close_ int f3 = -1, f4 = -1, f5 = -1;
  int *reopened[3] = {&f3, &f4, &f5};
  if (o->stdio)
    for (int i = 0; i < 3; i++) fds[i] = o->stdio[i];
  json_t *files = json_object_get(x->meta, "stdioFiles");
  for (int i = 0; i < 3; i++) {
    const char *key = json_string_value(json_array_get(stdio, (size_t)i));
    json_t *f = json_array_get(files, (size_t)i);
    if (key && strncmp(key, "file[", 5) == 0) {
      const char *path = json_string_value(json_object_get(f, "path"));
      int flags = (int)json_integer_value(json_object_get(f, "flags"));
      /* one reopened fd serves every stdio fd on this file: readable and writable if they differ */
      for (int j = 0; j < 3; j++) {
        const char *kj = json_string_value(json_array_get(stdio, (size_t)j));
        int fj = (int)json_integer_value(json_object_get(json_array_get(files, (size_t)j), "flags"));
        if (kj && strcmp(kj, key) == 0 && (fj & O_ACCMODE) != (flags & O_ACCMODE)) flags = (flags & ~O_ACCMODE) | O_RDWR;
      }
      if (path == NULL) return bivy_error_plain(err, EINVAL, "--image-path: " BIVY_CKPT_META ": stdioFiles[%d]: no path", i);
      *reopened[i] = open(path, (flags & (O_ACCMODE | O_APPEND)) | O_NOCTTY | O_CLOEXEC);
      if (*reopened[i] < 0) return bivy_error_errno(err, "container stdio fd %d: reopen %s", i, path);
      fds[3 + i] = *reopened[i];
      rr.inherit[3 + i] = key;
    } else {
      rr.inherit[i] = key;
    }
  }
  _cleanup_strv_ char **argv = NULL;
  if (pidp == NULL) return bivy_error(err, ENOMEM, "restore");
  r = bivy_criu_restore_argv(bivy_criu_binary(), &rr, &argv, err);
  if (r < 0) return r;
  /* the restored tree's root is reparented to us when criu exits: we can wait for it */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) return bivy_error_errno(err, "PR_SET_CHILD_SUBREAPER");
  r = bivy_criu_run(argv, fds, 6, err);
  if (r < 0) return r;
  if (r != 0) return bivy_criu_failed(err, "criu restore", r, x->work ? x->work : x->img, "restore.log", NULL);
  char buf[32] = "";
  _cleanup_close_ int pf = open(pidp, O_RDONLY | O_CLOEXEC);
  ssize_t n = pf >= 0 ? read(pf, buf, sizeof buf - 1) : -1;
  int64_t pid = 0;
  if (n > 0) {
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
  }
  if (n <= 0 || bivy_parse_i64(buf, &pid) < 0 || pid <= 0)
    return bivy_error_plain(err, EIO, "criu restore: no pid in %s", pidp);
  unlink(pidp);
  x->pid = (pid_t)pid;
  x->pidfd = bivy_pidfd_open(x->pid);
  if (x->pidfd < 0) return bivy_error(err, -x->pidfd, "restored init (pid %d)", (int)x->pid);
  unmount_root(x);
  return save_state(x, err);
}

int bivy_container_restore(const struct bivy_restore_opts *o, pid_t *pid, int *pidfd, bivy_error_t *err) {
  int r = bivy_restore_opts_check(o, err);
  if (r < 0) return r;
  struct rst_ctx x = {.o = o, .lock = -1, .pidfd = -1};
  r = do_restore(&x, err);
  if (r < 0) {
    rollback(&x);
    ctx_free(&x);
    return bivy_error_wrap(err, "restore %s", o->id);
  }
  *pid = x.pid;
  if (pidfd) *pidfd = steal_fd(&x.pidfd);
  ctx_free(&x);
  return 0;
}
