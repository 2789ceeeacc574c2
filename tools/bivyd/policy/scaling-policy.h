/* bivyd layer 0 (policy): automatic vertical scaling (bivyd's tools/bivyd/autoscaler.c): the
 * per-instance bounds, their text form for the CLI, and the decisions as pure functions
 * (unit-tested; no I/O).
 *
 * Text form (`bivy up --autoscale`, `bivy autoscale`):  memory=64M:512M,cpus=0.2:2,quiet=30s
 * Spec form ("autoscale" in an instance spec):
 *   {"memory": {"min": BYTES, "max": BYTES}, "cpus": {"min": N.N, "max": N.N}, "quiet_ms": N}
 *
 * Rules: memory grows ×1.5 (at least to 1.5 × usage) when usage crosses 80 % of the limit, or
 * on memory pressure with usage above half of it; CPU grows ×1.5 (at least +0.1) when the
 * instance is throttled. After `quiet_ms` without a grow or a pressure signal, a limit shrinks
 * to what is used plus 25 % headroom, never below min, and only when that saves at least
 * 10 % or goes back to min (hysteresis); the next shrink waits another quiet window. */
#ifndef BIVYD_SCALING_POLICY_H
#define BIVYD_SCALING_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/error.h"

#define BIVY_AS_GROW 1.5
#define BIVY_AS_WARN_PCT 80
#define BIVY_AS_HEADROOM 1.25
#define BIVY_AS_DEFAULT_QUIET_MS 30000
#define BIVY_AS_MIN_QUIET_MS 1000

struct bivy_as_policy {
  bool mem, cpu;
  uint64_t mem_min, mem_max; /* bytes */
  double cpu_min, cpu_max;   /* CPUs */
  uint64_t quiet_ms;
};

/* "memory=64M:512M,cpus=0.2:2,quiet=30s" -> the spec form. Errors name the item:
 * "memory: min 512M is above max 64M". */
int bivy_as_parse(const char *text, json_t **out, bivy_error_t *err);
/* Validate the spec form (errors under `where`, e.g. "spec.autoscale.memory.min: ..."). */
int bivy_as_check(json_t *j, const char *where, struct bivy_as_policy *p, bivy_error_t *err);
/* Back to the text form, for `ls` and `inspect`. */
void bivy_as_format(const struct bivy_as_policy *p, char *buf, size_t len);

/* Usage that should wake the autoscaler for a memory limit (80 %), UINT64_MAX at max. */
uint64_t bivy_as_mem_warn(uint64_t limit, const struct bivy_as_policy *p);
/* New memory limit, or 0 to keep `limit`. */
uint64_t bivy_as_mem_grow(uint64_t limit, uint64_t usage, bool pressure, const struct bivy_as_policy *p);
uint64_t bivy_as_mem_shrink(uint64_t limit, uint64_t working_set, const struct bivy_as_policy *p);
/* New CPU limit, or 0 to keep `cur`. `used` is the average CPUs used over the quiet window. */
double bivy_as_cpu_grow(double cur, const struct bivy_as_policy *p);
double bivy_as_cpu_shrink(double cur, double used, const struct bivy_as_policy *p);
/* A grow from cur to want under a budget that leaves `avail` for this instance (the budget
 * minus every other instance's limit): want, less when only part fits, 0 when nothing does. */
uint64_t bivy_as_budget_clip(uint64_t cur, uint64_t want, uint64_t avail);

#endif
