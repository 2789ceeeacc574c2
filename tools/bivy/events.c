/* bivy events: runc-compatible JSON lines of stats and OOM events, until the container stops. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivy/cgroup-common.h"
#include "tools/bivy/cli.h"

static int emit(const char *type, const char *id, json_t *data) {
  _cleanup_json_ json_t *o = data ? json_pack("{s:s, s:s, s:O}", "type", type, "id", id, "data", data)
                                  : json_pack("{s:s, s:s}", "type", type, "id", id);
  _cleanup_free_ char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  if (s == NULL) return -ENOMEM;
  printf("%s\n", s);
  /* a reader that went away ends the stream */
  return fflush(stdout) == 0 ? 0 : -EPIPE;
}

static int emit_stats(struct bivy_cgroup *cg, const char *id, bivy_error_t *err) {
  _cleanup_json_ json_t *data = NULL;
  int r = bivy_cgroup_stats(cg, &data, err);
  if (r < 0) return bivy_error_wrap(err, "events: container %s", id);
  if ((r = emit("stats", id, data)) < 0) return bivy_error(err, -r, "events: write");
  return 0;
}

/* Emit one oom event per new OOM kill since *seen. */
static int check_oom(struct bivy_cgroup *cg, const char *id, uint64_t *seen, bivy_error_t *err) {
  uint64_t n = 0;
  _cleanup_error_ bivy_error_t e = NULL;
  if (bivy_cgroup_oom_count(cg, &n, &e) < 0) return 0; /* cgroup gone with the container */
  for (; *seen < n; (*seen)++) {
    int r = emit("oom", id, NULL);
    if (r < 0) return bivy_error(err, -r, "events: write");
  }
  return 0;
}

static int run_events(struct bivy_global *g, int argc, char **argv, bivy_error_t *err) {
  static const struct option opts[] = {
      {"interval", required_argument, NULL, 'i'}, {"stats", no_argument, NULL, 's'}, {0, 0, 0, 0}};
  unsigned interval = 5000;
  bool once = false;
  int ch;
  while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (ch) {
      case 'i':
        if (cgv_parse_duration(optarg, &interval) < 0 || interval == 0)
          return bivy_cli_usage_error(err, "events", "--interval: invalid duration \"%s\" (e.g. 5s, 500ms)", optarg);
        break;
      case 's': once = true; break;
      default: return bivy_cli_usage_error(err, "events", "unknown option");
    }
  }
  if (argc - optind != 1) return bivy_cli_usage_error(err, "events", "expected exactly one container ID");
  const char *id = argv[optind];
  _cleanup_cgv_ struct cgv c = {.lock = -1};
  int r = cgv_open(g, "events", id, false, &c, err);
  if (r < 0) return r;
  if (once) return emit_stats(c.cg, id, err);
  if (strcmp(c.status, "stopped") == 0) return bivy_error(err, 0, "events: container %s is not running", id);

  /* the container's init: its exit ends the stream (pidfd, checked against pid reuse) */
  pid_t pid = (pid_t)json_integer_value(json_object_get(c.state, "pid"));
  _cleanup_close_ int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  unsigned long long start = 0;
  json_t *ps = json_object_get(c.state, "pid_start");
  if (pidfd >= 0 && json_is_integer(ps) &&
      (bivy_proc_start_time(pid, &start) < 0 || start != (unsigned long long)json_integer_value(ps)))
    return bivy_error(err, 0, "events: container %s is not running", id);
  if (pidfd < 0) return bivy_error_errno(err, "events: container %s: watch pid %d", id, (int)pid);
  _cleanup_close_ int oomfd = bivy_cgroup_oom_fd(c.cg, err);
  if (oomfd < 0) return bivy_error_wrap(err, "events: container %s", id);
  signal(SIGPIPE, SIG_IGN);

  uint64_t seen = 0;
  _cleanup_error_ bivy_error_t e = NULL;
  bivy_cgroup_oom_count(c.cg, &seen, &e);
  uint64_t next = bivy_now_ns() + (uint64_t)interval * 1000000ull;
  for (;;) {
    uint64_t now = bivy_now_ns();
    int timeout = now >= next ? 0 : (int)((next - now + 999999) / 1000000);
    struct pollfd pfd[2] = {{.fd = oomfd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    int n = poll(pfd, 2, timeout);
    if (n < 0 && errno != EINTR) return bivy_error_errno(err, "events: poll");
    if (n > 0 && pfd[0].revents) bivy_cgroup_oom_drain(oomfd);
    if ((r = check_oom(c.cg, id, &seen, err)) < 0) return r;
    if (n > 0 && pfd[1].revents) return 0; /* the container stopped */
    if (bivy_now_ns() >= next) {
      if ((r = emit_stats(c.cg, id, err)) < 0) return r;
      next = bivy_now_ns() + (uint64_t)interval * 1000000ull;
    }
  }
}

BIVY_VERB(verb_events) = {
    .name = "events",
    .summary = "stream a container's stats and OOM events as JSON lines",
    .usage = "Usage: bivy events [--interval D] [--stats] ID\n"
             "\n"
             "Print JSON lines compatible with `runc events`:\n"
             "  {\"type\":\"stats\",\"id\":ID,\"data\":{cpu, memory, pids, blkio, hugetlb, psi}}\n"
             "  {\"type\":\"oom\",\"id\":ID}   (one per OOM kill in the container's cgroup)\n"
             "until the container stops. OOM kills are seen through inotify on memory.events\n"
             "(cgroup v2) or a memory.oom_control eventfd (cgroup v1).\n"
             "\n"
             "Options:\n"
             "  --interval D   stats period (default 5s; e.g. 500ms, 2s, 1m)\n"
             "  --stats        print one stats event and exit\n",
    .run = run_events,
};
