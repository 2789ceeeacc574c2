/* Container state under the state root: ROOT/ID/state.json (written atomically: temp file
 * + rename) guarded by ROOT/ID/lock (flock). Owned by the lifecycle code; other modules
 * read and update their own keys:
 *   "id", "bundle", "status" (as recorded; bivy_state_refresh derives the live one),
 *   "pid", "pid_start" (start time from /proc/PID/stat, against pid reuse),
 *   "created" (RFC 3339), "annotations", "ociVersion",
 *   "cgroup"    -- bivy_cgroup_to_json()            (cgroups/)
 *   "resources" -- linux.resources now in force     (cgroups/, updated by `bivy update`)
 *   "net"       -- bivy_net_setup() result          (netns/)
 *   "paused"    -- bool */
#ifndef BIVY_STATE_H
#define BIVY_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "runtime/error.h"

/* Take the container's lock (exclusive flock on ROOT/ID/lock). Returns an fd (>= 0) to
 * close to release it. ENOENT (err: "container ID does not exist") when there is no such
 * container. */
int bivy_state_lock(const char *root, const char *id, bivy_error_t *err);

/* Load ROOT/ID/state.json. */
int bivy_state_load(const char *root, const char *id, json_t **out, bivy_error_t *err);

/* Atomically replace ROOT/ID/state.json (caller holds the lock). */
int bivy_state_save(const char *root, const char *id, json_t *state, bivy_error_t *err);

/* --- lifecycle helpers (added by the lifecycle code) --- */

/* Create ROOT/ID (0700, ROOT too) with its lock file, atomically (the directory appears
 * already locked). Returns the lock fd. EEXIST: "container ID already exists"; an invalid
 * ID is refused (EINVAL). */
int bivy_state_create(const char *root, const char *id, bivy_error_t *err);

/* Remove ROOT/ID and everything in it (caller holds the lock). Waiters on the lock then
 * get ENOENT. */
int bivy_state_remove(const char *root, const char *id, bivy_error_t *err);

/* "ROOT/ID" (+ "/name" when name is not NULL), malloc'd; NULL on ENOMEM. */
char *bivy_state_path(const char *root, const char *id, const char *name);

/* Start time (clock ticks since boot, /proc/PID/stat field 22) of pid; -ESRCH when there
 * is no such process or it is a zombie. */
int bivy_proc_start_time(pid_t pid, unsigned long long *start);

/* Derive the live status from the recorded state: "stopped" when the pid is gone, a
 * zombie or reused (pid_start differs); "paused" when "paused" is true; "created" while
 * ROOT/ID/exec.fifo exists (start removes it); else "running". Updates "status" in state
 * and returns it (a static string). */
const char *bivy_state_refresh(const char *root, const char *id, json_t *state);

/* IDs of the containers under root (sorted, NULL-terminated, caller frees with
 * bivy_strvfreep). A missing root is an empty list. */
int bivy_state_list(const char *root, char ***ids, bivy_error_t *err);

#endif
