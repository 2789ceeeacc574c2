/* bivyd layer 0 (policy): autoscale policy: parsing, validation and the grow/shrink decisions (see scaling-policy.h). */
#include "tools/bivyd/policy/scaling-policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"

#define MIB (1024ull * 1024)
#define MIN_MEMORY (4 * MIB)

static int range_pair(const char *item, const char *val, char **lo, char **hi, bivy_error_t *err) {
  const char *colon = strchr(val, ':');
  if (colon == NULL || colon == val || colon[1] == '\0' || strchr(colon + 1, ':'))
    return bivy_error(err, 0, "%s: \"%s\" is not MIN:MAX", item, val);
  *lo = strndup(val, (size_t)(colon - val));
  *hi = strdup(colon + 1);
  if (*lo == NULL || *hi == NULL) return bivy_error(err, ENOMEM, "%s", item);
  return 0;
}

int bivy_as_parse(const char *text, json_t **out, bivy_error_t *err) {
  *out = NULL;
  if (text == NULL || *text == '\0')
    return bivy_error(err, 0, "empty policy (expected e.g. memory=64M:512M,cpus=0.2:2)");
  _cleanup_json_ json_t *j = json_object();
  _cleanup_free_ char *copy = strdup(text);
  if (j == NULL || copy == NULL) return bivy_error(err, ENOMEM, "autoscale policy");
  char *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(item, '=');
    if (eq == NULL) return bivy_error(err, 0, "\"%s\": expected RESOURCE=MIN:MAX (memory, cpus) or quiet=DURATION", item);
    *eq = '\0';
    const char *key = item, *val = eq + 1;
    if (json_object_get(j, strcmp(key, "quiet") == 0 ? "quiet_ms" : key))
      return bivy_error(err, 0, "%s: given twice", key);
    if (strcmp(key, "memory") == 0) {
      _cleanup_free_ char *lo = NULL, *hi = NULL;
      int64_t a, b;
      int r = range_pair(key, val, &lo, &hi, err);
      if (r < 0) return r;
      if (bivy_parse_size(lo, &a) < 0) return bivy_error(err, 0, "memory: min \"%s\" is not a size (e.g. 64M)", lo);
      if (bivy_parse_size(hi, &b) < 0) return bivy_error(err, 0, "memory: max \"%s\" is not a size (e.g. 512M)", hi);
      json_object_set_new(j, "memory", json_pack("{s:I, s:I}", "min", (json_int_t)a, "max", (json_int_t)b));
    } else if (strcmp(key, "cpus") == 0) {
      _cleanup_free_ char *lo = NULL, *hi = NULL;
      int r = range_pair(key, val, &lo, &hi, err);
      if (r < 0) return r;
      char *end;
      errno = 0;
      double a = strtod(lo, &end);
      if (errno || *end || !isfinite(a)) return bivy_error(err, 0, "cpus: min \"%s\" is not a number of CPUs", lo);
      errno = 0;
      double b = strtod(hi, &end);
      if (errno || *end || !isfinite(b)) return bivy_error(err, 0, "cpus: max \"%s\" is not a number of CPUs", hi);
      json_object_set_new(j, "cpus", json_pack("{s:f, s:f}", "min", a, "max", b));
    } else if (strcmp(key, "quiet") == 0) {
      uint64_t ms;
      if (bivy_parse_duration(val, &ms) < 0)
        return bivy_error(err, 0, "quiet: \"%s\" is not a duration (e.g. 30s)", val);
      json_object_set_new(j, "quiet_ms", json_integer((json_int_t)ms));
    } else {
      return bivy_error(err, 0, "unknown resource \"%s\" (memory, cpus, quiet)", key);
    }
  }
  /* same checks as a spec (names the item the way the user wrote it) */
  struct bivy_as_policy p;
  int r = bivy_as_check(j, "", &p, err);
  if (r < 0) return r;
  *out = steal_pointer(&j);
  return 0;
}

static int mem_range(json_t *m, const char *where, struct bivy_as_policy *p, bivy_error_t *err) {
  json_t *lo = json_object_get(m, "min"), *hi = json_object_get(m, "max");
  if (!json_is_object(m) || !json_is_integer(lo) || !json_is_integer(hi) || json_object_size(m) != 2)
    return bivy_error(err, 0, "%smemory: must be {\"min\": BYTES, \"max\": BYTES}", where);
  if (json_integer_value(lo) < (json_int_t)MIN_MEMORY)
    return bivy_error(err, 0, "%smemory: min must be at least 4M", where);
  char a[32], b[32];
  bivy_format_size((uint64_t)json_integer_value(lo), a, sizeof a);
  bivy_format_size((uint64_t)json_integer_value(hi), b, sizeof b);
  if (json_integer_value(lo) > json_integer_value(hi))
    return bivy_error(err, 0, "%smemory: min %s is above max %s", where, a, b);
  p->mem = true;
  p->mem_min = (uint64_t)json_integer_value(lo);
  p->mem_max = (uint64_t)json_integer_value(hi);
  return 0;
}

static int cpu_range(json_t *c, const char *where, struct bivy_as_policy *p, bivy_error_t *err) {
  json_t *lo = json_object_get(c, "min"), *hi = json_object_get(c, "max");
  if (!json_is_object(c) || !json_is_number(lo) || !json_is_number(hi) || json_object_size(c) != 2)
    return bivy_error(err, 0, "%scpus: must be {\"min\": CPUS, \"max\": CPUS}", where);
  double a = json_number_value(lo), b = json_number_value(hi);
  if (a < 0.01 || b > 4096) return bivy_error(err, 0, "%scpus: bounds must be within 0.01-4096 (got %g:%g)", where, a, b);
  if (a > b) return bivy_error(err, 0, "%scpus: min %g is above max %g", where, a, b);
  p->cpu = true;
  p->cpu_min = a;
  p->cpu_max = b;
  return 0;
}

int bivy_as_check(json_t *j, const char *where, struct bivy_as_policy *p, bivy_error_t *err) {
  *p = (struct bivy_as_policy){.quiet_ms = BIVY_AS_DEFAULT_QUIET_MS};
  const char *sep = *where ? "." : "";
  char w[128];
  snprintf(w, sizeof w, "%s%s", where, sep);
  if (!json_is_object(j)) return bivy_error(err, 0, "%s: must be an object", *where ? where : "autoscale");
  const char *k;
  json_t *v;
  int r;
  json_object_foreach(j, k, v) {
    if (strcmp(k, "memory") == 0) r = mem_range(v, w, p, err);
    else if (strcmp(k, "cpus") == 0) r = cpu_range(v, w, p, err);
    else if (strcmp(k, "quiet_ms") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < BIVY_AS_MIN_QUIET_MS || json_integer_value(v) > 86400000)
        return bivy_error(err, 0, "%squiet: must be 1s-24h", w);
      p->quiet_ms = (uint64_t)json_integer_value(v);
      r = 0;
    } else
      return bivy_error(err, 0, "%s%s: unknown resource (memory, cpus, quiet)", w, k);
    if (r < 0) return r;
  }
  if (!p->mem && !p->cpu) return bivy_error(err, 0, "%s: names no resource (memory, cpus)", *where ? where : "autoscale");
  return 0;
}

void bivy_as_format(const struct bivy_as_policy *p, char *buf, size_t len) {
  char a[32], b[32];
  size_t n = 0;
  buf[0] = '\0';
  if (p->mem) {
    bivy_format_size(p->mem_min, a, sizeof a);
    bivy_format_size(p->mem_max, b, sizeof b);
    n += (size_t)snprintf(buf + n, len - n, "memory=%s:%s", a, b);
  }
  if (p->cpu && n < len) n += (size_t)snprintf(buf + n, len - n, "%scpus=%g:%g", n ? "," : "", p->cpu_min, p->cpu_max);
  if (n < len) snprintf(buf + n, len - n, "%squiet=%gs", n ? "," : "", (double)p->quiet_ms / 1000);
}

static uint64_t round_up_mib(double b) {
  uint64_t v = (uint64_t)ceil(b / (double)MIB);
  return v * MIB;
}

static double round_up_centi(double c) { return ceil(c * 100 - 1e-9) / 100; }

uint64_t bivy_as_mem_warn(uint64_t limit, const struct bivy_as_policy *p) {
  if (limit >= p->mem_max) return UINT64_MAX;
  return limit / 100 * BIVY_AS_WARN_PCT;
}

uint64_t bivy_as_mem_grow(uint64_t limit, uint64_t usage, bool pressure, const struct bivy_as_policy *p) {
  if (!p->mem || limit >= p->mem_max) return 0;
  bool need = usage >= limit / 100 * BIVY_AS_WARN_PCT || (pressure && usage >= limit / 2);
  if (!need) return 0;
  double want = fmax((double)limit * BIVY_AS_GROW, (double)usage * BIVY_AS_GROW);
  uint64_t t = round_up_mib(want);
  if (t > p->mem_max) t = p->mem_max;
  return t > limit ? t : 0;
}

uint64_t bivy_as_mem_shrink(uint64_t limit, uint64_t working_set, const struct bivy_as_policy *p) {
  if (!p->mem) return 0;
  uint64_t t = round_up_mib((double)working_set * BIVY_AS_HEADROOM);
  if (t < p->mem_min) t = p->mem_min;
  /* hysteresis: only a shrink that saves at least 10 %, or one back to min */
  return t < limit && (t <= limit / 10 * 9 || t == p->mem_min) ? t : 0;
}

double bivy_as_cpu_grow(double cur, const struct bivy_as_policy *p) {
  if (!p->cpu || cur >= p->cpu_max) return 0;
  double t = round_up_centi(fmax(cur * BIVY_AS_GROW, cur + 0.1));
  if (t > p->cpu_max) t = p->cpu_max;
  return t > cur ? t : 0;
}

double bivy_as_cpu_shrink(double cur, double used, const struct bivy_as_policy *p) {
  if (!p->cpu) return 0;
  double t = round_up_centi(used * BIVY_AS_HEADROOM + 0.05);
  if (t < p->cpu_min) t = p->cpu_min;
  bool to_min = t <= p->cpu_min + 1e-9;
  return t < cur - 1e-9 && (t <= cur * 0.9 || to_min) ? t : 0;
}

uint64_t bivy_as_budget_clip(uint64_t cur, uint64_t want, uint64_t avail) {
  if (want <= avail) return want;
  return avail > cur ? avail : 0;
}
