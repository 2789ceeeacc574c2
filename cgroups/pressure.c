/* Signals for bivyd's autoscaler: a memory early-warning fd, PSI triggers, and the usage
 * figures its decisions need, on v2 and on hybrid/v1 hosts alike. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"

int bivy_cgroup_memory_watch(struct bivy_cgroup *cg, uint64_t threshold, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, CG_MEMORY);
  if (fd < 0) return bivy_error(err, 0, "cgroup %s: no memory controller", cg->path);
  const char *dir = cg->h[cg->ctrl[CG_MEMORY]].dir;
  char buf[64];
  if (cg_ctrl_v2(cg, CG_MEMORY)) {
    /* v2 has no usage thresholds: memory.high is the line. Above it the kernel reclaims and
     * slows the allocating tasks (instead of an OOM kill at memory.max) and counts a "high"
     * event in memory.events, which the returned fd reports */
    if (threshold == UINT64_MAX) snprintf(buf, sizeof buf, "max");
    else snprintf(buf, sizeof buf, "%" PRIu64, threshold);
    int r = bivy_cg_write(fd, "memory.high", buf, err);
    if (r < 0) return bivy_error_wrap(err, "cgroup %s: set the memory early-warning line", dir);
    return bivy_cgroup_oom_fd(cg, err);
  }
  if (threshold == UINT64_MAX) return -ENODATA; /* nothing to watch */
  /* v1: a memory threshold notification (cgroup.event_control), signalled when usage
   * crosses it; closing the eventfd unregisters it */
  _cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return bivy_error_errno(err, "eventfd");
  _cleanup_close_ int ufd = openat(fd, "memory.usage_in_bytes", O_RDONLY | O_CLOEXEC);
  if (ufd < 0) return bivy_error_errno(err, "open %s/memory.usage_in_bytes", dir);
  snprintf(buf, sizeof buf, "%d %d %" PRIu64, efd, ufd, threshold);
  int r = bivy_cg_write(fd, "cgroup.event_control", buf, err);
  if (r < 0) return bivy_error_wrap(err, "cgroup %s: register a memory threshold", dir);
  return steal_fd(&efd);
}

int bivy_cgroup_psi_trigger(struct bivy_cgroup *cg, const char *resource, uint64_t stall_us, uint64_t *window_us,
                            bivy_error_t *err) {
  if (cg->v2 < 0 || cg->h[cg->v2].fd < 0) return bivy_error(err, ENOTSUP, "cgroup %s: no cgroup2 directory for PSI", cg->path);
  char file[32];
  snprintf(file, sizeof file, "%s.pressure", resource);
  /* a 1 s window needs CAP_SYS_RESOURCE; without it the kernel takes whole multiples of 2 s */
  static const uint64_t windows[] = {1000000, 2000000};
  int r = -EINVAL;
  for (size_t i = 0; i < 2; i++) {
    _cleanup_close_ int fd = openat(cg->h[cg->v2].fd, file, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return bivy_error_errno(err, "cgroup %s: open %s", cg->path, file);
    char buf[64];
    uint64_t stall = stall_us * windows[i] / windows[0];
    int n = snprintf(buf, sizeof buf, "some %" PRIu64 " %" PRIu64, stall, windows[i]);
    if (write(fd, buf, (size_t)n + 1) >= 0) {
      *window_us = windows[i];
      return steal_fd(&fd);
    }
    r = -errno;
    if (r != -EINVAL && r != -EPERM) break;
  }
  return bivy_error(err, -r, "cgroup %s: PSI trigger on %s", cg->path, file);
}

int bivy_cgroup_usage(struct bivy_cgroup *cg, struct bivy_cgroup_usage *u, bivy_error_t *err) {
  *u = (struct bivy_cgroup_usage){0};
  int mfd = cg_ctrl_fd(cg, CG_MEMORY), cfd = cg_ctrl_fd(cg, CG_CPU);
  /* cpu usage: the cpu controller's cpu.stat (v2), cpuacct (v1), else the cgroup2 tree's
   * cpu.stat (hybrid hosts, where a container joins v1 cpu and cpuacct only when needed) */
  int ufd = cg_ctrl_v2(cg, CG_CPU) ? cfd : cg_ctrl_fd(cg, CG_CPUACCT);
  bool uv2 = cg_ctrl_v2(cg, CG_CPU);
  if (ufd < 0 && cg->v2 >= 0 && cg->h[cg->v2].fd >= 0) {
    ufd = cg->h[cg->v2].fd;
    uv2 = true;
  }
  if (mfd < 0 || ufd < 0) return bivy_error(err, ENOTSUP, "cgroup %s: needs the memory and cpu controllers", cg->path);
  bool mv2 = cg_ctrl_v2(cg, CG_MEMORY);
  int r;
  if ((r = bivy_cg_read_u64(mfd, mv2 ? "memory.current" : "memory.usage_in_bytes", &u->mem_usage)) < 0 ||
      (r = bivy_cg_read_u64(mfd, mv2 ? "memory.max" : "memory.limit_in_bytes", &u->mem_limit)) < 0)
    return bivy_error(err, -r, "cgroup %s: read memory usage", cg->path);
  uint64_t inactive = 0;
  bivy_cg_read_keyed(mfd, "memory.stat", mv2 ? "inactive_file" : "total_inactive_file", &inactive);
  u->mem_working_set = u->mem_usage > inactive ? u->mem_usage - inactive : 0;
  if (uv2) {
    if ((r = bivy_cg_read_keyed(ufd, "cpu.stat", "usage_usec", &u->cpu_usage_usec)) < 0)
      return bivy_error(err, -r, "cgroup %s: read cpu.stat", cg->path);
  } else {
    uint64_t ns = 0;
    if ((r = bivy_cg_read_u64(ufd, "cpuacct.usage", &ns)) < 0)
      return bivy_error(err, -r, "cgroup %s: read cpuacct.usage", cg->path);
    u->cpu_usage_usec = ns / 1000;
  }
  if (cfd >= 0) {
    bivy_cg_read_keyed(cfd, "cpu.stat", "nr_periods", &u->cpu_periods);
    bivy_cg_read_keyed(cfd, "cpu.stat", "nr_throttled", &u->cpu_throttled);
  }
  return 0;
}
