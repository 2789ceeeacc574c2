/* bivy create: set a container up without running its program (OCI "create"). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/container.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/create-opts.h"

static int run_create(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  struct bivy_create_opts o;
  int r = bivy_cli_parse_create(g, "create", argc, argv, &o, NULL, err);
  if (r < 0) return r;
  pid_t pid;
  r = bivy_container_create(&o, &pid, NULL, err);
  return r < 0 ? r : 0;
}

BIVY_VERB(verb_create) = {
    .name = "create",
    .summary = "create a container (set up, program not started)",
    .usage = "Usage: bivy create [OPTIONS] ID\n"
             "\n"
             "Create container ID from an OCI bundle: namespaces, cgroup, rootfs, hooks up to\n"
             "createContainer; the program in config.json does not run until 'bivy start ID'.\n"
             "The container's init waits on ROOT/ID/exec.fifo. A missing executable is reported\n"
             "here (create fails and leaves nothing behind).\n"
             "\n"
             "Options:\n"
             "  -b, --bundle DIR          bundle directory with config.json (default: current directory)\n"
             "      --pid-file FILE       write the init's pid to FILE (atomically)\n"
             "      --console-socket SOCK send the pty master to the unix socket SOCK\n"
             "                            (required when process.terminal is true)\n"
             "      --preserve-fds N      pass fds 3..3+N-1 to the container (not directories)\n"
             "      --no-pivot            use chroot instead of pivot_root (e.g. on a ramdisk)\n"
             "      --no-new-keyring      keep the caller's session keyring\n"
             "  -h, --help                this help\n",
    .run = run_create,
};
