/* bivy kill: send a signal to a container. */
#include <getopt.h>
#include <stdbool.h>

#include "runtime/container.h"
#include "tools/bivy/cli.h"

static int run_kill(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {0, 0, 0, 0}};
  bool all = false;
  int c;
  while ((c = getopt_long(argc, argv, "+a", opts, NULL)) != -1) {
    if (c == 'a') all = true;
    else return bivy_cli_usage_error(err, "kill", "unknown option");
  }
  int left = argc - optind;
  if (left < 1 || left > 2) return bivy_cli_usage_error(err, "kill", "expected ID [SIGNAL]");
  int sig = 15;
  if (left == 2) {
    sig = bivy_signal_parse(argv[optind + 1]);
    if (sig < 0) return bivy_cli_usage_error(err, "kill", "SIGNAL: unknown signal \"%s\"", argv[optind + 1]);
  }
  int r = bivy_container_kill(g->root, argv[optind], sig, all, err);
  return r < 0 ? r : 0;
}

BIVY_VERB(verb_kill) = {
    .name = "kill",
    .summary = "send a signal to a container",
    .usage = "Usage: bivy kill [-a|--all] ID [SIGNAL]\n"
             "\n"
             "Send SIGNAL (default TERM) to the init of container ID, through a pidfd checked\n"
             "against the recorded start time (a reused pid is never signalled). SIGNAL is a\n"
             "name with or without SIG (KILL, SIGKILL, kill, RTMIN+2) or a number (9).\n"
             "A created container may be killed; a stopped one may not.\n"
             "\n"
             "Options:\n"
             "  -a, --all    signal every process in the container's cgroup\n"
             "  -h, --help   this help\n",
    .run = run_kill,
};
