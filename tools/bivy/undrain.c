/* bivy undrain: let a drained cluster node take instances again. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"
#include "tools/bivy/cluster-common.h"

static int run_undrain(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"no-wait", no_argument, NULL, 'n'},
                                       {"wait-timeout", required_argument, NULL, 'w'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0, 0, 0, 0}};
  const char *format = "text";
  uint64_t wait_ms = 60000;
  bool wait = false;
  int c, r;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'n': wait = false; break;
      case 'w':
        if (bivy_parse_duration(optarg, &wait_ms) < 0)
          return bivy_cli_usage_error(err, "undrain", "--wait-timeout: invalid duration \"%s\" (e.g. 30s)", optarg);
        break;
      case 'f':
        if (bivy_cli_format("undrain", optarg, "text", &format, err) < 0) return -1;
        break;
      default: return bivy_cli_usage_error(err, "undrain", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "undrain", "expected exactly one NODE");
  const char *node = argv[optind];
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "verb", "undrain", "node", node);
  _cleanup_json_ json_t *resp = NULL;
  if ((r = bivy_client_call(g, "undrain", req, &resp, NULL, err)) < 0) return r;
  if (wait && (r = bivy_cl_wait(g, "undrain", NULL, node, wait_ms, err)) < 0) return r;
  if (strcmp(format, "json") == 0) {
    json_object_del(resp, "ok");
    bivy_client_print_json(resp);
  } else {
    printf("%s: %s\n", node, false ? (wait ? "drained, instances moved" : "drained, instances moving") : "undrained");
  }
  return 0;
}

BIVY_VERB(verb_undrain) = {
    .name = "undrain",
    .summary = "let a drained cluster node take instances again (bivyd --cluster)",
    .usage = "Usage: bivy undrain NODE [--format text|json]\n"
             "\n"
             "End `bivy drain NODE`: the node takes new instances again (pending instances that fit\n"
             "on it are placed there). Instances moved away stay where they are.\n"
             "\n"
             "Options:\n"
             "      --format FMT       text (default) or json\n"
             "  -h, --help             this help\n",
    .run = run_undrain,
};
