/* bivy restart: stop and start a supervised instance. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static int run_restart(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0, 0, 0, 0}};
  uint64_t timeout_ms = 10000;
  const char *format = "text";
  int c;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
    switch (c) {
      case 't':
        if (bivy_parse_duration(optarg, &timeout_ms) < 0)
          return bivy_cli_usage_error(err, "restart", "--timeout: invalid duration \"%s\" (e.g. 10, 500ms, 2s)", optarg);
        break;
      case 'f':
        if (bivy_cli_format("restart", optarg, "text", &format, err) < 0) return -EINVAL;
        break;
      default: return bivy_cli_usage_error(err, "restart", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "restart", "expected exactly one NAME");
  _cleanup_json_ json_t *req =
      json_pack("{s:s, s:s, s:I}", "verb", "restart", "name", argv[optind], "timeout_ms", (json_int_t)timeout_ms);
  _cleanup_json_ json_t *resp = NULL;
  int r = bivy_client_call(g, "restart", req, &resp, NULL, err);
  if (r < 0) return r;
  json_t *in = json_object_get(resp, "instance");
  if (strcmp(format, "json") == 0) bivy_client_print_json(in);
  else bivy_client_print_summary(in);
  return 0;
}

BIVY_VERB(verb_restart) = {
    .name = "restart",
    .summary = "restart a bivyd instance",
    .usage = "Usage: bivy restart [OPTIONS] NAME\n"
             "\n"
             "Stop instance NAME as `bivy down` does (SIGTERM, SIGKILL after --timeout) and start it\n"
             "again with the same name, address lease, mounts and (possibly resized) limits. A\n"
             "stopped, exited or backing-off instance is started at once. Resumes restarts.\n"
             "\n"
             "Options:\n"
             "  -t, --timeout D   time between SIGTERM and SIGKILL (default 10s)\n"
             "      --format FMT  text (default) or json\n"
             "  -h, --help        this help\n",
    .run = run_restart,
};
