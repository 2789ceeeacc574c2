/* bivy run: create + start (+ wait + delete) in one go. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/create-opts.h"

static int run_run(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  struct bivy_create_opts o;
  bool detach = false;
  int r = bivy_cli_parse_create(g, "run", argc, argv, &o, &detach, err);
  if (r < 0) return r;
  pid_t pid;
  _cleanup_close_ int pidfd = -1;
  r = bivy_container_create(&o, &pid, &pidfd, err);
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
