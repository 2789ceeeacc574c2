/* The cgroup driver: one container cgroup, on unified v2 (primary design) or on hybrid/v1
 * hosts (v1 controllers; hugetlb and PSI on the cgroup2 tree).
 *
 * Path rule (linux.cgroupsPath): an absolute path ("/a/b") is taken from the root of each
 * hierarchy; a relative one ("a/b") and the default (the container ID) go under a "bivy"
 * parent ("/bivy/a/b"). */
#ifndef BIVY_CGROUPS_H
#define BIVY_CGROUPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
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

/* Directory fd of the v2 cgroup for clone3(CLONE_INTO_CGROUP), or -1 when not usable
 * (hybrid/v1: use bivy_cgroup_enter after clone). Owned by cg. */
int bivy_cgroup_clone_fd(struct bivy_cgroup *cg);

/* Move pid into every hierarchy of cg that it is not already in (after clone). */
int bivy_cgroup_enter(struct bivy_cgroup *cg, pid_t pid, bivy_error_t *err);

/* Serialise to / reopen from the container state. */
json_t *bivy_cgroup_to_json(const struct bivy_cgroup *cg);
int bivy_cgroup_from_json(json_t *j, struct bivy_cgroup **out, bivy_error_t *err);

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

static inline void bivy_cgroup_freep(struct bivy_cgroup **cg) {
  if (*cg) bivy_cgroup_free(*cg);
}
#define _cleanup_cgroup_ __attribute__((cleanup(bivy_cgroup_freep)))

#endif
