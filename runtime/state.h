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

#include "runtime/error.h"

/* Take the container's lock (exclusive flock on ROOT/ID/lock). Returns an fd (>= 0) to
 * close to release it. ENOENT (err: "container ID does not exist") when there is no such
 * container. */
int bivy_state_lock(const char *root, const char *id, bivy_error_t *err);

/* Load ROOT/ID/state.json. */
int bivy_state_load(const char *root, const char *id, json_t **out, bivy_error_t *err);

/* Atomically replace ROOT/ID/state.json (caller holds the lock). */
int bivy_state_save(const char *root, const char *id, json_t *state, bivy_error_t *err);

#endif
