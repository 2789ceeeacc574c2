/* linux.resources -> cgroup files, for v2 and v1 names, following what runc and crun
 * document:
 *   memory.limit -> memory.max | memory.limit_in_bytes
 *   memory.reservation -> memory.low | memory.soft_limit_in_bytes
 *   memory.swap (memory+swap) -> memory.swap.max = swap - limit | memory.memsw.limit_in_bytes
 *   cpu.shares -> cpu.weight = 1 + ((shares - 2) * 9999) / 262142 | cpu.shares
 *   cpu.quota/period -> cpu.max "QUOTA PERIOD" | cpu.cfs_quota_us, cpu.cfs_period_us
 *   cpu.cpus/mems -> cpuset.cpus/mems, cpu.idle -> cpu.idle, pids.limit -> pids.max
 *   blockIO.weight -> io.bfq.weight (or io.weight, converted) | blkio.weight (or blkio.bfq.weight)
 *   blockIO.throttle* -> io.max "MAJ:MIN rbps=N" ... | blkio.throttle.*_device
 *   hugepageLimits -> hugetlb.SIZE.max | hugetlb.SIZE.limit_in_bytes
 *   unified -> passed through after validation.
 * Best effort, as in runc: kernel/kernelTCP memory (deprecated), swappiness and
 * disableOOMKiller on v2 (no such knob), useHierarchy. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroups/cgroups-internal.h"
#include "runtime/cleanup.h"

void bivy_cg_plan_clear(struct bivy_cg_plan *p) {
  for (size_t i = 0; i < p->n; i++) {
    free(p->w[i].file);
    free(p->w[i].value);
    free(p->w[i].field);
    free(p->w[i].alt_file);
    free(p->w[i].alt_value);
  }
  free(p->w);
  p->w = NULL;
  p->n = 0;
}

static int add(struct bivy_cg_plan *p, enum bivy_ctrl c, const char *file, const char *value, bool best_effort,
               bivy_error_t *err, const char *fieldfmt, ...) __attribute__((format(printf, 7, 8)));
static int add(struct bivy_cg_plan *p, enum bivy_ctrl c, const char *file, const char *value, bool best_effort,
               bivy_error_t *err, const char *fieldfmt, ...) {
  struct bivy_cg_write *nw = realloc(p->w, (p->n + 1) * sizeof *nw);
  if (nw == NULL) return bivy_error(err, ENOMEM, "resources");
  p->w = nw;
  struct bivy_cg_write *w = &p->w[p->n];
  memset(w, 0, sizeof *w);
  va_list ap;
  va_start(ap, fieldfmt);
  int r = vasprintf(&w->field, fieldfmt, ap);
  va_end(ap);
  w->ctrl = c;
  w->file = strdup(file);
  w->value = strdup(value);
  w->best_effort = best_effort;
  if (r < 0 || w->file == NULL || w->value == NULL) {
    if (r >= 0) free(w->field);
    free(w->file);
    free(w->value);
    return bivy_error(err, ENOMEM, "resources");
  }
  p->n++;
  return 0;
}

static int add_alt(struct bivy_cg_plan *p, const char *file, const char *value) {
  struct bivy_cg_write *w = &p->w[p->n - 1];
  w->alt_file = strdup(file);
  w->alt_value = strdup(value);
  return w->alt_file && w->alt_value ? 0 : -ENOMEM;
}

/* integer member: 1 present, 0 absent (or null), <0 error */
static int get_int(json_t *o, const char *key, const char *where, int64_t *out, bivy_error_t *err) {
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_integer(v)) return bivy_error(err, 0, "%s.%s: must be an integer", where, key);
  *out = json_integer_value(v);
  return 1;
}

static int get_obj(json_t *o, const char *key, const char *where, json_t **out, bivy_error_t *err) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_object(v)) return bivy_error(err, 0, "%s.%s: must be an object", where, key);
  *out = v;
  return 1;
}

#define IS_V2(c) ((v2mask >> (c)) & 1u)

static int tr_memory(json_t *m, uint32_t v2mask, const char *where, struct bivy_cg_plan *p, bivy_error_t *err) {
  int64_t limit = 0, res = 0, swap = 0, v = 0;
  int hl, hr, hs, r;
  bool v2 = IS_V2(CG_MEMORY);
  char buf[32];
  if ((hl = get_int(m, "limit", where, &limit, err)) < 0) return hl;
  if ((hr = get_int(m, "reservation", where, &res, err)) < 0) return hr;
  if ((hs = get_int(m, "swap", where, &swap, err)) < 0) return hs;
  if (hl && limit < -1) return bivy_error(err, 0, "%s.limit: invalid value %" PRId64, where, limit);
  if (hr && res < -1) return bivy_error(err, 0, "%s.reservation: invalid value %" PRId64, where, res);
  if (hs && swap < -1) return bivy_error(err, 0, "%s.swap: invalid value %" PRId64, where, swap);
  if (hl) {
    if (v2 && limit == -1) snprintf(buf, sizeof buf, "max");
    else snprintf(buf, sizeof buf, "%" PRId64, limit);
    if ((r = add(p, CG_MEMORY, v2 ? "memory.max" : "memory.limit_in_bytes", buf, false, err, "%s.limit", where)) < 0)
      return r;
  }
  if (hs) {
    if (v2) {
      /* OCI swap counts memory+swap; v2 limits swap alone */
      if (swap == -1) snprintf(buf, sizeof buf, "max");
      else if (!hl || limit == -1)
        return bivy_error(err, 0, "%s.swap: a swap limit needs a memory limit (%s.limit)", where, where);
      else if (swap < limit)
        return bivy_error(err, 0, "%s.swap: %" PRId64 " is below %s.limit %" PRId64 " (swap counts memory+swap)",
                          where, swap, where, limit);
      else snprintf(buf, sizeof buf, "%" PRId64, swap - limit);
      if ((r = add(p, CG_MEMORY, "memory.swap.max", buf, false, err, "%s.swap", where)) < 0) return r;
    } else {
      if (hl && swap != -1 && limit != -1 && swap < limit)
        return bivy_error(err, 0, "%s.swap: %" PRId64 " is below %s.limit %" PRId64 " (swap counts memory+swap)",
                          where, swap, where, limit);
      snprintf(buf, sizeof buf, "%" PRId64, swap);
      if ((r = add(p, CG_MEMORY, "memory.memsw.limit_in_bytes", buf, false, err, "%s.swap", where)) < 0) return r;
    }
  }
  if (hr) {
    if (v2 && res == -1) snprintf(buf, sizeof buf, "max");
    else snprintf(buf, sizeof buf, "%" PRId64, res);
    if ((r = add(p, CG_MEMORY, v2 ? "memory.low" : "memory.soft_limit_in_bytes", buf, false, err, "%s.reservation",
                 where)) < 0)
      return r;
  }
  if ((r = get_int(m, "swappiness", where, &v, err)) < 0) return r;
  if (r && !v2) {
    if (v < 0 || v > 100) return bivy_error(err, 0, "%s.swappiness: %" PRId64 " is out of range 0-100", where, v);
    snprintf(buf, sizeof buf, "%" PRId64, v);
    if ((r = add(p, CG_MEMORY, "memory.swappiness", buf, false, err, "%s.swappiness", where)) < 0) return r;
  }
  json_t *d = json_object_get(m, "disableOOMKiller");
  if (d && !json_is_boolean(d) && !json_is_null(d))
    return bivy_error(err, 0, "%s.disableOOMKiller: must be a boolean", where);
  if (json_is_true(d) && !v2 &&
      (r = add(p, CG_MEMORY, "memory.oom_control", "1", false, err, "%s.disableOOMKiller", where)) < 0)
    return r;
  return 0;
}

static int tr_cpu(json_t *c, uint32_t v2mask, const char *where, struct bivy_cg_plan *p, bivy_error_t *err) {
  int64_t shares = 0, quota = 0, period = 0, burst = 0, idle = 0, rt = 0;
  int hs, hq, hp, hb, hi, r;
  bool v2 = IS_V2(CG_CPU);
  char buf[64];
  if ((hs = get_int(c, "shares", where, &shares, err)) < 0) return hs;
  if ((hq = get_int(c, "quota", where, &quota, err)) < 0) return hq;
  if ((hp = get_int(c, "period", where, &period, err)) < 0) return hp;
  if ((hb = get_int(c, "burst", where, &burst, err)) < 0) return hb;
  if ((hi = get_int(c, "idle", where, &idle, err)) < 0) return hi;
  if (hs && shares != 0) {
    if (shares < 2 || shares > 262144)
      return bivy_error(err, 0, "%s.shares: %" PRId64 " is out of range 2-262144", where, shares);
    if (v2) snprintf(buf, sizeof buf, "%" PRId64, 1 + ((shares - 2) * 9999) / 262142);
    else snprintf(buf, sizeof buf, "%" PRId64, shares);
    if ((r = add(p, CG_CPU, v2 ? "cpu.weight" : "cpu.shares", buf, false, err, "%s.shares", where)) < 0) return r;
  }
  if (hp && period != 0 && (period < 1000 || period > 1000000))
    return bivy_error(err, 0, "%s.period: %" PRId64 " is out of range 1000-1000000 (microseconds)", where, period);
  if (hq && quota != 0 && quota != -1 && quota < 1000)
    return bivy_error(err, 0, "%s.quota: %" PRId64 " is below 1000 microseconds", where, quota);
  if ((hq && quota != 0) || (hp && period != 0)) {
    if (v2) {
      char q[24];
      if (!hq || quota <= 0) snprintf(q, sizeof q, "max");
      else snprintf(q, sizeof q, "%" PRId64, quota);
      snprintf(buf, sizeof buf, "%s %" PRId64, q, hp && period > 0 ? period : 100000);
      if ((r = add(p, CG_CPU, "cpu.max", buf, false, err, "%s.%s", where, hq ? "quota" : "period")) < 0) return r;
    } else {
      if (hp && period > 0) {
        snprintf(buf, sizeof buf, "%" PRId64, period);
        if ((r = add(p, CG_CPU, "cpu.cfs_period_us", buf, false, err, "%s.period", where)) < 0) return r;
      }
      if (hq && quota != 0) {
        snprintf(buf, sizeof buf, "%" PRId64, quota < 0 ? -1 : quota);
        if ((r = add(p, CG_CPU, "cpu.cfs_quota_us", buf, false, err, "%s.quota", where)) < 0) return r;
      }
    }
  }
  if (hb) {
    if (burst < 0) return bivy_error(err, 0, "%s.burst: %" PRId64 " is negative", where, burst);
    snprintf(buf, sizeof buf, "%" PRId64, burst);
    if ((r = add(p, CG_CPU, v2 ? "cpu.max.burst" : "cpu.cfs_burst_us", buf, false, err, "%s.burst", where)) < 0)
      return r;
  }
  if (hi) {
    if (idle != 0 && idle != 1) return bivy_error(err, 0, "%s.idle: must be 0 or 1", where);
    snprintf(buf, sizeof buf, "%" PRId64, idle);
    if ((r = add(p, CG_CPU, "cpu.idle", buf, false, err, "%s.idle", where)) < 0) return r;
  }
  static const char *const rtk[] = {"realtimePeriod", "realtimeRuntime"};
  static const char *const rtf[] = {"cpu.rt_period_us", "cpu.rt_runtime_us"};
  for (int i = 0; i < 2; i++) {
    if ((r = get_int(c, rtk[i], where, &rt, err)) < 0) return r;
    if (!r || rt == 0) continue;
    if (v2) return bivy_error(err, 0, "%s.%s: real-time scheduling limits are not available on cgroup v2", where, rtk[i]);
    snprintf(buf, sizeof buf, "%" PRId64, rt);
    if ((r = add(p, CG_CPU, rtf[i], buf, false, err, "%s.%s", where, rtk[i])) < 0) return r;
  }
  static const char *const sk[] = {"cpus", "mems"};
  for (int i = 0; i < 2; i++) {
    json_t *s = json_object_get(c, sk[i]);
    if (s == NULL || json_is_null(s)) continue;
    if (!json_is_string(s)) return bivy_error(err, 0, "%s.%s: must be a string", where, sk[i]);
    const char *v = json_string_value(s);
    if (*v == '\0') continue;
    if (strspn(v, "0123456789,-") != strlen(v))
      return bivy_error(err, 0, "%s.%s: \"%s\" is not a list like 0-2,4", where, sk[i], v);
    if ((r = add(p, CG_CPUSET, i ? "cpuset.mems" : "cpuset.cpus", v, false, err, "%s.%s", where, sk[i])) < 0) return r;
  }
  return 0;
}

static int tr_blockio(json_t *b, uint32_t v2mask, const char *where, struct bivy_cg_plan *p, bivy_error_t *err) {
  bool v2 = IS_V2(CG_IO);
  int64_t w = 0;
  int r;
  char buf[64], alt[64];
  if ((r = get_int(b, "weight", where, &w, err)) < 0) return r;
  if (r && w != 0) {
    if (w < 10 || w > 1000) return bivy_error(err, 0, "%s.weight: %" PRId64 " is out of range 10-1000", where, w);
    snprintf(buf, sizeof buf, "%" PRId64, w);
    if (v2) {
      /* BFQ takes the v1 range; io.weight (iocost) the 1-10000 range */
      snprintf(alt, sizeof alt, "default %" PRId64, 1 + (w - 10) * 9999 / 990);
      if ((r = add(p, CG_IO, "io.bfq.weight", buf, false, err, "%s.weight", where)) < 0) return r;
      if (add_alt(p, "io.weight", alt) < 0) return bivy_error(err, ENOMEM, "resources");
    } else {
      if ((r = add(p, CG_IO, "blkio.weight", buf, false, err, "%s.weight", where)) < 0) return r;
      if (add_alt(p, "blkio.bfq.weight", buf) < 0) return bivy_error(err, ENOMEM, "resources");
    }
  }
  if ((r = get_int(b, "leafWeight", where, &w, err)) < 0) return r;
  if (r && w != 0) {
    if (v2) return bivy_error(err, 0, "%s.leafWeight: not available on cgroup v2", where);
    snprintf(buf, sizeof buf, "%" PRId64, w);
    if ((r = add(p, CG_IO, "blkio.leaf_weight", buf, false, err, "%s.leafWeight", where)) < 0) return r;
  }
  struct {
    const char *key, *v1file, *v2key;
  } const lists[] = {{"weightDevice", "blkio.weight_device", NULL},
                     {"throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"},
                     {"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"},
                     {"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"},
                     {"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"}};
  for (size_t li = 0; li < sizeof lists / sizeof lists[0]; li++) {
    json_t *arr = json_object_get(b, lists[li].key);
    if (arr == NULL || json_is_null(arr)) continue;
    if (!json_is_array(arr)) return bivy_error(err, 0, "%s.%s: must be an array", where, lists[li].key);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
      char ew[256];
      snprintf(ew, sizeof ew, "%s.%s[%zu]", where, lists[li].key, i);
      int64_t maj = 0, min = 0, val = 0;
      int a, bb, c;
      if (!json_is_object(e)) return bivy_error(err, 0, "%s: must be an object", ew);
      if ((a = get_int(e, "major", ew, &maj, err)) < 0) return a;
      if ((bb = get_int(e, "minor", ew, &min, err)) < 0) return bb;
      if (!a || !bb || maj < 0 || min < 0) return bivy_error(err, 0, "%s: needs major and minor", ew);
      if ((c = get_int(e, lists[li].v2key ? "rate" : "weight", ew, &val, err)) < 0) return c;
      if (!c || val < 0) return bivy_error(err, 0, "%s: needs a non-negative %s", ew, lists[li].v2key ? "rate" : "weight");
      if (v2 && lists[li].v2key)
        snprintf(buf, sizeof buf, "%" PRId64 ":%" PRId64 " %s=%" PRId64, maj, min, lists[li].v2key, val);
      else snprintf(buf, sizeof buf, "%" PRId64 ":%" PRId64 " %" PRId64, maj, min, val);
      const char *file = !v2 ? lists[li].v1file : lists[li].v2key ? "io.max" : "io.bfq.weight";
      if ((r = add(p, CG_IO, file, buf, false, err, "%s", ew)) < 0) return r;
      if (v2 && !lists[li].v2key) {
        snprintf(alt, sizeof alt, "%" PRId64 ":%" PRId64 " %" PRId64, maj, min, 1 + (val - 10) * 9999 / 990);
        if (add_alt(p, "io.weight", alt) < 0) return bivy_error(err, ENOMEM, "resources");
      }
    }
  }
  return 0;
}

static int tr_hugetlb(json_t *arr, uint32_t v2mask, const char *where, struct bivy_cg_plan *p, bivy_error_t *err) {
  if (!json_is_array(arr)) return bivy_error(err, 0, "%s: must be an array", where);
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    json_t *ps = json_object_get(e, "pageSize");
    int64_t limit = 0;
    char ew[256], file[96], buf[32];
    snprintf(ew, sizeof ew, "%s[%zu]", where, i);
    if (!json_is_string(ps)) return bivy_error(err, 0, "%s.pageSize: must be a string like \"2MB\"", ew);
    const char *s = json_string_value(ps);
    size_t nd = strspn(s, "0123456789");
    if (nd == 0 || (strcmp(s + nd, "KB") && strcmp(s + nd, "MB") && strcmp(s + nd, "GB")))
      return bivy_error(err, 0, "%s.pageSize: \"%s\" is not a size like 2MB or 1GB", ew, s);
    int r = get_int(e, "limit", ew, &limit, err);
    if (r < 0) return r;
    if (!r || limit < 0) return bivy_error(err, 0, "%s.limit: needs a non-negative integer", ew);
    snprintf(file, sizeof file, IS_V2(CG_HUGETLB) ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", s);
    snprintf(buf, sizeof buf, "%" PRId64, limit);
    if ((r = add(p, CG_HUGETLB, file, buf, false, err, "%s", ew)) < 0) return r;
  }
  return 0;
}

static int tr_unified(json_t *u, const char *where, struct bivy_cg_plan *p, bivy_error_t *err) {
  static const struct {
    const char *prefix;
    enum bivy_ctrl c;
  } map[] = {{"cpu.", CG_CPU},   {"cpuset.", CG_CPUSET}, {"memory.", CG_MEMORY},
             {"io.", CG_IO},     {"pids.", CG_PIDS},     {"hugetlb.", CG_HUGETLB}};
  if (!json_is_object(u)) return bivy_error(err, 0, "%s: must be an object", where);
  const char *k;
  json_t *v;
  json_object_foreach(u, k, v) {
    /* the key is a file name in the container's cgroup: nothing that walks elsewhere */
    if (*k == '\0' || strchr(k, '/') || strstr(k, "..") || k[0] == '.')
      return bivy_error(err, 0, "%s.\"%s\": not a cgroup file name", where, k);
    if (!json_is_string(v)) return bivy_error(err, 0, "%s.\"%s\": value must be a string", where, k);
    int c = -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
      if (strncmp(k, map[i].prefix, strlen(map[i].prefix)) == 0 && k[strlen(map[i].prefix)]) c = (int)map[i].c;
    if (c < 0)
      return bivy_error(err, 0, "%s.\"%s\": not a file of a controller bivy manages (cpu, cpuset, memory, io, pids, hugetlb)",
                        where, k);
    int r = add(p, (enum bivy_ctrl)c, k, json_string_value(v), false, err, "%s.\"%s\"", where, k);
    if (r < 0) return r;
    p->w[p->n - 1].unified = true;
  }
  return 0;
}

int bivy_cg_translate(json_t *res, uint32_t v2mask, const char *where, struct bivy_cg_plan *p, bivy_error_t *err) {
  if (res == NULL || json_is_null(res)) return 0;
  if (!json_is_object(res)) return bivy_error(err, 0, "%s: must be an object", where);
  char w[128];
  json_t *o;
  int r;
  static const char *const known[] = {"memory", "cpu", "pids", "blockIO", "hugepageLimits", "unified", "devices",
                                      "network", "rdma"};
  const char *k;
  json_t *v;
  json_object_foreach(res, k, v) {
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= strcmp(k, known[i]) == 0;
    if (!ok) return bivy_error(err, 0, "%s.%s: unknown resource", where, k);
  }
  snprintf(w, sizeof w, "%s.memory", where);
  if ((r = get_obj(res, "memory", where, &o, err)) < 0 || (r && (r = tr_memory(o, v2mask, w, p, err)) < 0)) return r;
  snprintf(w, sizeof w, "%s.cpu", where);
  if ((r = get_obj(res, "cpu", where, &o, err)) < 0 || (r && (r = tr_cpu(o, v2mask, w, p, err)) < 0)) return r;
  snprintf(w, sizeof w, "%s.pids", where);
  if ((r = get_obj(res, "pids", where, &o, err)) < 0) return r;
  if (r) {
    int64_t limit = 0;
    if ((r = get_int(o, "limit", w, &limit, err)) < 0) return r;
    if (r) {
      char buf[32];
      /* 0 and -1: unlimited (crun and runc agree) */
      if (limit <= 0) snprintf(buf, sizeof buf, "max");
      else snprintf(buf, sizeof buf, "%" PRId64, limit);
      if ((r = add(p, CG_PIDS, "pids.max", buf, false, err, "%s.limit", w)) < 0) return r;
    }
  }
  snprintf(w, sizeof w, "%s.blockIO", where);
  if ((r = get_obj(res, "blockIO", where, &o, err)) < 0 || (r && (r = tr_blockio(o, v2mask, w, p, err)) < 0)) return r;
  snprintf(w, sizeof w, "%s.hugepageLimits", where);
  if ((o = json_object_get(res, "hugepageLimits")) && !json_is_null(o) && (r = tr_hugetlb(o, v2mask, w, p, err)) < 0)
    return r;
  snprintf(w, sizeof w, "%s.unified", where);
  if ((o = json_object_get(res, "unified")) && !json_is_null(o) && (r = tr_unified(o, w, p, err)) < 0) return r;
  static const char *const unsupported[] = {"network", "rdma"};
  for (size_t i = 0; i < 2; i++) {
    o = json_object_get(res, unsupported[i]);
    if (o && !json_is_null(o) && json_object_size(o) > 0)
      return bivy_error(err, 0, "%s.%s: not supported by bivy (no %s controller handling)", where, unsupported[i],
                        unsupported[i]);
  }
  return 0;
}

uint32_t bivy_cg_resources_needs(json_t *res) {
  uint32_t m = 0;
  if (!json_is_object(res)) return 0;
  json_t *c = json_object_get(res, "cpu");
  if (json_object_get(res, "memory")) m |= 1u << CG_MEMORY;
  if (json_object_get(c, "cpus") || json_object_get(c, "mems")) m |= 1u << CG_CPUSET;
  if (json_object_get(c, "shares") || json_object_get(c, "quota") || json_object_get(c, "period") ||
      json_object_get(c, "idle") || json_object_get(c, "burst"))
    m |= 1u << CG_CPU;
  if (json_object_get(res, "pids")) m |= 1u << CG_PIDS;
  if (json_object_get(res, "blockIO")) m |= 1u << CG_IO;
  if (json_array_size(json_object_get(res, "hugepageLimits")) > 0) m |= 1u << CG_HUGETLB;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(res, "unified"), k, v) {
    if (strncmp(k, "memory.", 7) == 0) m |= 1u << CG_MEMORY;
    else if (strncmp(k, "cpuset.", 7) == 0) m |= 1u << CG_CPUSET;
    else if (strncmp(k, "cpu.", 4) == 0) m |= 1u << CG_CPU;
    else if (strncmp(k, "pids.", 5) == 0) m |= 1u << CG_PIDS;
    else if (strncmp(k, "io.", 3) == 0) m |= 1u << CG_IO;
    else if (strncmp(k, "hugetlb.", 8) == 0) m |= 1u << CG_HUGETLB;
  }
  return m;
}

uint32_t bivy_cg_v2mask(const struct bivy_cgroup *cg) {
  uint32_t m = 0;
  for (int c = 0; c < CG_CTRL_COUNT; c++)
    if (cg_ctrl_v2(cg, (enum bivy_ctrl)c)) m |= 1u << c;
    else if (cg->ctrl[c] < 0 && cg->mode == BIVY_CGROUP_UNIFIED) m |= 1u << c;
  return m;
}

int bivy_cg_write_one(struct bivy_cgroup *cg, const struct bivy_cg_write *w, bivy_error_t *err) {
  int fd = cg_ctrl_fd(cg, w->ctrl);
  if (fd < 0) {
    if (w->best_effort) return 0;
    return bivy_error(err, 0, "%s: the %s controller is not available for this cgroup", w->field,
                      bivy_cg_ctrl_name(w->ctrl, cg_ctrl_v2(cg, w->ctrl) || cg->mode == BIVY_CGROUP_UNIFIED));
  }
  if (w->unified && !cg_ctrl_v2(cg, w->ctrl))
    return bivy_error(err, 0, "%s: the %s controller is on cgroup v1 on this host (%s mode); unified keys need v2",
                      w->field, bivy_cg_ctrl_name(w->ctrl, true), bivy_cgroup_mode_name(cg->mode));
  _cleanup_error_ bivy_error_t e = NULL;
  int r = bivy_cg_write(fd, w->file, w->value, &e);
  if (r == -ENOENT && w->alt_file) r = bivy_cg_write(fd, w->alt_file, w->alt_value, &e);
  if (r == -ENOENT) {
    if (w->best_effort) return 0;
    const char *why = strstr(w->file, "memsw") || strstr(w->file, "swap") ? " (swap accounting disabled)" : "";
    return bivy_error(err, 0, "%s: %s not available%s", w->field, w->file, why);
  }
  if (r < 0) return bivy_error(err, -r, "%s: write %s \"%s\"", w->field, w->file, w->value);
  return 0;
}

int bivy_cg_apply_resources(struct bivy_cgroup *cg, json_t *resources, bivy_error_t *err) {
  if (resources == NULL || json_is_null(resources)) return 0;
  struct bivy_cg_plan plan = {0};
  int r = bivy_cg_translate(resources, bivy_cg_v2mask(cg), "linux.resources", &plan, err);
  for (size_t i = 0; r >= 0 && i < plan.n; i++) r = bivy_cg_write_one(cg, &plan.w[i], err);
  bivy_cg_plan_clear(&plan);
  if (r < 0) return r;
  json_t *dev = json_object_get(resources, "devices");
  if (dev && !json_is_null(dev)) {
    if (!json_is_array(dev)) return bivy_error(err, 0, "linux.resources.devices: must be an array");
    if (cg_ctrl_fd(cg, CG_DEVICES) >= 0 && !cg_ctrl_v2(cg, CG_DEVICES)) r = bivy_cg_devices_v1(cg, dev, err);
    else r = bivy_cg_devices_v2(cg, dev, err);
  }
  return r;
}
