/* bivy migrate: move a bivyd cluster instance to another node. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"
#include "tools/bivy/cluster-common.h"

static int run_migrate(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"to", required_argument, NULL, 'o'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"no-wait", no_argument, NULL, 'n'},
                                       {"wait-timeout", required_argument, NULL, 'w'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0, 0, 0, 0}};
  const char *to = NULL, *format = "text";
  uint64_t timeout_ms = 10000, wait_ms = 60000;
  bool wait = true;
  int c, r;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
    switch (c) {
      case 'o': to = optarg; break;
      case 't':
        if (bivy_parse_duration(optarg, &timeout_ms) < 0)
          return bivy_cli_usage_error(err, "migrate", "--timeout: invalid duration \"%s\" (e.g. 10, 500ms, 2s)", optarg);
        break;
      case 'w':
        if (bivy_parse_duration(optarg, &wait_ms) < 0)
          return bivy_cli_usage_error(err, "migrate", "--wait-timeout: invalid duration \"%s\" (e.g. 30s)", optarg);
        break;
      case 'n': wait = false; break;
      case 'f':
        if (bivy_cli_format("migrate", optarg, "text", &format, err) < 0) return -1;
        break;
      default: return bivy_cli_usage_error(err, "migrate", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "migrate", "expected exactly one NAME");
  if (to == NULL || *to == '\0') return bivy_cli_usage_error(err, "migrate", "--to NODE is required");
  const char *name = argv[optind];
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s, s:s, s:I}", "verb", "migrate", "name", name, "to", to, "timeout_ms",
                                         (json_int_t)timeout_ms);
  _cleanup_json_ json_t *resp = NULL;
  if ((r = bivy_client_call(g, "migrate", req, &resp, NULL, err)) < 0) return r;
  if (wait && (r = bivy_cl_wait(g, "migrate", name, to, wait_ms, err)) < 0) return r;
  if (strcmp(format, "json") == 0) {
    json_object_del(resp, "ok");
    json_object_set_new(resp, "done", json_boolean(wait));
    bivy_client_print_json(resp);
  } else {
    const char *from = json_string_value(json_object_get(resp, "from"));
    printf("%s: %s %s -> %s\n", name, wait ? "moved" : "moving", from && *from ? from : "(not placed)", to);
  }
  return 0;
}

BIVY_VERB(verb_migrate) = {
    .name = "migrate",
    .summary = "move a cluster instance to another node (bivyd --cluster)",
    .usage = "Usage: bivy migrate NAME --to NODE [-t D] [--no-wait] [--wait-timeout D] [--format text|json]\n"
             "\n"
             "Move instance NAME to node NODE of the bivyd cluster (cold move: the owner stops it,\n"
             "with SIGTERM then SIGKILL after --timeout, and gives it up; NODE claims it and starts\n"
             "it with the same name and spec). NODE must be live, not drained, and have the free\n"
             "capacity (its declared CPUs and memory minus its instances' limits) for NAME's limits.\n"
             "Waits until NAME runs on NODE unless --no-wait.\n"
             "\n"
             "Options:\n"
             "      --to NODE          the target node (required)\n"
             "  -t, --timeout D        stop grace on the source (default 10s; 0 = SIGKILL)\n"
             "      --no-wait          return once the move is recorded\n"
             "      --wait-timeout D   how long to wait (default 60s)\n"
             "      --format FMT       text (default) or json\n"
             "  -h, --help             this help\n",
    .run = run_migrate,
};
