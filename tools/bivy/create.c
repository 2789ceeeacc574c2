/* bivy create: set a container up without running its program (OCI "create"). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/container.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

static int run_create(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                       {"pid-file", required_argument, NULL, 'p'},
                                       {"console-socket", required_argument, NULL, 'c'},
                                       {"preserve-fds", required_argument, NULL, 'P'},
                                       {"no-pivot", no_argument, NULL, 'N'},
                                       {"no-new-keyring", no_argument, NULL, 'K'},
                                       {0, 0, 0, 0}};
  struct bivy_create_opts o = {.root = g->root, .debug = g->debug ? bivy_debug : NULL};
  int c;
  int64_t n;
  while ((c = getopt_long(argc, argv, "+b:", opts, NULL)) != -1) {
    switch (c) {
      case 'b': o.bundle = optarg; break;
      case 'p': o.pid_file = optarg; break;
      case 'c': o.console_socket = optarg; break;
      case 'P':
        if (bivy_parse_i64(optarg, &n) < 0 || n < 0 || n > 65536)
          return bivy_cli_usage_error(err, "create", "--preserve-fds: invalid count \"%s\"", optarg);
        o.preserve_fds = (int)n;
        break;
      case 'N': o.no_pivot = true; break;
      case 'K': o.no_new_keyring = true; break;
      default: return bivy_cli_usage_error(err, "create", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "create", "expected exactly one container ID");
  o.id = argv[optind];
  pid_t pid;
  int r = bivy_container_create(&o, &pid, NULL, err);
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
