/* bivy run: create + start (+ wait + delete) in one go. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

static int run_run(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                       {"detach", no_argument, NULL, 'd'},
                                       {"pid-file", required_argument, NULL, 'p'},
                                       {"console-socket", required_argument, NULL, 'c'},
                                       {"preserve-fds", required_argument, NULL, 'P'},
                                       {"no-pivot", no_argument, NULL, 'N'},
                                       {"no-new-keyring", no_argument, NULL, 'K'},
                                       {0, 0, 0, 0}};
  struct bivy_create_opts o = {.root = g->root, .debug = g->debug ? bivy_debug : NULL};
  bool detach = false;
  int c;
  int64_t n;
  while ((c = getopt_long(argc, argv, "+b:d", opts, NULL)) != -1) {
    switch (c) {
      case 'b': o.bundle = optarg; break;
      case 'd': detach = true; break;
      case 'p': o.pid_file = optarg; break;
      case 'c': o.console_socket = optarg; break;
      case 'P':
        if (bivy_parse_i64(optarg, &n) < 0 || n < 0 || n > 65536)
          return bivy_cli_usage_error(err, "run", "--preserve-fds: invalid count \"%s\"", optarg);
        o.preserve_fds = (int)n;
        break;
      case 'N': o.no_pivot = true; break;
      case 'K': o.no_new_keyring = true; break;
      default: return bivy_cli_usage_error(err, "run", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "run", "expected exactly one container ID");
  o.id = argv[optind];
  pid_t pid;
  _cleanup_close_ int pidfd = -1;
  int r = bivy_container_create(&o, &pid, &pidfd, err);
  if (r < 0) return r;
  r = bivy_container_start(g->root, o.id, err);
  if (r < 0) {
    _cleanup_error_ bivy_error_t e = NULL;
    bivy_container_delete(g->root, o.id, true, &e);
    return r;
  }
  if (detach) return 0;
  int status = bivy_wait_forward(pidfd, pid, err);
  _cleanup_error_ bivy_error_t e = NULL;
  /* the init is gone; what is left in its cgroup (daemonised children) goes with it */
  if (bivy_container_delete(g->root, o.id, true, &e) < 0) bivy_warn("%s", e->msg);
  return status;
}

BIVY_VERB(verb_run) = {
    .name = "run",
    .summary = "create and start a container (and wait for it)",
    .usage = "Usage: bivy run [OPTIONS] ID\n"
             "\n"
             "Create and start container ID. In the foreground (default) bivy waits for the\n"
             "container's program, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2\n"
             "to it, deletes the container when it exits and exits with its status (128+N when\n"
             "killed by signal N). With --detach it returns once the program runs.\n"
             "\n"
             "Options:\n"
             "  -b, --bundle DIR          bundle directory with config.json (default: current directory)\n"
             "  -d, --detach              do not wait; leave the container running\n"
             "      --pid-file FILE       write the init's pid to FILE\n"
             "      --console-socket SOCK send the pty master to the unix socket SOCK\n"
             "      --preserve-fds N      pass fds 3..3+N-1 to the container (not directories)\n"
             "      --no-pivot            use chroot instead of pivot_root\n"
             "      --no-new-keyring      keep the caller's session keyring\n"
             "  -h, --help                this help\n",
    .run = run_run,
};
