/* bivy start: run the program of a created container (OCI "start"). */
#include "runtime/container.h"
#include "tools/bivy/cli.h"

static int run_start(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  if (argc != 2 || argv[1][0] == '-') return bivy_cli_usage_error(err, "start", "expected exactly one container ID");
  int r = bivy_container_start(g->root, argv[1], err);
  return r < 0 ? r : 0;
}

BIVY_VERB(verb_start) = {
    .name = "start",
    .summary = "start the program of a created container",
    .usage = "Usage: bivy start ID\n"
             "\n"
             "Release the init of created container ID: it runs the startContainer hooks and\n"
             "execs process.args; then the poststart hooks run. Fails unless the container is\n"
             "'created', and reports a hook or exec failure of the init.\n"
             "\n"
             "Options:\n"
             "  -h, --help   this help\n",
    .run = run_start,
};
