/* bivy list: the containers under the state root. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "tools/bivy/cli.h"

static int run_list(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'}, {0, 0, 0, 0}};
  const char *format = "table";
  bool quiet = false;
  int c;
  while ((c = getopt_long(argc, argv, "f:q", opts, NULL)) != -1) {
    switch (c) {
      case 'f': format = optarg; break;
      case 'q': quiet = true; break;
      default: return bivy_cli_usage_error(err, "list", "unknown option");
    }
  }
  bool json = strcmp(format, "json") == 0;
  if (!json && strcmp(format, "table") != 0)
    return bivy_cli_usage_error(err, "list", "--format: unknown format \"%s\" (table or json)", format);
  if (optind != argc) return bivy_cli_usage_error(err, "list", "takes no arguments");
  _cleanup_strv_ char **ids = NULL;
  int r = bivy_state_list(g->root, &ids, err);
  if (r < 0) return r;
  _cleanup_json_ json_t *arr = json_array();
  if (!quiet && !json) printf("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  for (char **id = ids; *id; id++) {
    if (quiet) {
      puts(*id);
      continue;
    }
    _cleanup_json_ json_t *st = NULL;
    _cleanup_error_ bivy_error_t e = NULL;
    /* a container deleted meanwhile is simply not listed */
    if (bivy_container_state(g->root, *id, &st, &e) < 0) continue;
    if (json) {
      json_array_append(arr, st);
      continue;
    }
    printf("%-20s %-8lld %-10s %-40s %-32s %s\n", *id, (long long)json_integer_value(json_object_get(st, "pid")),
           json_string_value(json_object_get(st, "status")), json_string_value(json_object_get(st, "bundle")),
           json_string_value(json_object_get(st, "created")) ? json_string_value(json_object_get(st, "created")) : "",
           "root");
  }
  if (json && !quiet) {
    json_dumpf(arr, stdout, JSON_INDENT(2));
    putchar('\n');
  }
  return 0;
}

BIVY_VERB(verb_list) = {
    .name = "list",
    .summary = "list containers",
    .usage = "Usage: bivy list [--format table|json] [-q|--quiet]\n"
             "\n"
             "List the containers under the state root (--root) with their live status.\n"
             "\n"
             "Options:\n"
             "  -f, --format FMT  table (default) or json (an array of OCI state objects)\n"
             "  -q, --quiet       print the IDs only\n"
             "  -h, --help        this help\n",
    .run = run_list,
};
