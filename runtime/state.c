/* Container state under the state root: ROOT/ID/{state.json,lock,exec.fifo,...}.
 *
 * Every writer holds an exclusive flock on ROOT/ID/lock. A new container directory is
 * built under a temporary name with its lock already held and then renamed into place
 * (RENAME_NOREPLACE), so nobody ever sees a half-made, unlocked ROOT/ID. Deleting unlinks
 * the lock file while holding it; a waiter that then acquires the lock sees st_nlink == 0
 * and reports that the container does not exist. */
#include "runtime/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container-internal.h"
#include "runtime/util.h"

char *bivy_state_path(const char *root, const char *id, const char *name) {
  char *p = NULL;
  int r = name ? asprintf(&p, "%s/%s/%s", root, id, name) : asprintf(&p, "%s/%s", root, id);
  return r < 0 ? NULL : p;
}

static int check_id(const char *id, bivy_error_t *err) {
  if (!bivy_id_valid(id))
    return bivy_error_plain(err, EINVAL, "invalid container ID \"%s\": use 1-1024 characters of [A-Za-z0-9_.+-], not \".\" or \"..\"",
                      id ? id : "");
  return 0;
}

static int lock_fd_gone(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_nlink == 0;
}

int bivy_state_lock(const char *root, const char *id, bivy_error_t *err) {
  int r = check_id(id, err);
  if (r < 0) return r;
  _cleanup_free_ char *path = bivy_state_path(root, id, "lock");
  if (path == NULL) return bivy_error(err, ENOMEM, "container %s", id);
  _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return bivy_error_plain(err, ENOENT, "container %s does not exist", id);
    return bivy_error_errno(err, "container %s: open %s", id, path);
  }
  r = bivy_flock_ex(fd);
  if (r < 0) return bivy_error(err, -r, "container %s: lock %s", id, path);
  /* deleted while we waited for the lock */
  if (lock_fd_gone(fd)) return bivy_error_plain(err, ENOENT, "container %s does not exist", id);
  return steal_fd(&fd);
}

int bivy_state_create(const char *root, const char *id, bivy_error_t *err) {
  int r = check_id(id, err);
  if (r < 0) return r;
  /* the network store and the seccomp cache live beside the containers under the root */
  if (strcmp(id, "net") == 0 || strcmp(id, "seccomp-cache") == 0)
    return bivy_error_plain(err, EINVAL, "container ID \"%s\" is reserved", id);
  /* 0700: the state holds pids, paths and fifos only root should act on */
  r = bivy_mkdir_p(root, 0700, err);
  if (r < 0) return bivy_error_wrap(err, "state root");
  _cleanup_free_ char *final = bivy_state_path(root, id, NULL);
  _cleanup_free_ char *tmp = NULL;
  if (final == NULL || asprintf(&tmp, "%s/#new-%s-%d", root, id, getpid()) < 0)
    return bivy_error(err, ENOMEM, "container %s", id);
  if (access(final, F_OK) == 0) return bivy_error_plain(err, EEXIST, "container %s already exists", id);
  if (mkdir(tmp, 0700) < 0) return bivy_error_errno(err, "create %s", tmp);
  _cleanup_free_ char *lockp = NULL;
  if (asprintf(&lockp, "%s/lock", tmp) < 0) {
    rmdir(tmp);
    return bivy_error(err, ENOMEM, "container %s", id);
  }
  _cleanup_close_ int fd = open(lockp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  r = fd < 0 ? -errno : bivy_flock_ex(fd);
  if (r < 0) {
    r = bivy_error(err, -r, "create %s", lockp);
    unlink(lockp);
    rmdir(tmp);
    return r;
  }
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
    int saved = errno;
    unlink(lockp);
    rmdir(tmp);
    if (saved == EEXIST || saved == ENOTEMPTY) return bivy_error_plain(err, EEXIST, "container %s already exists", id);
    return bivy_error(err, saved, "create %s", final);
  }
  return steal_fd(&fd);
}

int bivy_state_remove(const char *root, const char *id, bivy_error_t *err) {
  int r = check_id(id, err);
  if (r < 0) return r;
  _cleanup_free_ char *dir = bivy_state_path(root, id, NULL);
  if (dir == NULL) return bivy_error(err, ENOMEM, "container %s", id);
  r = bivy_rm_rf(dir, err);
  if (r < 0) return bivy_error_wrap(err, "container %s", id);
  return 0;
}

int bivy_state_load(const char *root, const char *id, json_t **out, bivy_error_t *err) {
  int r = check_id(id, err);
  if (r < 0) return r;
  _cleanup_free_ char *path = bivy_state_path(root, id, "state.json");
  if (path == NULL) return bivy_error(err, ENOMEM, "container %s", id);
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return bivy_error_plain(err, ENOENT, "container %s does not exist", id);
    return bivy_error_errno(err, "container %s: open %s", id, path);
  }
  r = bivy_read_fd(fd, path, &text, &len, err);
  if (r < 0) return r;
  json_error_t jerr;
  json_t *j = json_loadb(text, len, 0, &jerr);
  if (j == NULL || !json_is_object(j)) {
    json_decref(j);
    return bivy_error(err, EINVAL, "container %s: %s: corrupt state (%s)", id, path,
                      j ? "not an object" : jerr.text);
  }
  *out = j;
  return 0;
}

int bivy_state_save(const char *root, const char *id, json_t *state, bivy_error_t *err) {
  int r = check_id(id, err);
  if (r < 0) return r;
  _cleanup_free_ char *path = bivy_state_path(root, id, "state.json");
  _cleanup_free_ char *text = json_dumps(state, JSON_COMPACT);
  if (path == NULL || text == NULL) return bivy_error(err, ENOMEM, "container %s: save state", id);
  r = bivy_write_file_atomic(path, text, strlen(text), 0600, err);
  if (r < 0) return bivy_error_wrap(err, "container %s: save state", id);
  return 0;
}

int bivy_proc_start_time(pid_t pid, unsigned long long *start) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -ESRCH;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  if (n <= 0) return -ESRCH;
  buf[n] = '\0';
  /* comm may contain spaces and parentheses: fields resume after the last ')' */
  char *p = strrchr(buf, ')');
  if (p == NULL || p[1] != ' ') return -EINVAL;
  p += 2;
  char state = *p;
  if (state == 'Z' || state == 'X' || state == 'x') return -ESRCH;
  /* p is at field 3; field 22 is 19 fields further */
  for (int f = 3; f < 22; f++) {
    p = strchr(p, ' ');
    if (p == NULL) return -EINVAL;
    p++;
  }
  char *end = NULL;
  unsigned long long v = strtoull(p, &end, 10);
  if (end == p) return -EINVAL;
  *start = v;
  return 0;
}

const char *bivy_state_refresh(const char *root, const char *id, json_t *state) {
  const char *status = "stopped";
  json_int_t pid = json_integer_value(json_object_get(state, "pid"));
  json_int_t want = json_integer_value(json_object_get(state, "pid_start"));
  unsigned long long st = 0;
  if (pid > 0 && bivy_proc_start_time((pid_t)pid, &st) == 0 && (json_int_t)st == want) {
    _cleanup_free_ char *fifo = bivy_state_path(root, id, "exec.fifo");
    if (json_is_true(json_object_get(state, "paused"))) status = "paused";
    else if (fifo && access(fifo, F_OK) == 0) status = "created";
    else status = "running";
  }
  json_object_set_new(state, "status", json_string(status));
  return status;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int bivy_state_list(const char *root, char ***ids, bivy_error_t *err) {
  size_t n = 0, cap = 16;
  _cleanup_strv_ char **v = calloc(cap, sizeof *v);
  if (v == NULL) return bivy_error(err, ENOMEM, "list %s", root);
  _cleanup_closedir_ DIR *d = opendir(root);
  if (d == NULL) {
    if (errno != ENOENT) return bivy_error_errno(err, "list %s", root);
    *ids = steal_pointer(&v);
    return 0;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!bivy_id_valid(de->d_name)) continue;
    if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
    char lockp[1100];
    snprintf(lockp, sizeof lockp, "%s/lock", de->d_name);
    /* only container directories (not e.g. the seccomp cache) */
    if (faccessat(dirfd(d), lockp, F_OK, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (n + 1 >= cap) {
      char **nv = realloc(v, cap * 2 * sizeof *v);
      if (nv == NULL) return bivy_error(err, ENOMEM, "list %s", root);
      v = nv;
      cap *= 2;
      memset(v + n, 0, (cap - n) * sizeof *v);
    }
    v[n] = strdup(de->d_name);
    if (v[n] == NULL) return bivy_error(err, ENOMEM, "list %s", root);
    n++;
  }
  qsort(v, n, sizeof *v, cmp_str);
  *ids = steal_pointer(&v);
  return 0;
}
