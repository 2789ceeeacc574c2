/* bivy resize: change a supervised instance's limits live and keep them across restarts. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static int run_resize(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"memory", required_argument, NULL, 'm'},
                                       {"cpus", required_argument, NULL, 'c'},
                                       {"pids-limit", required_argument, NULL, 'p'},
                                       {"cpuset-cpus", required_argument, NULL, 's'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0, 0, 0, 0}};
  _cleanup_json_ json_t *limits = json_object();
  const char *format = "text";
  int c, r;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    const char *flag = c == 'm' ? "memory" : c == 'c' ? "cpus" : c == 'p' ? "pids-limit" : c == 's' ? "cpuset-cpus" : NULL;
    if (flag) {
      if ((r = bivy_client_limit("resize", flag, optarg, limits, err)) < 0) return r;
    } else if (c == 'f') {
      if (strcmp(optarg, "text") && strcmp(optarg, "json"))
        return bivy_cli_usage_error(err, "resize", "--format: unknown format \"%s\" (text or json)", optarg);
      format = optarg;
    } else {
      return bivy_cli_usage_error(err, "resize", "unknown option");
    }
  }
  if (optind != argc - 1) return bivy_cli_usage_error(err, "resize", "expected exactly one NAME");
  if (json_object_size(limits) == 0)
    return bivy_cli_usage_error(err, "resize", "nothing to change: give --memory, --cpus, --pids-limit or --cpuset-cpus");
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s, s:O}", "verb", "resize", "name", argv[optind], "limits", limits);
  _cleanup_json_ json_t *resp = NULL;
  if ((r = bivy_client_call(g, "resize", req, &resp, NULL, err)) < 0) return r;
  if (strcmp(format, "json") == 0) {
    bivy_client_print_json(resp);
    return 0;
  }
  json_t *now = json_object_get(resp, "limits_now");
  if (now) {
    printf("%-32s %s\n", "FILE", "VALUE");
    const char *k;
    json_t *v;
    json_object_foreach(now, k, v) printf("%-32s %s\n", k, json_string_value(v) ? json_string_value(v) : "");
  } else if (json_string_length(json_object_get(resp, "node")) > 0) { /* bivyd --cluster: another node owns it */
    printf("%s: recorded; node %s applies the new limits\n", argv[optind], json_string_value(json_object_get(resp, "node")));
  } else {
    printf("%s: not running; the new limits apply at its next start\n", argv[optind]);
  }
  return 0;
}

BIVY_VERB(verb_resize) = {
    .name = "resize",
    .summary = "change a bivyd instance's limits, live and for later restarts",
    .usage = "Usage: bivy resize NAME [--memory SIZE] [--cpus N] [--pids-limit N] [--cpuset-cpus LIST]\n"
             "\n"
             "Change the limits of instance NAME. A running instance is updated in place through the\n"
             "same all-or-nothing path as `bivy update` (memory below usage is reclaimed first, or\n"
             "refused with nothing changed); the new limits become its desired limits, so that\n"
             "every later restart keeps them. Prints the limits now in force.\n"
             "\n"
             "Options:\n"
             "  --memory SIZE        memory limit (k/m/g suffixes, -1 unlimited)\n"
             "  --cpus N             CPU bandwidth, e.g. 0.5\n"
             "  --pids-limit N       maximum number of tasks (-1 unlimited)\n"
             "  --cpuset-cpus LIST   CPUs it may use, e.g. 0-1\n"
             "  --format FMT         text (default) or json\n"
             "  -h, --help           this help\n",
    .run = run_resize,
};
