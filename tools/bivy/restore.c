/* bivy restore: create a container from a CRIU checkpoint and a bundle (runc-compatible flags). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/checkpoint.h"
#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "tools/bivy/cli.h"

static int run_restore(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  enum { OPT_IMAGE = 256, OPT_WORK, OPT_PIDFILE, OPT_FORMAT };
  static const struct option opts[] = {{"image-path", required_argument, NULL, OPT_IMAGE},
                                       {"work-path", required_argument, NULL, OPT_WORK},
                                       {"bundle", required_argument, NULL, 'b'},
                                       {"detach", no_argument, NULL, 'd'},
                                       {"pid-file", required_argument, NULL, OPT_PIDFILE},
                                       {"format", required_argument, NULL, OPT_FORMAT},
                                       {0, 0, 0, 0}};
  struct bivy_restore_opts o = {.root = g->root};
  const char *format = "text";
  bool detach = false;
  int c, r;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+:b:d", opts, NULL)) != -1) {
    switch (c) {
      case OPT_IMAGE: o.image_path = optarg; break;
      case OPT_WORK: o.work_path = optarg; break;
      case 'b': o.bundle = optarg; break;
      case 'd': detach = true; break;
      case OPT_PIDFILE: o.pid_file = optarg; break;
      case OPT_FORMAT:
        if ((r = bivy_cli_format("restore", optarg, "text", &format, err)) < 0) return r;
        break;
      case ':': return bivy_cli_usage_error(err, "restore", "%s: needs a value", argv[optind - 1]);
      default: return bivy_cli_usage_error(err, "restore", "unknown option %s", argv[optind - 1]);
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "restore", "expected exactly one container ID");
  o.id = argv[optind];
  if (o.image_path == NULL) return bivy_cli_usage_error(err, "restore", "--image-path DIR is required");
  pid_t pid;
  _cleanup_close_ int pidfd = -1;
  r = bivy_container_restore(&o, &pid, &pidfd, err);
  if (r < 0) return r;
  if (strcmp(format, "json") == 0) {
    printf("{\"id\":\"%s\",\"pid\":%d,\"status\":\"running\"}\n", o.id, (int)pid);
    fflush(stdout);
  }
  if (detach) return 0;
  int status = bivy_wait_forward(pidfd, pid, err);
  _cleanup_error_ bivy_error_t e = NULL;
  /* as `bivy run`: the init is gone, what is left in its cgroup goes with it */
  if (bivy_container_delete(g->root, o.id, true, &e) < 0) bivy_warn("%s", e->msg);
  return status;
}

BIVY_VERB(verb_restore) = {
    .name = "restore",
    .summary = "create a container from a checkpoint (CRIU)",
    .usage = "Usage: bivy restore --image-path DIR [OPTIONS] ID\n"
             "\n"
             "Create container ID from the bundle (cgroup and limits, mounts, root.path) with the\n"
             "processes CRIU restores from the checkpoint in DIR (made by `bivy checkpoint`). The\n"
             "restored init's stdin, stdout and stderr, when they were outside the container (a\n"
             "pipe, a socket, a host file), become this command's. In the foreground bivy waits for\n"
             "the restored init, forwards signals to it, deletes the container when it exits and\n"
             "exits with its status; with --detach it returns once the container runs. On failure\n"
             "nothing is left (no state, cgroup, mount or process). CRIU must pass `criu check`\n"
             "on this kernel (checked once per boot); otherwise the command fails at once.\n"
             "\n"
             "Options:\n"
             "      --image-path DIR    the checkpoint (required)\n"
             "      --work-path DIR     where CRIU writes restore.log (default: DIR)\n"
             "  -b, --bundle DIR        bundle with config.json (default: current directory)\n"
             "  -d, --detach            do not wait; leave the container running\n"
             "      --pid-file FILE     write the restored init's pid to FILE\n"
             "      --format text|json  json: print {id, pid, status} once restored\n"
             "  -h, --help              this help\n",
    .run = run_restore,
};
