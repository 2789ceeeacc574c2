/* bivy ps: the processes of a container. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/cleanup.h"
#include "runtime/container.h"
#include "runtime/util.h"
#include "tools/bivy/cli.h"

/* One /proc line: uid, ppid, state, command line. */
static void print_proc(pid_t pid) {
  char path[64];
  _cleanup_free_ char *line = NULL, *cmd = NULL;
  size_t len = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (bivy_read_file_at(-1, path, &line, &len, NULL) < 0) return;
  char st = '?';
  int ppid = 0;
  char *p = strrchr(line, ')');
  if (p) sscanf(p + 1, " %c %d", &st, &ppid);
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  if (bivy_read_file_at(-1, path, &cmd, &len, NULL) < 0) return;
  for (size_t i = 0; i + 1 < len; i++)
    if (cmd[i] == '\0') cmd[i] = ' ';
  struct stat sb;
  snprintf(path, sizeof path, "/proc/%d", (int)pid);
  unsigned uid = stat(path, &sb) == 0 ? sb.st_uid : 0;
  printf("%-8u %-8d %-8d %-5c %s\n", uid, (int)pid, ppid, st, cmd);
}

static int run_ps(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0, 0, 0, 0}};
  const char *format = "table";
  int c;
  while ((c = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
    if (c == 'f') format = optarg;
    else return bivy_cli_usage_error(err, "ps", "unknown option");
  }
  bool json = strcmp(format, "json") == 0;
  if (!json && strcmp(format, "table") != 0)
    return bivy_cli_usage_error(err, "ps", "--format: unknown format \"%s\" (table or json)", format);
  if (optind != argc - 1) return bivy_cli_usage_error(err, "ps", "expected exactly one container ID");
  _cleanup_free_ pid_t *pids = NULL;
  size_t n = 0;
  int r = bivy_container_pids(g->root, argv[optind], &pids, &n, err);
  if (r < 0) return r;
  if (json) {
    _cleanup_json_ json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(pids[i]));
    json_dumpf(arr, stdout, 0);
    putchar('\n');
    return 0;
  }
  printf("%-8s %-8s %-8s %-5s %s\n", "UID", "PID", "PPID", "STAT", "CMD");
  for (size_t i = 0; i < n; i++) print_proc(pids[i]);
  return 0;
}

BIVY_VERB(verb_ps) = {
    .name = "ps",
    .summary = "list the processes of a container",
    .usage = "Usage: bivy ps [--format table|json] ID\n"
             "\n"
             "List the processes in container ID's cgroup (host pids).\n"
             "\n"
             "Options:\n"
             "  -f, --format FMT  table (default: UID PID PPID STAT CMD) or json (an array of pids)\n"
             "  -h, --help        this help\n",
    .run = run_ps,
};
