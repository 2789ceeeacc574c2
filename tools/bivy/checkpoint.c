/* bivy checkpoint: dump a running container through CRIU (runc-compatible flags). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/checkpoint.h"
#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"

static int run_checkpoint(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  enum { OPT_IMAGE = 256, OPT_WORK, OPT_LEAVE, OPT_TCP, OPT_FORMAT };
  static const struct option opts[] = {{"image-path", required_argument, NULL, OPT_IMAGE},
                                       {"work-path", required_argument, NULL, OPT_WORK},
                                       {"leave-running", no_argument, NULL, OPT_LEAVE},
                                       {"tcp-established", no_argument, NULL, OPT_TCP},
                                       {"format", required_argument, NULL, OPT_FORMAT},
                                       {0, 0, 0, 0}};
  struct bivy_checkpoint_opts o = {.root = g->root};
  const char *format = "text";
  int c, r;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
    switch (c) {
      case OPT_IMAGE: o.image_path = optarg; break;
      case OPT_WORK: o.work_path = optarg; break;
      case OPT_LEAVE: o.leave_running = true; break;
      case OPT_TCP: o.tcp_established = true; break;
      case OPT_FORMAT:
        if ((r = bivy_cli_format("checkpoint", optarg, "text", &format, err)) < 0) return r;
        break;
      case ':': return bivy_cli_usage_error(err, "checkpoint", "%s: needs a value", argv[optind - 1]);
      default: return bivy_cli_usage_error(err, "checkpoint", "unknown option %s", argv[optind - 1]);
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "checkpoint", "expected exactly one container ID");
  o.id = argv[optind];
  if (o.image_path == NULL) return bivy_cli_usage_error(err, "checkpoint", "--image-path DIR is required");
  _cleanup_json_ json_t *info = NULL;
  r = bivy_container_checkpoint(&o, &info, err);
  if (r < 0) return r;
  if (strcmp(format, "json") == 0) {
    _cleanup_free_ char *txt = json_dumps(info, JSON_COMPACT);
    if (txt) puts(txt);
  }
  return 0;
}

BIVY_VERB(verb_checkpoint) = {
    .name = "checkpoint",
    .summary = "checkpoint a running container (CRIU)",
    .usage = "Usage: bivy checkpoint --image-path DIR [OPTIONS] ID\n"
             "\n"
             "Dump the processes of running container ID into DIR with CRIU. Afterwards the\n"
             "container is stopped (its state says so; `bivy delete ID` removes it) unless\n"
             "--leave-running. `bivy restore` makes a new container from DIR and a bundle.\n"
             "DIR is created when missing; an existing DIR must be empty and writable. On failure\n"
             "the container keeps running and DIR holds nothing from this attempt (CRIU's log\n"
             "is kept as ROOT/ID/criu-dump.log). First CRIU must pass `criu check` on this kernel\n"
             "(checked once per boot); otherwise the command fails at once, touching nothing.\n"
             "Not supported: user namespaces, terminals, bivy networks (org.bivy.net).\n"
             "\n"
             "Options:\n"
             "      --image-path DIR    where the checkpoint goes (required)\n"
             "      --work-path DIR     where CRIU writes its log (default: DIR)\n"
             "      --leave-running     keep the container running after the checkpoint\n"
             "      --tcp-established   dump established TCP connections\n"
             "      --format text|json  json: print {id, imagePath, workPath, pid, leftRunning, status}\n"
             "  -h, --help              this help\n",
    .run = run_checkpoint,
};
