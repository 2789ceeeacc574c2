/* bivy delete: remove a stopped container (OCI "delete"). */
#include <getopt.h>
#include <stdbool.h>

#include "runtime/container.h"
#include "tools/bivy/cli.h"

static int run_delete(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"force", no_argument, NULL, 'f'}, {0, 0, 0, 0}};
  bool force = false;
  int c;
  while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
    if (c == 'f') force = true;
    else return bivy_cli_usage_error(err, "delete", "unknown option");
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "delete", "expected exactly one container ID");
  int r = bivy_container_delete(g->root, argv[optind], force, err);
  return r < 0 ? r : 0;
}

BIVY_VERB(verb_delete) = {
    .name = "delete",
    .summary = "delete a stopped container",
    .usage = "Usage: bivy delete [-f|--force] ID\n"
             "\n"
             "Delete container ID: destroy its cgroup, tear its network down, run the poststop\n"
             "hooks and remove its state. Refuses a container that is not stopped unless\n"
             "--force, which first kills every process in it (SIGKILL via the cgroup).\n"
             "\n"
             "Options:\n"
             "  -f, --force  kill the container first if it is still running\n"
             "  -h, --help   this help\n",
    .run = run_delete,
};
