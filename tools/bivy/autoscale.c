/* bivy autoscale: set, change or remove an instance's automatic vertical scaling policy. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/bivyd/policy/scaling-policy.h"
#include "runtime/cleanup.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

static int run_autoscale(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"off", no_argument, NULL, 'o'}, {"format", required_argument, NULL, 'f'}, {0, 0, 0, 0}};
  const char *format = "text";
  bool off = false;
  int c, r;
  optind = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'o') off = true;
    else if (c == 'f') {
      if ((r = bivy_cli_format("autoscale", optarg, "text", &format, err)) < 0) return r;
    } else
      return bivy_cli_usage_error(err, "autoscale", "unknown option");
  }
  int left = argc - optind;
  if (left < 1 || left > 2 || (off && left != 1) || (!off && left != 2))
    return bivy_cli_usage_error(err, "autoscale", "expected NAME POLICY, or NAME --off");
  const char *name = argv[optind];
  json_t *policy = NULL;
  if (!off && (r = bivy_as_parse(argv[optind + 1], &policy, err)) < 0) return bivy_error_wrap(err, "autoscale: POLICY");
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s, s:o}", "verb", "autoscale", "name", name, "autoscale",
                                         policy ? policy : json_null());
  _cleanup_json_ json_t *resp = NULL;
  if ((r = bivy_client_call(g, "autoscale", req, &resp, NULL, err)) < 0) return r;
  if (strcmp(format, "json") == 0) {
    bivy_client_print_json(resp);
    return 0;
  }
  json_t *inst = json_object_get(resp, "instance");
  const char *txt = json_string_value(json_object_get(inst, "autoscale_text"));
  printf("%s: autoscale %s\n", name, txt ? txt : "off");
  return 0;
}

BIVY_VERB(verb_autoscale) = {
    .name = "autoscale",
    .summary = "set or remove a bivyd instance's automatic vertical scaling",
    .usage = "Usage: bivy autoscale NAME memory=MIN:MAX[,cpus=MIN:MAX][,quiet=DURATION]\n"
             "       bivy autoscale NAME --off\n"
             "\n"
             "bivyd grows an instance's limits from measured pressure, within bounds, and shrinks\n"
             "them back when it is quiet; the change is live and is kept as the desired limits.\n"
             "  memory  grows x1.5 when usage crosses 80% of the limit (a v1 usage threshold, or\n"
             "          memory.high on cgroup v2, where the kernel slows the allocating tasks\n"
             "          instead of OOM-killing them) or under memory pressure (PSI)\n"
             "  cpus    grows x1.5 (at least +0.1) when the instance is throttled (cpu PSI)\n"
             "  quiet   after this long without pressure (default 30s), a limit shrinks to use\n"
             "          plus 25% headroom, never below MIN, through the safe shrink path of\n"
             "          `bivy update`; at most one shrink per quiet window\n"
             "A current limit outside the new bounds is moved to the nearest bound. With\n"
             "`bivyd --budget-memory/--budget-cpus` the sum of all limits stays within the budget:\n"
             "a grow that does not fit is refused and reported as an `autoscale-refused` event.\n"
             "\n"
             "Options:\n"
             "  --off            remove the policy (limits stay where they are)\n"
             "  --format FMT     text (default) or json\n"
             "  -h, --help       this help\n",
    .run = run_autoscale,
};
