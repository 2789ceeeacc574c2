#include "runtime/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cleanup.h"

int bivy_read_fd(int fd, const char *what, char **out, size_t *len, bivy_error_t *err) {
  size_t cap = 4096, n = 0;
  _cleanup_free_ char *buf = malloc(cap);
  if (buf == NULL) return bivy_error(err, ENOMEM, "read %s", what);
  for (;;) {
    if (n + 1 >= cap) {
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) return bivy_error(err, ENOMEM, "read %s", what);
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return bivy_error_errno(err, "read %s", what);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  if (len) *len = n;
  *out = steal_pointer(&buf);
  return 0;
}

int bivy_read_file_at(int dirfd, const char *path, char **out, size_t *len, bivy_error_t *err) {
  _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bivy_error_errno(err, "open %s", path);
  return bivy_read_fd(fd, path, out, len, err);
}

int bivy_write_file_at(int dirfd, const char *path, const char *buf, size_t len, bivy_error_t *err) {
  _cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return bivy_error_errno(err, "open %s", path);
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return bivy_error_errno(err, "write %s", path);
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

int bivy_write_file_atomic_at(int dirfd, const char *path, const char *buf, size_t len, mode_t mode,
                              bivy_error_t *err) {
  _cleanup_free_ char *tmp = NULL;
  if (asprintf(&tmp, "%s.tmp.%d", path, getpid()) < 0) return bivy_error(err, ENOMEM, "write %s", path);
  _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return bivy_error_errno(err, "create %s", tmp);
  const char *p = buf;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      unlinkat(dirfd, tmp, 0);
      return bivy_error(err, saved, "write %s", tmp);
    }
    p += w;
    left -= (size_t)w;
  }
  if (renameat(dirfd, tmp, dirfd, path) < 0) {
    int saved = errno;
    unlinkat(dirfd, tmp, 0);
    return bivy_error(err, saved, "rename %s to %s", tmp, path);
  }
  return 0;
}

int bivy_write_file_atomic(const char *path, const char *buf, size_t len, mode_t mode, bivy_error_t *err) {
  return bivy_write_file_atomic_at(AT_FDCWD, path, buf, len, mode, err);
}

int bivy_mkdir_p(const char *path, mode_t mode, bivy_error_t *err) {
  _cleanup_free_ char *p = strdup(path);
  if (p == NULL) return bivy_error(err, ENOMEM, "mkdir %s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST) return bivy_error_errno(err, "mkdir %s", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST) return bivy_error_errno(err, "mkdir %s", p);
  return 0;
}

static int rm_one(const char *fpath, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  int r = (flag == FTW_DP) ? rmdir(fpath) : unlink(fpath);
  return (r < 0 && errno != ENOENT) ? -1 : 0;
}

int bivy_rm_rf(const char *path, bivy_error_t *err) {
  if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
    return bivy_error_errno(err, "remove %s", path);
  return 0;
}

int bivy_parse_i64(const char *s, int64_t *out) {
  if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) return -EINVAL;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno == ERANGE) return -ERANGE;
  if (end == s || *end != '\0') return -EINVAL;
  *out = v;
  return 0;
}

void bivy_format_size(uint64_t b, char *buf, size_t len) {
  static const char units[] = "kMGT";
  int u = -1;
  while (u < 3 && b >= 1024 && b % 1024 == 0) {
    b /= 1024;
    u++;
  }
  if (u < 0) snprintf(buf, len, "%" PRIu64, b);
  else snprintf(buf, len, "%" PRIu64 "%c", b, units[u]);
}

int bivy_parse_size(const char *s, int64_t *out) {
  if (s == NULL || !isdigit((unsigned char)*s)) return -EINVAL;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE) return -ERANGE;
  unsigned shift = 0;
  switch (tolower((unsigned char)*end)) {
    case '\0': break;
    case 'k': shift = 10; end++; break;
    case 'm': shift = 20; end++; break;
    case 'g': shift = 30; end++; break;
    case 't': shift = 40; end++; break;
    default: return -EINVAL;
  }
  if (shift && (*end == 'b' || *end == 'B')) end++;
  if (*end != '\0') return -EINVAL;
  if (v > ((unsigned long long)INT64_MAX >> shift)) return -ERANGE;
  *out = (int64_t)(v << shift);
  return 0;
}

bool bivy_id_valid(const char *id) {
  if (id == NULL || *id == '\0' || strlen(id) > 1024) return false;
  if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0) return false;
  for (const char *p = id; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_.+-", *p)) return false;
  return true;
}

uint64_t bivy_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct bivy_lock_stats lock_stats;

int bivy_flock_ex(int fd) {
  lock_stats.taken++;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
  if (errno != EWOULDBLOCK && errno != EINTR) return -errno;
  lock_stats.contended++;
  uint64_t t0 = bivy_now_ns();
  int r;
  while ((r = flock(fd, LOCK_EX)) < 0 && errno == EINTR) {}
  lock_stats.wait_ns += bivy_now_ns() - t0;
  return r < 0 ? -errno : 0;
}

struct bivy_lock_stats bivy_lock_stats(void) { return lock_stats; }

int bivy_parse_duration(const char *s, uint64_t *ms) {
  if (s == NULL || *s == '\0') return -EINVAL;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || !isfinite(v) || v < 0 || *s == '-' || *s == '+') return -EINVAL;
  double mul;
  if (*end == '\0' || strcmp(end, "s") == 0) mul = 1000;
  else if (strcmp(end, "ms") == 0) mul = 1;
  else if (strcmp(end, "m") == 0) mul = 60000;
  else if (strcmp(end, "h") == 0) mul = 3600000;
  else return -EINVAL;
  double r = v * mul;
  if (r > 1e15) return -ERANGE;
  *ms = (uint64_t)(r + 0.5);
  return 0;
}

uint64_t bivy_fnv1a_add(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
