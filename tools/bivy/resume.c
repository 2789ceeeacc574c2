/* bivy resume: thaw a paused container. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "tools/bivy/cgroup-common.h"
#include "tools/bivy/cli.h"

static int run_resume(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  if (argc != 2 || argv[1][0] == '-') return bivy_cli_usage_error(err, "resume", "expected exactly one container ID");
  const char *id = argv[1];
  _cleanup_cgv_ struct cgv c = {.lock = -1};
  int r = cgv_open(g, "resume", id, true, &c, err);
  if (r < 0) return r;
  if (strcmp(c.status, "paused") != 0)
    return bivy_error(err, 0, "resume: container %s is not paused (status: %s)", id, c.status);
  if ((r = bivy_cgroup_freeze(c.cg, false, err)) < 0) return bivy_error_wrap(err, "resume: container %s", id);
  json_object_set_new(c.state, "paused", json_false());
  if ((r = bivy_state_save(g->root, id, c.state, err)) < 0) return bivy_error_wrap(err, "resume: container %s", id);
  return 0;
}

BIVY_VERB(verb_resume) = {
    .name = "resume",
    .summary = "resume a paused container",
    .usage = "Usage: bivy resume ID\n"
             "\n"
             "Thaw every process of the paused container ID (cgroup.freeze on cgroup v2, the freezer\n"
             "controller on v1). Fails when the container is not paused.\n",
    .run = run_resume,
};
