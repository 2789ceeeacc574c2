/* bivy monitor: bivyd's event stream (starts, exits, back-offs, OOM kills, health). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static void print_event(json_t *e, bool json) {
  if (json) {
    bivy_client_print_json(e);
  } else {
    printf("%s %-12s %-12s", json_string_value(json_object_get(e, "time")), json_string_value(json_object_get(e, "name")),
           json_string_value(json_object_get(e, "type")));
    static const char *const skip[] = {"seq", "time", "mono_ns", "name", "type", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v) {
      bool s = false;
      for (const char *const *p = skip; *p; p++) s |= strcmp(*p, k) == 0;
      if (s) continue;
      char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      printf(" %s=%s", k, t ? t : "?");
      free(t);
    }
    putchar('\n');
  }
  fflush(stdout);
}

static int run_monitor(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'}, {"format", required_argument, NULL, 'F'}, {0, 0, 0, 0}};
  bool follow = false, json = false;
  int c;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
    if (c == 'f') follow = true;
    else if (c == 'F') {
      if (strcmp(optarg, "text") && strcmp(optarg, "json"))
        return bivy_cli_usage_error(err, "monitor", "--format: unknown format \"%s\" (text or json)", optarg);
      json = strcmp(optarg, "json") == 0;
    } else {
      return bivy_cli_usage_error(err, "monitor", "unknown option");
    }
  }
  if (optind < argc - 1) return bivy_cli_usage_error(err, "monitor", "expected at most one NAME");
  _cleanup_json_ json_t *req = json_pack("{s:s, s:b}", "verb", "events", "follow", follow);
  if (optind == argc - 1) json_object_set_new(req, "name", json_string(argv[optind]));
  const char *name = optind == argc - 1 ? argv[optind] : NULL;
  _cleanup_json_ json_t *resp = NULL;
  struct bivy_client cl = {.fd = -1};
  int r = bivy_client_call(g, "monitor", req, &resp, follow ? &cl : NULL, err);
  if (r < 0) return r;
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(resp, "events"), i, e) print_event(e, json);
  if (!follow) return 0;
  for (;;) {
    json_t *m = NULL;
    r = bivy_client_next(&cl, &m, err);
    if (r <= 0) break;
    json_t *ev = json_object_get(m, "event");
    if (ev && (name == NULL || strcmp(json_string_value(json_object_get(ev, "name")) ?: "", name) == 0)) print_event(ev, json);
    json_decref(m);
  }
  bivy_client_close(&cl);
  return r < 0 ? r : 0;
}

BIVY_VERB(verb_monitor) = {
    .name = "monitor",
    .summary = "print bivyd's events (starts, exits, restarts, OOM kills, health)",
    .usage = "Usage: bivy monitor [--follow] [--format text|json] [NAME]\n"
             "\n"
             "Print bivyd's recent events (the last 512), optionally only NAME's: up, start (with\n"
             "start_ms and, for a restart, restart_latency_ms: exit seen to new init running), exit\n"
             "(reason, code, ran_ms), backoff (delay_ms), give-up, oom, health, unhealthy,\n"
             "stopping, stopped, adopted, resize, removed. (`bivy events ID` is the per-container\n"
             "runc-style stats stream; this is the supervisor's.)\n"
             "\n"
             "Options:\n"
             "  -f, --follow     keep printing new events until interrupted\n"
             "      --format FMT text (default) or json (one event object per line)\n"
             "  -h, --help       this help\n",
    .run = run_monitor,
};
