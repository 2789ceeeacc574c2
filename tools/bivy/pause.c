/* bivy pause: freeze every process of a container (cgroup.freeze on v2, freezer on v1). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "tools/bivy/cgroup-common.h"
#include "tools/bivy/cli.h"

static int run_pause(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  if (argc != 2 || argv[1][0] == '-') return bivy_cli_usage_error(err, "pause", "expected exactly one container ID");
  const char *id = argv[1];
  _cleanup_cgv_ struct cgv c = {.lock = -1};
  int r = cgv_open(g, "pause", id, true, &c, err);
  if (r < 0) return r;
  if (strcmp(c.status, "running") != 0)
    return bivy_error(err, 0, "pause: container %s is not running (status: %s)", id, c.status);
  if ((r = bivy_cgroup_freeze(c.cg, true, err)) < 0) return bivy_error_wrap(err, "pause: container %s", id);
  json_object_set_new(c.state, "paused", json_true());
  if ((r = bivy_state_save(g->root, id, c.state, err)) < 0) {
    _cleanup_error_ bivy_error_t e = NULL;
    bivy_cgroup_freeze(c.cg, false, &e); /* leave it as it was */
    return bivy_error_wrap(err, "pause: container %s", id);
  }
  return 0;
}

BIVY_VERB(verb_pause) = {
    .name = "pause",
    .summary = "suspend all processes of a container",
    .usage = "Usage: bivy pause ID\n"
             "\n"
             "Freeze every process of the running container ID (cgroup.freeze on cgroup v2, the\n"
             "freezer controller on v1) and wait until the kernel reports it frozen. `bivy state`\n"
             "then reports \"paused\"; `bivy resume ID` thaws it. Fails when the container is not\n"
             "running.\n",
    .run = run_pause,
};
