/* Live update of a container's limits: validate everything, snapshot, apply, roll back on
 * any failure. Memory shrinks below usage go through reclaim first so a service is not
 * OOM-killed by surprise. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"
#include "runtime/util.h"

#define MAX_CPUS 8192

/* "0-2,5" -> bits; -EINVAL on junk, -ERANGE beyond MAX_CPUS */
int bivy_cgroup_parse_list(const char *s, uint8_t *bits, size_t nbits) {
  memset(bits, 0, (nbits + 7) / 8);
  if (*s == '\0') return 0;
  for (const char *p = s; *p;) {
    char *end;
    errno = 0;
    unsigned long a = strtoul(p, &end, 10), b;
    if (end == p || errno) return -EINVAL;
    b = a;
    if (*end == '-') {
      p = end + 1;
      b = strtoul(p, &end, 10);
      if (end == p || errno || b < a) return -EINVAL;
    }
    if (b >= nbits) return -ERANGE;
    for (unsigned long i = a; i <= b; i++) bits[i / 8] |= (uint8_t)(1u << (i % 8));
    if (*end == ',') end++;
    else if (*end != '\0' && *end != '\n') return -EINVAL;
    p = end;
    if (*p == '\n') break;
  }
  return 0;
}

static int check_list(const char *field, const char *value, const char *online_file, const char *what,
                      bivy_error_t *err) {
  static uint8_t want[MAX_CPUS / 8], have[MAX_CPUS / 8];
  int r = bivy_cgroup_parse_list(value, want, MAX_CPUS);
  if (r < 0) return bivy_error(err, 0, "%s: \"%s\" is not a %s list like 0-2,4", field, value, what);
  _cleanup_free_ char *online = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  if (bivy_cg_read(AT_FDCWD, online_file, &online, &e) < 0) return 0; /* no NUMA info: the kernel decides */
  if (bivy_cgroup_parse_list(online, have, MAX_CPUS) < 0) return 0;
  for (size_t i = 0; i < MAX_CPUS; i++)
    if ((want[i / 8] >> (i % 8) & 1) && !(have[i / 8] >> (i % 8) & 1))
      return bivy_error(err, 0, "%s: %s %zu is not online (online: %s)", field, what, i, online);
  return 0;
}

static void human(uint64_t v, char *buf, size_t len) {
  if (v >= 1ull << 30) snprintf(buf, len, "%.1fG", (double)v / (1ull << 30));
  else if (v >= 1ull << 20) snprintf(buf, len, "%.1fM", (double)v / (1ull << 20));
  else if (v >= 1ull << 10) snprintf(buf, len, "%.1fK", (double)v / (1ull << 10));
  else snprintf(buf, len, "%" PRIu64, v);
}

static void dur(unsigned ms, char *buf, size_t len) {
  if (ms % 1000 == 0) snprintf(buf, len, "%us", ms / 1000);
  else snprintf(buf, len, "%ums", ms);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

struct snap {
  char *old;   /* content before (NULL: not read) */
  bool applied;
  bool alt;    /* the alternative file is the one in use */
};

/* Write the old content back; keyed multi-line files line by line. */
static void restore_one(struct bivy_cgroup *cg, const struct bivy_cg_write *w, const struct snap *s) {
  int fd = cg_ctrl_fd(cg, w->ctrl);
  if (fd < 0 || s->old == NULL) return;
  const char *file = s->alt ? w->alt_file : w->file;
  _cleanup_error_ bivy_error_t e = NULL;
  bool keyed = strchr(w->value, ':') != NULL; /* "MAJ:MIN ..." */
  if (!keyed) {
    bivy_cg_write(fd, file, *s->old ? s->old : "max", &e);
    return;
  }
  /* the device line we set: put its old line back, or reset it */
  size_t kl = strcspn(w->value, " ");
  for (char *line = s->old; line && *line;) {
    char *nl = strchr(line, '\n');
    size_t ll = nl ? (size_t)(nl - line) : strlen(line);
    if (ll > kl && strncmp(line, w->value, kl) == 0 && line[kl] == ' ') {
      _cleanup_free_ char *l = strndup(line, ll);
      if (l) bivy_cg_write(fd, file, l, &e);
      return;
    }
    line = nl ? nl + 1 : NULL;
  }
  char buf[96];
  if (strcmp(file, "io.max") == 0)
    snprintf(buf, sizeof buf, "%.*s rbps=max wbps=max riops=max wiops=max", (int)kl, w->value);
  else if (strncmp(file, "blkio.throttle.", 15) == 0) snprintf(buf, sizeof buf, "%.*s 0", (int)kl, w->value);
  else return;
  bivy_cg_write(fd, file, buf, &e);
}

static uint64_t rss_pages(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
  _cleanup_free_ char *s = NULL;
  _cleanup_error_ bivy_error_t e = NULL;
  unsigned long long size = 0, rss = 0;
  if (bivy_read_file_at(AT_FDCWD, path, &s, NULL, &e) < 0 || sscanf(s, "%llu %llu", &size, &rss) != 2) return 0;
  return rss;
}

/* v1 --force: the v1 kernel never OOM-kills on a limit write (it answers EBUSY), so do what
 * v2 does: kill the container's largest process until the limit fits (or nobody is left). */
static int force_v1(struct bivy_cgroup *cg, const struct bivy_cg_write *w, bivy_error_t *err) {
  int grace = 0;
  for (int round = 0; round < 1024; round++) {
    _cleanup_error_ bivy_error_t e = NULL;
    int r = bivy_cg_write_one(cg, w, &e);
    if (r != -EBUSY) {
      if (r < 0) {
        bivy_error_release(err);
        *err = e;
        e = NULL;
      }
      return r;
    }
    _cleanup_free_ pid_t *pids = NULL;
    size_t n = 0;
    if (bivy_cgroup_pids(cg, &pids, &n, &e) < 0 || n == 0) {
      /* the last exits may still be uncharging: a short grace period */
      if (round > 0 && grace++ < 100) {
        sleep_ms(10);
        continue;
      }
      break;
    }
    pid_t victim = pids[0];
    uint64_t best = 0;
    for (size_t i = 0; i < n; i++) {
      uint64_t rss = rss_pages(pids[i]);
      if (rss > best) {
        best = rss;
        victim = pids[i];
      }
    }
    kill(victim, SIGKILL); /* only processes of this container's cgroup */
    for (int i = 0; i < 200 && rss_pages(victim) > 0; i++) sleep_ms(5);
  }
  return bivy_error(err, 0, "%s: usage stays above the new limit even with every process killed; limits unchanged",
                    w->field);
}

/* Memory limit below usage: reclaim first (memory.high on v2; EBUSY retries on v1). */
static int write_memory(struct bivy_cgroup *cg, const struct bivy_cg_write *w, const struct bivy_cgroup_update_opts *o,
                        bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, CG_MEMORY);
  bool v2 = strcmp(w->file, "memory.max") == 0;
  char tbuf[16], ubuf[16];
  uint64_t target = strtoull(w->value, NULL, 10), usage = 0;
  dur(o->reclaim_timeout_ms, tbuf, sizeof tbuf);
  if (v2 && strcmp(w->value, "max") != 0 && !o->force && bivy_cg_read_u64(fd, "memory.current", &usage) == 0 &&
      usage > target) {
    _cleanup_free_ char *high = NULL;
    int r = bivy_cg_read(fd, "memory.high", &high, err);
    if (r < 0) return bivy_error_wrap(err, "%s", w->field);
    /* memory.high makes the kernel reclaim down to the target without OOM-killing */
    _cleanup_error_ bivy_error_t e = NULL;
    bivy_cg_write(fd, "memory.high", w->value, &e);
    uint64_t start = bivy_now_ns();
    for (;;) {
      if (bivy_cg_read_u64(fd, "memory.current", &usage) == 0 && usage <= target) break;
      if (bivy_now_ns() - start >= (uint64_t)o->reclaim_timeout_ms * 1000000ull) break;
      sleep_ms(20);
    }
    if (usage > target) {
      bivy_cg_write(fd, "memory.high", high, &e);
      human(usage, ubuf, sizeof ubuf);
      return bivy_error(err, 0,
                        "%s: usage %s stays above the new limit after %s of reclaim; limits unchanged (use --force to "
                        "apply anyway)",
                        w->field, ubuf, tbuf);
    }
    int rr = bivy_cg_write_one(cg, w, err);
    bivy_cg_write(fd, "memory.high", high, &e);
    return rr;
  }
  /* v1: the kernel reclaims on the write and answers EBUSY when usage stays above */
  uint64_t start = bivy_now_ns();
  if (!v2 && o->force) return force_v1(cg, w, err);
  for (;;) {
    _cleanup_error_ bivy_error_t e = NULL;
    int r = bivy_cg_write_one(cg, w, &e);
    if (r != -EBUSY || v2) {
      if (r < 0) {
        bivy_error_release(err);
        *err = e;
        e = NULL;
      }
      return r;
    }
    if (bivy_now_ns() - start >= (uint64_t)o->reclaim_timeout_ms * 1000000ull) break;
    sleep_ms(50);
  }
  const char *uf = strstr(w->file, "memsw") ? "memory.memsw.usage_in_bytes" : "memory.usage_in_bytes";
  bivy_cg_read_u64(fd, uf, &usage);
  human(usage, ubuf, sizeof ubuf);
  return bivy_error(err, 0,
                    "%s: usage %s stays above the new limit after %s of reclaim; limits unchanged%s", w->field, ubuf, tbuf,
                    o->force ? " (cgroup v1 refuses a limit below usage even with --force)" : " (use --force to apply anyway)");
}

static bool is_memory_limit(const struct bivy_cg_write *w) {
  return strcmp(w->file, "memory.max") == 0 || strcmp(w->file, "memory.limit_in_bytes") == 0 ||
         strcmp(w->file, "memory.memsw.limit_in_bytes") == 0;
}

static int validate(struct bivy_cgroup *cg, struct bivy_cg_write *w, struct snap *s, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, w->ctrl);
  if (fd < 0 || (w->unified && !cg_ctrl_v2(cg, w->ctrl)))
    return bivy_cg_write_one(cg, w, err); /* produces the right message */
  struct stat st;
  if (fstatat(fd, w->file, &st, 0) < 0) {
    if (w->alt_file && fstatat(fd, w->alt_file, &st, 0) == 0) s->alt = true;
    else if (w->best_effort) return 0;
    else {
      const char *why = strstr(w->file, "memsw") || strstr(w->file, "swap") ? " (swap accounting disabled)" : "";
      return bivy_error(err, 0, "%s: %s not available%s", w->field, w->file, why);
    }
  }
  _cleanup_error_ bivy_error_t e = NULL;
  if (bivy_cg_read(fd, s->alt ? w->alt_file : w->file, &s->old, &e) < 0) s->old = NULL;
  return 0;
}

/* Move every process of the container into the new hierarchy h. The cgroup2 freezer holds
 * them meanwhile, so no process forks a child that would stay behind. */
static int move_all(struct bivy_cgroup *cg, struct cg_hier *h, bivy_error_t *err) {
  bool was_frozen = false;
  int r = bivy_cgroup_is_frozen(cg, &was_frozen, err);
  if (r < 0) return r;
  if (!was_frozen && (r = bivy_cgroup_freeze(cg, true, err)) < 0) return bivy_error_wrap(err, "join %s", h->dir);
  _cleanup_free_ pid_t *pids = NULL;
  size_t n = 0;
  r = bivy_cgroup_pids(cg, &pids, &n, err);
  for (size_t i = 0; r >= 0 && i < n; i++) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", (int)pids[i]);
    _cleanup_error_ bivy_error_t e = NULL;
    /* a process that exited since the listing is fine */
    if (bivy_cg_write(h->fd, "cgroup.procs", buf, &e) < 0 && e->status != ESRCH)
      r = bivy_error(err, e->status, "join %s: move process %d: %s", h->dir, (int)pids[i], e->msg);
  }
  if (!was_frozen) {
    _cleanup_error_ bivy_error_t e = NULL;
    int tr = bivy_cgroup_freeze(cg, false, r < 0 ? &e : err);
    if (r >= 0 && tr < 0) r = bivy_error_wrap(err, "join %s", h->dir);
  }
  return r;
}

/* Hybrid hosts make a container's cgroup only in the v1 hierarchies it needs (hybrid_joins in
 * cgroups.c); the first update that sets a limit of a controller it has not joined (cpu,
 * cpuset, blkio) brings it in: make the cgroup, move every process in. */
static int join(struct bivy_cgroup *cg, json_t *resources, bool *joined, bivy_error_t *err) {
  if (cg->mode != BIVY_CGROUP_HYBRID || cg->v2 < 0) return 0;
  uint32_t needs = bivy_cg_resources_needs(resources), missing = 0;
  for (int c = 0; c < CG_CTRL_COUNT; c++)
    if ((needs & (1u << c)) && cg->ctrl[c] < 0) missing |= 1u << c;
  if (missing == 0) return 0;
  _cleanup_cgroup_ struct bivy_cgroup *all = bivy_cg_new();
  if (all == NULL || (all->path = strdup(cg->path)) == NULL) return bivy_error(err, ENOMEM, "cgroup");
  all->mode = cg->mode;
  int r = bivy_cg_discover(all, err);
  if (r < 0) return r;
  bool bivy_parent = strncmp(cg->path, "/bivy/", 6) == 0;
  for (size_t i = 0; i < all->nh; i++) {
    struct cg_hier *h = &all->h[i];
    if (h->v2 || !(h->ctrls & missing)) continue;
    if (cg->nh >= BIVY_CGROUP_MAX_HIER) return bivy_error(err, 0, "too many cgroup hierarchies");
    if ((r = bivy_cg_make_hier(all, h, bivy_parent, needs & h->ctrls, err)) < 0) return r;
    /* from here the directory is the container's: recorded even if a move fails, so that
     * delete removes it */
    cg->h[cg->nh] = *h;
    h->dir = NULL;
    h->fd = -1;
    for (int c = 0; c < CG_CTRL_COUNT; c++)
      if (cg->h[cg->nh].ctrls & (1u << c)) cg->ctrl[c] = (int)cg->nh;
    struct cg_hier *mine = &cg->h[cg->nh++];
    *joined = true;
    if ((r = move_all(cg, mine, err)) < 0) return r;
  }
  return 0;
}

/* "linux.resources.memory.swap: ..." -> "--memory-swap 10M: ..." when the value came from a flag */
static void rename_fields(json_t *names, bivy_error_t *err) {
  if (names == NULL || *err == NULL || (*err)->msg == NULL) return;
  const char *k;
  json_t *v;
  json_object_foreach(names, k, v) {
    char *hit = strstr((*err)->msg, k);
    size_t kl = strlen(k);
    if (hit == NULL || hit[kl] != ':' || !json_is_string(v)) continue;
    char *m = NULL;
    if (asprintf(&m, "%.*s%s%s", (int)(hit - (*err)->msg), (*err)->msg, json_string_value(v), hit + kl) < 0) return;
    free((*err)->msg);
    (*err)->msg = m;
    return;
  }
}

int bivy_cgroup_update(struct bivy_cgroup *cg, json_t *resources, const struct bivy_cgroup_update_opts *o,
                       bivy_error_t *err) {
  if (json_object_get(resources, "devices"))
    return bivy_error(err, 0, "linux.resources.devices: device rules cannot be updated on a live container");
  struct bivy_cg_plan plan = {0};
  int r = bivy_cg_translate(resources, bivy_cg_v2mask(cg), "linux.resources", &plan, err);
  if (r < 0) {
    rename_fields(o->names, err);
    return r;
  }
  /* checks that need no cgroup come before one is joined */
  for (size_t i = 0; r >= 0 && i < plan.n; i++) {
    const struct bivy_cg_write *w = &plan.w[i];
    if (strcmp(w->file, "cpuset.cpus") == 0) r = check_list(w->field, w->value, "/sys/devices/system/cpu/online", "cpu", err);
    if (strcmp(w->file, "cpuset.mems") == 0)
      r = check_list(w->field, w->value, "/sys/devices/system/node/online", "memory node", err);
  }
  if (r >= 0 && o->joined) r = join(cg, resources, o->joined, err);
  if (r < 0) {
    rename_fields(o->names, err);
    bivy_cg_plan_clear(&plan);
    return r;
  }
  /* name fields the way the user gave them */
  for (size_t i = 0; o->names && i < plan.n; i++) {
    json_t *n = json_object_get(o->names, plan.w[i].field);
    if (json_is_string(n)) {
      char *f = strdup(json_string_value(n));
      if (f) {
        free(plan.w[i].field);
        plan.w[i].field = f;
      }
    }
  }
  struct snap *s = calloc(plan.n ? plan.n : 1, sizeof *s);
  if (s == NULL) {
    bivy_cg_plan_clear(&plan);
    return bivy_error(err, ENOMEM, "update");
  }
  for (size_t i = 0; r >= 0 && i < plan.n; i++) r = validate(cg, &plan.w[i], &s[i], err);
  /* apply; a write the kernel finds inconsistent with a later one (v1 memsw below the
   * new limit, ...) is retried after the others */
  for (int pass = 0; r >= 0 && pass < 2; pass++) {
    bool deferred = false;
    for (size_t i = 0; r >= 0 && i < plan.n; i++) {
      if (s[i].applied) continue;
      _cleanup_error_ bivy_error_t e = NULL;
      int wr = is_memory_limit(&plan.w[i]) ? write_memory(cg, &plan.w[i], o, &e) : bivy_cg_write_one(cg, &plan.w[i], &e);
      if (wr < 0 && e && e->status == EINVAL && pass == 0) {
        deferred = true;
        continue;
      }
      if (wr < 0) {
        r = wr;
        bivy_error_release(err);
        *err = e;
        e = NULL;
        break;
      }
      s[i].applied = true;
    }
    if (!deferred) break;
  }
  if (r < 0) {
    for (size_t i = plan.n; i-- > 0;)
      if (s[i].applied) restore_one(cg, &plan.w[i], &s[i]);
    for (size_t i = 0; i < plan.n; i++) /* a half-applied write: restore it too */
      if (!s[i].applied && s[i].old) restore_one(cg, &plan.w[i], &s[i]);
  }
  for (size_t i = 0; i < plan.n; i++) free(s[i].old);
  free(s);
  bivy_cg_plan_clear(&plan);
  return r;
}

int bivy_cgroup_limits(struct bivy_cgroup *cg, json_t **out, bivy_error_t *err) {
  static const struct {
    enum bivy_ctrl c;
    const char *v2, *v1;
  } files[] = {
      {CG_MEMORY, "memory.max", "memory.limit_in_bytes"},
      {CG_MEMORY, "memory.high", NULL},
      {CG_MEMORY, "memory.low", "memory.soft_limit_in_bytes"},
      {CG_MEMORY, "memory.swap.max", "memory.memsw.limit_in_bytes"},
      {CG_CPU, "cpu.max", "cpu.cfs_quota_us"},
      {CG_CPU, NULL, "cpu.cfs_period_us"},
      {CG_CPU, "cpu.weight", "cpu.shares"},
      {CG_CPU, "cpu.idle", "cpu.idle"},
      {CG_CPUSET, "cpuset.cpus", "cpuset.cpus"},
      {CG_CPUSET, "cpuset.mems", "cpuset.mems"},
      {CG_PIDS, "pids.max", "pids.max"},
      {CG_IO, "io.max", "blkio.throttle.read_bps_device"},
      {CG_IO, NULL, "blkio.throttle.write_bps_device"},
      {CG_IO, "io.bfq.weight", "blkio.bfq.weight"},
      {CG_IO, "io.weight", "blkio.weight"},
  };
  json_t *o = json_object();
  if (o == NULL) return bivy_error(err, ENOMEM, "limits");
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    int fd = cg_ctrl_fd(cg, files[i].c);
    const char *f = cg_ctrl_v2(cg, files[i].c) ? files[i].v2 : files[i].v1;
    if (fd < 0 || f == NULL) continue;
    _cleanup_free_ char *v = NULL;
    _cleanup_error_ bivy_error_t e = NULL;
    if (bivy_cg_read(fd, f, &v, &e) < 0 || *v == '\0') continue;
    for (char *p = v; *p; p++)
      if (*p == '\n') *p = ';';
    json_object_set_new(o, f, json_string(v));
  }
  *out = o;
  return 0;
}

void bivy_resources_merge(json_t *dst, json_t *src) {
  const char *k;
  json_t *v;
  json_object_foreach(src, k, v) {
    json_t *d = json_object_get(dst, k);
    if (json_is_object(d) && json_is_object(v)) bivy_resources_merge(d, v);
    else json_object_set(dst, k, v);
  }
}

void bivy_cgroup_record_resources(json_t *state, json_t *applied) {
  json_t *old = json_object_get(state, "resources");
  if (!json_is_object(old)) {
    old = json_object();
    json_object_set_new(state, "resources", old);
  }
  bivy_resources_merge(old, applied);
}
