/* The cgroup driver: one container cgroup, on unified v2 (primary design) or on hybrid/v1
 * hosts (v1 controllers; hugetlb and PSI on the cgroup2 tree).
 *
 * Path rule (linux.cgroupsPath): an absolute path ("/a/b") is taken from the root of each
 * hierarchy; a relative one ("a/b") and the default (the container ID) go under a "bivy"
 * parent ("/bivy/a/b"). "." / ".." components and systemd "slice:prefix:name" paths are
 * refused; the leaf must not exist yet (bivy never takes over a cgroup it did not create).
 *
 * Ownership: bivy writes only to directories it created (and the shared "bivy" parent):
 * controllers are enabled in cgroup.subtree_control there; an existing ancestor lacking a
 * controller that linux.resources needs is an error naming it. Destroy removes the leaf
 * and the now-empty parents bivy created.
 *
 * Hybrid hosts: the v1 hierarchies carry the limits; the container also gets a twin cgroup
 * in the cgroup2 tree (PSI, cgroup.kill, hugetlb when enabled there). */
#ifndef BIVY_CGROUPS_H
#define BIVY_CGROUPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/error.h"

enum bivy_cgroup_mode { BIVY_CGROUP_UNIFIED, BIVY_CGROUP_HYBRID, BIVY_CGROUP_LEGACY };

/* Detected once per process (statfs of /sys/fs/cgroup and /sys/fs/cgroup/unified). */
enum bivy_cgroup_mode bivy_cgroup_mode(void);
const char *bivy_cgroup_mode_name(enum bivy_cgroup_mode m);

struct bivy_cgroup; /* opaque */

/* Create the container's cgroup(s) from linux.cgroupsPath (NULL = default from id) and apply
 * linux.resources (json, may be NULL). Fails, naming the setting, if the host cannot apply
 * one. On failure nothing is left behind. */
int bivy_cgroup_create(const char *cgroups_path, const char *id, json_t *resources,
                       struct bivy_cgroup **out, bivy_error_t *err);

/* Directory fd of the v2 cgroup for clone3(CLONE_INTO_CGROUP), or -1 when there is none.
 * Owned by cg. On hybrid hosts it is the cgroup2 twin: bivy_cgroup_enter does the rest. */
int bivy_cgroup_clone_fd(struct bivy_cgroup *cg);

/* Move pid into every hierarchy of cg (after clone), but the cgroup2 one when the clone put it
 * there already (cloned_into_v2). */
int bivy_cgroup_enter(struct bivy_cgroup *cg, pid_t pid, bool cloned_into_v2, bivy_error_t *err);

/* Serialise to / reopen from the container state. */
json_t *bivy_cgroup_to_json(const struct bivy_cgroup *cg);
int bivy_cgroup_from_json(json_t *j, struct bivy_cgroup **out, bivy_error_t *err);
/* The same, opening only the directory that serves the memory controller: enough for the
 * OOM counter and notification (bivy_cgroup_oom_*), one open instead of one per hierarchy. */
int bivy_cgroup_memory_from_json(json_t *j, struct bivy_cgroup **out, bivy_error_t *err);

/* Pids in the cgroup (recursive). *pids is malloc'd. */
int bivy_cgroup_pids(struct bivy_cgroup *cg, pid_t **pids, size_t *n, bivy_error_t *err);
/* Send sig to every process in the cgroup (SIGKILL uses cgroup.kill on v2). */
int bivy_cgroup_kill(struct bivy_cgroup *cg, int sig, bivy_error_t *err);
/* Freeze / thaw (cgroup.freeze on v2, freezer on v1). Waits until the state is reached. */
int bivy_cgroup_freeze(struct bivy_cgroup *cg, bool frozen, bivy_error_t *err);
/* Current freezer state. */
int bivy_cgroup_is_frozen(struct bivy_cgroup *cg, bool *frozen, bivy_error_t *err);
/* Kill what is left and remove the cgroup directories. Idempotent. */
int bivy_cgroup_destroy(struct bivy_cgroup *cg, bivy_error_t *err);
void bivy_cgroup_free(struct bivy_cgroup *cg);

/* Filesystem path of the container's cgroup in the hierarchy that lists its processes (the
 * v2 dir when there is one), e.g. for messages and tests. Owned by cg. */
const char *bivy_cgroup_dir(const struct bivy_cgroup *cg);

/* True when controller ("cpu", "memory", "io", ...) is served by cgroup v2 for this cgroup. */
bool bivy_cgroup_on_v2(const struct bivy_cgroup *cg, const char *controller);
/* Parse a cpuset list "0-2,5" into a bitmap of nbits bits: -EINVAL on junk, -ERANGE if a
 * number does not fit. */
int bivy_cgroup_parse_list(const char *s, uint8_t *bits, size_t nbits);

/* ---- live update (`bivy update`) ---- */
struct bivy_cgroup_update_opts {
  bool force;                  /* shrink memory below usage without waiting for reclaim */
  unsigned reclaim_timeout_ms; /* how long to wait for reclaim before refusing a shrink */
  json_t *names;               /* optional {"linux.resources.memory.limit": "--memory 32M"}:
                                  how to name a field in errors (the flag it came from) */
  bool *joined;                /* hybrid hosts: when set, a controller the container has not
                                  joined yet (cpu, cpuset, blkio are made only where needed) is
                                  joined (cgroup made, processes moved in under the cgroup2
                                  freezer) and *joined set: record bivy_cgroup_to_json(cg) in the
                                  state then, also if the update fails, so delete removes it */
};
/* Apply LinuxResources (OCI JSON) to a live cgroup, all or nothing: every value is validated
 * first (cpusets against the online cpus/mems, files present, unified keys), previous values
 * are saved, and if any write fails they are restored and the error names the key. Memory
 * below current usage is reached through memory.high (v2) / EBUSY retries (v1) within
 * reclaim_timeout_ms, else refused with the limits unchanged (unless force). Device rules
 * cannot be updated. */
int bivy_cgroup_update(struct bivy_cgroup *cg, json_t *resources, const struct bivy_cgroup_update_opts *o,
                       bivy_error_t *err);
/* The limits now in force, read back from the cgroup files: {"memory.max": "134217728", ...}. */
int bivy_cgroup_limits(struct bivy_cgroup *cg, json_t **out, bivy_error_t *err);

/* ---- stats and events ---- */
/* runc-compatible stats object ("data" of `runc events`): cpu, memory, pids, blkio, hugetlb,
 * plus "psi" (some/full avg10/avg60/avg300/total per resource) where the kernel has it. */
int bivy_cgroup_stats(struct bivy_cgroup *cg, json_t **out, bivy_error_t *err);
/* OOM kills so far in the container's cgroup (v2 memory.events oom_kill; v1
 * memory.oom_control oom_kill). */
int bivy_cgroup_oom_count(struct bivy_cgroup *cg, uint64_t *count, bivy_error_t *err);
/* An fd that becomes readable (POLLIN) when an OOM event may have happened: inotify on
 * memory.events (v2) or an eventfd registered with cgroup.event_control (v1). Caller
 * closes; drain with bivy_cgroup_oom_drain. */
int bivy_cgroup_oom_fd(struct bivy_cgroup *cg, bivy_error_t *err);
void bivy_cgroup_oom_drain(int fd);

/* ---- autoscaler signals (cgroups/pressure.c) ---- */
/* An fd that becomes readable (POLLIN) when memory usage crosses `threshold`: a v1 memory
 * threshold eventfd, or on v2 memory.high set to threshold ("max" for UINT64_MAX) plus the
 * memory.events watch. -ENODATA (no fd) on v1 for UINT64_MAX. Caller closes. */
int bivy_cgroup_memory_watch(struct bivy_cgroup *cg, uint64_t threshold, bivy_error_t *err);
/* A PSI trigger on the cgroup2 directory's RESOURCE.pressure ("memory", "cpu"): the fd gets
 * POLLPRI when tasks stalled stall_us per second. The window is 1 s, or 2 s where the kernel
 * wants unprivileged triggers (no CAP_SYS_RESOURCE): *window_us says which. */
int bivy_cgroup_psi_trigger(struct bivy_cgroup *cg, const char *resource, uint64_t stall_us, uint64_t *window_us,
                            bivy_error_t *err);
struct bivy_cgroup_usage {
  uint64_t mem_usage, mem_limit, mem_working_set; /* bytes; limit UINT64_MAX = none */
  uint64_t cpu_usage_usec, cpu_periods, cpu_throttled;
};
int bivy_cgroup_usage(struct bivy_cgroup *cg, struct bivy_cgroup_usage *u, bivy_error_t *err);

/* Record resources now in force in a container state document: state["resources"] becomes
 * the old value with `applied` merged in (objects merge recursively, everything else
 * replaces), so `state`, bivyd restarts and re-creations see the live limits. */
void bivy_cgroup_record_resources(json_t *state, json_t *applied);
/* The merge rule above, on two LinuxResources objects. */
void bivy_resources_merge(json_t *dst, json_t *src);

static inline void bivy_cgroup_freep(struct bivy_cgroup **cg) {
  if (*cg) bivy_cgroup_free(*cg);
}
#define _cleanup_cgroup_ __attribute__((cleanup(bivy_cgroup_freep)))

#endif
