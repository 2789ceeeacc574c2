/* bivy_plan_run: execute the rootfs plan in the container's mount namespace.
 *
 * Safety rules followed by every op:
 *  - Destinations are resolved inside the rootfs with openat2(RESOLVE_IN_ROOT |
 *    RESOLVE_NO_MAGICLINKS) from a dirfd of the rootfs, so a symlink in the image (evil ->
 *    /etc) resolves to ROOTFS/etc, never to the host (the CVE-2021-30465 class). Missing
 *    mount points are created inside the resolved parent.
 *  - Mounts are attached to the O_PATH fd of the resolved destination with the new mount API
 *    (fsopen/fsmount, open_tree, mount_setattr, move_mount): no path is looked up twice, and
 *    a read-only bind is made read-only before it becomes visible.
 *  - sysctls are written only through a verified procfs (the CVE-2019-16884 class). */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/linux.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Open path (absolute inside the container) relative to rootfd, never leaving the root. */
static int open_in_root(int rootfd, const char *path, int flags) {
  while (*path == '/') path++;
  if (*path == '\0') path = ".";
  return sys_openat2(rootfd, path, (uint64_t)flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

/* Resolve path inside the root, creating missing components: directories, and the last one
 * as a directory or (last_is_file) an empty file. Returns an O_PATH fd of the result. */
static int mkpath_in_root(int rootfd, const char *path, bool last_is_file, bivy_error_t *err) {
  _cleanup_free_ char *copy = strdup(path);
  _cleanup_free_ char *prefix = calloc(1, strlen(path) + 2);
  if (copy == NULL || prefix == NULL) return bivy_error(err, ENOMEM, "%s", path);
  _cleanup_close_ int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0) return bivy_error_errno(err, "dup rootfs fd");
  char *save = NULL;
  char *comp = strtok_r(copy, "/", &save);
  while (comp) {
    char *next = strtok_r(NULL, "/", &save);
    bool last = next == NULL;
    strcat(prefix, "/");
    strcat(prefix, comp);
    int flags = O_PATH | (last ? 0 : O_DIRECTORY);
    int fd = open_in_root(rootfd, prefix, flags);
    if (fd < 0 && errno == ENOENT) {
      /* create it inside the already-resolved parent (cur), which is inside the root */
      if (last && last_is_file) {
        int t = openat(cur, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (t < 0 && errno != EEXIST) return bivy_error_errno(err, "create mount point %s", prefix);
        if (t >= 0) close(t);
      } else if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
        return bivy_error_errno(err, "mkdir %s", prefix);
      }
      fd = open_in_root(rootfd, prefix, flags);
    }
    if (fd < 0) return bivy_error_errno(err, "resolve %s inside the rootfs", prefix);
    close(cur);
    cur = fd;
    comp = next;
  }
  return steal_fd(&cur);
}

/* Split "/a/b/c" into an O_PATH fd of /a/b (created inside the root) and "c". */
static int open_parent_in_root(int rootfd, const char *path, char **base, bivy_error_t *err) {
  _cleanup_free_ char *dir = strdup(path);
  if (dir == NULL) return bivy_error(err, ENOMEM, "%s", path);
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
  char *slash = strrchr(dir, '/');
  if (slash == NULL || slash[1] == '\0' || strcmp(slash + 1, "..") == 0 || strcmp(slash + 1, ".") == 0)
    return bivy_error(err, EINVAL, "invalid path \"%s\"", path);
  *base = strdup(slash + 1);
  if (*base == NULL) return bivy_error(err, ENOMEM, "%s", path);
  *slash = '\0';
  int fd = mkpath_in_root(rootfd, dir[0] ? dir : "/", false, err);
  if (fd < 0) {
    free(*base);
    *base = NULL;
  }
  return fd;
}

/* MS_* per-mount flags -> MOUNT_ATTR_* */
static uint64_t ms_to_attr(unsigned long f, uint64_t *atime_clr) {
  uint64_t a = 0;
  if (f & MS_RDONLY) a |= MOUNT_ATTR_RDONLY;
  if (f & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
  if (f & MS_NODEV) a |= MOUNT_ATTR_NODEV;
  if (f & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  if (f & MS_NODIRATIME) a |= MOUNT_ATTR_NODIRATIME;
  if (f & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
    if (atime_clr) *atime_clr |= MOUNT_ATTR__ATIME;
    if (f & MS_NOATIME) a |= MOUNT_ATTR_NOATIME;
    else if (f & MS_STRICTATIME) a |= MOUNT_ATTR_STRICTATIME;
    else a |= MOUNT_ATTR_RELATIME;
  }
  return a;
}

static int attach(int mntfd, int dstfd) {
  return move_mount(mntfd, "", dstfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

static int set_propagation(int mntfd, unsigned long prop) {
  if (prop == 0) return 0;
  struct mount_attr a = {.propagation = prop & ~(unsigned long)MS_REC};
  return mount_setattr(mntfd, "", AT_EMPTY_PATH | ((prop & MS_REC) ? AT_RECURSIVE : 0), &a, sizeof(a));
}

/* The kernel's fs_context log ("e tmpfs: Bad value for 'size'") as " (tmpfs: Bad value for
 * 'size')", to tell the user which option the filesystem refused and why. */
static void fs_log(int fsfd, char *buf, size_t len) {
  char raw[256];
  buf[0] = '\0';
  ssize_t n = read(fsfd, raw, sizeof(raw) - 1);
  if (n <= 2) return;
  raw[n] = '\0';
  if (raw[n - 1] == '\n') raw[n - 1] = '\0';
  const char *m = (raw[1] == ' ' && strchr("ewi", raw[0])) ? raw + 2 : raw;
  snprintf(buf, len, " (%s)", m);
}

/* A detached mount of a new filesystem instance (fsopen/fsconfig/fsmount). */
static int fs_create(const char *what, const char *fstype, const char *source, const char *data,
                     unsigned long flags, bivy_error_t *err) {
  _cleanup_close_ int fsfd = fsopen(fstype, FSOPEN_CLOEXEC);
  if (fsfd < 0) return bivy_error_errno(err, "%s: fsopen %s", what, fstype);
  char log[300];
  if (source && fsconfig(fsfd, FSCONFIG_SET_STRING, "source", source, 0) < 0)
    return bivy_error_errno(err, "%s: source %s", what, source);
  if (data && *data) {
    _cleanup_free_ char *d = strdup(data);
    if (d == NULL) return bivy_error(err, ENOMEM, "%s", what);
    char *save = NULL;
    for (char *o = strtok_r(d, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
      char *eq = strchr(o, '=');
      int r;
      if (eq) {
        *eq = '\0';
        r = fsconfig(fsfd, FSCONFIG_SET_STRING, o, eq + 1, 0);
      } else {
        r = fsconfig(fsfd, FSCONFIG_SET_FLAG, o, NULL, 0);
      }
      if (r < 0) {
        int saved = errno;
        fs_log(fsfd, log, sizeof(log));
        return bivy_error(err, saved, "%s: option \"%s%s%s\"%s", what, o, eq ? "=" : "", eq ? eq + 1 : "", log);
      }
    }
  }
  static const struct {
    unsigned long ms;
    const char *name;
  } sb_flags[] = {{MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"}, {MS_LAZYTIME, "lazytime"}};
  for (size_t i = 0; i < sizeof(sb_flags) / sizeof(sb_flags[0]); i++)
    if ((flags & sb_flags[i].ms) && fsconfig(fsfd, FSCONFIG_SET_FLAG, sb_flags[i].name, NULL, 0) < 0)
      return bivy_error_errno(err, "%s: option %s", what, sb_flags[i].name);
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int saved = errno;
    fs_log(fsfd, log, sizeof(log));
    return bivy_error(err, saved, "%s: create %s filesystem%s", what, fstype, log);
  }
  int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, (unsigned)ms_to_attr(flags, NULL));
  if (mfd < 0) return bivy_error_errno(err, "%s: fsmount %s", what, fstype);
  return mfd;
}

/* A detached copy of the tree at source (a host path before pivot_root), with attrs applied
 * before anyone can see it. */
static int bind_create(const char *what, int srcdirfd, const char *source, bool recursive, unsigned long set,
                       unsigned long clear, bivy_error_t *err) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  if (*source == '\0') flags |= AT_EMPTY_PATH;
  _cleanup_close_ int tree = open_tree(srcdirfd, source, flags);
  if (tree < 0) return bivy_error_errno(err, "%s: bind source %s", what, *source ? source : "(fd)");
  uint64_t atime_clr = 0;
  struct mount_attr a = {0};
  a.attr_set = ms_to_attr(set, &atime_clr);
  a.attr_clr = ms_to_attr(clear, NULL) | atime_clr;
  a.attr_clr &= ~(uint64_t)MOUNT_ATTR_RELATIME;
  if ((a.attr_set || a.attr_clr) &&
      mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) < 0)
    return bivy_error_errno(err, "%s: set mount flags on bind of %s", what, *source ? source : "(fd)");
  return steal_fd(&tree);
}

/* Where to find the host's cgroup2 tree when the container has no cgroup namespace. */
static const char *host_cgroup2_path(void) {
  struct statfs s;
  if (statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC) return "/sys/fs/cgroup";
  if (statfs("/sys/fs/cgroup/unified", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC) return "/sys/fs/cgroup/unified";
  return NULL;
}

/* Type "cgroup" on a v1/hybrid host, in the container's own cgroup namespace: the v1 layout
 * the host has, seen from the namespace (each hierarchy rooted at the container's cgroup):
 * a tmpfs with one mount per controller hierarchy listed in /proc/self/cgroup (the cgroup2
 * one as "unified"), symlinks for co-mounted controllers (cpu -> cpu,cpuacct), then the tmpfs made
 * read-only. Existing hierarchies are only mounted again, never created or reconfigured. */
static int mount_cgroup_v1(const struct bivy_op *op, int dst, const char *what, bivy_error_t *err) {
  _cleanup_close_ int tmp = fs_create(what, "tmpfs", "cgroup", "mode=755,size=64k", op->flags & ~(unsigned long)MS_RDONLY, err);
  if (tmp < 0) return tmp;
  if (attach(tmp, dst) < 0) return bivy_error_errno(err, "%s: attach tmpfs", what);
  _cleanup_close_ int dir = openat(tmp, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dir < 0) return bivy_error_errno(err, "%s: open tmpfs", what);
  _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
  if (f == NULL) return bivy_error_errno(err, "%s: open /proc/self/cgroup", what);
  _cleanup_free_ char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) continue;
    *c2 = '\0';
    char *ctrls = c1 + 1;
    bool unified = strncmp(line, "0:", 2) == 0 && *ctrls == '\0';
    /* named hierarchies (name=systemd) are not managed by bivy: the container is not in a
     * cgroup of its own there, so its namespace root would expose the runtime's subtree */
    if ((!unified && *ctrls == '\0') || strstr(ctrls, "name=")) continue;
    char dname[256];
    snprintf(dname, sizeof(dname), "%s", unified ? "unified" : ctrls);
    if (strchr(dname, '/') || dname[0] == '.') continue;
    if (mkdirat(dir, dname, 0755) < 0 && errno != EEXIST) return bivy_error_errno(err, "%s: mkdir %s", what, dname);
    _cleanup_close_ int mfd = unified ? fs_create(what, "cgroup2", "cgroup2", NULL, op->flags, err)
                                      : fs_create(what, "cgroup", "cgroup", ctrls, op->flags, err);
    if (mfd < 0) return bivy_error_wrap(err, "hierarchy %s", dname);
    _cleanup_close_ int sub = openat(dir, dname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0 || attach(mfd, sub) < 0) return bivy_error_errno(err, "%s: attach hierarchy %s", what, dname);
    if (!unified && strchr(ctrls, ',')) {
      char *save = NULL;
      for (char *c = strtok_r(ctrls, ",", &save); c; c = strtok_r(NULL, ",", &save))
        if (symlinkat(dname, dir, c) < 0 && errno != EEXIST)
          return bivy_error_errno(err, "%s: symlink %s", what, c);
    }
  }
  struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
  if ((op->flags & MS_RDONLY) && mount_setattr(tmp, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
    return bivy_error_errno(err, "%s: make read-only", what);
  return 0;
}

static bool host_cgroup_is_v1(void) {
  struct statfs s;
  return statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == TMPFS_MAGIC;
}

static int op_mount(const struct bivy_op *op, int rootfd, bivy_error_t *err) {
  char what[512];
  snprintf(what, sizeof(what), "mounts[%d] %s", op->index, op->target);
  _cleanup_close_ int mfd = -1;
  bool dst_is_file = false;
  if (op->bind) {
    struct stat st;
    if (stat(op->source, &st) < 0) return bivy_error_errno(err, "%s: bind source %s", what, op->source);
    dst_is_file = !S_ISDIR(st.st_mode);
    mfd = bind_create(what, AT_FDCWD, op->source, op->recursive, op->flags, op->clear_flags, err);
  } else if (strcmp(op->fstype, "cgroup") == 0 || strcmp(op->fstype, "cgroup2") == 0) {
    /* Never create a cgroup2 superblock context from the host's cgroup namespace: mounting
     * cgroup2 there re-applies root options (nsdelegate...) to the host's hierarchy. With its
     * own cgroup ns the container gets a fresh view rooted at its cgroup (type "cgroup" on a
     * v1/hybrid host: the v1 layout, see mount_cgroup_v1; else cgroup2); without one, a
     * read-only bind of the host's cgroup2 tree (the unified one on hybrid hosts). */
    if (op->cgroup_ns && strcmp(op->fstype, "cgroup") == 0 && host_cgroup_is_v1()) {
      _cleanup_close_ int dst = mkpath_in_root(rootfd, op->target, false, err);
      if (dst < 0) return bivy_error_wrap(err, "%s", what);
      return mount_cgroup_v1(op, dst, what, err);
    } else if (op->cgroup_ns) {
      mfd = fs_create(what, "cgroup2", "cgroup2", NULL, op->flags, err);
    } else {
      const char *src = host_cgroup2_path();
      if (src)
        mfd = bind_create(what, AT_FDCWD, src, false, op->flags | MS_RDONLY, 0, err);
      else /* legacy-only host: an empty read-only tmpfs */
        mfd = fs_create(what, "tmpfs", "cgroup", "size=4k", op->flags | MS_RDONLY, err);
    }
  } else {
    mfd = fs_create(what, op->fstype, op->source, op->data, op->flags, err);
    if (mfd == -EPERM && strcmp(op->fstype, "sysfs") == 0) {
      /* a user namespace without its own network namespace may not mount sysfs: fall back
       * to a read-only recursive bind of the host's /sys, as runc does */
      bivy_error_release(err);
      mfd = bind_create(what, AT_FDCWD, "/sys", true, op->flags | MS_RDONLY, 0, err);
    }
  }
  if (mfd < 0) return (int)mfd;
  _cleanup_close_ int dst = mkpath_in_root(rootfd, op->target, dst_is_file, err);
  if (dst < 0) return bivy_error_wrap(err, "%s", what);
  if (attach(mfd, dst) < 0) return bivy_error_errno(err, "%s: attach mount", what);
  if (set_propagation(mfd, op->propagation) < 0) return bivy_error_errno(err, "%s: set propagation", what);
  return 0;
}

static int op_mknod(const struct bivy_op *op, int rootfd, bivy_error_t *err) {
  const struct bivy_device *d = op->device;
  char what[512];
  if (op->index >= 0) snprintf(what, sizeof(what), "linux.devices[%d] %s", op->index, op->target);
  else snprintf(what, sizeof(what), "device %s", op->target);
  if (op->bind) {
    /* user namespace: mknod is not permitted, bind the host's node onto an empty file */
    _cleanup_close_ int tree = bind_create(what, AT_FDCWD, op->source, false, MS_NOEXEC | MS_NOSUID, 0, err);
    if (tree < 0) return tree;
    _cleanup_close_ int dst = mkpath_in_root(rootfd, op->target, true, err);
    if (dst < 0) return bivy_error_wrap(err, "%s", what);
    if (attach(tree, dst) < 0) return bivy_error_errno(err, "%s: attach bind of %s", what, op->source);
    return 0;
  }
  _cleanup_free_ char *base = NULL;
  _cleanup_close_ int dir = open_parent_in_root(rootfd, op->target, &base, err);
  if (dir < 0) return bivy_error_wrap(err, "%s", what);
  /* O_PATH fds cannot be used with mknodat: reopen the parent directory itself */
  _cleanup_close_ int pdir = openat(dir, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (pdir < 0) return bivy_error_errno(err, "%s: open parent", what);
  mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
  mode_t perm = d->has_mode ? (d->file_mode & 07777) : 0666;
  dev_t rdev = type == S_IFIFO ? 0 : makedev((unsigned)d->major, (unsigned)d->minor);
  mode_t old = umask(0);
  int r = mknodat(pdir, base, type | perm, rdev);
  umask(old);
  if (r < 0) {
    if (errno != EEXIST) return bivy_error_errno(err, "%s: mknod %c %lld:%lld", what, d->type,
                                                 (long long)d->major, (long long)d->minor);
    struct stat st;
    if (fstatat(pdir, base, &st, AT_SYMLINK_NOFOLLOW) < 0) return bivy_error_errno(err, "%s: stat", what);
    if ((st.st_mode & S_IFMT) != type || st.st_rdev != rdev)
      return bivy_error(err, EEXIST, "%s: exists and is not the %c %lld:%lld device", what, d->type,
                        (long long)d->major, (long long)d->minor);
  }
  if ((d->has_uid || d->has_gid) &&
      fchownat(pdir, base, d->has_uid ? d->uid : (uid_t)-1, d->has_gid ? d->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
    return bivy_error_errno(err, "%s: chown", what);
  return 0;
}

static int op_symlink(const struct bivy_op *op, int rootfd, bivy_error_t *err) {
  _cleanup_free_ char *base = NULL;
  _cleanup_close_ int dir = open_parent_in_root(rootfd, op->target, &base, err);
  if (dir < 0) return bivy_error_wrap(err, "symlink %s", op->target);
  _cleanup_close_ int pdir = openat(dir, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (pdir < 0) return bivy_error_errno(err, "symlink %s: open parent", op->target);
  if (symlinkat(op->link_target, pdir, base) < 0 && errno != EEXIST)
    return bivy_error_errno(err, "symlink %s -> %s", op->target, op->link_target);
  return 0;
}

static int op_pivot(const struct bivy_op *op, const char *rootfs, bivy_error_t *err) {
  _cleanup_close_ int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) return bivy_error_errno(err, "open rootfs %s", rootfs);
  if (fchdir(newroot) < 0) return bivy_error_errno(err, "chdir %s", rootfs);
  if (op->chroot) {
    /* --no-pivot: move the rootfs over / and chroot (weaker: the old root stays reachable
     * to a process with CAP_SYS_CHROOT; meant for ramdisk roots where pivot_root fails) */
    if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0) return bivy_error_errno(err, "move %s to /", rootfs);
    if (chroot(".") < 0) return bivy_error_errno(err, "chroot %s", rootfs);
  } else {
    /* pivot_root(".", "."): the old root is stacked under the new one, no put_old dir needed */
    if (syscall(SYS_pivot_root, ".", ".") < 0) return bivy_error_errno(err, "pivot_root %s", rootfs);
    /* make the old root a slave so detaching it cannot propagate an unmount to the host */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return bivy_error_errno(err, "make old root rslave");
    /* drop the host's mount tree from the container's view */
    if (umount2(".", MNT_DETACH) < 0) return bivy_error_errno(err, "detach old root");
  }
  if (chdir("/") < 0) return bivy_error_errno(err, "chdir /");
  if (op->propagation && mount(NULL, "/", NULL, op->propagation, NULL) < 0)
    return bivy_error_errno(err, "rootfsPropagation");
  return 0;
}

static int op_sysctl(const struct bivy_op *op, int rootfd, bivy_error_t *err) {
  /* write only into a real procfs: an image could put a tmpfs or symlink at /proc so the
   * "sysctl" lands somewhere else (CVE-2019-16884 class) */
  _cleanup_close_ int sys = open_in_root(rootfd, "/proc/sys", O_PATH | O_DIRECTORY);
  if (sys < 0) return bivy_error_errno(err, "linux.sysctl %s: open /proc/sys (is /proc mounted?)", op->target);
  struct statfs sfs;
  if (fstatfs(sys, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
    return bivy_error(err, EPERM, "linux.sysctl %s: /proc/sys is not on procfs, refusing to write", op->target);
  char path[256];
  snprintf(path, sizeof(path), "%s", op->target);
  for (char *s = path; *s; s++)
    if (*s == '.') *s = '/';
  _cleanup_close_ int fd = sys_openat2(sys, path, O_WRONLY | O_NOCTTY,
                                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
  if (fd < 0) return bivy_error_errno(err, "linux.sysctl %s: open /proc/sys/%s", op->target, path);
  if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
    return bivy_error(err, EPERM, "linux.sysctl %s: not on procfs, refusing to write", op->target);
  const char *v = op->value ? op->value : "";
  if (write(fd, v, strlen(v)) < 0) return bivy_error_errno(err, "linux.sysctl %s = \"%s\"", op->target, v);
  return 0;
}

static int op_readonly(const struct bivy_op *op, int rootfd, bivy_error_t *err) {
  _cleanup_close_ int fd = open_in_root(rootfd, op->target, O_PATH);
  if (fd < 0) {
    if (errno == ENOENT && op->ignore_missing) return 0;
    return bivy_error_errno(err, "linux.readonlyPaths[%d] %s", op->index, op->target);
  }
  char what[512];
  snprintf(what, sizeof(what), "linux.readonlyPaths[%d] %s", op->index, op->target);
  /* bind onto itself, read-only recursively; mount_setattr keeps nosuid/nodev/noexec as they are */
  _cleanup_close_ int tree = bind_create(what, fd, "", true, MS_RDONLY, 0, err);
  if (tree < 0) return tree;
  if (attach(tree, fd) < 0) return bivy_error_errno(err, "%s: attach", what);
  return 0;
}

static int op_mask(const struct bivy_op *op, int rootfd, bivy_error_t *err) {
  _cleanup_close_ int fd = open_in_root(rootfd, op->target, O_PATH);
  if (fd < 0) {
    if (errno == ENOENT && op->ignore_missing) return 0;
    return bivy_error_errno(err, "linux.maskedPaths[%d] %s", op->index, op->target);
  }
  char what[512];
  snprintf(what, sizeof(what), "linux.maskedPaths[%d] %s", op->index, op->target);
  struct stat st;
  if (fstat(fd, &st) < 0) return bivy_error_errno(err, "%s: stat", what);
  _cleanup_close_ int mfd = -1;
  if (S_ISDIR(st.st_mode)) /* hide a directory under an empty read-only tmpfs */
    mfd = fs_create(what, "tmpfs", "tmpfs", NULL, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
  else /* hide a file behind /dev/null: reads are empty, writes vanish */
    mfd = bind_create(what, AT_FDCWD, "/dev/null", false, MS_RDONLY, 0, err);
  if (mfd < 0) return mfd;
  if (attach(mfd, fd) < 0) return bivy_error_errno(err, "%s: attach", what);
  return 0;
}

int bivy_plan_run(const struct bivy_plan *p, const char *rootfs, int phase, bivy_error_t *err) {
  size_t pivot = p->n_ops;
  for (size_t i = 0; i < p->n_ops; i++)
    if (p->ops[i].kind == BIVY_OP_PIVOT_ROOT) {
      pivot = i;
      break;
    }
  size_t from = phase == 0 ? 0 : pivot, to = phase == 0 ? pivot : p->n_ops;
  _cleanup_close_ int rootfd = -1;
  for (size_t i = from; i < to; i++) {
    const struct bivy_op *op = &p->ops[i];
    int r = 0;
    switch (op->kind) {
      case BIVY_OP_MAKE_ROOTFS_PRIVATE:
        if (mount(NULL, "/", NULL, op->propagation, NULL) < 0)
          r = bivy_error_errno(err, "make / %s", (op->propagation & MS_SLAVE) ? "rslave" : "rprivate");
        break;
      case BIVY_OP_BIND_ROOTFS:
        if (mount(op->source, op->target, NULL, MS_BIND | MS_REC, NULL) < 0) {
          r = bivy_error_errno(err, "bind rootfs %s", op->source);
          break;
        }
        bivy_closep(&rootfd);
        /* from here on every destination is resolved from this fd of the new mount */
        rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) r = bivy_error_errno(err, "open rootfs %s", rootfs);
        break;
      case BIVY_OP_PIVOT_ROOT:
        r = op_pivot(op, rootfs, err);
        if (r == 0) {
          bivy_closep(&rootfd);
          rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
          if (rootfd < 0) r = bivy_error_errno(err, "open new /");
        }
        break;
      case BIVY_OP_ROOT_READONLY: {
        /* only the root mount: /proc, /dev, ... keep their own flags */
        struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
        if (mount_setattr(AT_FDCWD, "/", 0, &a, sizeof(a)) < 0) r = bivy_error_errno(err, "root.readonly: remount / read-only");
        break;
      }
      default:
        if (rootfd < 0) rootfd = open(phase == 0 ? rootfs : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
          r = bivy_error_errno(err, "open rootfs %s", rootfs);
          break;
        }
        switch (op->kind) {
          case BIVY_OP_MOUNT: r = op_mount(op, rootfd, err); break;
          case BIVY_OP_MKNOD: r = op_mknod(op, rootfd, err); break;
          case BIVY_OP_SYMLINK: r = op_symlink(op, rootfd, err); break;
          case BIVY_OP_SYSCTL: r = op_sysctl(op, rootfd, err); break;
          case BIVY_OP_READONLY: r = op_readonly(op, rootfd, err); break;
          case BIVY_OP_MASK: r = op_mask(op, rootfd, err); break;
          default: break;
        }
    }
    if (r < 0) return r;
  }
  return 0;
}
