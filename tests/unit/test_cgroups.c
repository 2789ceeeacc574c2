/* cgroups driver: path rule, and the real driver on this host (root) under a test parent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroups/cgroups-internal.h"
#include "cgroups/cgroups.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

Test(cgroups_path, rule) {
  _cleanup_error_ bivy_error_t err = NULL;
  char *p = NULL;
  bool bp = false;
  cr_assert_eq(bivy_cg_normalise_path(NULL, "abc", &p, &bp, &err), 0);
  cr_assert_str_eq(p, "/bivy/abc");
  cr_assert(bp);
  free(p);
  cr_assert_eq(bivy_cg_normalise_path("a//b/", "id", &p, &bp, &err), 0);
  cr_assert_str_eq(p, "/bivy/a/b");
  free(p);
  cr_assert_eq(bivy_cg_normalise_path("/x/y", "id", &p, &bp, &err), 0);
  cr_assert_str_eq(p, "/x/y");
  cr_assert(!bp);
  free(p);
  cr_assert_lt(bivy_cg_normalise_path("/x/../y", "id", &p, &bp, &err), 0);
  cr_assert(strstr(err->msg, "linux.cgroupsPath") != NULL);
  cr_assert_lt(bivy_cg_normalise_path("/", "id", &p, &bp, &err), 0);
  cr_assert_lt(bivy_cg_normalise_path("system.slice:bivy:x", "id", &p, &bp, &err), 0);
}

Test(cgroups_path, mode_detected) {
  enum bivy_cgroup_mode m = bivy_cgroup_mode();
  struct stat st;
  if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0)
    cr_assert_eq(m, BIVY_CGROUP_UNIFIED);
  else if (stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0)
    cr_assert_eq(m, BIVY_CGROUP_HYBRID);
  else
    cr_assert_eq(m, BIVY_CGROUP_LEGACY);
}

static char parent[64];

static void cg_setup(void) { snprintf(parent, sizeof parent, "/bivyunit-%d", getpid()); }

static void cg_teardown(void) {
  /* remove the test parent in every hierarchy (ours by name) */
  const char *roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu",
                         "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/blkio",
                         "/sys/fs/cgroup/pids", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/freezer"};
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
    char p[256];
    snprintf(p, sizeof p, "%s%s", roots[i], parent);
    rmdir(p);
  }
}

static pid_t spawn_sleeper(int *go) {
  int fds[2];
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(fds[1]);
    if (read(fds[0], &c, 1) < 0) _exit(2);
    for (;;) pause();
  }
  close(fds[0]);
  *go = fds[1];
  return pid;
}

static bool in_proc_cgroup(pid_t pid, const char *path) {
  char f[64];
  snprintf(f, sizeof f, "/proc/%d/cgroup", pid);
  _cleanup_free_ char *s = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (bivy_read_file_at(AT_FDCWD, f, &s, NULL, &e) < 0) return false;
  return strstr(s, path) != NULL;
}

Test(cgroups_driver, lifecycle, .init = cg_setup, .fini = cg_teardown) {
  _cleanup_error_ bivy_error_t err = NULL;
  char path[128];
  snprintf(path, sizeof path, "%s/c1", parent);
  struct bivy_cgroup *cg = NULL;
  int r = bivy_cgroup_create(path, "c1", NULL, &cg, &err);
  cr_assert_eq(r, 0, "create: %s", err ? err->msg : "");
  /* a second create of the same path must refuse to take it over */
  struct bivy_cgroup *cg2 = NULL;
  _cleanup_error_ bivy_error_t err2 = NULL;
  cr_assert_lt(bivy_cgroup_create(path, "c1", NULL, &cg2, &err2), 0);
  cr_assert(strstr(err2->msg, "already exists") != NULL, "%s", err2->msg);

  int go;
  pid_t pid = spawn_sleeper(&go);
  cr_assert_eq(bivy_cgroup_enter(cg, pid, false, &err), 0, "enter: %s", err ? err->msg : "");
  close(go);
  cr_assert(in_proc_cgroup(pid, path));

  _cleanup_free_ pid_t *pids = NULL;
  size_t n = 0;
  cr_assert_eq(bivy_cgroup_pids(cg, &pids, &n, &err), 0);
  cr_assert_eq(n, 1);
  cr_assert_eq(pids[0], pid);

  /* round trip through the state JSON */
  _cleanup_json_ json_t *j = bivy_cgroup_to_json(cg);
  cr_assert_not_null(j);
  struct bivy_cgroup *cg3 = NULL;
  cr_assert_eq(bivy_cgroup_from_json(j, &cg3, &err), 0, "%s", err ? err->msg : "");
  /* the memory-only reopen: the memory directory open, no other, and the OOM counter reads */
  _cleanup_cgroup_ struct bivy_cgroup *cgm = NULL;
  cr_assert_eq(bivy_cgroup_memory_from_json(j, &cgm, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq(cgm->nh, cg3->nh);
  for (size_t i = 0; i < cgm->nh; i++)
    cr_assert_eq(cgm->h[i].fd >= 0, (cgm->h[i].ctrls & (1u << CG_MEMORY)) != 0, "%s", cgm->h[i].dir);
  uint64_t ooms = 1;
  cr_assert_eq(bivy_cgroup_oom_count(cgm, &ooms, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq(ooms, 0);

  bool frozen = true;
  cr_assert_eq(bivy_cgroup_is_frozen(cg3, &frozen, &err), 0);
  cr_assert(!frozen);
  cr_assert_eq(bivy_cgroup_freeze(cg3, true, &err), 0, "%s", err ? err->msg : "");
  cr_assert_eq(bivy_cgroup_is_frozen(cg, &frozen, &err), 0);
  cr_assert(frozen);
  char st[64], state = 0;
  snprintf(st, sizeof st, "/proc/%d/stat", pid);
  _cleanup_free_ char *pstat = NULL;
  cr_assert_eq(bivy_read_file_at(AT_FDCWD, st, &pstat, NULL, &err), 0);
  state = strrchr(pstat, ')')[2];
  cr_assert(state == 'S' || state == 'D', "state %c", state);
  cr_assert_eq(bivy_cgroup_freeze(cg3, false, &err), 0);
  cr_assert_eq(bivy_cgroup_is_frozen(cg, &frozen, &err), 0);
  cr_assert(!frozen);

  /* destroy kills what is left and removes the directories */
  cr_assert_eq(bivy_cgroup_destroy(cg3, &err), 0, "%s", err ? err->msg : "");
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  json_t *hs = json_object_get(j, "hierarchies");
  size_t i;
  json_t *h;
  json_array_foreach(hs, i, h) {
    struct stat sb;
    const char *dir = json_string_value(json_object_get(h, "dir"));
    cr_assert_lt(stat(dir, &sb), 0, "%s still exists", dir);
  }
  cr_assert_eq(bivy_cgroup_destroy(cg3, &err), 0); /* idempotent */
  bivy_cgroup_free(cg3);
  bivy_cgroup_free(cg);
}

/* The eBPF device filter loads, attaches and filters (on hybrid hosts too: it attaches to
 * the container's cgroup2 directory). */
Test(cgroups_driver, bpf_device_filter, .init = cg_setup, .fini = cg_teardown) {
  _cleanup_error_ bivy_error_t err = NULL;
  char path[128];
  snprintf(path, sizeof path, "%s/dev", parent);
  struct bivy_cgroup *cg = NULL;
  cr_assert_eq(bivy_cgroup_create(path, "dev", NULL, &cg, &err), 0, "create: %s", err ? err->msg : "");
  json_error_t je;
  _cleanup_json_ json_t *rules = json_loads("[{\"allow\":false,\"access\":\"rwm\"}]", 0, &je);
  int r = bivy_cg_devices_v2(cg, rules, &err);
  cr_assert_eq(r, 0, "attach: %s", err ? err->msg : "");
  /* the child waits to be moved, then tries the devices: exit code = what behaved */
  int fds[2];
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(fds[1]);
    if (read(fds[0], &c, 1) < 0) _exit(100);
    int res = 0;
    int a = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (a >= 0) res |= 1;
    int b = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (b < 0 && errno == EPERM) res |= 2;
    _exit(res);
  }
  close(fds[0]);
  cr_assert_eq(bivy_cgroup_enter(cg, pid, false, &err), 0, "%s", err ? err->msg : "");
  close(fds[1]);
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status));
  cr_assert_eq(WEXITSTATUS(status), 3, "null allowed and fuse denied: got %d", WEXITSTATUS(status));
  cr_assert_eq(bivy_cgroup_destroy(cg, &err), 0);
  bivy_cgroup_free(cg);
}
