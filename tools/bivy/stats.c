/* bivy stats: resource usage of a container from its cgroup. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "tools/bivy/cgroup-common.h"
#include "tools/bivy/cli.h"

static uint64_t g64(json_t *o, const char *path) {
  /* "a.b.c" lookup */
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  char *save = NULL;
  for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) o = json_object_get(o, k);
  return json_is_integer(o) ? (uint64_t)json_integer_value(o) : 0;
}

static const char *hsize(uint64_t v, char *buf, size_t len) {
  if (v >= (uint64_t)INT64_MAX / 2) snprintf(buf, len, "max");
  else if (v >= 1ull << 30) snprintf(buf, len, "%.1fG", (double)v / (1ull << 30));
  else if (v >= 1ull << 20) snprintf(buf, len, "%.1fM", (double)v / (1ull << 20));
  else if (v >= 1ull << 10) snprintf(buf, len, "%.1fK", (double)v / (1ull << 10));
  else snprintf(buf, len, "%" PRIu64 "B", v);
  return buf;
}

static void print_table(const char *id, json_t *d) {
  char a[32], b[32], c[32];
  printf("%-10s %s\n", "CONTAINER", id);
  printf("%-10s usage %.3fs (user %.3fs, system %.3fs); throttled %" PRIu64 " of %" PRIu64 " periods (%.3fs)\n", "CPU",
         (double)g64(d, "cpu.usage.total") / 1e9, (double)g64(d, "cpu.usage.user") / 1e9,
         (double)g64(d, "cpu.usage.kernel") / 1e9, g64(d, "cpu.throttling.throttledPeriods"),
         g64(d, "cpu.throttling.periods"), (double)g64(d, "cpu.throttling.throttledTime") / 1e9);
  if (json_object_get(d, "memory"))
    printf("%-10s %s / %s (peak %s); oom_kill %" PRIu64 "\n", "MEMORY", hsize(g64(d, "memory.usage.usage"), a, sizeof a),
           hsize(g64(d, "memory.usage.limit"), b, sizeof b), hsize(g64(d, "memory.usage.max"), c, sizeof c),
           g64(d, "memory.events.oom_kill"));
  if (json_object_get(d, "pids")) {
    uint64_t lim = g64(d, "pids.limit");
    if (lim >= (uint64_t)INT64_MAX / 2) printf("%-10s %" PRIu64 " / max\n", "PIDS", g64(d, "pids.current"));
    else printf("%-10s %" PRIu64 " / %" PRIu64 "\n", "PIDS", g64(d, "pids.current"), lim);
  }
  json_t *io = json_object_get(json_object_get(d, "blkio"), "ioServiceBytesRecursive");
  if (io) {
    uint64_t rd = 0, wr = 0;
    size_t i;
    json_t *e;
    json_array_foreach(io, i, e) {
      const char *op = json_string_value(json_object_get(e, "op"));
      uint64_t v = (uint64_t)json_integer_value(json_object_get(e, "value"));
      if (op && strcmp(op, "Read") == 0) rd += v;
      if (op && strcmp(op, "Write") == 0) wr += v;
    }
    printf("%-10s read %s, write %s\n", "IO", hsize(rd, a, sizeof a), hsize(wr, b, sizeof b));
  }
  json_t *psi = json_object_get(d, "psi");
  const char *k;
  json_t *v;
  json_object_foreach(psi, k, v) {
    json_t *some = json_object_get(v, "some"), *full = json_object_get(v, "full");
    printf("%-10s %s some avg10=%.2f", "PSI", k, json_real_value(json_object_get(some, "avg10")));
    if (full) printf(" full avg10=%.2f", json_real_value(json_object_get(full, "avg10")));
    printf("\n");
  }
}

static int run_stats(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0, 0, 0, 0}};
  const char *format = "table";
  int ch;
  while ((ch = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
    if (ch == 'f') format = optarg;
    else return bivy_cli_usage_error(err, "stats", "unknown option");
  }
  if (strcmp(format, "table") && strcmp(format, "json"))
    return bivy_cli_usage_error(err, "stats", "--format: unknown format \"%s\" (table or json)", format);
  if (argc - optind != 1) return bivy_cli_usage_error(err, "stats", "expected exactly one container ID");
  const char *id = argv[optind];
  _cleanup_cgv_ struct cgv c = {.lock = -1};
  int r = cgv_open(g, "stats", id, false, &c, err);
  if (r < 0) return r;
  _cleanup_json_ json_t *data = NULL;
  if ((r = bivy_cgroup_stats(c.cg, &data, err)) < 0) return bivy_error_wrap(err, "stats: container %s", id);
  if (strcmp(format, "json") == 0) {
    _cleanup_json_ json_t *o = json_pack("{s:s, s:s, s:O}", "id", id, "status", c.status, "data", data);
    _cleanup_free_ char *s = json_dumps(o, JSON_COMPACT);
    if (s == NULL) return bivy_error(err, ENOMEM, "stats");
    printf("%s\n", s);
  } else {
    print_table(id, data);
  }
  return 0;
}

BIVY_VERB(verb_stats) = {
    .name = "stats",
    .summary = "show a container's resource usage",
    .usage = "Usage: bivy stats [--format table|json] ID\n"
             "\n"
             "Print resource usage of container ID read from its cgroup: CPU time and throttling,\n"
             "memory current/peak/limit and OOM kills, pids current/limit, block I/O, and pressure\n"
             "(PSI some/full avg10) where the kernel provides it (cgroup v2 directories; on hybrid\n"
             "hosts the container's twin cgroup in the unified tree).\n"
             "\n"
             "Options:\n"
             "  --format FMT   table (default) or json: {\"id\", \"status\", \"data\"} where data has\n"
             "                 runc's stats layout (cpu, memory, pids, blkio, hugetlb) plus \"psi\"\n",
    .run = run_stats,
};
