/* bivy ls: the instances bivyd supervises. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static void limits_str(json_t *l, char *buf, size_t len) {
  buf[0] = '\0';
  size_t off = 0;
  const char *k;
  json_t *v;
  json_object_foreach(l, k, v) {
    int n;
    if (json_is_integer(v)) n = snprintf(buf + off, len - off, "%s%s=%lld", off ? "," : "", k, (long long)json_integer_value(v));
    else if (json_is_real(v)) n = snprintf(buf + off, len - off, "%s%s=%g", off ? "," : "", k, json_real_value(v));
    else n = snprintf(buf + off, len - off, "%s%s=%s", off ? "," : "", k, json_string_value(v) ? json_string_value(v) : "?");
    if (n < 0 || (size_t)n >= len - off) break;
    off += (size_t)n;
  }
  if (off == 0) snprintf(buf, len, "-");
}

static const char *dash(const char *s) { return s && *s ? s : "-"; }

static int run_ls(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'}, {0, 0, 0, 0}};
  const char *format = "table";
  bool quiet = false;
  int c;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "f:q", opts, NULL)) != -1) {
    if (c == 'f') {
      if (strcmp(optarg, "table") && strcmp(optarg, "json"))
        return bivy_cli_usage_error(err, "ls", "--format: unknown format \"%s\" (table or json)", optarg);
      format = optarg;
    } else if (c == 'q') {
      quiet = true;
    } else {
      return bivy_cli_usage_error(err, "ls", "unknown option");
    }
  }
  if (optind != argc) return bivy_cli_usage_error(err, "ls", "takes no arguments");
  _cleanup_json_ json_t *req = json_pack("{s:s}", "verb", "ls");
  _cleanup_json_ json_t *resp = NULL;
  int r = bivy_client_call(g, "ls", req, &resp, NULL, err);
  if (r < 0) return r;
  json_t *arr = json_object_get(resp, "instances");
  /* cluster mode: say when this is not the cluster as it is now */
  json_t *cl = json_object_get(resp, "cluster");
  const char *cst = json_string_value(json_object_get(cl, "state"));
  if (cst && strcmp(cst, "joined") != 0) {
    json_t *age = json_object_get(cl, "stale_ms");
    const char *why = json_string_value(json_object_get(cl, "last_error"));
    if (json_is_integer(age))
      fprintf(stderr, "bivy: ls: cluster %s: the cluster's view as of %.1f s ago%s%s\n", cst,
              (double)json_integer_value(age) / 1e3, why ? ": " : "", why ? why : "");
    else
      fprintf(stderr, "bivy: ls: cluster %s: this node's instances only%s%s%s\n", cst, why ? " (last error: " : "",
              why ? why : "", why ? ")" : "");
  }
  if (strcmp(format, "json") == 0) {
    bivy_client_print_json(arr);
    return 0;
  }
  size_t i;
  json_t *in;
  if (quiet) {
    json_array_foreach(arr, i, in) printf("%s\n", json_string_value(json_object_get(in, "name")));
    return 0;
  }
  /* cluster mode (bivyd --cluster): a NODE column */
  bool cluster = json_object_get(resp, "nodes") != NULL;
  if (cluster) printf("%-12s ", "NODE");
  printf("%-20s %-11s %-8s %-8s %-18s %-10s %-15s %s\n", "NAME", "STATE", "PID", "RESTARTS", "LAST EXIT", "HEALTH",
         "ADDRESS", "LIMITS");
  json_array_foreach(arr, i, in) {
    char lim[512], pid[16];
    limits_str(json_object_get(in, "limits"), lim, sizeof lim);
    const char *auto_txt = json_string_value(json_object_get(in, "autoscale_text"));
    if (auto_txt) snprintf(lim + strlen(lim), sizeof lim - strlen(lim), " (autoscale %s)", auto_txt);
    int p = (int)json_integer_value(json_object_get(in, "pid"));
    snprintf(pid, sizeof pid, p > 0 ? "%d" : "-", p);
    if (cluster) printf("%-12s ", dash(json_string_value(json_object_get(in, "node"))));
    printf("%-20s %-11s %-8s %-8lld %-18s %-10s %-15s %s\n", json_string_value(json_object_get(in, "name")),
           json_string_value(json_object_get(in, "state")), pid, (long long)json_integer_value(json_object_get(in, "restarts")),
           dash(json_string_value(json_object_get(in, "last_exit"))), dash(json_string_value(json_object_get(in, "health"))),
           dash(json_string_value(json_object_get(in, "address"))), lim);
  }
  return 0;
}

BIVY_VERB(verb_ls) = {
    .name = "ls",
    .summary = "list the instances bivyd supervises",
    .usage = "Usage: bivy ls [--format table|json] [-q]\n"
             "\n"
             "List bivyd's instances: name, state (starting, running, backoff, crash-loop, stopping,\n"
             "stopped, exited), pid, restarts, last exit reason (exited(N), killed(SIG),\n"
             "oom-killed, unhealthy, start-failed, died-unsupervised), health, address, limits.\n"
             "With bivyd --cluster: every instance of the cluster, a NODE column, and the state\n"
             "\"pending\" for an instance that fits on no node. While etcd does not answer, ls shows\n"
             "the last view it read (each instance with \"stale_ms\", its age, in JSON) and says so\n"
             "on stderr; before the node first joined, only its own instances.\n"
             "\n"
             "Options:\n"
             "      --format FMT  table (default) or json: an array of instance summaries\n"
             "  -q, --quiet       names only\n"
             "  -h, --help        this help\n",
    .run = run_ls,
};
