/* Shared by the cgroup verbs (update, stats, events, pause, resume): open a container's
 * state and cgroup, parse durations. Not a verb. */
#ifndef BIVY_CLI_CGROUP_COMMON_H
#define BIVY_CLI_CGROUP_COMMON_H

#include <jansson.h>
#include <stdbool.h>

#include "cgroups/cgroups.h"
#include "runtime/error.h"
#include "tools/bivy/cli.h"

struct cgv {
  int lock;           /* lock fd, -1 when not locked */
  json_t *state;      /* ROOT/ID/state.json */
  const char *status; /* live status (bivy_state_refresh) */
  struct bivy_cgroup *cg;
};

/* Load container id's state (taking its lock when lock is true) and reopen its cgroup.
 * Errors read "VERB: container ID does not exist" and the like. */
int cgv_open(struct bivy_global *g, const char *verb, const char *id, bool lock, struct cgv *c, bivy_error_t *err);
void cgv_close(struct cgv *c);
#define _cleanup_cgv_ __attribute__((cleanup(cgv_close)))

/* "2s", "500ms", "1.5s", "1m", "3" (seconds) -> milliseconds. */
int cgv_parse_duration(const char *s, unsigned *ms);

#endif
