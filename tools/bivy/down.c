/* bivy down: stop a supervised instance (and suspend its restarts). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static int run_down(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
                                       {"rm", no_argument, NULL, 'r'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0, 0, 0, 0}};
  uint64_t timeout_ms = 10000;
  bool rm = false;
  const char *format = "text";
  int c;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
    switch (c) {
      case 't':
        if (bivy_parse_duration(optarg, &timeout_ms) < 0)
          return bivy_cli_usage_error(err, "down", "--timeout: invalid duration \"%s\" (e.g. 10, 500ms, 2s)", optarg);
        break;
      case 'r': rm = true; break;
      case 'f':
        if (bivy_cli_format("down", optarg, "text", &format, err) < 0) return -EINVAL;
        break;
      default: return bivy_cli_usage_error(err, "down", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "down", "expected exactly one NAME");
  const char *name = argv[optind];
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s, s:I}", "verb", "down", "name", name, "timeout_ms", (json_int_t)timeout_ms);
  _cleanup_json_ json_t *resp = NULL;
  int r = bivy_client_call(g, "down", req, &resp, NULL, err);
  if (r < 0) return r;
  if (rm) {
    _cleanup_json_ json_t *req2 = json_pack("{s:s, s:s}", "verb", "rm", "name", name);
    _cleanup_json_ json_t *resp2 = NULL;
    if ((r = bivy_client_call(g, "down", req2, &resp2, NULL, err)) < 0) return r;
  }
  json_t *in = json_object_get(resp, "instance");
  if (strcmp(format, "json") == 0) bivy_client_print_json(in);
  else if (rm) printf("%s: removed\n", name);
  else bivy_client_print_summary(in);
  return 0;
}

BIVY_VERB(verb_down) = {
    .name = "down",
    .summary = "stop a bivyd instance (no more restarts until up/restart)",
    .usage = "Usage: bivy down [OPTIONS] NAME\n"
             "\n"
             "Stop instance NAME: bivyd sends SIGTERM to its init, then SIGKILL to everything in\n"
             "its cgroup after --timeout, and waits for it to exit. Restarts are suspended: the\n"
             "instance stays down (also across a bivyd restart, except with --restart always, which\n"
             "comes back when bivyd starts, as in Docker) until `bivy up NAME` or `bivy restart NAME`.\n"
             "\n"
             "Options:\n"
             "  -t, --timeout D   time between SIGTERM and SIGKILL (default 10s; 0 = SIGKILL now)\n"
             "      --rm          also forget the instance (its state, logs and bundle)\n"
             "      --format FMT  text (default) or json\n"
             "  -h, --help        this help\n",
    .run = run_down,
};
