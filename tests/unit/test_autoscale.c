/* Autoscale policy (tools/bivyd/policy/scaling-policy.c): parsing, validation, formatting and the pure
 * grow/shrink/budget decisions bivyd's autoscaler applies. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "tools/bivyd/policy/scaling-policy.h"
#include "runtime/cleanup.h"
#include "tools/bivyd/policy/instance-policy.h"

#define M (1024ull * 1024)

static void parse_ok(const char *text, const char *want_json, const char *want_text) {
  json_t *j = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_as_parse(text, &j, &err), 0, "%s: %s", text, err ? err->msg : "");
  _cleanup_json_ json_t *jj = j;
  _cleanup_free_ char *dump = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_str_eq(dump, want_json);
  struct bivy_as_policy p;
  cr_assert_eq(bivy_as_check(j, "spec.autoscale", &p, &err), 0);
  char buf[128];
  bivy_as_format(&p, buf, sizeof buf);
  cr_assert_str_eq(buf, want_text);
}

static void parse_err(const char *text, const char *msg) {
  json_t *j = (json_t *)0x1;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_lt(bivy_as_parse(text, &j, &err), 0, "%s accepted", text);
  cr_assert_null(j);
  cr_assert_str_eq(err->msg, msg);
}

Test(autoscale_policy, parse_and_format) {
  parse_ok("memory=64M:512M", "{\"memory\":{\"max\":536870912,\"min\":67108864}}", "memory=64M:512M,quiet=30s");
  parse_ok("cpus=0.2:2,quiet=5s", "{\"cpus\":{\"max\":2.0,\"min\":0.20000000000000001},\"quiet_ms\":5000}",
           "cpus=0.2:2,quiet=5s");
  parse_ok("memory=100m:1g,cpus=1:1", "{\"cpus\":{\"max\":1.0,\"min\":1.0},\"memory\":{\"max\":1073741824,\"min\":104857600}}",
           "memory=100M:1G,cpus=1:1,quiet=30s");
}

Test(autoscale_policy, bad_policies_name_the_item) {
  parse_err("", "empty policy (expected e.g. memory=64M:512M,cpus=0.2:2)");
  parse_err("memory=512M:64M", "memory: min 512M is above max 64M");
  parse_err("cpus=3:2", "cpus: min 3 is above max 2");
  parse_err("disk=1:2", "unknown resource \"disk\" (memory, cpus, quiet)");
  parse_err("memory=-5M:1G", "memory: min \"-5M\" is not a size (e.g. 64M)");
  parse_err("cpus=-1:2", "cpus: bounds must be within 0.01-4096 (got -1:2)");
  parse_err("memory=64M", "memory: \"64M\" is not MIN:MAX");
  parse_err("memory=1k:64M", "memory: min must be at least 4M");
  parse_err("memory=64M:1G,memory=64M:2G", "memory: given twice");
  parse_err("quiet=10ms,memory=64M:1G", "quiet: must be 1s-24h");
  parse_err("quiet=5s", "autoscale: names no resource (memory, cpus)");
  parse_err("memory", "\"memory\": expected RESOURCE=MIN:MAX (memory, cpus) or quiet=DURATION");
}

Test(autoscale_policy, spec_check_starts_at_min_and_checks_limits) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_json_ json_t *s = json_pack("{s:s, s:[s], s:{s:{s:I, s:I}, s:{s:f, s:f}}}", "rootfs", "/r", "args", "true",
                                       "autoscale", "memory", "min", (json_int_t)(64 * M), "max", (json_int_t)(512 * M),
                                       "cpus", "min", 0.5, "max", 2.0);
  cr_assert_eq(bivy_sv_spec_check(s, &err), 0, "%s", err ? err->msg : "");
  json_t *l = json_object_get(s, "limits");
  cr_assert_eq(json_integer_value(json_object_get(l, "memory")), (json_int_t)(64 * M));
  cr_assert_float_eq(json_number_value(json_object_get(l, "cpus")), 0.5, 1e-9);
  json_object_set_new(l, "memory", json_integer((json_int_t)(1024 * M)));
  cr_assert_lt(bivy_sv_spec_check(s, &err), 0);
  cr_assert_str_eq(err->msg, "spec.limits.memory: 1073741824 bytes is outside the autoscale range");
  _cleanup_json_ json_t *bad = json_pack("{s:s, s:[s], s:{s:{s:s}}}", "rootfs", "/r", "args", "true", "autoscale", "memory", "min", "x");
  cr_assert_lt(bivy_sv_spec_check(bad, &err), 0);
  cr_assert_str_eq(err->msg, "spec.autoscale.memory: must be {\"min\": BYTES, \"max\": BYTES}");
}

static struct bivy_as_policy pol(void) {
  return (struct bivy_as_policy){.mem = true, .cpu = true, .mem_min = 64 * M, .mem_max = 512 * M, .cpu_min = 0.2, .cpu_max = 2,
                                 .quiet_ms = 30000};
}

Test(autoscale_decide, memory_grows_ahead_and_stops_at_max) {
  struct bivy_as_policy p = pol();
  cr_assert_eq(bivy_as_mem_warn(100 * M, &p), 100 * M / 100 * 80);
  cr_assert_eq(bivy_as_mem_warn(512 * M, &p), UINT64_MAX, "no line at max");
  cr_assert_eq(bivy_as_mem_grow(100 * M, 70 * M, false, &p), 0, "below 80%%: keep");
  cr_assert_eq(bivy_as_mem_grow(100 * M, 81 * M, false, &p), 150 * M, "x1.5");
  cr_assert_eq(bivy_as_mem_grow(100 * M, 99 * M, false, &p), 150 * M, "MiB-rounded");
  cr_assert_eq(bivy_as_mem_grow(10 * M + 1, 9 * M, false, &p), 16 * M, "rounded up to whole MiB");
  cr_assert_eq(bivy_as_mem_grow(100 * M, 60 * M, true, &p), 150 * M, "pressure with usage above half");
  cr_assert_eq(bivy_as_mem_grow(100 * M, 40 * M, true, &p), 0, "pressure alone at low usage: keep");
  cr_assert_eq(bivy_as_mem_grow(400 * M, 390 * M, false, &p), 512 * M, "capped at max");
  cr_assert_eq(bivy_as_mem_grow(512 * M, 510 * M, false, &p), 0, "at max");
}

Test(autoscale_decide, memory_shrinks_with_headroom_and_hysteresis) {
  struct bivy_as_policy p = pol();
  cr_assert_eq(bivy_as_mem_shrink(400 * M, 100 * M, &p), 125 * M);
  cr_assert_eq(bivy_as_mem_shrink(400 * M, 10 * M, &p), 64 * M, "never below min");
  cr_assert_eq(bivy_as_mem_shrink(130 * M, 100 * M, &p), 0, "saves under 10%%: keep");
  cr_assert_eq(bivy_as_mem_shrink(64 * M, 1 * M, &p), 0, "already at min");
  cr_assert_eq(bivy_as_mem_shrink(66 * M, 1 * M, &p), 64 * M, "back to min even when it saves under 10%%");
}

Test(autoscale_decide, cpu_grow_shrink) {
  struct bivy_as_policy p = pol();
  cr_assert_float_eq(bivy_as_cpu_grow(0.2, &p), 0.3, 1e-9, "+0.1 at least");
  cr_assert_float_eq(bivy_as_cpu_grow(1, &p), 1.5, 1e-9);
  cr_assert_float_eq(bivy_as_cpu_grow(1.8, &p), 2, 1e-9, "capped");
  cr_assert_float_eq(bivy_as_cpu_grow(2, &p), 0, 1e-9, "at max");
  cr_assert_float_eq(bivy_as_cpu_shrink(2, 0.0, &p), 0.2, 1e-9, "idle: min");
  cr_assert_float_eq(bivy_as_cpu_shrink(2, 1.0, &p), 1.3, 1e-9, "used x1.25 + 0.05");
  cr_assert_float_eq(bivy_as_cpu_shrink(1.3, 1.0, &p), 0, 1e-9, "hysteresis");
  cr_assert_float_eq(bivy_as_cpu_shrink(0.22, 0.01, &p), 0.2, 1e-9, "back to min even when it saves under 10%%");
  cr_assert_float_eq(bivy_as_cpu_shrink(0.2, 0.0, &p), 0, 1e-9, "already at min");
}

Test(autoscale_decide, budget_clip) {
  cr_assert_eq(bivy_as_budget_clip(100, 150, 200), 150, "fits");
  cr_assert_eq(bivy_as_budget_clip(100, 150, 120), 120, "part of it");
  cr_assert_eq(bivy_as_budget_clip(100, 150, 100), 0, "nothing left");
  cr_assert_eq(bivy_as_budget_clip(100, 150, 50), 0, "over budget already");
}
