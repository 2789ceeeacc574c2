/* Private to runtime/seccomp*.c (and their unit tests): the validated profile, the compiler
 * and the compiled-program cache. */
#ifndef BIVY_SECCOMP_INTERNAL_H
#define BIVY_SECCOMP_INTERNAL_H

#include <jansson.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/error.h"

#define BIVY_SCMP_MAX_ARCHES 24

struct bivy_scmp_arg {
  unsigned index;
  uint64_t value, value_two;
  enum scmp_compare op;
};

struct bivy_scmp_rule {
  json_t *names;  /* borrowed: array of strings */
  uint32_t action; /* libseccomp SCMP_ACT_* value (errno/trace data included) */
  struct bivy_scmp_arg *args;
  size_t n_args;
  size_t index; /* position in linux.seccomp.syscalls, for messages */
};

/* A validated linux.seccomp; strings and names are borrowed from the JSON it came from. */
struct bivy_scmp_profile {
  uint32_t default_action;
  uint32_t arches[BIVY_SCMP_MAX_ARCHES]; /* libseccomp SCMP_ARCH_* tokens */
  size_t n_arches;
  unsigned int flags; /* SECCOMP_FILTER_FLAG_* requested by "flags" */
  bool notify;        /* some rule uses SCMP_ACT_NOTIFY */
  const char *listener_path, *listener_metadata;
  struct bivy_scmp_rule *rules;
  size_t n_rules;
};

/* Validate linux.seccomp (an object) into p. Pure: no system calls, no libseccomp state.
 * Errors read "linux.seccomp.syscalls[3].args[0].op: unknown operator \"EQUALS\"". */
int bivy_scmp_parse(json_t *j, struct bivy_scmp_profile *p, bivy_error_t *err);
void bivy_scmp_profile_clear(struct bivy_scmp_profile *p);

/* Compile a parsed profile with libseccomp into a classic BPF program (malloc'ed). Unknown
 * syscall names are skipped with a warning on stderr (once per name per process). */
int bivy_scmp_compile(const struct bivy_scmp_profile *p, struct sock_filter **prog, size_t *n_insns,
                      bivy_error_t *err);

/* bivy_scmp_compile in a child process that must finish within timeout_ms (libseccomp 2.5
 * can loop forever on some rule sets): -ETIMEDOUT with an explanation when it does not. */
int bivy_scmp_compile_guarded(const struct bivy_scmp_profile *p, int timeout_ms, struct sock_filter **prog,
                              size_t *n_insns, bivy_error_t *err);

/* Name tables shared by parsing and `features`-style listings. */
int bivy_scmp_action_from_name(const char *name, uint32_t *action_base);
int bivy_scmp_arch_from_name(const char *name, uint32_t *token);

/* ---- cache (runtime/seccomp-cache.c) ---- */

#define BIVY_SCMP_CACHE_MAGIC "BIVYBPF\n"
/* bump when the entry layout or the compiler options (bivy_scmp_compile) change */
#define BIVY_SCMP_CACHE_VERSION 2u

/* On-disk entry: this header, then text_len bytes of canonical profile text, then n_insns
 * struct sock_filter. All fields native-endian (the cache is per machine). */
struct bivy_scmp_cache_header {
  char magic[8];
  uint32_t version;
  uint32_t native_arch;  /* seccomp_arch_native() */
  uint64_t key;          /* bivy_scmp_cache_key() */
  uint32_t scmp_version[3];
  uint32_t reserved;
  uint64_t text_len;
  uint64_t n_insns;
  uint64_t checksum; /* FNV-1a 64 over text and program */
};


/* Key of a profile: hash of the canonical text, the native architecture, the libseccomp
 * version and the cache format version. Only names the file: a hit also compares the
 * whole canonical text stored in the entry, so a hash collision cannot load a wrong filter. */
uint64_t bivy_scmp_cache_key(const char *canon, size_t len);

/* "DIR/<16 hex digits>.bpf" (caller frees). */
char *bivy_scmp_cache_path(const char *dir, uint64_t key);

/* Look the program up: 1 = hit (*prog malloc'ed), 0 = miss (absent, unusable directory, or an
 * entry that fails any check: it is then rebuilt by the caller). Never fails hard. */
int bivy_scmp_cache_load(const char *dir, const char *canon, size_t len, struct sock_filter **prog,
                         size_t *n_insns);

/* Store atomically (temp file + rename), creating dir (0700) if needed. */
int bivy_scmp_cache_store(const char *dir, const char *canon, size_t len, const struct sock_filter *prog,
                          size_t n_insns, bivy_error_t *err);

#endif
