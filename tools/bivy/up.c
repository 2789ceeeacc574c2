/* bivy up: ask bivyd to run and supervise an instance. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/bivyd/policy/scaling-policy.h"
#include "runtime/cleanup.h"
#include "runtime/seccomp.h"
#include "tools/bivyd/policy/instance-policy.h"
#include "tools/bivyd/policy/placement-policy.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"
#include "tools/bivy/client.h"

enum {
  O_BUNDLE = 256, O_ROOTFS, O_ENV, O_RESTART, O_HCMD, O_HTCP, O_HHTTP, O_HINT, O_HTO, O_HRET, O_HSTART, O_MEM, O_CPUS,
  O_PIDS, O_CPUSET, O_NET, O_PUBLISH, O_SECCOMP, O_BACKOFF, O_FORMAT, O_WARM, O_AUTOSCALE, O_FAILOVER
};

static json_t *sub(json_t *o, const char *key) {
  json_t *s = json_object_get(o, key);
  if (!json_is_object(s)) {
    s = json_object();
    json_object_set_new(o, key, s);
  }
  return s;
}

static int abs_dir(const char *flag, const char *arg, json_t *spec, const char *key, bivy_error_t *err) {
  char buf[PATH_MAX];
  if (realpath(arg, buf) == NULL) return bivy_error_errno(err, "up: %s %s", flag, arg);
  json_object_set_new(spec, key, json_string(buf));
  return 0;
}

static int duration(const char *flag, const char *arg, json_t *h, const char *key, bivy_error_t *err) {
  uint64_t ms;
  if (bivy_parse_duration(arg, &ms) < 0 || ms < 10)
    return bivy_cli_usage_error(err, "up", "%s: invalid duration \"%s\" (e.g. 500ms, 5s; at least 10ms)", flag, arg);
  json_object_set_new(h, key, json_integer((json_int_t)ms));
  return 0;
}

static int parse(int argc, char **argv, json_t *spec, const char **format, bivy_error_t *err) {
  static const struct option opts[] = {
      {"bundle", required_argument, NULL, O_BUNDLE},       {"rootfs", required_argument, NULL, O_ROOTFS},
      {"env", required_argument, NULL, O_ENV},             {"restart", required_argument, NULL, O_RESTART},
      {"failover", required_argument, NULL, O_FAILOVER},
      {"health-cmd", required_argument, NULL, O_HCMD},     {"health-tcp", required_argument, NULL, O_HTCP},
      {"health-http", required_argument, NULL, O_HHTTP},   {"health-interval", required_argument, NULL, O_HINT},
      {"health-timeout", required_argument, NULL, O_HTO},  {"health-retries", required_argument, NULL, O_HRET},
      {"health-start-period", required_argument, NULL, O_HSTART},
      {"memory", required_argument, NULL, O_MEM},          {"cpus", required_argument, NULL, O_CPUS},
      {"pids-limit", required_argument, NULL, O_PIDS},     {"cpuset-cpus", required_argument, NULL, O_CPUSET},
      {"net", required_argument, NULL, O_NET},             {"publish", required_argument, NULL, O_PUBLISH},
      {"seccomp", required_argument, NULL, O_SECCOMP},     {"max-backoff", required_argument, NULL, O_BACKOFF},
      {"format", required_argument, NULL, O_FORMAT},       {"warm", no_argument, NULL, O_WARM},
      {"autoscale", required_argument, NULL, O_AUTOSCALE},
      {0, 0, 0, 0}};
  int c, r;
  int64_t n;
  json_t *h = NULL;
  optind = 0; /* full getopt re-initialisation: argument permutation state from main() */
  while ((c = getopt_long(argc, argv, "b:e:p:", opts, NULL)) != -1) {
    switch (c) {
      case 'b':
      case O_BUNDLE:
        if ((r = abs_dir("--bundle", optarg, spec, "bundle", err)) < 0) return r;
        break;
      case O_ROOTFS:
        if ((r = abs_dir("--rootfs", optarg, spec, "rootfs", err)) < 0) return r;
        break;
      case 'e':
      case O_ENV:
        if (strchr(optarg, '=') == NULL) return bivy_cli_usage_error(err, "up", "--env: \"%s\" is not K=V", optarg);
        if (!json_is_array(json_object_get(spec, "env"))) json_object_set_new(spec, "env", json_array());
        json_array_append_new(json_object_get(spec, "env"), json_string(optarg));
        break;
      case O_RESTART: {
        struct bivy_sv_restart rp;
        if (bivy_sv_restart_parse(optarg, &rp) < 0)
          return bivy_cli_usage_error(err, "up", "--restart: \"%s\" is not no, on-failure[:N], always or unless-stopped", optarg);
        json_object_set_new(spec, "restart", json_string(optarg));
        break;
      }
      case O_FAILOVER: {
        struct bivy_cl_failover fp;
        _cleanup_error_ bivy_error_t ferr = NULL;
        if (bivy_cl_failover_parse(optarg, "--failover", &fp, &ferr) < 0) return bivy_cli_usage_error(err, "up", "%s", ferr->msg);
        json_object_set_new(spec, "failover", json_string(optarg));
        break;
      }
      case O_HCMD:
        h = sub(spec, "health");
        json_object_set_new(h, "cmd", json_string(optarg));
        break;
      case O_HTCP:
        if (bivy_parse_i64(optarg, &n) < 0 || n < 1 || n > 65535)
          return bivy_cli_usage_error(err, "up", "--health-tcp: invalid port \"%s\"", optarg);
        json_object_set_new(sub(spec, "health"), "tcp", json_integer(n));
        break;
      case O_HHTTP: {
        const char *slash = strchr(optarg, '/');
        _cleanup_free_ char *port = strndup(optarg, slash ? (size_t)(slash - optarg) : strlen(optarg));
        if (port == NULL || bivy_parse_i64(port, &n) < 0 || n < 1 || n > 65535)
          return bivy_cli_usage_error(err, "up", "--health-http: \"%s\" is not PORT/PATH (e.g. 8080/healthz)", optarg);
        h = sub(spec, "health");
        json_object_set_new(h, "http", json_integer(n));
        json_object_set_new(h, "path", json_string(slash ? slash : "/"));
        break;
      }
      case O_HINT:
        if ((r = duration("--health-interval", optarg, sub(spec, "health"), "interval_ms", err)) < 0) return r;
        break;
      case O_HTO:
        if ((r = duration("--health-timeout", optarg, sub(spec, "health"), "timeout_ms", err)) < 0) return r;
        break;
      case O_HSTART:
        if ((r = duration("--health-start-period", optarg, sub(spec, "health"), "start_period_ms", err)) < 0) return r;
        break;
      case O_HRET:
        if (bivy_parse_i64(optarg, &n) < 0 || n < 1 || n > 1000)
          return bivy_cli_usage_error(err, "up", "--health-retries: invalid count \"%s\" (1-1000)", optarg);
        json_object_set_new(sub(spec, "health"), "retries", json_integer(n));
        break;
      case O_MEM:
      case O_CPUS:
      case O_PIDS:
      case O_CPUSET: {
        const char *flag = c == O_MEM ? "memory" : c == O_CPUS ? "cpus" : c == O_PIDS ? "pids-limit" : "cpuset-cpus";
        if ((r = bivy_client_limit("up", flag, optarg, sub(spec, "limits"), err)) < 0) return r;
        break;
      }
      case O_NET: json_object_set_new(spec, "net", json_string(optarg)); break;
      case O_AUTOSCALE: {
        json_t *as = NULL;
        if ((r = bivy_as_parse(optarg, &as, err)) < 0) return bivy_error_wrap(err, "up: --autoscale");
        json_object_set_new(spec, "autoscale", as);
        break;
      }
      case O_WARM: json_object_set_new(spec, "warm", json_true()); break;
      case 'p':
      case O_PUBLISH:
        if (!json_is_array(json_object_get(spec, "publish"))) json_object_set_new(spec, "publish", json_array());
        json_array_append_new(json_object_get(spec, "publish"), json_string(optarg));
        break;
      case O_SECCOMP:
        if (bivy_seccomp_builtin(optarg) || strcmp(optarg, "unconfined") == 0)
          json_object_set_new(spec, "seccomp", json_string(optarg));
        else if ((r = abs_dir("--seccomp", optarg, spec, "seccomp", err)) < 0)
          return r;
        break;
      case O_BACKOFF: {
        uint64_t ms;
        if (bivy_parse_duration(optarg, &ms) < 0 || ms < 100)
          return bivy_cli_usage_error(err, "up", "--max-backoff: invalid duration \"%s\" (at least 100ms)", optarg);
        json_object_set_new(spec, "max_backoff_ms", json_integer((json_int_t)ms));
        break;
      }
      case O_FORMAT:
        if (bivy_cli_format("up", optarg, "text", format, err) < 0) return -EINVAL;
        break;
      default: return bivy_cli_usage_error(err, "up", "unknown option");
    }
  }
  return 0;
}

static int run_up(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  /* CMD follows "--": options are parsed only before it */
  int dd = argc;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) {
      dd = i;
      break;
    }
  _cleanup_json_ json_t *spec = json_object();
  const char *format = "text";
  int r = parse(dd, argv, spec, &format, err);
  if (r < 0) return r;
  if (optind != dd - 1) return bivy_cli_usage_error(err, "up", "expected exactly one NAME before --");
  const char *name = argv[optind];
  if (!bivy_id_valid(name)) return bivy_cli_usage_error(err, "up", "NAME: \"%s\" must be [A-Za-z0-9_.+-]", name);
  bool has_bundle = json_object_get(spec, "bundle"), has_rootfs = json_object_get(spec, "rootfs");
  if (has_bundle && has_rootfs) return bivy_cli_usage_error(err, "up", "--bundle and --rootfs exclude each other");
  if (has_rootfs) {
    if (dd >= argc - 1) return bivy_cli_usage_error(err, "up", "--rootfs needs a command after --");
    json_t *args = json_array();
    for (int i = dd + 1; i < argc; i++) json_array_append_new(args, json_string(argv[i]));
    json_object_set_new(spec, "args", args);
  } else if (dd < argc) {
    return bivy_cli_usage_error(err, "up", "a command after -- needs --rootfs (a bundle has its own process)");
  }
  _cleanup_json_ json_t *req = json_pack("{s:s, s:s}", "verb", "up", "name", name);
  if (has_bundle || has_rootfs) {
    json_t *h = json_object_get(spec, "health");
    if (h && !json_object_get(h, "cmd") && !json_object_get(h, "tcp") && !json_object_get(h, "http"))
      return bivy_cli_usage_error(err, "up", "--health-* timings need --health-cmd, --health-tcp or --health-http");
    json_object_set(req, "spec", spec);
  } else if (json_object_size(spec) > 0) {
    return bivy_cli_usage_error(err, "up", "options need --bundle or --rootfs (without them, up restarts a known instance as it was)");
  }
  _cleanup_json_ json_t *resp = NULL;
  if ((r = bivy_client_call(g, "up", req, &resp, NULL, err)) < 0) return r;
  json_t *in = json_object_get(resp, "instance");
  if (strcmp(format, "json") == 0) bivy_client_print_json(in);
  else bivy_client_print_summary(in);
  return 0;
}

BIVY_VERB(verb_up) = {
    .name = "up",
    .summary = "run an instance under bivyd (restart policy, health check, limits)",
    .usage =
        "Usage: bivy up NAME (--bundle DIR | --rootfs DIR [OPTIONS] -- CMD [ARG...]) [OPTIONS]\n"
        "       bivy up NAME\n"
        "\n"
        "Ask bivyd (see --socket) to create, start and supervise instance NAME: a container\n"
        "from a bundle, or from a root filesystem and a command (bivyd writes the config from\n"
        "`bivy spec` defaults: read-only root, the default seccomp profile). bivyd restarts it\n"
        "by policy when it exits, is OOM-killed or fails its health check, with back-off (the\n"
        "first restart is immediate, then 100 ms doubling up to --max-backoff; an instance that\n"
        "ran 10 s starts over). Its stdout and stderr go to a log file (bivy logs). The second\n"
        "form starts a stopped instance again as it was defined.\n"
        "\n"
        "Options:\n"
        "  -b, --bundle DIR           bundle directory with config.json\n"
        "      --rootfs DIR           root filesystem; the command follows --\n"
        "  -e, --env K=V              environment variable (with --rootfs; repeatable)\n"
        "      --restart POLICY       no (default), on-failure[:MAX], always, unless-stopped\n"
        "      --max-backoff D        longest delay between restarts (default: bivyd's, 30s)\n"
        "      --failover POLICY      cluster mode, when the node loses etcd: fenced (default:\n"
        "                             stopped at the fencing deadline, restarted elsewhere once\n"
        "                             its lease expired), keep (keeps running, never moved by\n"
        "                             failover), relaxed=D (keeps running for D, 1s-1h, then\n"
        "                             fenced; started elsewhere only after that)\n"
        "      --warm                 keep a created spare container (with --rootfs, net none or\n"
        "                             host): a restart is then only a start (~1 ms), at the cost\n"
        "                             of an idle init and cgroup per instance\n"
        "      --health-cmd CMD       health check: run `sh -c CMD` inside; exit 0 = healthy\n"
        "      --health-tcp PORT      health check: a TCP connect to PORT succeeds\n"
        "      --health-http PORT/PATH health check: GET PATH answers 2xx or 3xx\n"
        "      --health-interval D    time between checks (default 30s)\n"
        "      --health-timeout D     a check taking longer fails (default 30s)\n"
        "      --health-retries N     consecutive failures that make it unhealthy (default 3)\n"
        "      --health-start-period D  failures before the first success do not count for D\n"
        "      --memory SIZE          memory limit (k/m/g suffixes)\n"
        "      --cpus N               CPU bandwidth, e.g. 0.5\n"
        "      --pids-limit N         maximum number of tasks\n"
        "      --cpuset-cpus LIST     CPUs it may use, e.g. 0-1\n"
        "      --autoscale POLICY     let bivyd grow and shrink limits from measured pressure,\n"
        "                             within bounds: memory=MIN:MAX,cpus=MIN:MAX[,quiet=30s]\n"
        "                             (e.g. memory=64M:512M,cpus=0.2:2; starts at MIN; see\n"
        "                             `bivy autoscale --help`)\n"
        "      --net MODE             none, host, bridge[:NAME] (see bivy net)\n"
        "  -p, --publish H:C[/PROTO]  publish container port C on host port H (bridge)\n"
        "      --seccomp PROFILE      default, unconfined, another built-in name, or a JSON file\n"
        "      --format FMT           text (default) or json (the instance summary)\n"
        "  -h, --help                 this help\n"
        "\n"
        "Durations: 500ms, 2s, 1.5m, 1h (a bare number is seconds).\n",
    .run = run_up,
};
