/* bivy logs: an instance's captured stdout and stderr. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static void print_data(json_t *m) {
  json_t *d = json_object_get(m, "data");
  if (json_is_string(d)) {
    fwrite(json_string_value(d), 1, json_string_length(d), stdout);
    fflush(stdout);
  }
}

static int run_logs(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'}, {"tail", required_argument, NULL, 'n'}, {0, 0, 0, 0}};
  bool follow = false;
  int64_t tail = -1;
  int c;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "fn:", opts, NULL)) != -1) {
    if (c == 'f') follow = true;
    else if (c == 'n') {
      if (strcmp(optarg, "all") == 0) tail = -1;
      else if (bivy_parse_i64(optarg, &tail) < 0 || tail < 0)
        return bivy_cli_usage_error(err, "logs", "--tail: invalid line count \"%s\"", optarg);
    } else {
      return bivy_cli_usage_error(err, "logs", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "logs", "expected exactly one NAME");
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s, s:I, s:b}", "verb", "logs", "name", argv[optind], "tail",
                                         (json_int_t)tail, "follow", follow);
  _cleanup_json_ json_t *resp = NULL;
  struct bivy_client cl = {.fd = -1};
  int r = bivy_client_call(g, "logs", req, &resp, follow ? &cl : NULL, err);
  if (r < 0) return r;
  print_data(resp);
  if (!follow) return 0;
  for (;;) {
    json_t *m = NULL;
    r = bivy_client_next(&cl, &m, err);
    if (r <= 0) break;
    print_data(m);
    json_decref(m);
  }
  bivy_client_close(&cl);
  return r < 0 ? r : 0;
}

BIVY_VERB(verb_logs) = {
    .name = "logs",
    .summary = "print a bivyd instance's output",
    .usage = "Usage: bivy logs [OPTIONS] NAME\n"
             "\n"
             "Print what instance NAME wrote to stdout and stderr (one stream, in order), across its\n"
             "restarts. bivyd keeps it in size-capped files (bivyd --log-max-size, one rotated\n"
             "file kept).\n"
             "\n"
             "Options:\n"
             "  -f, --follow     keep printing new output until interrupted\n"
             "  -n, --tail N     only the last N lines (default all)\n"
             "  -h, --help       this help\n",
    .run = run_logs,
};
