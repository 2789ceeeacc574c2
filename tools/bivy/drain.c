/* bivy drain: stop placing instances on a cluster node and move its instances away. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"
#include "tools/bivy/cluster-common.h"

static int run_drain(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"no-wait", no_argument, NULL, 'n'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"wait-timeout", required_argument, NULL, 'w'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0, 0, 0, 0}};
  const char *format = "text";
  uint64_t wait_ms = 60000, timeout_ms = 10000;
  bool wait = true;
  int c, r;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
    switch (c) {
      case 'n': wait = false; break;
      case 't':
        if (bivy_parse_duration(optarg, &timeout_ms) < 0)
          return bivy_cli_usage_error(err, "drain", "--timeout: invalid duration \"%s\" (e.g. 10, 500ms, 2s)", optarg);
        break;
      case 'w':
        if (bivy_parse_duration(optarg, &wait_ms) < 0)
          return bivy_cli_usage_error(err, "drain", "--wait-timeout: invalid duration \"%s\" (e.g. 30s)", optarg);
        break;
      case 'f':
        if (bivy_cli_format("drain", optarg, "text", &format, err) < 0) return -1;
        break;
      default: return bivy_cli_usage_error(err, "drain", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "drain", "expected exactly one NODE");
  const char *node = argv[optind];
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s, s:I}", "verb", "drain", "node", node, "timeout_ms", (json_int_t)timeout_ms);
  _cleanup_json_ json_t *resp = NULL;
  if ((r = bivy_client_call(g, "drain", req, &resp, NULL, err)) < 0) return r;
  if (wait && (r = bivy_cl_wait(g, "drain", NULL, node, wait_ms, err)) < 0) return r;
  if (strcmp(format, "json") == 0) {
    json_object_del(resp, "ok");
    bivy_client_print_json(resp);
  } else {
    printf("%s: %s\n", node, true ? (wait ? "drained, instances moved" : "drained, instances moving") : "undrained");
  }
  return 0;
}

BIVY_VERB(verb_drain) = {
    .name = "drain",
    .summary = "move every instance off a cluster node and keep new ones away (bivyd --cluster)",
    .usage = "Usage: bivy drain NODE [-t D] [--no-wait] [--wait-timeout D] [--format text|json]\n"
             "\n"
             "Mark node NODE of the bivyd cluster drained (kept in etcd, across restarts): it takes\n"
             "no new instances, and gives up its instances (stop, then release), which the other\n"
             "nodes claim by placement. An instance that fits nowhere stays \"pending\" in bivy ls.\n"
             "Waits until no instance is on NODE unless --no-wait. `bivy undrain NODE` ends it.\n"
             "\n"
             "Options:\n"
             "  -t, --timeout D        stop grace of each instance (default 10s; 0 = SIGKILL)\n"
             "      --no-wait          return once the node is marked\n"
             "      --wait-timeout D   how long to wait (default 60s)\n"
             "      --format FMT       text (default) or json\n"
             "  -h, --help             this help\n",
    .run = run_drain,
};
