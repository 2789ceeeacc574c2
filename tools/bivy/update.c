/* bivy update: change a live container's limits, all or nothing. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivy/cgroup-common.h"
#include "tools/bivy/cli.h"

enum {
  O_MEMORY = 256, O_MEMRES, O_MEMSWAP, O_CPUS, O_QUOTA, O_PERIOD, O_SHARES, O_WEIGHT, O_RTPERIOD, O_RTRUNTIME,
  O_CPUSET_CPUS, O_CPUSET_MEMS, O_PIDS, O_BLKIO, O_FORMAT, O_RECLAIM, O_FORCE, O_KMEM, O_KMEMTCP
};

struct upd {
  json_t *res;   /* LinuxResources being built */
  json_t *names; /* field -> "--flag VALUE" */
  int64_t cpu_weight; /* 0 = unset */
  bool cpus_set;
  double cpus;
};

static json_t *sub(json_t *o, const char *key) {
  json_t *s = json_object_get(o, key);
  if (!json_is_object(s)) {
    s = json_object();
    json_object_set_new(o, key, s);
  }
  return s;
}

static void set_int(struct upd *u, const char *group, const char *key, int64_t v, const char *flag, const char *arg) {
  json_object_set_new(sub(u->res, group), key, json_integer(v));
  char field[96], name[256];
  snprintf(field, sizeof field, "linux.resources.%s.%s", group, key);
  snprintf(name, sizeof name, "%s %s", flag, arg);
  json_object_set_new(u->names, field, json_string(name));
}

static int size_arg(const char *flag, const char *arg, bool allow_unlimited, int64_t *out, bivy_error_t *err) {
  if (allow_unlimited && (strcmp(arg, "-1") == 0 || strcmp(arg, "max") == 0)) {
    *out = -1;
    return 0;
  }
  if (bivy_parse_size(arg, out) < 0) return bivy_error(err, 0, "update: %s: invalid size \"%s\"", flag, arg);
  if (*out == 0 && allow_unlimited) return bivy_error(err, 0, "update: %s: a limit of 0 bytes is not allowed", flag);
  return 0;
}

static int int_arg(const char *flag, const char *arg, int64_t min, int64_t max, int64_t *out, bivy_error_t *err) {
  if (bivy_parse_i64(arg, out) < 0) return bivy_error(err, 0, "update: %s: invalid number \"%s\"", flag, arg);
  if (*out < min || *out > max)
    return bivy_error(err, 0, "update: %s: %s is out of range %" PRId64 "-%" PRId64, flag, arg, min, max);
  return 0;
}

static int read_resources_file(const char *path, json_t **out, bivy_error_t *err) {
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = strcmp(path, "-") == 0 ? bivy_read_fd(0, "stdin", &text, &len, err)
                                 : bivy_read_file_at(AT_FDCWD, path, &text, &len, err);
  if (r < 0) return bivy_error_wrap(err, "update: -r %s", path);
  json_error_t je;
  json_t *j = json_loadb(text, len, 0, &je);
  if (j == NULL)
    return bivy_error(err, 0, "update: -r %s: invalid JSON at line %d column %d: %s", path, je.line, je.column,
                      je.text);
  if (!json_is_object(j)) {
    json_decref(j);
    return bivy_error(err, 0, "update: -r %s: must be a JSON object (OCI LinuxResources)", path);
  }
  *out = j;
  return 0;
}

static int parse(int argc, char **argv, struct upd *u, const char **rfile, const char **format,
                 struct bivy_cgroup_update_opts *o, bivy_error_t *err) {
  static const struct option opts[] = {
      {"memory", required_argument, NULL, O_MEMORY},
      {"memory-reservation", required_argument, NULL, O_MEMRES},
      {"memory-swap", required_argument, NULL, O_MEMSWAP},
      {"kernel-memory", required_argument, NULL, O_KMEM},
      {"kernel-memory-tcp", required_argument, NULL, O_KMEMTCP},
      {"cpus", required_argument, NULL, O_CPUS},
      {"cpu-quota", required_argument, NULL, O_QUOTA},
      {"cpu-period", required_argument, NULL, O_PERIOD},
      {"cpu-shares", required_argument, NULL, O_SHARES},
      {"cpu-weight", required_argument, NULL, O_WEIGHT},
      {"cpu-rt-period", required_argument, NULL, O_RTPERIOD},
      {"cpu-rt-runtime", required_argument, NULL, O_RTRUNTIME},
      {"cpuset-cpus", required_argument, NULL, O_CPUSET_CPUS},
      {"cpuset-mems", required_argument, NULL, O_CPUSET_MEMS},
      {"pids-limit", required_argument, NULL, O_PIDS},
      {"blkio-weight", required_argument, NULL, O_BLKIO},
      {"resources", required_argument, NULL, 'r'},
      {"format", required_argument, NULL, O_FORMAT},
      {"reclaim-timeout", required_argument, NULL, O_RECLAIM},
      {"force", no_argument, NULL, O_FORCE},
      {0, 0, 0, 0}};
  int ch;
  int64_t v;
  int r;
  while ((ch = getopt_long(argc, argv, "+r:", opts, NULL)) != -1) {
    const char *flag = NULL;
    for (const struct option *p = opts; p->name; p++)
      if (p->val == ch) flag = p->name;
    char fl[40];
    snprintf(fl, sizeof fl, "--%s", flag ? flag : "?");
    switch (ch) {
      case O_MEMORY:
        if ((r = size_arg(fl, optarg, true, &v, err)) < 0) return r;
        set_int(u, "memory", "limit", v, fl, optarg);
        break;
      case O_MEMRES:
        if ((r = size_arg(fl, optarg, true, &v, err)) < 0) return r;
        set_int(u, "memory", "reservation", v, fl, optarg);
        break;
      case O_MEMSWAP:
        if ((r = size_arg(fl, optarg, true, &v, err)) < 0) return r;
        set_int(u, "memory", "swap", v, fl, optarg);
        break;
      case O_KMEM:
      case O_KMEMTCP:
        /* deprecated in runc too: accepted and ignored, kernels dropped kernel memory limits */
        if ((r = size_arg(fl, optarg, true, &v, err)) < 0) return r;
        bivy_warn("update: %s is deprecated and ignored (kernel memory is not limited separately)", fl);
        break;
      case O_CPUS: {
        char *end;
        errno = 0;
        u->cpus = strtod(optarg, &end);
        if (errno || end == optarg || *end || !isfinite(u->cpus) || u->cpus <= 0 || u->cpus > 4096)
          return bivy_error(err, 0, "update: --cpus: invalid number of CPUs \"%s\" (a decimal > 0, e.g. 1.5)", optarg);
        u->cpus_set = true;
        char name[64];
        snprintf(name, sizeof name, "--cpus %s", optarg);
        json_object_set_new(u->names, "linux.resources.cpu.quota", json_string(name));
        break;
      }
      case O_QUOTA:
        if ((r = int_arg(fl, optarg, -1, INT64_MAX / 2, &v, err)) < 0) return r;
        if (v >= 0 && v < 1000) return bivy_error(err, 0, "update: --cpu-quota: %s is below 1000 microseconds", optarg);
        set_int(u, "cpu", "quota", v, fl, optarg);
        break;
      case O_PERIOD:
        if ((r = int_arg(fl, optarg, 1000, 1000000, &v, err)) < 0) return r;
        set_int(u, "cpu", "period", v, fl, optarg);
        break;
      case O_SHARES:
        if ((r = int_arg(fl, optarg, 2, 262144, &v, err)) < 0) return r;
        set_int(u, "cpu", "shares", v, fl, optarg);
        break;
      case O_WEIGHT:
        if ((r = int_arg(fl, optarg, 1, 10000, &u->cpu_weight, err)) < 0) return r;
        break;
      case O_RTPERIOD:
        if ((r = int_arg(fl, optarg, 1, INT64_MAX / 2, &v, err)) < 0) return r;
        set_int(u, "cpu", "realtimePeriod", v, fl, optarg);
        break;
      case O_RTRUNTIME:
        if ((r = int_arg(fl, optarg, -1, INT64_MAX / 2, &v, err)) < 0) return r;
        set_int(u, "cpu", "realtimeRuntime", v, fl, optarg);
        break;
      case O_CPUSET_CPUS:
      case O_CPUSET_MEMS: {
        const char *key = ch == O_CPUSET_CPUS ? "cpus" : "mems";
        uint8_t bits[1024];
        if (*optarg == '\0' || bivy_cgroup_parse_list(optarg, bits, sizeof bits * 8) < 0)
          return bivy_error(err, 0, "update: %s: \"%s\" is not a list like 0-2,4", fl, optarg);
        json_object_set_new(sub(u->res, "cpu"), key, json_string(optarg));
        char field[64], name[256];
        snprintf(field, sizeof field, "linux.resources.cpu.%s", key);
        snprintf(name, sizeof name, "%s %s", fl, optarg);
        json_object_set_new(u->names, field, json_string(name));
        break;
      }
      case O_PIDS:
        if ((r = int_arg(fl, optarg, -1, INT64_MAX / 2, &v, err)) < 0) return r;
        set_int(u, "pids", "limit", v, fl, optarg);
        break;
      case O_BLKIO:
        if ((r = int_arg(fl, optarg, 10, 1000, &v, err)) < 0) return r;
        set_int(u, "blockIO", "weight", v, fl, optarg);
        break;
      case 'r': *rfile = optarg; break;
      case O_FORMAT:
        if (bivy_cli_format("update", optarg, "table", format, err) < 0) return -EINVAL;
        break;
      case O_RECLAIM:
        if (cgv_parse_duration(optarg, &o->reclaim_timeout_ms) < 0)
          return bivy_error(err, 0, "update: --reclaim-timeout: invalid duration \"%s\" (e.g. 2s, 500ms)", optarg);
        break;
      case O_FORCE: o->force = true; break;
      default: return bivy_cli_usage_error(err, "update", "unknown option");
    }
  }
  return 0;
}

static int run_update(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  _cleanup_json_ json_t *flags = json_object(), *names = json_object();
  struct upd u = {.res = flags, .names = names};
  struct bivy_cgroup_update_opts o = {.reclaim_timeout_ms = 2000, .names = names};
  const char *rfile = NULL, *format = "table";
  int r = parse(argc, argv, &u, &rfile, &format, &o, err);
  if (r < 0) return r;
  if (argc - optind != 1) return bivy_cli_usage_error(err, "update", "expected exactly one container ID");
  const char *id = argv[optind];

  /* -r FILE first, flags override it */
  _cleanup_json_ json_t *res = NULL;
  if (rfile) {
    if ((r = read_resources_file(rfile, &res, err)) < 0) return r;
  } else {
    res = json_object();
  }
  bivy_resources_merge(res, flags);

  _cleanup_cgv_ struct cgv c = {.lock = -1};
  if ((r = cgv_open(g, "update", id, true, &c, err)) < 0) return r;
  if (strcmp(c.status, "stopped") == 0) return bivy_error(err, 0, "update: container %s is stopped", id);

  bool cpu_v2 = bivy_cgroup_on_v2(c.cg, "cpu");
  if (u.cpus_set) {
    json_t *cpu = sub(res, "cpu");
    int64_t period = json_is_integer(json_object_get(cpu, "period")) ? json_integer_value(json_object_get(cpu, "period"))
                                                                       : 100000;
    int64_t quota = (int64_t)(u.cpus * (double)period + 0.5);
    if (quota < 1000) return bivy_error(err, 0, "update: --cpus: %g CPUs is below the 1000 microseconds minimum quota", u.cpus);
    json_object_set_new(cpu, "quota", json_integer(quota));
    json_object_set_new(cpu, "period", json_integer(period));
  }
  if (u.cpu_weight) {
    char buf[32], name[64];
    snprintf(name, sizeof name, "--cpu-weight %" PRId64, u.cpu_weight);
    if (cpu_v2) {
      snprintf(buf, sizeof buf, "%" PRId64, u.cpu_weight);
      json_object_set_new(sub(res, "unified"), "cpu.weight", json_string(buf));
      json_object_set_new(names, "linux.resources.unified.\"cpu.weight\"", json_string(name));
    } else {
      /* the inverse of the shares -> weight conversion */
      json_object_set_new(sub(res, "cpu"), "shares", json_integer(2 + ((u.cpu_weight - 1) * 262142) / 9999));
      json_object_set_new(names, "linux.resources.cpu.shares", json_string(name));
    }
  }
  /* --memory-swap alone: OCI swap counts memory+swap, so it needs the limit in force */
  json_t *mem = json_object_get(res, "memory");
  json_t *cur_limit = json_object_get(json_object_get(json_object_get(c.state, "resources"), "memory"), "limit");
  if (json_object_get(mem, "swap") && !json_object_get(mem, "limit") && json_is_integer(cur_limit))
    json_object_set(mem, "limit", cur_limit);
  if (json_object_size(res) == 0)
    return bivy_cli_usage_error(err, "update", "nothing to update: give at least one limit flag or -r FILE");

  bool joined = false;
  o.joined = &joined;
  r = bivy_cgroup_update(c.cg, res, &o, err);
  if (joined) { /* the cgroups it is in now, so delete removes them */
    _cleanup_error_ bivy_error_t e2 = NULL;
    json_object_set_new(c.state, "cgroup", bivy_cgroup_to_json(c.cg));
    if (bivy_state_save(g->root, id, c.state, r < 0 ? &e2 : err) < 0 && r >= 0)
      return bivy_error_wrap(err, "update: container %s: joined its cgroups but not recorded", id);
  }
  if (r < 0) return bivy_error_wrap(err, "update");

  /* what is in force now goes into the state, so `state` and re-creations see it */
  bivy_cgroup_record_resources(c.state, res);
  if ((r = bivy_state_save(g->root, id, c.state, err)) < 0)
    return bivy_error_wrap(err, "update: container %s: limits applied but not recorded", id);

  _cleanup_json_ json_t *limits = NULL;
  if ((r = bivy_cgroup_limits(c.cg, &limits, err)) < 0) return bivy_error_wrap(err, "update");
  if (strcmp(format, "json") == 0) {
    _cleanup_json_ json_t *out = json_pack("{s:s, s:s, s:O}", "id", id, "cgroup", bivy_cgroup_dir(c.cg), "limits", limits);
    _cleanup_free_ char *s = json_dumps(out, JSON_COMPACT);
    if (s == NULL) return bivy_error(err, ENOMEM, "update");
    printf("%s\n", s);
  } else {
    printf("%-32s %s\n", "FILE", "VALUE");
    const char *k;
    json_t *v;
    json_object_foreach(limits, k, v) printf("%-32s %s\n", k, json_string_value(v));
  }
  return 0;
}

BIVY_VERB(verb_update) = {
    .name = "update",
    .summary = "change a running container's resource limits",
    .usage =
        "Usage: bivy update [OPTIONS] ID\n"
        "\n"
        "Change the cgroup limits of container ID while it runs, all or nothing: every value is\n"
        "checked first (sizes, ranges, cpusets against the online CPUs/memory nodes, unified keys),\n"
        "the old values are saved, and if any write fails they are restored and the failing key is\n"
        "named. Prints the limits now in force. The new limits are recorded in the container's\n"
        "state (\"resources\"). A paused container stays paused.\n"
        "\n"
        "Lowering memory below the current usage first forces reclaim (memory.high on cgroup v2;\n"
        "retries while the kernel answers EBUSY on v1) for up to --reclaim-timeout; if usage stays\n"
        "above, nothing changes and the update fails, instead of OOM-killing the service.\n"
        "\n"
        "Options (sizes take k/m/g suffixes; -1 means unlimited):\n"
        "  --memory SIZE              memory limit (memory.max / memory.limit_in_bytes)\n"
        "  --memory-reservation SIZE  soft limit (memory.low / memory.soft_limit_in_bytes)\n"
        "  --memory-swap SIZE         memory+swap limit, as in OCI (memory.swap.max = SIZE - memory)\n"
        "  --kernel-memory SIZE       deprecated, ignored (as in runc)\n"
        "  --cpus N                   CPU bandwidth as a decimal, e.g. 1.5 (quota = N x period)\n"
        "  --cpu-quota US             CFS quota in microseconds per period (-1: unlimited)\n"
        "  --cpu-period US            CFS period in microseconds (1000-1000000)\n"
        "  --cpu-shares N             relative weight, v1 scale (2-262144; cpu.weight on v2)\n"
        "  --cpu-weight N             relative weight, v2 scale (1-10000)\n"
        "  --cpu-rt-period US, --cpu-rt-runtime US   real-time limits (cgroup v1 only)\n"
        "  --cpuset-cpus LIST         CPUs the container may use, e.g. 0-1,3\n"
        "  --cpuset-mems LIST         memory nodes the container may use\n"
        "  --pids-limit N             maximum number of tasks (-1: unlimited)\n"
        "  --blkio-weight N           block I/O weight (10-1000)\n"
        "  -r, --resources FILE|-     OCI LinuxResources JSON (\"unified\" included); flags override it\n"
        "  --reclaim-timeout D        how long to wait for reclaim when shrinking memory (default 2s)\n"
        "  --force                    shrink memory even if usage stays above (may OOM-kill)\n"
        "  --format FMT               table (default) or json: {\"id\", \"cgroup\", \"limits\"}\n",
    .run = run_update,
};
