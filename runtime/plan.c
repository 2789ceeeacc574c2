/* bivy_plan_build: config.json -> the ordered list of rootfs setup operations.
 *
 * Pure data, no system calls, so unit tests check the plan without root. The order:
 *   MAKE_ROOTFS_PRIVATE  container mounts must never propagate back to the host
 *   BIND_ROOTFS          root.path becomes a mount point (pivot_root needs one)
 *   MOUNT...             config mounts, in config order (later ones may sit on earlier ones)
 *   MKNOD...             default devices (unless /dev is a bind mount) + linux.devices
 *   SYMLINK...           /dev/fd, /dev/std{in,out,err}, /dev/core, /dev/ptmx
 *   PIVOT_ROOT           (phase 1 starts here)
 *   SYSCTL...            before READONLY: /proc/sys becomes read-only there
 *   READONLY...          readonlyPaths
 *   MASK...              maskedPaths
 *   ROOT_READONLY        root.readonly */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "runtime/cleanup.h"
#include "runtime/linux.h"

/* Defaults every container gets in its /dev (runc/OCI list). */
static const struct bivy_device default_devices[] = {
    {.path = (char *)"/dev/null", .type = 'c', .major = 1, .minor = 3, .has_mode = true, .file_mode = 0666},
    {.path = (char *)"/dev/zero", .type = 'c', .major = 1, .minor = 5, .has_mode = true, .file_mode = 0666},
    {.path = (char *)"/dev/full", .type = 'c', .major = 1, .minor = 7, .has_mode = true, .file_mode = 0666},
    {.path = (char *)"/dev/random", .type = 'c', .major = 1, .minor = 8, .has_mode = true, .file_mode = 0666},
    {.path = (char *)"/dev/urandom", .type = 'c', .major = 1, .minor = 9, .has_mode = true, .file_mode = 0666},
    {.path = (char *)"/dev/tty", .type = 'c', .major = 5, .minor = 0, .has_mode = true, .file_mode = 0666},
};

static const struct {
  const char *path, *target;
} dev_symlinks[] = {
    {"/dev/fd", "/proc/self/fd"},
    {"/dev/stdin", "/proc/self/fd/0"},
    {"/dev/stdout", "/proc/self/fd/1"},
    {"/dev/stderr", "/proc/self/fd/2"},
    {"/dev/core", "/proc/kcore"},
};

const char *bivy_op_name(enum bivy_op_kind k) {
  switch (k) {
    case BIVY_OP_MAKE_ROOTFS_PRIVATE: return "make-rootfs-private";
    case BIVY_OP_BIND_ROOTFS: return "bind-rootfs";
    case BIVY_OP_MOUNT: return "mount";
    case BIVY_OP_MKNOD: return "mknod";
    case BIVY_OP_SYMLINK: return "symlink";
    case BIVY_OP_PIVOT_ROOT: return "pivot-root";
    case BIVY_OP_MASK: return "mask";
    case BIVY_OP_READONLY: return "readonly";
    case BIVY_OP_ROOT_READONLY: return "root-readonly";
    case BIVY_OP_SYSCTL: return "sysctl";
  }
  return "unknown";
}

struct builder {
  struct bivy_plan *p;
  size_t cap;
};

static struct bivy_op *add_op(struct builder *b, enum bivy_op_kind kind) {
  if (b->p->n_ops == b->cap) {
    size_t ncap = b->cap ? b->cap * 2 : 32;
    struct bivy_op *n = realloc(b->p->ops, ncap * sizeof(*n));
    if (n == NULL) return NULL;
    b->p->ops = n;
    b->cap = ncap;
  }
  struct bivy_op *op = &b->p->ops[b->p->n_ops++];
  memset(op, 0, sizeof(*op));
  op->kind = kind;
  op->index = -1;
  return op;
}

/* Keep a string alive as long as the plan. */
static const char *own_string(struct bivy_plan *p, char *s) {
  if (s == NULL) return NULL;
  char **n = realloc(p->strings, (p->n_strings + 1) * sizeof(*n));
  if (n == NULL) {
    free(s);
    return NULL;
  }
  p->strings = n;
  p->strings[p->n_strings++] = s;
  return s;
}

/* Compare container paths ignoring repeated and trailing slashes ("/dev/" == "//dev"). */
static bool path_eq(const char *a, const char *b) {
  for (;;) {
    while (*a == '/' && (a[1] == '/' || a[1] == '\0')) a++;
    while (*b == '/' && (b[1] == '/' || b[1] == '\0')) b++;
    if (*a != *b) return false;
    if (*a == '\0') return true;
    a++;
    b++;
  }
}

static bool mount_is_bind(const struct bivy_mount *m) {
  return m->bind || m->rbind || (m->type && strcmp(m->type, "bind") == 0);
}

#define BIND_ATTR_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

/* Sysctls a container may set: only those the kernel namespaces, and only when the container
 * has that namespace (otherwise the write would change the host). */
static int check_sysctl(const struct bivy_config *c, const char *key, bivy_error_t *err) {
  static const char *const ipc_keys[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                         "kernel.sem", "kernel.shmall", "kernel.shmmax",
                                         "kernel.shmmni", "kernel.shm_rmid_forced"};
  char k[256];
  size_t n = strlen(key);
  if (n == 0 || n >= sizeof(k)) return bivy_error(err, EINVAL, "linux.sysctl: invalid key \"%s\"", key);
  for (size_t i = 0; i <= n; i++) k[i] = key[i] == '/' ? '.' : key[i];
  if (strstr(k, "..") || k[0] == '.' || k[n - 1] == '.')
    return bivy_error(err, EINVAL, "linux.sysctl: invalid key \"%s\"", key);
  bool ipc = false;
  for (size_t i = 0; i < sizeof(ipc_keys) / sizeof(ipc_keys[0]); i++)
    if (strcmp(k, ipc_keys[i]) == 0) ipc = true;
  if (strncmp(k, "fs.mqueue.", 10) == 0) ipc = true;
  if (ipc) {
    if (bivy_config_ns(c, BIVY_NS_IPC) == NULL)
      return bivy_error(err, EINVAL, "linux.sysctl: %s: requires an ipc namespace (it would change the host)", key);
    return 0;
  }
  if (strncmp(k, "net.", 4) == 0) {
    if (bivy_config_ns(c, BIVY_NS_NET) == NULL)
      return bivy_error(err, EINVAL, "linux.sysctl: %s: requires a network namespace (it would change the host)", key);
    return 0;
  }
  if (strcmp(k, "kernel.hostname") == 0 || strcmp(k, "kernel.domainname") == 0) {
    if (bivy_config_ns(c, BIVY_NS_UTS) == NULL)
      return bivy_error(err, EINVAL, "linux.sysctl: %s: requires a uts namespace (it would change the host)", key);
    return 0;
  }
  return bivy_error(err, EINVAL, "linux.sysctl: %s: not a namespaced sysctl (it would change the host)", key);
}

static int add_mounts(struct builder *b, const struct bivy_config *c, bivy_error_t *err) {
  bool cgroupns = bivy_config_ns(c, BIVY_NS_CGROUP) != NULL;
  for (size_t i = 0; i < c->n_mounts; i++) {
    const struct bivy_mount *m = &c->mounts[i];
    if (m->destination == NULL || m->destination[0] != '/')
      return bivy_error(err, EINVAL, "mounts[%zu].destination: must be an absolute path", i);
    if (path_eq(m->destination, "/"))
      return bivy_error(err, EINVAL, "mounts[%zu].destination: cannot mount over the container's /", i);
    struct bivy_op *op = add_op(b, BIVY_OP_MOUNT);
    if (op == NULL) return bivy_error(err, ENOMEM, "plan");
    op->index = (int)i;
    op->target = m->destination;
    op->flags = m->flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
    op->clear_flags = m->clear_flags;
    op->propagation = m->propagation;
    op->data = m->data;
    op->bind = mount_is_bind(m);
    if (op->bind) {
      /* "bind" alone is non-recursive; "rbind" and type "bind" without an option recurse */
      op->recursive = m->rbind || !m->bind;
      if (m->source == NULL || *m->source == '\0')
        return bivy_error(err, EINVAL, "mounts[%zu].source: a bind mount needs a source", i);
      if (m->source[0] == '/' || c->bundle == NULL) {
        op->source = m->source;
      } else { /* relative bind sources are relative to the bundle, as in runc */
        char *s = NULL;
        if (asprintf(&s, "%s/%s", c->bundle, m->source) < 0 || (op->source = own_string(b->p, s)) == NULL)
          return bivy_error(err, ENOMEM, "plan");
      }
      /* the kernel ignores flags on the first MS_BIND: they need a second (remount) step */
      op->remount = (op->flags & BIND_ATTR_FLAGS) || (op->clear_flags & BIND_ATTR_FLAGS);
    } else {
      if (m->type == NULL || *m->type == '\0')
        return bivy_error(err, EINVAL, "mounts[%zu].type: required for a non-bind mount", i);
      op->fstype = m->type;
      op->source = m->source ? m->source : m->type;
      if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0) op->cgroup_ns = cgroupns;
    }
  }
  return 0;
}

static bool has_mount_at(const struct bivy_config *c, const char *dest, bool *is_bind) {
  for (size_t i = 0; i < c->n_mounts; i++)
    if (c->mounts[i].destination && path_eq(c->mounts[i].destination, dest)) {
      if (is_bind) *is_bind = mount_is_bind(&c->mounts[i]);
      return true;
    }
  return false;
}

static int add_devices(struct builder *b, const struct bivy_config *c, bivy_error_t *err) {
  bool dev_bind = false;
  /* a /dev bind-mounted from the host is used as is (no defaults written into the host's /dev) */
  bool setup_dev = !(has_mount_at(c, "/dev", &dev_bind) && dev_bind);
  if (setup_dev) {
    for (size_t i = 0; i < sizeof(default_devices) / sizeof(default_devices[0]); i++) {
      bool overridden = false;
      for (size_t j = 0; j < c->n_devices; j++)
        if (c->devices[j].path && path_eq(c->devices[j].path, default_devices[i].path)) overridden = true;
      if (overridden) continue;
      struct bivy_op *op = add_op(b, BIVY_OP_MKNOD);
      if (op == NULL) return bivy_error(err, ENOMEM, "plan");
      op->device = &default_devices[i];
      op->target = default_devices[i].path;
      op->source = default_devices[i].path; /* host node to bind in a user namespace */
      op->bind = b->p->userns;
    }
  }
  for (size_t j = 0; j < c->n_devices; j++) {
    const struct bivy_device *d = &c->devices[j];
    if (d->path == NULL || d->path[0] != '/')
      return bivy_error(err, EINVAL, "linux.devices[%zu].path: must be an absolute path", j);
    struct bivy_op *op = add_op(b, BIVY_OP_MKNOD);
    if (op == NULL) return bivy_error(err, ENOMEM, "plan");
    op->device = d;
    op->target = d->path;
    op->source = d->path;
    op->index = (int)j;
    /* mknod is not allowed in a user namespace: bind the host's node instead */
    op->bind = b->p->userns;
  }
  if (setup_dev) {
    for (size_t i = 0; i < sizeof(dev_symlinks) / sizeof(dev_symlinks[0]); i++) {
      struct bivy_op *op = add_op(b, BIVY_OP_SYMLINK);
      if (op == NULL) return bivy_error(err, ENOMEM, "plan");
      op->target = dev_symlinks[i].path;
      op->link_target = dev_symlinks[i].target;
    }
    if (has_mount_at(c, "/dev/pts", NULL)) {
      /* the container's own devpts instance: ptmx must point at it, not the host's */
      struct bivy_op *op = add_op(b, BIVY_OP_SYMLINK);
      if (op == NULL) return bivy_error(err, ENOMEM, "plan");
      op->target = "/dev/ptmx";
      op->link_target = "pts/ptmx";
    }
  }
  return 0;
}

int bivy_plan_build(const struct bivy_config *c, bool no_pivot, struct bivy_plan **out, bivy_error_t *err) {
  struct bivy_plan *p = calloc(1, sizeof(*p));
  if (p == NULL) return bivy_error(err, ENOMEM, "plan");
  struct builder b = {.p = p};
  int r = -ENOMEM;
  struct bivy_op *op;
  p->userns = bivy_config_ns(c, BIVY_NS_USER) != NULL;

  if (c->root_path == NULL || c->root_path[0] != '/') {
    r = bivy_error(err, EINVAL, "root.path: must be an absolute path");
    goto fail;
  }
  if (c->hostname && *c->hostname && bivy_config_ns(c, BIVY_NS_UTS) == NULL) {
    r = bivy_error(err, EINVAL, "hostname: setting the hostname requires a uts namespace in linux.namespaces");
    goto fail;
  }
  if (c->domainname && *c->domainname && bivy_config_ns(c, BIVY_NS_UTS) == NULL) {
    r = bivy_error(err, EINVAL, "domainname: setting the domainname requires a uts namespace in linux.namespaces");
    goto fail;
  }

  unsigned long prop = c->rootfs_propagation ? c->rootfs_propagation : (MS_REC | MS_PRIVATE);
  bool shared = prop & MS_SHARED;
  /* container mounts must not propagate to the host: start private (or slave: host -> container
   * only); a requested "shared" is applied after pivot_root, when the host is out of reach */
  if ((op = add_op(&b, BIVY_OP_MAKE_ROOTFS_PRIVATE)) == NULL) goto nomem;
  op->target = "/";
  op->propagation = shared ? (MS_REC | MS_SLAVE) : prop;

  /* pivot_root needs the new root to be a mount point; it also pins the rootfs */
  if ((op = add_op(&b, BIVY_OP_BIND_ROOTFS)) == NULL) goto nomem;
  op->source = op->target = c->root_path;
  op->flags = MS_BIND | MS_REC;
  op->bind = op->recursive = true;

  if ((r = add_mounts(&b, c, err)) < 0) goto fail;
  if ((r = add_devices(&b, c, err)) < 0) goto fail;

  if ((op = add_op(&b, BIVY_OP_PIVOT_ROOT)) == NULL) goto nomem;
  op->target = "/";
  op->chroot = no_pivot;
  op->propagation = shared ? prop : 0;

  for (size_t i = 0; i < c->n_sysctls; i++) {
    if ((r = check_sysctl(c, c->sysctls[i].key, err)) < 0) goto fail;
    if ((op = add_op(&b, BIVY_OP_SYSCTL)) == NULL) goto nomem;
    op->target = c->sysctls[i].key;
    op->value = c->sysctls[i].value;
    op->index = (int)i;
  }
  for (size_t i = 0; c->readonly_paths && c->readonly_paths[i]; i++) {
    if (c->readonly_paths[i][0] != '/') {
      r = bivy_error(err, EINVAL, "linux.readonlyPaths[%zu]: must be an absolute path", i);
      goto fail;
    }
    if ((op = add_op(&b, BIVY_OP_READONLY)) == NULL) goto nomem;
    op->target = c->readonly_paths[i];
    op->flags = MS_BIND | MS_REC | MS_RDONLY;
    op->ignore_missing = true;
    op->index = (int)i;
  }
  for (size_t i = 0; c->masked_paths && c->masked_paths[i]; i++) {
    if (c->masked_paths[i][0] != '/') {
      r = bivy_error(err, EINVAL, "linux.maskedPaths[%zu]: must be an absolute path", i);
      goto fail;
    }
    if ((op = add_op(&b, BIVY_OP_MASK)) == NULL) goto nomem;
    op->target = c->masked_paths[i];
    op->source = "/dev/null";
    op->fstype = "tmpfs";
    op->flags = MS_RDONLY;
    op->ignore_missing = true;
    op->index = (int)i;
  }
  if (c->root_readonly) {
    if ((op = add_op(&b, BIVY_OP_ROOT_READONLY)) == NULL) goto nomem;
    op->target = "/";
    op->flags = MS_RDONLY;
  }
  *out = p;
  return 0;

nomem:
  r = bivy_error(err, ENOMEM, "plan");
fail:
  bivy_plan_free(p);
  return r;
}

void bivy_plan_free(struct bivy_plan *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->n_strings; i++) free(p->strings[i]);
  free(p->strings);
  free(p->ops);
  free(p);
}
