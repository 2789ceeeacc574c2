/* Setup inside the container: the rootfs plan and process hardening.
 *
 * Plan, then execute: bivy_plan_build() turns config.json into an ordered list of plain-data
 * operations (mounts, devices, symlinks, masks, read-only remounts, pivot) that unit tests
 * check without root; the container process then runs the list once (runtime/rootfs.c).
 *
 * Decisions (see runtime/plan.c and runtime/rootfs.c for the details):
 *  - Every destination is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT) and mounted on
 *    the O_PATH fd with the new mount API; read-only binds are made read-only before attach.
 *  - cgroup mounts, with the container in its own cgroup namespace: type "cgroup" on a
 *    v1/hybrid host gives the host's layout as seen from the namespace (a read-only tmpfs with
 *    each controller hierarchy re-mounted, plus "unified"; named hierarchies such as
 *    name=systemd are left out), otherwise a fresh cgroup2 mount. Without a cgroup namespace:
 *    a read-only bind of the host's cgroup2 tree (/sys/fs/cgroup/unified on hybrid hosts).
 *    bivy never mounts cgroup2 from the host's cgroup namespace (that re-applies root options
 *    such as nsdelegate to the host's hierarchy) and never creates or reconfigures a v1
 *    hierarchy (it only mounts existing ones from inside the namespace).
 *  - In a user namespace devices are bind-mounted from the host, and sysfs falls back to a
 *    read-only bind of /sys when the container has no network namespace of its own. The
 *    caller must have become the namespace's root (setresuid(0)) before phase 0.
 *  - No process.capabilities object means no capabilities at all (safe default).
 *  - Hooks get exactly their configured env (empty when absent), never the runtime's. */
#ifndef BIVY_LINUX_H
#define BIVY_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runtime/config.h"
#include "runtime/error.h"

enum bivy_op_kind {
  BIVY_OP_MAKE_ROOTFS_PRIVATE, /* make / (r)private/slave per rootfsPropagation */
  BIVY_OP_BIND_ROOTFS,         /* bind root.path onto itself so it is a mount point */
  BIVY_OP_MOUNT,               /* a config mount (dest resolved inside the rootfs) */
  BIVY_OP_MKNOD,               /* a device node (falls back to bind from the host in a user ns) */
  BIVY_OP_SYMLINK,             /* /dev/fd, /dev/stdin, /dev/ptmx ... */
  BIVY_OP_PIVOT_ROOT,          /* pivot_root (or chroot with --no-pivot) */
  BIVY_OP_MASK,                /* maskedPaths entry: /dev/null over files, ro tmpfs over dirs */
  BIVY_OP_READONLY,            /* readonlyPaths entry: bind-remount ro */
  BIVY_OP_ROOT_READONLY,       /* root.readonly: remount / ro */
  BIVY_OP_SYSCTL,              /* write /proc/sys/... (procfs verified) */
};

struct bivy_op {
  enum bivy_op_kind kind;
  const char *source;      /* borrowed from the config or static */
  const char *target;      /* path inside the container (absolute) */
  const char *fstype;
  unsigned long flags;     /* MS_* */
  unsigned long propagation;
  const char *data;
  const char *link_target; /* SYMLINK */
  const struct bivy_device *device; /* MKNOD */
  const char *value;       /* SYSCTL */
  bool ignore_missing;     /* masks/readonly of paths that do not exist */
  /* added by the rootfs owner (additive): */
  unsigned long clear_flags; /* MOUNT: MS_* explicitly cleared ("rw", "suid", ...) */
  bool bind, recursive;      /* MOUNT: bind (rbind when recursive) */
  bool remount;              /* MOUNT: a bind whose flags need the second (remount) step;
                              * executed atomically with mount_setattr before attaching */
  bool cgroup_ns;            /* MOUNT of a cgroup fs: the container has its own cgroup ns */
  int index;                 /* MOUNT: index in config mounts[], -1 for generated ops */
  bool chroot;               /* PIVOT_ROOT: --no-pivot (MS_MOVE + chroot) */
};

struct bivy_plan {
  struct bivy_op *ops;
  size_t n_ops;
  bool userns; /* planned for a user namespace (devices are bind-mounted) */
  char **strings;   /* strings owned by the plan (resolved bind sources, ...) */
  size_t n_strings;
};

/* Build the plan (pure: no system calls). no_pivot: use chroot instead of pivot_root. */
int bivy_plan_build(const struct bivy_config *c, bool no_pivot, struct bivy_plan **out, bivy_error_t *err);
void bivy_plan_free(struct bivy_plan *p);
const char *bivy_op_name(enum bivy_op_kind k);

/* In the container process (new mount namespace): phase 0 runs the ops BEFORE
 * PIVOT_ROOT (mounts into the rootfs, devices, symlinks); phase 1 runs PIVOT_ROOT and every op
 * after it (masks, read-only paths, root read-only, sysctl). The caller runs the
 * createRuntime/createContainer hooks between the two phases. rootfs is the absolute root.path. */
int bivy_plan_run(const struct bivy_plan *p, const char *rootfs, int phase, bivy_error_t *err);

/* Process hardening, in the container process after pivot_root, in this order:
 * hostname/domainname, rlimits, supplementary groups + gid + uid (keeping caps across the
 * uid change), capabilities (bounding, then inheritable/permitted/effective, then ambient),
 * no_new_privs, umask. */
int bivy_set_hostname(const struct bivy_config *c, bivy_error_t *err);
int bivy_apply_rlimits(const struct bivy_process *p, bivy_error_t *err);
int bivy_apply_user_and_caps(const struct bivy_process *p, bivy_error_t *err);

/* Capabilities this runtime itself holds (bounding set), for the early check "config asks
 * for CAP_SYS_RESOURCE but the runtime does not hold it". */
int bivy_caps_check_available(const struct bivy_process *p, bivy_error_t *err);
/* "CAP_SYS_ADMIN" for 21; NULL when unknown. */
const char *bivy_cap_name(int cap);
/* 21 for "CAP_SYS_ADMIN" (case-insensitive, "CAP_" prefix optional); -EINVAL when unknown. */
int bivy_cap_from_name(const char *name);

/* "createRuntime", "poststop", ... */
const char *bivy_hook_kind_name(enum bivy_hook_kind kind);

/* Hooks: run every hook of kind with the OCI state JSON on stdin, honouring timeouts.
 * in_container: the caller is already in the container's namespaces (createContainer,
 * startContainer). Returns an error naming the hook on non-zero exit or timeout. */
int bivy_hooks_run(const struct bivy_config *c, enum bivy_hook_kind kind, const char *state_json,
                   bivy_error_t *err);

/* Terminal: create a pty pair in the container (after pivot, /dev/pts mounted), make the slave
 * the controlling terminal and stdio, and return the master fd (to send to the console
 * socket). Applies consoleSize. */
int bivy_terminal_setup(const struct bivy_process *p, int *master_fd, bivy_error_t *err);
/* Send fd over the unix socket at path (SCM_RIGHTS), as runc's --console-socket does. */
int bivy_send_fd(const char *socket_path, int fd, bivy_error_t *err);

#endif
