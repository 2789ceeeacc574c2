/* The OCI runtime-spec config.json, parsed once into plain C data.
 *
 * Parsing validates types and values and reports the JSON path of the offending field:
 *   "config.json: linux.namespaces[2].type: unknown namespace \"foo\"".
 * Sub-trees owned by other modules are kept as jansson values and parsed there:
 * linux.resources (cgroups/), linux.seccomp (runtime/seccomp), annotations (netns/ reads
 * its own keys).
 *
 * Ownership: every string and array in the struct is a private copy owned by it (freed by
 * bivy_config_free / bivy_process_clear), so callers may free and replace single fields.
 * Unknown fields are ignored (forward compatibility, like runc); unknown values of known
 * enums (namespace types, rlimits, capabilities, propagation, device types) are errors.
 * Numbers: jansson has no uint64, so a document holding an integer beyond int64 (runc writes
 * RLIM_INFINITY as 18446744073709551615) is decoded with those values as reals; every other
 * integer stays a json integer, also inside json_root/resources. */
#ifndef BIVY_CONFIG_H
#define BIVY_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

enum bivy_ns_type {
  BIVY_NS_PID,
  BIVY_NS_NET,
  BIVY_NS_MNT,
  BIVY_NS_IPC,
  BIVY_NS_UTS,
  BIVY_NS_USER,
  BIVY_NS_CGROUP,
  BIVY_NS_TIME,
  BIVY_NS_COUNT
};

struct bivy_namespace {
  enum bivy_ns_type type;
  char *path; /* join this namespace instead of creating one; NULL = create */
};

struct bivy_id_mapping {
  uint32_t container_id, host_id, size;
};

struct bivy_rlimit {
  int resource; /* RLIMIT_* */
  uint64_t soft, hard;
};

struct bivy_capset {
  /* bitmasks over CAP_* numbers (0..63) */
  uint64_t bounding, effective, permitted, inheritable, ambient;
};

struct bivy_user {
  uid_t uid;
  gid_t gid;
  bool has_umask;
  mode_t umask;
  gid_t *additional_gids;
  size_t n_additional_gids;
};

struct bivy_process {
  bool terminal;
  unsigned console_height, console_width; /* 0 = unset */
  struct bivy_user user;
  char **args; /* NULL-terminated, non-empty */
  char **env;  /* NULL-terminated */
  char *cwd;   /* absolute */
  bool has_caps;
  struct bivy_capset caps;
  struct bivy_rlimit *rlimits;
  size_t n_rlimits;
  bool no_new_privileges;
  bool has_oom_score_adj;
  int oom_score_adj;
  char *apparmor_profile, *selinux_label; /* accepted, reported unsupported if set */
};

struct bivy_mount {
  char *destination; /* absolute, inside the container */
  char *type;        /* may be NULL (bind) */
  char *source;      /* may be NULL */
  char **options;    /* raw option strings, NULL-terminated */
  /* derived from options by the parser: */
  unsigned long flags;       /* MS_* set */
  unsigned long clear_flags; /* MS_* explicitly cleared (e.g. "rw", "suid") */
  unsigned long propagation; /* MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE (| MS_REC), 0 = none */
  char *data;                /* comma-joined filesystem options (e.g. "mode=755,size=65536k") or NULL */
  bool bind, rbind;
  /* recursive options (rro, rrw, rnosuid, rnoatime, ...) as MOUNT_ATTR_* for
   * mount_setattr(AT_RECURSIVE); both 0 = none. An atime option also sets MOUNT_ATTR__ATIME in
   * rec_attr_clr, as mount_setattr requires. */
  uint64_t rec_attr_set, rec_attr_clr;
  bool idmap; /* "idmap" or "ridmap" was given (id-mapped mounts: the rootfs code decides) */
};

struct bivy_device {
  char *path; /* absolute, inside the container */
  char type;  /* 'c', 'b', 'u' or 'p' */
  int64_t major, minor;
  bool has_mode;
  mode_t file_mode;
  bool has_uid, has_gid;
  uid_t uid;
  gid_t gid;
};

struct bivy_sysctl {
  char *key, *value;
};

enum bivy_hook_kind {
  BIVY_HOOK_PRESTART,
  BIVY_HOOK_CREATE_RUNTIME,
  BIVY_HOOK_CREATE_CONTAINER,
  BIVY_HOOK_START_CONTAINER,
  BIVY_HOOK_POSTSTART,
  BIVY_HOOK_POSTSTOP,
  BIVY_HOOK_KIND_COUNT
};

struct bivy_hook {
  char *path;  /* absolute */
  char **args; /* NULL-terminated, may be NULL */
  char **env;  /* NULL-terminated, may be NULL */
  int timeout; /* seconds, 0 = none */
};

struct bivy_annotation {
  char *key, *value;
};

struct bivy_config {
  char *oci_version;
  char *bundle; /* absolute bundle dir the config came from */

  bool has_process;
  struct bivy_process process;

  char *root_path; /* absolute (resolved against the bundle) */
  bool root_readonly;

  char *hostname, *domainname;

  struct bivy_mount *mounts;
  size_t n_mounts;

  struct bivy_hook *hooks[BIVY_HOOK_KIND_COUNT];
  size_t n_hooks[BIVY_HOOK_KIND_COUNT];

  struct bivy_annotation *annotations;
  size_t n_annotations;

  /* linux */
  struct bivy_namespace *namespaces;
  size_t n_namespaces;
  struct bivy_id_mapping *uid_mappings, *gid_mappings;
  size_t n_uid_mappings, n_gid_mappings;
  struct bivy_device *devices;
  size_t n_devices;
  char *cgroups_path;
  char **masked_paths;   /* NULL-terminated */
  char **readonly_paths; /* NULL-terminated */
  unsigned long rootfs_propagation; /* MS_* or 0 */
  struct bivy_sysctl *sysctls;
  size_t n_sysctls;
  char *mount_label;

  json_t *resources; /* linux.resources, borrowed from json_root; NULL if absent */
  json_t *seccomp;   /* linux.seccomp, borrowed from json_root; NULL if absent */
  json_t *json_root; /* the whole document (owned) */
};

/* Parse config.json text. `bundle` is the absolute bundle directory used to resolve root.path.
 * On error, err reads "config.json: <json.path>: <reason>". */
int bivy_config_parse(const char *text, size_t len, const char *bundle, struct bivy_config **out,
                      bivy_error_t *err);
/* Read BUNDLE/config.json and parse it. */
int bivy_config_load(const char *bundle, struct bivy_config **out, bivy_error_t *err);
void bivy_config_free(struct bivy_config *c);

/* Parse a standalone OCI "process" object (exec --process FILE). `where` starts the error
 * paths ("process.json" -> "process.json.cwd: \"x\" is not an absolute path"). *out is
 * overwritten (not freed first); on failure it is left cleared. j is not referenced after
 * the call. Required: args (non-empty), cwd (absolute). */
int bivy_process_parse(json_t *j, const char *where, struct bivy_process *out, bivy_error_t *err);
void bivy_process_clear(struct bivy_process *p);

/* Lookups */
const struct bivy_namespace *bivy_config_ns(const struct bivy_config *c, enum bivy_ns_type t);
const char *bivy_config_annotation(const struct bivy_config *c, const char *key);

/* The i-th mount option name the parser understands (flags, propagation, bind, and the
 * recursive/idmap options left to the rootfs code), NULL past the end: for `bivy features`. */
const char *bivy_mount_option_name(size_t i);

/* Names: "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time" */
const char *bivy_ns_name(enum bivy_ns_type t);
/* CLONE_NEW* flag of a namespace type */
int bivy_ns_clone_flag(enum bivy_ns_type t);
/* the /proc/PID/ns/<file> name ("pid", "net", "mnt", ...) */
const char *bivy_ns_proc_name(enum bivy_ns_type t);

/* Default config.json text as `bivy spec` writes it (runc-like defaults). rootless: user ns
 * with the caller's id mapped to 0. Caller frees. */
char *bivy_config_default_spec(bool rootless);
/* The same default document as a jansson object, without linux.seccomp (for `bivy spec` to
 * adjust before writing). Caller owns the reference; NULL on allocation failure. */
json_t *bivy_config_default_spec_json(bool rootless);

static inline void bivy_config_freep(struct bivy_config **c) {
  if (*c) bivy_config_free(*c);
}
#define _cleanup_config_ __attribute__((cleanup(bivy_config_freep)))

#endif
