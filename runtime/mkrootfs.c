#include "runtime/mkrootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"

static const char *const dirs[] = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys",
                                   "dev", "tmp", "root", "home", "run", "var", "var/tmp", "mnt"};

static const char passwd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
static const char group[] =
    "root:x:0:\n"
    "daemon:x:1:\n"
    "tty:x:5:\n"
    "nogroup:x:65534:\n";

static int copy_file(const char *src, int dirfd, const char *dst, mode_t mode, bivy_error_t *err) {
  _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return bivy_error_errno(err, "open %s (install busybox-static)", src);
  struct stat st;
  if (fstat(in, &st) < 0) return bivy_error_errno(err, "stat %s", src);
  _cleanup_close_ int out = openat(dirfd, dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out < 0) return bivy_error_errno(err, "create %s", dst);
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(out, in, &off, (size_t)(st.st_size - off));
    if (n < 0) return bivy_error_errno(err, "copy %s", src);
    if (n == 0) break;
  }
  return 0;
}

/* The applet list, as "/bin/ls"-style paths, from `busybox --list-full`. */
static int list_applets(const char *busybox, char **out, bivy_error_t *err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return bivy_error_errno(err, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return bivy_error_errno(err, "fork");
  }
  if (pid == 0) {
    dup2(p[1], 1);
    execl(busybox, "busybox", "--list-full", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  _cleanup_close_ int rfd = p[0];
  _cleanup_free_ char *buf = NULL;
  int r = bivy_read_fd(rfd, "busybox --list-full", &buf, NULL, err);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (r < 0) return r;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return bivy_error(err, 0, "%s --list-full failed", busybox);
  *out = steal_pointer(&buf);
  return 0;
}

int bivy_mkrootfs(const char *dir, const char *busybox, bivy_error_t *err) {
  if (busybox == NULL) busybox = BIVY_BUSYBOX_PATH;
  int r = bivy_mkdir_p(dir, 0755, err);
  if (r < 0) return r;
  _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0) return bivy_error_errno(err, "open %s", dir);
  _cleanup_closedir_ DIR *d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 0));
  if (d == NULL) return bivy_error_errno(err, "read %s", dir);
  for (struct dirent *de; (de = readdir(d)) != NULL;)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      return bivy_error(err, ENOTEMPTY, "rootfs %s", dir);
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
    if (mkdirat(dfd, dirs[i], 0755) < 0 && errno != EEXIST) return bivy_error_errno(err, "mkdir %s/%s", dir, dirs[i]);
  /* mkdir applies the umask: set the sticky world-writable tmp dirs explicitly */
  if (fchmodat(dfd, "tmp", 01777, 0) < 0 || fchmodat(dfd, "var/tmp", 01777, 0) < 0 ||
      fchmodat(dfd, "root", 0700, 0) < 0)
    return bivy_error_errno(err, "chmod in %s", dir);
  r = copy_file(busybox, dfd, "bin/busybox", 0755, err);
  if (r < 0) return r;
  _cleanup_free_ char *applets = NULL;
  r = list_applets(busybox, &applets, err);
  if (r < 0) return r;
  for (char *save = NULL, *line = strtok_r(applets, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (*line == '/') line++;
    if (*line == '\0' || strcmp(line, "bin/busybox") == 0) continue;
    /* relative link to the one binary, e.g. usr/bin/wc -> ../../bin/busybox */
    char target[64] = "";
    for (const char *s = line; (s = strchr(s, '/')) != NULL; s++) strcat(target, "../");
    strcat(target, "bin/busybox");
    if (symlinkat(target, dfd, line) < 0 && errno != EEXIST) return bivy_error_errno(err, "symlink %s", line);
  }
  r = bivy_write_file_atomic_at(dfd, "etc/passwd", passwd, sizeof(passwd) - 1, 0644, err);
  if (r < 0) return r;
  r = bivy_write_file_atomic_at(dfd, "etc/group", group, sizeof(group) - 1, 0644, err);
  if (r < 0) return r;
  static const char hosts[] = "127.0.0.1\tlocalhost\n::1\tlocalhost\n";
  return bivy_write_file_atomic_at(dfd, "etc/hosts", hosts, sizeof(hosts) - 1, 0644, err);
}
