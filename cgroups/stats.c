/* Stats (runc's events "data" layout) and OOM notification. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"

static json_t *num(uint64_t v) { return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v); }

/* a flat "key value" file as an object */
static json_t *flat(int fd, const char *file) {
  _cleanup_free_ char *s = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (bivy_cg_read(fd, file, &s, &e) < 0) return NULL;
  json_t *o = json_object();
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *sp = strchr(line, ' ');
    if (sp == NULL) continue;
    *sp = '\0';
    json_object_set_new(o, line, num(strtoull(sp + 1, NULL, 10)));
  }
  return o;
}

static uint64_t get(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static uint64_t u64(int fd, const char *file) {
  uint64_t v = 0;
  if (bivy_cg_read_u64(fd, file, &v) < 0) return 0;
  return v;
}

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" lines */
static json_t *psi(int fd, const char *file) {
  _cleanup_free_ char *s = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (fd < 0 || bivy_cg_read(fd, file, &s, &e) < 0) return NULL;
  json_t *o = json_object();
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char kind[8];
    double a10, a60, a300;
    unsigned long long total;
    if (sscanf(line, "%7s avg10=%lf avg60=%lf avg300=%lf total=%llu", kind, &a10, &a60, &a300, &total) != 5) continue;
    json_object_set_new(o, kind, json_pack("{s:f, s:f, s:f, s:I}", "avg10", a10, "avg60", a60, "avg300", a300, "total",
                                           (json_int_t)total));
  }
  return o;
}

/* usage from a cgroup2 cpu.stat (present with or without the cpu controller) */
static void v2_usage_into(json_t *usage, json_t *st) {
  json_object_set_new(usage, "total", num(get(st, "usage_usec") * 1000));
  json_object_set_new(usage, "user", num(get(st, "user_usec") * 1000));
  json_object_set_new(usage, "kernel", num(get(st, "system_usec") * 1000));
}

static void cpu_stats(struct bivy_cgroup *cg, json_t *data) {
  int fd = cg_ctrl_fd(cg, CG_CPU), afd = cg_ctrl_fd(cg, CG_CPUACCT);
  json_t *usage = json_object(), *thr = json_object();
  bool v2_usage = cg->v2 >= 0 && cg->h[cg->v2].fd >= 0 && (cg->mode == BIVY_CGROUP_UNIFIED || afd < 0);
  if (cg_ctrl_v2(cg, CG_CPU) || (fd < 0 && v2_usage)) {
    /* cpu.stat exists even without the cpu controller (usage only); on hybrid hosts it is
     * where usage comes from when the container has not joined cpuacct */
    int sfd = fd >= 0 ? fd : cg->h[cg->v2].fd;
    _cleanup_json_ json_t *st = flat(sfd, "cpu.stat");
    v2_usage_into(usage, st);
    json_object_set_new(thr, "periods", num(get(st, "nr_periods")));
    json_object_set_new(thr, "throttledPeriods", num(get(st, "nr_throttled")));
    json_object_set_new(thr, "throttledTime", num(get(st, "throttled_usec") * 1000));
  } else {
    if (afd >= 0) {
      json_object_set_new(usage, "total", num(u64(afd, "cpuacct.usage")));
      _cleanup_json_ json_t *st = flat(afd, "cpuacct.stat");
      long hz = sysconf(_SC_CLK_TCK);
      uint64_t ns_per_tick = hz > 0 ? 1000000000ull / (uint64_t)hz : 10000000ull;
      json_object_set_new(usage, "user", num(get(st, "user") * ns_per_tick));
      json_object_set_new(usage, "kernel", num(get(st, "system") * ns_per_tick));
      _cleanup_free_ char *pc = NULL;
      _cleanup_error_ bivy_error_t e = NULL;
      if (bivy_cg_read(afd, "cpuacct.usage_percpu", &pc, &e) == 0) {
        json_t *a = json_array();
        for (char *p = pc, *end; *p; p = end) {
          uint64_t v = strtoull(p, &end, 10);
          if (end == p) break;
          json_array_append_new(a, num(v));
        }
        json_object_set_new(usage, "percpu", a);
      }
    } else if (v2_usage) { /* hybrid, joined the v1 cpu hierarchy only */
      _cleanup_json_ json_t *st = flat(cg->h[cg->v2].fd, "cpu.stat");
      v2_usage_into(usage, st);
    }
    if (fd >= 0) {
      _cleanup_json_ json_t *st = flat(fd, "cpu.stat");
      json_object_set_new(thr, "periods", num(get(st, "nr_periods")));
      json_object_set_new(thr, "throttledPeriods", num(get(st, "nr_throttled")));
      json_object_set_new(thr, "throttledTime", num(get(st, "throttled_time")));
    }
  }
  json_object_set_new(data, "cpu", json_pack("{s:o, s:o}", "usage", usage, "throttling", thr));
}

static void memory_stats(struct bivy_cgroup *cg, json_t *data) {
  int fd = cg_ctrl_fd(cg, CG_MEMORY);
  if (fd < 0) return;
  json_t *m = json_object();
  if (cg_ctrl_v2(cg, CG_MEMORY)) {
    json_t *raw = flat(fd, "memory.stat");
    json_t *ev = flat(fd, "memory.events");
    json_object_set_new(m, "cache", num(get(raw, "file")));
    json_object_set_new(m, "usage", json_pack("{s:o, s:o, s:o, s:o}", "usage", num(u64(fd, "memory.current")), "limit",
                                              num(u64(fd, "memory.max")), "max", num(u64(fd, "memory.peak")), "failcnt",
                                              num(get(ev, "max"))));
    json_object_set_new(m, "swap", json_pack("{s:o, s:o}", "usage", num(u64(fd, "memory.swap.current")), "limit",
                                             num(u64(fd, "memory.swap.max"))));
    if (raw) json_object_set_new(m, "raw", raw);
    if (ev) json_object_set_new(m, "events", ev);
  } else {
    json_t *raw = flat(fd, "memory.stat");
    json_t *oc = flat(fd, "memory.oom_control");
    json_object_set_new(m, "cache", num(get(raw, "total_cache")));
    json_object_set_new(m, "usage", json_pack("{s:o, s:o, s:o, s:o}", "usage", num(u64(fd, "memory.usage_in_bytes")),
                                              "limit", num(u64(fd, "memory.limit_in_bytes")), "max",
                                              num(u64(fd, "memory.max_usage_in_bytes")), "failcnt",
                                              num(u64(fd, "memory.failcnt"))));
    json_object_set_new(m, "swap", json_pack("{s:o, s:o, s:o, s:o}", "usage", num(u64(fd, "memory.memsw.usage_in_bytes")),
                                             "limit", num(u64(fd, "memory.memsw.limit_in_bytes")), "max",
                                             num(u64(fd, "memory.memsw.max_usage_in_bytes")), "failcnt",
                                             num(u64(fd, "memory.memsw.failcnt"))));
    if (raw) json_object_set_new(m, "raw", raw);
    json_object_set_new(m, "events", json_pack("{s:o}", "oom_kill", num(get(oc, "oom_kill"))));
    json_decref(oc);
  }
  json_object_set_new(data, "memory", m);
}

static void io_stats(struct bivy_cgroup *cg, json_t *data) {
  int fd = cg_ctrl_fd(cg, CG_IO);
  if (fd < 0) return;
  json_t *bytes = json_array(), *ios = json_array();
  _cleanup_free_ char *s = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (cg_ctrl_v2(cg, CG_IO)) {
    if (bivy_cg_read(fd, "io.stat", &s, &e) == 0) {
      char *save = NULL;
      for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned maj, min;
        unsigned long long rb = 0, wb = 0, rio = 0, wio = 0;
        if (sscanf(line, "%u:%u rbytes=%llu wbytes=%llu rios=%llu wios=%llu", &maj, &min, &rb, &wb, &rio, &wio) < 2)
          continue;
        json_array_append_new(bytes, json_pack("{s:i, s:i, s:s, s:I}", "major", maj, "minor", min, "op", "Read", "value", (json_int_t)rb));
        json_array_append_new(bytes, json_pack("{s:i, s:i, s:s, s:I}", "major", maj, "minor", min, "op", "Write", "value", (json_int_t)wb));
        json_array_append_new(ios, json_pack("{s:i, s:i, s:s, s:I}", "major", maj, "minor", min, "op", "Read", "value", (json_int_t)rio));
        json_array_append_new(ios, json_pack("{s:i, s:i, s:s, s:I}", "major", maj, "minor", min, "op", "Write", "value", (json_int_t)wio));
      }
    }
  } else {
    static const char *const files[] = {"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"};
    for (int f = 0; f < 2; f++) {
      _cleanup_free_ char *t = NULL;
      _cleanup_error_ bivy_error_t e2 = NULL;
      if (bivy_cg_read(fd, files[f], &t, &e2) < 0) continue;
      char *save = NULL;
      for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned maj, min;
        char op[16];
        unsigned long long v;
        if (sscanf(line, "%u:%u %15s %llu", &maj, &min, op, &v) != 4) continue;
        json_array_append_new(f ? ios : bytes, json_pack("{s:i, s:i, s:s, s:I}", "major", maj, "minor", min, "op", op, "value", (json_int_t)v));
      }
    }
  }
  json_object_set_new(data, "blkio", json_pack("{s:o, s:o}", "ioServiceBytesRecursive", bytes, "ioServicedRecursive", ios));
}

static void hugetlb_stats(struct bivy_cgroup *cg, json_t *data) {
  int fd = cg_ctrl_fd(cg, CG_HUGETLB);
  if (fd < 0) return;
  bool v2 = cg_ctrl_v2(cg, CG_HUGETLB);
  json_t *h = json_object();
  int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (d == NULL && dfd >= 0) close(dfd);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    char size[32], file[128];
    const char *suffix = v2 ? ".current" : ".usage_in_bytes";
    size_t nl = strlen(de->d_name), sl = strlen(suffix);
    if (strncmp(de->d_name, "hugetlb.", 8) || nl <= 8 + sl || strcmp(de->d_name + nl - sl, suffix)) continue;
    if (nl - 8 - sl >= sizeof size) continue;
    snprintf(size, sizeof size, "%.*s", (int)(nl - 8 - sl), de->d_name + 8);
    if (strchr(size, '.')) continue; /* hugetlb.2MB.rsvd.current */
    snprintf(file, sizeof file, v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", size);
    uint64_t fail = 0;
    if (v2) {
      char ev[128];
      snprintf(ev, sizeof ev, "hugetlb.%s.events", size);
      bivy_cg_read_keyed(fd, ev, "max", &fail);
    } else {
      char fc[128];
      snprintf(fc, sizeof fc, "hugetlb.%s.failcnt", size);
      fail = u64(fd, fc);
    }
    json_object_set_new(h, size, json_pack("{s:o, s:o, s:o}", "usage", num(u64(fd, de->d_name)), "limit", num(u64(fd, file)),
                                           "failcnt", num(fail)));
  }
  json_object_set_new(data, "hugetlb", h);
}

int bivy_cgroup_stats(struct bivy_cgroup *cg, json_t **out, bivy_error_t *err) {
  json_t *data = json_object();
  if (data == NULL) return bivy_error(err, ENOMEM, "stats");
  cpu_stats(cg, data);
  memory_stats(cg, data);
  int pfd = cg_ctrl_fd(cg, CG_PIDS);
  if (pfd >= 0)
    json_object_set_new(data, "pids", json_pack("{s:o, s:o}", "current", num(u64(pfd, "pids.current")), "limit",
                                                num(u64(pfd, "pids.max"))));
  io_stats(cg, data);
  hugetlb_stats(cg, data);
  /* PSI lives in cgroup2 directories (on hybrid: the unified-tree twin) */
  int v2fd = cg->v2 >= 0 ? cg->h[cg->v2].fd : -1;
  json_t *p = json_object();
  static const char *const res[] = {"cpu", "memory", "io"};
  for (int i = 0; i < 3; i++) {
    char f[32];
    snprintf(f, sizeof f, "%s.pressure", res[i]);
    json_t *x = psi(v2fd, f);
    if (x) json_object_set_new(p, res[i], x);
  }
  if (json_object_size(p)) json_object_set_new(data, "psi", p);
  else json_decref(p);
  *out = data;
  return 0;
}

int bivy_cgroup_oom_count(struct bivy_cgroup *cg, uint64_t *count, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, CG_MEMORY);
  *count = 0;
  if (fd < 0) return bivy_error(err, 0, "cgroup %s: no memory controller", cg->path);
  int r = cg_ctrl_v2(cg, CG_MEMORY) ? bivy_cg_read_keyed(fd, "memory.events", "oom_kill", count)
                                     : bivy_cg_read_keyed(fd, "memory.oom_control", "oom_kill", count);
  if (r < 0 && r != -ENOENT) return bivy_error(err, -r, "cgroup %s: read OOM counter", cg->path);
  return 0;
}

int bivy_cgroup_oom_fd(struct bivy_cgroup *cg, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, CG_MEMORY);
  if (fd < 0) return bivy_error(err, 0, "cgroup %s: no memory controller", cg->path);
  const char *dir = cg->h[cg->ctrl[CG_MEMORY]].dir;
  if (cg_ctrl_v2(cg, CG_MEMORY)) {
    /* the kernel signals a modification of memory.events on every counter change */
    _cleanup_close_ int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in < 0) return bivy_error_errno(err, "inotify");
    _cleanup_free_ char *p = NULL;
    if (asprintf(&p, "%s/memory.events", dir) < 0) return bivy_error(err, ENOMEM, "inotify");
    if (inotify_add_watch(in, p, IN_MODIFY) < 0) return bivy_error_errno(err, "inotify watch %s", p);
    return steal_fd(&in);
  }
  _cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return bivy_error_errno(err, "eventfd");
  _cleanup_close_ int ofd = openat(fd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
  if (ofd < 0) return bivy_error_errno(err, "open %s/memory.oom_control", dir);
  char buf[64];
  snprintf(buf, sizeof buf, "%d %d", efd, ofd);
  int r = bivy_cg_write(fd, "cgroup.event_control", buf, err);
  if (r < 0) return bivy_error_wrap(err, "cgroup %s: register OOM notification", dir);
  return steal_fd(&efd);
}

void bivy_cgroup_oom_drain(int fd) {
  char buf[4096];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}
