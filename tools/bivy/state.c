/* bivy state: print the OCI state of a container as JSON. */
#include <stdio.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "tools/bivy/cli.h"

static int run_state(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  if (argc != 2 || argv[1][0] == '-') return bivy_cli_usage_error(err, "state", "expected exactly one container ID");
  _cleanup_json_ json_t *st = NULL;
  int r = bivy_container_state(g->root, argv[1], &st, err);
  if (r < 0) return r;
  json_dumpf(st, stdout, JSON_INDENT(2));
  putchar('\n');
  return 0;
}

BIVY_VERB(verb_state) = {
    .name = "state",
    .summary = "print the state of a container (JSON)",
    .usage = "Usage: bivy state ID\n"
             "\n"
             "Print the OCI state of container ID as JSON: ociVersion, id, status (created,\n"
             "running, paused or stopped, derived live from the init's pid and start time),\n"
             "pid (0 once stopped), bundle, rootfs, created, owner, annotations.\n"
             "\n"
             "Options:\n"
             "  -h, --help   this help\n",
    .run = run_state,
};
