/* Cache of compiled seccomp programs: compiling the default profile with libseccomp costs
 * milliseconds at every start, loading a verified BPF blob costs microseconds.
 *
 * Entry DIR/<key>.bpf = header (magic, format version, native arch, key, libseccomp version,
 * lengths, checksum) + canonical profile text + program. An entry is used only if every
 * field matches and its stored text equals the profile being prepared byte for byte, so a
 * stale, truncated, corrupted or colliding entry is rebuilt, never trusted. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp-internal.h"
#include "runtime/util.h"

static void scmp_version(uint32_t v[3]) {
  const struct scmp_version *sv = seccomp_version();
  v[0] = sv ? sv->major : 0;
  v[1] = sv ? sv->minor : 0;
  v[2] = sv ? sv->micro : 0;
}

uint64_t bivy_scmp_cache_key(const char *canon, size_t len) {
  uint32_t meta[5] = {BIVY_SCMP_CACHE_VERSION, seccomp_arch_native(), 0, 0, 0};
  scmp_version(&meta[2]);
  uint64_t h = bivy_fnv1a_add(BIVY_FNV_OFFSET, meta, sizeof meta);
  return bivy_fnv1a_add(h, canon, len);
}

char *bivy_scmp_cache_path(const char *dir, uint64_t key) {
  char *path = NULL;
  if (asprintf(&path, "%s/%016" PRIx64 ".bpf", dir, key) < 0) return NULL;
  return path;
}

/* Only a directory owned by us and writable by nobody else may feed filters into containers. */
static bool dir_trusted(const char *dir) {
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) return false;
  return st.st_uid == geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static void fill_header(struct bivy_scmp_cache_header *h, uint64_t key, size_t text_len, size_t n_insns) {
  memset(h, 0, sizeof *h);
  memcpy(h->magic, BIVY_SCMP_CACHE_MAGIC, sizeof h->magic);
  h->version = BIVY_SCMP_CACHE_VERSION;
  h->native_arch = seccomp_arch_native();
  h->key = key;
  scmp_version(h->scmp_version);
  h->text_len = text_len;
  h->n_insns = n_insns;
}

int bivy_scmp_cache_load(const char *dir, const char *canon, size_t len, struct sock_filter **prog,
                         size_t *n_insns) {
  *prog = NULL;
  *n_insns = 0;
  if (dir == NULL || !dir_trusted(dir)) return 0;
  uint64_t key = bivy_scmp_cache_key(canon, len);
  _cleanup_free_ char *path = bivy_scmp_cache_path(dir, key);
  if (path == NULL) return 0;
  _cleanup_free_ char *buf = NULL;
  size_t size = 0;
  _cleanup_error_ bivy_error_t ignored = NULL;
  if (bivy_read_file_at(AT_FDCWD, path, &buf, &size, &ignored) < 0) return 0;

  struct bivy_scmp_cache_header h, want;
  if (size < sizeof h) return 0;
  memcpy(&h, buf, sizeof h);
  fill_header(&want, key, len, h.n_insns);
  want.checksum = h.checksum;
  /* magic, format, arch, key, libseccomp version and the text length must all match */
  if (memcmp(&h, &want, sizeof h) != 0) return 0;
  if (h.n_insns == 0 || h.n_insns > BPF_MAXINSNS) return 0;
  if (size != sizeof h + len + h.n_insns * sizeof(struct sock_filter)) return 0;
  const char *text = buf + sizeof h;
  if (bivy_fnv1a_add(BIVY_FNV_OFFSET, text, size - sizeof h) != h.checksum) return 0;
  /* the whole profile, not only its hash, must be the one we are preparing */
  if (memcmp(text, canon, len) != 0) return 0;

  struct sock_filter *p = malloc(h.n_insns * sizeof *p);
  if (p == NULL) return 0;
  memcpy(p, text + len, h.n_insns * sizeof *p);
  *prog = p;
  *n_insns = h.n_insns;
  return 1;
}

int bivy_scmp_cache_store(const char *dir, const char *canon, size_t len, const struct sock_filter *prog,
                          size_t n_insns, bivy_error_t *err) {
  int r = bivy_mkdir_p(dir, 0700, err);
  if (r < 0) return bivy_error_wrap(err, "seccomp cache");
  if (!dir_trusted(dir))
    return bivy_error(err, EPERM, "seccomp cache %s: not a directory owned by us and private", dir);
  uint64_t key = bivy_scmp_cache_key(canon, len);
  _cleanup_free_ char *path = bivy_scmp_cache_path(dir, key);
  size_t prog_size = n_insns * sizeof *prog;
  size_t total = sizeof(struct bivy_scmp_cache_header) + len + prog_size;
  _cleanup_free_ char *buf = malloc(total);
  if (path == NULL || buf == NULL) return bivy_error(err, ENOMEM, "seccomp cache");
  struct bivy_scmp_cache_header h;
  fill_header(&h, key, len, n_insns);
  char *text = buf + sizeof h;
  memcpy(text, canon, len);
  memcpy(text + len, prog, prog_size);
  h.checksum = bivy_fnv1a_add(BIVY_FNV_OFFSET, text, len + prog_size);
  memcpy(buf, &h, sizeof h);
  /* atomic: a concurrent start reads the old entry, the new one, or nothing; never half */
  r = bivy_write_file_atomic(path, buf, total, 0600, err);
  if (r < 0) return bivy_error_wrap(err, "seccomp cache");
  return 0;
}
