/* bivy metrics: bivyd's counters in the Prometheus text format. */
#include <getopt.h>
#include <stdio.h>

#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static int run_metrics(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{0, 0, 0, 0}};
  optind = 0; /* full getopt re-initialisation */
  if (getopt_long(argc, argv, "", opts, NULL) != -1) return bivy_cli_usage_error(err, "metrics", "unknown option");
  if (optind != argc) return bivy_cli_usage_error(err, "metrics", "takes no arguments");
  _cleanup_json_ json_t *req = json_pack("{s:s}", "verb", "metrics");
  _cleanup_json_ json_t *resp = NULL;
  int r = bivy_client_call(g, "metrics", req, &resp, NULL, err);
  if (r < 0) return r;
  fputs(json_string_value(json_object_get(resp, "text")) ?: "", stdout);
  return 0;
}

BIVY_VERB(verb_metrics) = {
    .name = "metrics",
    .summary = "print bivyd's metrics (Prometheus text format)",
    .usage = "Usage: bivy metrics\n"
             "\n"
             "Print bivyd's metrics in the Prometheus text exposition format: instances by state,\n"
             "per instance up / restarts / OOM kills / health, totals, the last restart latency\n"
             "(exit seen to new init running) and bivyd's resident memory.\n"
             "\n"
             "Options:\n"
             "  -h, --help   this help\n",
    .run = run_metrics,
};
