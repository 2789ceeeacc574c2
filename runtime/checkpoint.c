/* Checkpoint through CRIU: argument building (pure), the cached `criu check`, running the
 * criu binary, and bivy_container_checkpoint. Restore lives in restore.c. See checkpoint.h. */
#include "runtime/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/checkpoint-internal.h"
#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/state.h"
#include "runtime/util.h"

extern char **environ;

/* ---- a growable NULL-terminated argv ---- */
struct sv {
  char **v;
  size_t n, cap;
  bool oom;
};

static void sv_add(struct sv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sv_add(struct sv *s, const char *fmt, ...) {
  if (s->oom) return;
  if (s->n + 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 32;
    char **nv = realloc(s->v, cap * sizeof *nv);
    if (nv == NULL) {
      s->oom = true;
      return;
    }
    s->v = nv;
    s->cap = cap;
  }
  va_list ap;
  va_start(ap, fmt);
  int r = vasprintf(&s->v[s->n], fmt, ap);
  va_end(ap);
  if (r < 0) {
    s->oom = true;
    return;
  }
  s->v[++s->n] = NULL;
}

static int sv_finish(struct sv *s, char ***out, bivy_error_t *err) {
  if (s->oom || s->v == NULL) {
    char **v = s->v;
    if (v) {
      for (size_t i = 0; i < s->n; i++) free(v[i]);
      free(v);
    }
    return bivy_error(err, ENOMEM, "criu arguments");
  }
  *out = s->v;
  return 0;
}

int bivy_criu_dump_argv(const char *criu, const struct bivy_criu_dump *d, char ***argv, bivy_error_t *err) {
  if (d->pid <= 0) return bivy_error_plain(err, EINVAL, "criu dump: no process to dump");
  if (d->image_dir == NULL || *d->image_dir == '\0') return bivy_error_plain(err, EINVAL, "--image-path: missing");
  struct sv s = {0};
  sv_add(&s, "%s", criu);
  sv_add(&s, "dump");
  sv_add(&s, "--tree");
  sv_add(&s, "%d", (int)d->pid);
  sv_add(&s, "--images-dir");
  sv_add(&s, "%s", d->image_dir);
  sv_add(&s, "--work-dir");
  sv_add(&s, "%s", d->work_dir ? d->work_dir : d->image_dir);
  sv_add(&s, "--log-file");
  sv_add(&s, "dump.log");
  sv_add(&s, "-v4");
  /* no config files: only what bivy asks for */
  sv_add(&s, "--no-default-config");
  if (d->leave_running) sv_add(&s, "--leave-running");
  if (d->tcp_established) sv_add(&s, "--tcp-established");
  if (d->shell_job) sv_add(&s, "--shell-job");
  for (char *const *m = d->ext_mounts; m && *m; m++) {
    sv_add(&s, "--external");
    sv_add(&s, "mnt[%s]:%s", *m, *m);
  }
  for (char *const *x = d->ext_res; x && *x; x++) {
    sv_add(&s, "--external");
    sv_add(&s, "%s", *x);
  }
  return sv_finish(&s, argv, err);
}

int bivy_criu_restore_argv(const char *criu, const struct bivy_criu_restore *r, char ***argv, bivy_error_t *err) {
  if (r->image_dir == NULL || *r->image_dir == '\0') return bivy_error_plain(err, EINVAL, "--image-path: missing");
  if (r->root_dir == NULL || r->pid_file == NULL) return bivy_error_plain(err, EINVAL, "criu restore: no root or pid file");
  struct sv s = {0};
  sv_add(&s, "%s", criu);
  sv_add(&s, "restore");
  sv_add(&s, "--images-dir");
  sv_add(&s, "%s", r->image_dir);
  sv_add(&s, "--work-dir");
  sv_add(&s, "%s", r->work_dir ? r->work_dir : r->image_dir);
  sv_add(&s, "--log-file");
  sv_add(&s, "restore.log");
  sv_add(&s, "-v4");
  sv_add(&s, "--no-default-config");
  sv_add(&s, "--root");
  sv_add(&s, "%s", r->root_dir);
  /* criu exits once the tree runs; the tree's root is reparented to the caller (subreaper) */
  sv_add(&s, "--restore-detached");
  sv_add(&s, "--pidfile");
  sv_add(&s, "%s", r->pid_file);
  if (r->shell_job) sv_add(&s, "--shell-job");
  if (r->tcp_established) sv_add(&s, "--tcp-established");
  if (r->cgroup_root) {
    sv_add(&s, "--cgroup-root");
    sv_add(&s, "%s", r->cgroup_root);
  }
  for (char *const *m = r->ext_mounts; m && m[0] && m[1]; m += 2) {
    sv_add(&s, "--external");
    sv_add(&s, "mnt[%s]:%s", m[0], m[1]);
  }
  /* CRIU finds an inherited file by its key alone, so fds that shared one file get one
   * restorer fd: stdout first, then stderr, stdin, the reopened files */
  static const int order[6] = {1, 2, 0, 3, 4, 5};
  for (int k = 0; k < 6; k++) {
    const char *key = r->inherit[order[k]];
    bool dup = false;
    for (int j = 0; j < k; j++) dup |= key && r->inherit[order[j]] && strcmp(r->inherit[order[j]], key) == 0;
    if (key == NULL || dup) continue;
    sv_add(&s, "--inherit-fd");
    sv_add(&s, "fd[%d]:%s", order[k], key);
  }
  return sv_finish(&s, argv, err);
}

char *bivy_criu_first_error(const char *text) {
  if (text == NULL) return NULL;
  const char *fallback = NULL;
  for (const char *l = text; *l;) {
    const char *e = strchr(l, '\n');
    size_t len = e ? (size_t)(e - l) : strlen(l);
    /* -v4 logs prefix lines with "(00.012345) "; errors read "Error (file:line): ..." */
    const char *p = l;
    if (*p == '(') {
      const char *q = memchr(p, ')', len);
      if (q && q[1] == ' ') p = q + 2;
    }
    size_t plen = len - (size_t)(p - l);
    if (plen >= 6 && strncmp(p, "Error ", 6) == 0) return strndup(p, plen);
    if (fallback == NULL && plen > 0 && (memmem(p, plen, "rror", 4) || memmem(p, plen, "failed", 6))) fallback = p;
    l = e ? e + 1 : l + len;
  }
  if (fallback) {
    const char *e = strchr(fallback, '\n');
    return strndup(fallback, e ? (size_t)(e - fallback) : strlen(fallback));
  }
  return NULL;
}

static int check_id_and_image(const char *verb, const char *id, const char *image, bivy_error_t *err) {
  if (id == NULL || !bivy_id_valid(id))
    return bivy_error_plain(err, EINVAL, "%s: invalid container ID \"%s\"", verb, id ? id : "");
  if (image == NULL || *image == '\0') return bivy_error_plain(err, EINVAL, "%s: --image-path: required", verb);
  return 0;
}

int bivy_checkpoint_opts_check(const struct bivy_checkpoint_opts *o, bivy_error_t *err) {
  int r = check_id_and_image("checkpoint", o->id, o->image_path, err);
  if (r < 0) return r;
  if (o->work_path && *o->work_path == '\0') return bivy_error_plain(err, EINVAL, "checkpoint: --work-path: empty path");
  return 0;
}

int bivy_restore_opts_check(const struct bivy_restore_opts *o, bivy_error_t *err) {
  int r = check_id_and_image("restore", o->id, o->image_path, err);
  if (r < 0) return r;
  if (o->work_path && *o->work_path == '\0') return bivy_error_plain(err, EINVAL, "restore: --work-path: empty path");
  if (o->bundle && *o->bundle == '\0') return bivy_error_plain(err, EINVAL, "restore: --bundle: empty path");
  return 0;
}

/* ---- running criu ---- */

const char *bivy_criu_binary(void) {
  const char *c = getenv("BIVY_CRIU");
  return c && *c ? c : "criu";
}

int bivy_criu_run(char *const *argv, const int *fds, int nfds, bivy_error_t *err) {
  /* first move the sources above the targets, so one dup2 cannot clobber another's source */
  int high[8];
  if (nfds > 8) return bivy_error(err, EINVAL, "run %s: too many fds", argv[0]);
  for (int i = 0; i < nfds; i++) high[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0) return bivy_error(err, ENOMEM, "run %s", argv[0]);
  for (int i = 0; i < nfds; i++)
    if (high[i] >= 0) posix_spawn_file_actions_adddup2(&fa, high[i], i);
  pid_t pid;
  int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  for (int i = 0; i < nfds; i++)
    if (high[i] >= 0) close(high[i]);
  if (r != 0) {
    if (r == ENOENT) return bivy_error_plain(err, ENOENT, "%s: not found (install Debian's criu package: make deps)", argv[0]);
    return bivy_error(err, r, "run %s", argv[0]);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return bivy_error_errno(err, "wait for %s", argv[0]);
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}

int bivy_criu_failed(bivy_error_t *err, const char *what, int status, const char *dir, const char *log_name,
                     const char *keep_as) {
  _cleanup_free_ char *path = NULL, *text = NULL, *line = NULL;
  size_t len;
  _cleanup_error_ bivy_error_t e = NULL;
  if (asprintf(&path, "%s/%s", dir, log_name) < 0) return bivy_error(err, ENOMEM, "%s", what);
  if (bivy_read_file_at(AT_FDCWD, path, &text, &len, &e) == 0) line = bivy_criu_first_error(text);
  const char *log = path;
  if (keep_as && rename(path, keep_as) == 0) log = keep_as;
  return bivy_error_plain(err, EIO, "%s: criu exited with status %d: %s (log: %s)", what, status,
                          line ? line : "no error line in the criu log", log);
}

bool bivy_ckpt_is_bind(const struct bivy_mount *m) { return m->bind || m->rbind; }

char *bivy_ckpt_abspath(const char *path) {
  char *r = realpath(path, NULL);
  if (r) return r;
  if (errno != ENOENT) return NULL;
  _cleanup_free_ char *copy = strdup(path);
  if (copy == NULL) return NULL;
  char *slash = strrchr(copy, '/');
  const char *name = slash ? slash + 1 : copy;
  const char *parent = slash ? (slash == copy ? "/" : copy) : ".";
  if (slash && slash != copy) *slash = '\0';
  if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    errno = EINVAL;
    return NULL;
  }
  _cleanup_free_ char *p = realpath(parent, NULL);
  if (p == NULL) return NULL;
  char *out = NULL;
  if (asprintf(&out, "%s%s%s", p, strcmp(p, "/") == 0 ? "" : "/", name) < 0) return NULL;
  return out;
}

/* ---- criu check, cached per boot ---- */

static int read_small(const char *path, char *buf, size_t size) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
  return 0;
}

int bivy_criu_check(const char *root, bivy_error_t *err) {
  const char *criu = bivy_criu_binary();
  _cleanup_free_ char *exe = bivy_find_executable(criu, environ);
  if (exe == NULL)
    return bivy_error_plain(err, ENOENT, "%s: not found (install Debian's criu package: make deps)", criu);
  struct stat st;
  if (stat(exe, &st) < 0) return bivy_error_errno(err, "%s", exe);
  char boot[64] = "";
  read_small("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
  /* the cache is valid for this boot and this criu binary only */
  _cleanup_free_ char *key = NULL, *cache = NULL;
  if (asprintf(&key, "%s %s %lld.%09ld %lld", boot, exe, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
               (long long)st.st_size) < 0 ||
      asprintf(&cache, "%s/#criu-check", root) < 0)
    return bivy_error(err, ENOMEM, "criu check");
  json_error_t je;
  _cleanup_json_ json_t *c = json_load_file(cache, 0, &je);
  const char *ck = json_string_value(json_object_get(c, "key"));
  if (ck && strcmp(ck, key) == 0) {
    if (json_is_true(json_object_get(c, "ok"))) return 0;
    const char *msg = json_string_value(json_object_get(c, "error"));
    return bivy_error_plain(err, ENOTSUP, "CRIU cannot checkpoint on this kernel: criu check: %s", msg ? msg : "failed");
  }

  int r = bivy_mkdir_p(root, 0700, err);
  if (r < 0) return bivy_error_wrap(err, "state root");
  _cleanup_close_ int out = memfd_create("criu-check", MFD_CLOEXEC);
  if (out < 0) return bivy_error_errno(err, "criu check: memfd_create");
  _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return bivy_error_errno(err, "open /dev/null");
  char *argv[] = {exe, "check", "--no-default-config", NULL};
  int io[3] = {devnull, out, out};
  r = bivy_criu_run(argv, io, 3, err);
  if (r < 0) return r;
  _cleanup_free_ char *text = NULL;
  size_t len;
  lseek(out, 0, SEEK_SET);
  if (bivy_read_fd(out, "criu check output", &text, &len, err) < 0) return -EIO;
  _cleanup_free_ char *line = r == 0 ? NULL : bivy_criu_first_error(text);
  if (r != 0 && line == NULL && asprintf(&line, "exited with status %d", r) < 0) line = NULL;
  _cleanup_json_ json_t *nc = json_pack("{s:s, s:b, s:s?}", "key", key, "ok", r == 0, "error", line);
  _cleanup_free_ char *txt = nc ? json_dumps(nc, JSON_COMPACT) : NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (txt) bivy_write_file_atomic(cache, txt, strlen(txt), 0600, &e); /* a cache: best effort */
  if (r == 0) return 0;
  return bivy_error_plain(err, ENOTSUP, "CRIU cannot checkpoint on this kernel: criu check: %s", line ? line : "failed");
}

/* ---- checkpoint ---- */

/* An image (or work) directory: created when missing (parent must exist); an existing
 * image directory must be empty (never mix two checkpoints) and writable. */
static int check_dir(const char *flag, const char *path, bool must_be_empty, char **abs, bool *created,
                     bivy_error_t *err);
/* On failure *abs is NULL: the caller cleans only a directory that passed the checks. */
static int prepare_dir(const char *flag, const char *path, bool must_be_empty, char **abs, bool *created,
                       bivy_error_t *err) {
  int r = check_dir(flag, path, must_be_empty, abs, created, err);
  if (r < 0) {
    free(*abs);
    *abs = NULL;
  }
  return r;
}

static int check_dir(const char *flag, const char *path, bool must_be_empty, char **abs, bool *created,
                     bivy_error_t *err) {
  *created = false;
  *abs = bivy_ckpt_abspath(path);
  if (*abs == NULL) return bivy_error_errno(err, "%s %s", flag, path);
  struct stat st;
  if (lstat(*abs, &st) < 0) {
    if (errno != ENOENT) return bivy_error_errno(err, "%s %s", flag, path);
    /* 0700: the images hold the container's memory (keys, secrets) */
    if (mkdir(*abs, 0700) < 0) return bivy_error_errno(err, "%s %s: create", flag, path);
    *created = true;
    return 0;
  }
  if (!S_ISDIR(st.st_mode)) return bivy_error_plain(err, ENOTDIR, "%s %s: not a directory", flag, path);
  if (access(*abs, W_OK) < 0) return bivy_error_errno(err, "%s %s: not writable", flag, path);
  if (!must_be_empty) return 0;
  _cleanup_closedir_ DIR *d = opendir(*abs);
  if (d == NULL) return bivy_error_errno(err, "%s %s", flag, path);
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      return bivy_error_plain(err, ENOTEMPTY, "%s %s: not empty (a checkpoint needs an empty directory)", flag, path);
  return 0;
}

/* Remove what a failed dump wrote: the whole directory when bivy created it, else its
 * entries (it was empty before). */
static void clean_dir(const char *abs, bool created) {
  _cleanup_error_ bivy_error_t e = NULL;
  if (created) {
    bivy_rm_rf(abs, &e);
    return;
  }
  _cleanup_closedir_ DIR *d = opendir(abs);
  if (d == NULL) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    _cleanup_free_ char *p = NULL;
    if (asprintf(&p, "%s/%s", abs, de->d_name) < 0) continue;
    bivy_rm_rf(p, &e);
  }
}

static bool mount_id_in(const char *mountinfo, long id) {
  for (const char *l = mountinfo; l && *l;) {
    char *end;
    long v = strtol(l, &end, 10);
    if (end != l && v == id) return true;
    l = strchr(l, '\n');
    if (l) l++;
  }
  return false;
}

static long fdinfo_mnt_id(pid_t pid, int fd) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
  if (read_small(path, buf, sizeof buf) < 0) return -1;
  const char *m = strstr(buf, "mnt_id:");
  return m ? strtol(m + 7, NULL, 10) : -1;
}

static int fdinfo_flags(pid_t pid, int fd) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
  if (read_small(path, buf, sizeof buf) < 0) return fd == 0 ? O_RDONLY : O_WRONLY;
  const char *m = strstr(buf, "flags:");
  return m ? (int)strtol(m + 6, NULL, 8) : (fd == 0 ? O_RDONLY : O_WRONLY);
}

/* The init's stdio as CRIU keys: what is outside the container (a pipe or socket to the
 * caller, a host file such as /dev/null) is dumped as external and handed to the restorer's
 * own stdio at restore. */
static int stdio_keys(pid_t pid, json_t *keys, json_t *files, struct sv *ext, bivy_error_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)pid);
  _cleanup_free_ char *mountinfo = NULL;
  size_t len;
  int r = bivy_read_file_at(AT_FDCWD, path, &mountinfo, &len, err);
  if (r < 0) return r;
  for (int fd = 0; fd < 3; fd++) {
    char link[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    json_array_append_new(files, json_null());
    if (n < 0) {
      json_array_append_new(keys, json_null());
      continue;
    }
    link[n] = '\0';
    if (strncmp(link, "pipe:[", 6) == 0) {
      json_array_append_new(keys, json_string(link));
    } else if (strncmp(link, "socket:[", 8) == 0) {
      /* a unix socket whose peer is outside the tree (a supervisor's log stream) */
      sv_add(ext, "unix[%lu]", strtoul(link + 8, NULL, 10));
      json_array_append_new(keys, json_string(link));
    } else if (link[0] == '/') {
      long mnt = fdinfo_mnt_id(pid, fd);
      struct stat st;
      if (mnt < 0 || stat(path, &st) < 0) return bivy_error_errno(err, "container stdio fd %d", fd);
      unsigned maj = major(st.st_rdev);
      if (S_ISCHR(st.st_mode) && (maj == 136 || maj == 4 || (maj == 5 && minor(st.st_rdev) != 2)))
        return bivy_error_plain(err, ENOTSUP, "container stdio fd %d is a terminal (%s): not supported by checkpoint", fd, link);
      if (mount_id_in(mountinfo, mnt)) {
        json_array_append_new(keys, json_null()); /* inside the container: CRIU's own */
        continue;
      }
      char key[64];
      snprintf(key, sizeof key, "file[%lx:%llx]", (unsigned long)mnt, (unsigned long long)st.st_ino);
      sv_add(ext, "%s", key);
      json_array_append_new(keys, json_string(key));
      /* restore reopens it by path with the same access mode */
      json_array_set_new(files, (size_t)fd, json_pack("{s:s, s:i}", "path", link, "flags", fdinfo_flags(pid, fd)));
    } else {
      json_array_append_new(keys, json_null());
    }
  }
  if (ext->oom) return bivy_error(err, ENOMEM, "stdio");
  return 0;
}

/* Is the init the leader of its own session and process group? */
static bool is_own_session(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof buf) < 0) return false;
  char *p = strrchr(buf, ')');
  int ppid, pgrp, sid;
  char state;
  if (p == NULL || sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4) return false;
  return pgrp == pid && sid == pid;
}

struct ckpt_ctx {
  const struct bivy_checkpoint_opts *o;
  char *img, *work;
  bool img_created, work_created;
  int lock;
  json_t *st;
};

static int do_checkpoint(struct ckpt_ctx *x, json_t **info, bivy_error_t *err) {
  const struct bivy_checkpoint_opts *o = x->o;
  int r = bivy_state_lock(o->root, o->id, err);
  if (r < 0) return r;
  x->lock = r;
  r = bivy_state_load(o->root, o->id, &x->st, err);
  if (r < 0) return r;
  const char *status = bivy_state_refresh(o->root, o->id, x->st);
  if (strcmp(status, "running") != 0)
    return bivy_error_plain(err, EINVAL, "container %s is %s, not running (only a running container can be checkpointed)", o->id,
                            status);
  /* what bivy cannot describe to CRIU is refused before anything happens */
  if (json_object_get(x->st, "net"))
    return bivy_error_plain(err, ENOTSUP, "container %s has a bivy network (annotation org.bivy.net): not supported by checkpoint", o->id);
  const char *bundle = json_string_value(json_object_get(x->st, "bundle"));
  _cleanup_config_ struct bivy_config *cfg = NULL;
  r = bivy_saved_config_load(o->root, o->id, bundle ? bundle : "", &cfg, err);
  if (r < 0) return r;
  const struct bivy_namespace *pidns = bivy_config_ns(cfg, BIVY_NS_PID);
  if (pidns == NULL || pidns->path)
    return bivy_error_plain(err, ENOTSUP, "container %s has no pid namespace of its own: not supported by checkpoint", o->id);
  if (bivy_config_ns(cfg, BIVY_NS_USER))
    return bivy_error_plain(err, ENOTSUP, "container %s has a user namespace: not supported by checkpoint", o->id);
  if (cfg->has_process && cfg->process.terminal)
    return bivy_error_plain(err, ENOTSUP, "container %s has a terminal (process.terminal): not supported by checkpoint", o->id);
  r = bivy_criu_check(o->root, err);
  if (r < 0) return r;

  pid_t pid = (pid_t)json_integer_value(json_object_get(x->st, "pid"));
  /* a pidfd checked against the recorded start time: never dump a reused pid */
  _cleanup_close_ int pidfd = bivy_pidfd_open(pid);
  unsigned long long start = 0;
  if (pidfd < 0 || bivy_proc_start_time(pid, &start) < 0 ||
      (json_int_t)start != json_integer_value(json_object_get(x->st, "pid_start")))
    return bivy_error_plain(err, ESRCH, "container %s is not running", o->id);

  _cleanup_json_ json_t *keys = json_array(), *files = json_array();
  struct sv ext = {0};
  r = files ? stdio_keys(pid, keys, files, &ext, err) : bivy_error(err, ENOMEM, "checkpoint");
  _cleanup_strv_ char **extv = ext.v;
  if (r < 0) return r;
  _cleanup_json_ json_t *binds = json_array();
  size_t nb = 0;
  for (size_t i = 0; i < cfg->n_mounts; i++) nb += bivy_ckpt_is_bind(&cfg->mounts[i]);
  _cleanup_free_ char **bindv = calloc(nb + 1, sizeof *bindv);
  if (keys == NULL || binds == NULL || bindv == NULL) return bivy_error(err, ENOMEM, "checkpoint");
  nb = 0;
  for (size_t i = 0; i < cfg->n_mounts; i++) {
    if (!bivy_ckpt_is_bind(&cfg->mounts[i])) continue;
    bindv[nb++] = cfg->mounts[i].destination;
    json_array_append_new(binds, json_string(cfg->mounts[i].destination));
  }
  /* CRIU restores a pid namespace only with its session inside it (runc's init calls
   * setsid; bivy's init stays in the caller's session unless process.terminal is set) */
  if (!is_own_session(pid))
    return bivy_error_plain(err, ENOTSUP,
                            "container %s: its init (pid %d) is not the leader of its own session, which CRIU needs "
                            "to dump a pid namespace: start the program through setsid (e.g. process.args "
                            "[\"setsid\", \"sh\", ...])", o->id, (int)pid);
  bool shell_job = false;

  r = prepare_dir("--image-path", o->image_path, true, &x->img, &x->img_created, err);
  if (r < 0) return r;
  if (o->work_path) {
    r = prepare_dir("--work-path", o->work_path, false, &x->work, &x->work_created, err);
    if (r < 0) return r;
  }
  const char *work = x->work ? x->work : x->img;

  /* what restore needs besides CRIU's images */
  _cleanup_json_ json_t *meta = json_pack("{s:s, s:s?, s:O, s:O, s:O, s:b, s:b}", "id", o->id, "bundle", bundle, "stdio", keys, "stdioFiles", files,
                                          "bindMounts", binds, "shellJob", shell_job, "tcpEstablished", o->tcp_established);
  _cleanup_free_ char *metap = NULL, *metat = meta ? json_dumps(meta, JSON_INDENT(2)) : NULL;
  if (metat == NULL || asprintf(&metap, "%s/" BIVY_CKPT_META, x->img) < 0) return bivy_error(err, ENOMEM, "checkpoint");
  r = bivy_write_file_atomic(metap, metat, strlen(metat), 0600, err);
  if (r < 0) return r;

  struct bivy_criu_dump d = {.pid = pid, .image_dir = x->img, .work_dir = work, .leave_running = o->leave_running,
                             .tcp_established = o->tcp_established, .shell_job = shell_job, .ext_mounts = bindv,
                             .ext_res = extv};
  _cleanup_strv_ char **argv = NULL;
  r = bivy_criu_dump_argv(bivy_criu_binary(), &d, &argv, err);
  if (r < 0) return r;
  _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return bivy_error_errno(err, "open /dev/null");
  int io[3] = {devnull, devnull, devnull};
  r = bivy_criu_run(argv, io, 3, err);
  if (r < 0) return r;
  if (r != 0) {
    /* keep the log beside the container's state (the image directory is cleaned) */
    _cleanup_free_ char *keep = bivy_state_path(o->root, o->id, "criu-dump.log");
    return bivy_criu_failed(err, "criu dump", r, work, "dump.log", keep);
  }
  if (!o->leave_running) {
    /* CRIU killed the tree after dumping it: wait until the init is gone */
    struct pollfd pf = {.fd = pidfd, .events = POLLIN};
    while (poll(&pf, 1, 10000) < 0 && errno == EINTR) {
    }
  }
  json_object_set_new(x->st, "checkpoint", json_pack("{s:s, s:s}", "imagePath", x->img, "workPath", work));
  status = bivy_state_refresh(o->root, o->id, x->st);
  r = bivy_state_save(o->root, o->id, x->st, err);
  if (r < 0) return r;
  if (info)
    *info = json_pack("{s:s, s:s, s:s, s:i, s:b, s:s}", "id", o->id, "imagePath", x->img, "workPath", work, "pid", (int)pid,
                      "leftRunning", o->leave_running, "status", status);
  return 0;
}

int bivy_container_checkpoint(const struct bivy_checkpoint_opts *o, json_t **info, bivy_error_t *err) {
  if (info) *info = NULL;
  int r = bivy_checkpoint_opts_check(o, err);
  if (r < 0) return r;
  struct ckpt_ctx x = {.o = o, .lock = -1};
  r = do_checkpoint(&x, info, err);
  if (r < 0) {
    /* nothing half-written stays behind; the container keeps running (CRIU resumes it) */
    if (x.img) clean_dir(x.img, x.img_created);
    if (x.work && x.work_created) clean_dir(x.work, true);
    r = bivy_error_wrap(err, "checkpoint %s", o->id);
  }
  free(x.img);
  free(x.work);
  json_decref(x.st);
  if (x.lock >= 0) close(x.lock);
  return r;
}
