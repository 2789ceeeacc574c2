/* bivy inspect: everything bivyd knows about one instance. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static int run_inspect(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0, 0, 0, 0}};
  int c;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c != 'f') return bivy_cli_usage_error(err, "inspect", "unknown option");
    if (strcmp(optarg, "json")) return bivy_cli_usage_error(err, "inspect", "--format: only json is supported");
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "inspect", "expected exactly one NAME");
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "verb", "inspect", "name", argv[optind]);
  _cleanup_json_ json_t *resp = NULL;
  int r = bivy_client_call(g, "inspect", req, &resp, NULL, err);
  if (r < 0) return r;
  _cleanup_free_ char *s = json_dumps(json_object_get(resp, "instance"), JSON_INDENT(2));
  if (s) puts(s);
  return 0;
}

BIVY_VERB(verb_inspect) = {
    .name = "inspect",
    .summary = "show a bivyd instance in detail (JSON)",
    .usage = "Usage: bivy inspect NAME\n"
             "\n"
             "Print everything bivyd knows about instance NAME as JSON: the summary of `bivy ls`,\n"
             "its spec (with the current desired limits), the limits now in force in its cgroup,\n"
             "health details, back-off state, log file, and its recent events.\n"
             "\n"
             "Options:\n"
             "      --format json  the only format (accepted for scripts)\n"
             "  -h, --help         this help\n",
    .run = run_inspect,
};
