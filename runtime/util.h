/* Small I/O and parsing helpers shared by every module. All return 0/-errno and fill err. */
#ifndef BIVY_UTIL_H
#define BIVY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

/* Read everything from fd until EOF into a NUL-terminated buffer (`what` names it in errors). */
int bivy_read_fd(int fd, const char *what, char **out, size_t *len, bivy_error_t *err);
/* Read a whole file (relative to dirfd, or absolute) into a NUL-terminated buffer. */
int bivy_read_file_at(int dirfd, const char *path, char **out, size_t *len, bivy_error_t *err);
/* Write buf to an existing file (O_WRONLY|O_TRUNC, no create): for cgroup/proc/sys files. */
int bivy_write_file_at(int dirfd, const char *path, const char *buf, size_t len, bivy_error_t *err);
/* Create or replace path atomically: write "path.tmp.PID", fsync-less rename over path. */
int bivy_write_file_atomic(const char *path, const char *buf, size_t len, mode_t mode, bivy_error_t *err);
int bivy_write_file_atomic_at(int dirfd, const char *path, const char *buf, size_t len, mode_t mode,
                              bivy_error_t *err);
/* mkdir -p; existing directories are fine. */
int bivy_mkdir_p(const char *path, mode_t mode, bivy_error_t *err);
/* rm -rf of a directory tree we own (does not cross mount points). */
int bivy_rm_rf(const char *path, bivy_error_t *err);

/* "64M", "1g", "512k", "1048576" -> bytes. Rejects negatives, junk, overflow. */
int bivy_parse_size(const char *s, int64_t *out);
/* "250ms", "2s", "1.5s", "1m", "1h", "3" (seconds) -> milliseconds; -EINVAL / -ERANGE. */
int bivy_parse_duration(const char *s, uint64_t *ms);

/* FNV-1a 64 (fingerprints of caches and records, not cryptographic), chainable:
 * h = bivy_fnv1a_add(h, data, len), starting with BIVY_FNV_OFFSET; bivy_fnv1a is one call. */
#define BIVY_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t bivy_fnv1a_add(uint64_t h, const void *data, size_t len);
static inline uint64_t bivy_fnv1a(const void *data, size_t len) { return bivy_fnv1a_add(BIVY_FNV_OFFSET, data, len); }
/* The reverse, exact: 268435456 -> "256M", 1536 -> "1536" ... largest whole k/M/G/T unit. */
void bivy_format_size(uint64_t bytes, char *buf, size_t len);
/* Strict decimal parse of a whole string into a signed 64-bit integer. */
int bivy_parse_i64(const char *s, int64_t *out);

/* A container/instance ID: non-empty, at most 1024 bytes, [A-Za-z0-9_.+-], not "." or "..". */
bool bivy_id_valid(const char *id);

/* Monotonic clock in nanoseconds. */
uint64_t bivy_now_ns(void);

/* flock(fd, LOCK_EX), retrying on EINTR: 0 or -errno. Tries without blocking first; only a
 * lock held by someone else is timed, and the process's lock-wait counters say how many
 * locks it took, how many it had to wait for and for how long (bivy --debug prints them). */
int bivy_flock_ex(int fd);
struct bivy_lock_stats {
  unsigned taken, contended;
  uint64_t wait_ns;
};
struct bivy_lock_stats bivy_lock_stats(void);

#endif
