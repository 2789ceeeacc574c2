/* bivyd's policy code (tools/bivyd/policy/instance-policy.c): restart policies, back-off, durations, specs,
 * limits, and the config generated for an instance. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"
#include "tools/bivyd/policy/instance-policy.h"

Test(bivyd_policy, restart_parse) {
  struct bivy_sv_restart r;
  char buf[32];
  cr_assert_eq(bivy_sv_restart_parse("no", &r), 0);
  cr_assert_eq(r.policy, BIVY_SV_NO);
  cr_assert_eq(bivy_sv_restart_parse("always", &r), 0);
  cr_assert_eq(r.policy, BIVY_SV_ALWAYS);
  cr_assert_eq(bivy_sv_restart_parse("unless-stopped", &r), 0);
  cr_assert_eq(r.policy, BIVY_SV_UNLESS_STOPPED);
  cr_assert_eq(bivy_sv_restart_parse("on-failure", &r), 0);
  cr_assert_eq(r.policy, BIVY_SV_ON_FAILURE);
  cr_assert_eq(r.max, 0);
  cr_assert_eq(bivy_sv_restart_parse("on-failure:3", &r), 0);
  cr_assert_eq(r.max, 3);
  cr_assert_str_eq(bivy_sv_restart_str(&r, buf, sizeof buf), "on-failure:3");
  cr_assert_eq(bivy_sv_restart_parse("on-failure:", &r), -EINVAL);
  cr_assert_eq(bivy_sv_restart_parse("on-failure:-1", &r), -EINVAL);
  cr_assert_eq(bivy_sv_restart_parse("on-failure:x", &r), -EINVAL);
  cr_assert_eq(bivy_sv_restart_parse("sometimes", &r), -EINVAL);
  cr_assert_eq(bivy_sv_restart_parse("", &r), -EINVAL);
  cr_assert_eq(bivy_sv_restart_parse(NULL, &r), -EINVAL);
}

Test(bivyd_policy, should_restart) {
  struct bivy_sv_restart no = {BIVY_SV_NO, 0}, always = {BIVY_SV_ALWAYS, 0}, us = {BIVY_SV_UNLESS_STOPPED, 0},
                         of = {BIVY_SV_ON_FAILURE, 0}, of3 = {BIVY_SV_ON_FAILURE, 3};
  cr_assert(!bivy_sv_should_restart(&no, true, 0));
  cr_assert(bivy_sv_should_restart(&always, false, 100));
  cr_assert(bivy_sv_should_restart(&us, false, 0));
  cr_assert(!bivy_sv_should_restart(&of, false, 0), "a clean exit is not a failure");
  cr_assert(bivy_sv_should_restart(&of, true, 1000));
  cr_assert(bivy_sv_should_restart(&of3, true, 0));
  cr_assert(bivy_sv_should_restart(&of3, true, 2));
  cr_assert(!bivy_sv_should_restart(&of3, true, 3), "on-failure:3 stops after three restarts");
}

Test(bivyd_policy, backoff_doubles_to_cap_and_resets) {
  uint64_t next = 0;
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 0, "the first restart is immediate");
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 100);
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 200);
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 400);
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 800);
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 1000, "capped");
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 1000);
  cr_assert_eq(bivy_sv_backoff(&next, BIVY_SV_BACKOFF_RESET_MS, 1000), 0, "ran 10 s: immediate again");
  cr_assert_eq(bivy_sv_backoff(&next, 5, 1000), 100);
  next = 0;
  cr_assert_eq(bivy_sv_backoff(&next, 0, 150), 0);
  cr_assert_eq(bivy_sv_backoff(&next, 0, 150), 100);
  cr_assert_eq(bivy_sv_backoff(&next, 0, 150), 150);
}

Test(bivyd_policy, durations) {
  uint64_t ms;
  cr_assert_eq(bivy_parse_duration("250ms", &ms), 0);
  cr_assert_eq(ms, 250);
  cr_assert_eq(bivy_parse_duration("2s", &ms), 0);
  cr_assert_eq(ms, 2000);
  cr_assert_eq(bivy_parse_duration("1.5s", &ms), 0);
  cr_assert_eq(ms, 1500);
  cr_assert_eq(bivy_parse_duration("3", &ms), 0);
  cr_assert_eq(ms, 3000);
  cr_assert_eq(bivy_parse_duration("1m", &ms), 0);
  cr_assert_eq(ms, 60000);
  cr_assert_eq(bivy_parse_duration("1h", &ms), 0);
  cr_assert_eq(ms, 3600000);
  cr_assert_eq(bivy_parse_duration("-1s", &ms), -EINVAL);
  cr_assert_eq(bivy_parse_duration("5 s", &ms), -EINVAL);
  cr_assert_eq(bivy_parse_duration("5d", &ms), -EINVAL);
  cr_assert_eq(bivy_parse_duration("", &ms), -EINVAL);
  cr_assert_eq(bivy_parse_duration("nan", &ms), -EINVAL);
  cr_assert_eq(bivy_parse_duration("1e300h", &ms), -ERANGE);
}

static json_t *spec_of(const char *txt) {
  json_error_t je;
  json_t *j = json_loads(txt, 0, &je);
  cr_assert_not_null(j, "bad test JSON: %s", je.text);
  return j;
}

static void spec_fails(const char *txt, const char *want) {
  _cleanup_json_ json_t *s = spec_of(txt);
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_lt(bivy_sv_spec_check(s, &err), 0, "accepted: %s", txt);
  cr_assert(strstr(err->msg, want), "error \"%s\" lacks \"%s\"", err->msg, want);
}

Test(bivyd_spec, check_defaults_and_errors) {
  _cleanup_json_ json_t *s = spec_of("{\"rootfs\":\"/r\",\"args\":[\"sleep\",\"1\"],\"health\":{\"tcp\":80}}");
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_sv_spec_check(s, &err), 0);
  cr_assert_str_eq(json_string_value(json_object_get(s, "restart")), "no");
  json_t *h = json_object_get(s, "health");
  cr_assert_eq(json_integer_value(json_object_get(h, "interval_ms")), 30000);
  cr_assert_eq(json_integer_value(json_object_get(h, "retries")), 3);
  cr_assert_eq(json_integer_value(json_object_get(h, "start_period_ms")), 0);

  spec_fails("[]", "spec: must be an object");
  spec_fails("{\"args\":[\"x\"]}", "exactly one of bundle, rootfs");
  spec_fails("{\"bundle\":\"/b\",\"rootfs\":\"/r\"}", "exactly one of bundle, rootfs");
  spec_fails("{\"rootfs\":\"rel\",\"args\":[\"x\"]}", "spec.rootfs: must be an absolute path");
  spec_fails("{\"rootfs\":\"/r\"}", "spec.args");
  spec_fails("{\"rootfs\":\"/r\",\"args\":[]}", "spec.args");
  spec_fails("{\"bundle\":\"/b\",\"args\":[\"x\"]}", "spec.args: not allowed with bundle");
  spec_fails("{\"bundle\":\"/b\",\"restart\":\"maybe\"}", "spec.restart");
  spec_fails("{\"bundle\":\"/b\",\"colour\":\"red\"}", "spec.colour: unknown field");
  spec_fails("{\"bundle\":\"/b\",\"health\":{}}", "exactly one of cmd, tcp, http");
  spec_fails("{\"bundle\":\"/b\",\"health\":{\"tcp\":1,\"cmd\":\"x\"}}", "exactly one of cmd, tcp, http");
  spec_fails("{\"bundle\":\"/b\",\"health\":{\"tcp\":0}}", "spec.health.tcp: must be a port");
  spec_fails("{\"bundle\":\"/b\",\"health\":{\"http\":80,\"path\":\"x\"}}", "spec.health.path");
  spec_fails("{\"bundle\":\"/b\",\"health\":{\"http\":80,\"path\":\"/a\\r\\nX: y\"}}", "spec.health.path");
  spec_fails("{\"bundle\":\"/b\",\"health\":{\"cmd\":\"x\",\"retries\":0}}", "spec.health.retries");
  spec_fails("{\"bundle\":\"/b\",\"limits\":{\"memory\":0}}", "spec.limits.memory");
  spec_fails("{\"bundle\":\"/b\",\"limits\":{\"memory\":100}}", "below the 64k minimum");
  spec_fails("{\"bundle\":\"/b\",\"limits\":{\"cpus\":0}}", "spec.limits.cpus");
  spec_fails("{\"bundle\":\"/b\",\"limits\":{\"disk\":1}}", "spec.limits.disk: unknown limit");
  spec_fails("{\"bundle\":\"/b\",\"max_backoff_ms\":5}", "spec.max_backoff_ms");
}

Test(bivyd_spec, limits_to_resources_and_merge) {
  _cleanup_json_ json_t *l = spec_of("{\"memory\":67108864,\"cpus\":0.5,\"pids\":64,\"cpuset_cpus\":\"0\"}");
  _cleanup_json_ json_t *res = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_sv_limits_to_resources(l, &res, &err), 0);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "memory"), "limit")), 67108864);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "cpu"), "quota")), 50000);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "cpu"), "period")), 100000);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "cpu"), "cpus")), "0");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "pids"), "limit")), 64);
  _cleanup_json_ json_t *upd = spec_of("{\"memory\":100663296}");
  bivy_sv_limits_merge(l, upd);
  cr_assert_eq(json_integer_value(json_object_get(l, "memory")), 100663296);
  cr_assert_eq(json_integer_value(json_object_get(l, "pids")), 64, "other limits kept");
  _cleanup_json_ json_t *bad = spec_of("{\"cpuset_cpus\":\"zero\"}");
  _cleanup_json_ json_t *res2 = NULL;
  cr_assert_lt(bivy_sv_limits_to_resources(bad, &res2, &err), 0);
  cr_assert(strstr(err->msg, "limits.cpuset_cpus"));
}

Test(bivyd_spec, make_config_from_rootfs) {
  _cleanup_json_ json_t *s = spec_of(
      "{\"rootfs\":\"/srv/root\",\"args\":[\"sleep\",\"9\"],\"env\":[\"A=1\"],\"limits\":{\"memory\":1048576},"
      "\"publish\":[\"8080:80\",\"53:53/udp\"],\"seccomp\":\"unconfined\"}");
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_sv_spec_check(s, &err), 0);
  _cleanup_json_ json_t *cfg = NULL;
  cr_assert_eq(bivy_sv_make_config(s, "web", "/parent", &cfg, &err), 0, "%s", err ? err->msg : "");
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(cfg, "root"), "path")), "/srv/root");
  json_t *proc = json_object_get(cfg, "process");
  cr_assert(json_is_false(json_object_get(proc, "terminal")));
  cr_assert_str_eq(json_string_value(json_array_get(json_object_get(proc, "args"), 1)), "9");
  json_t *env = json_object_get(proc, "env");
  cr_assert_str_eq(json_string_value(json_array_get(env, json_array_size(env) - 1)), "A=1");
  json_t *lin = json_object_get(cfg, "linux");
  cr_assert_str_eq(json_string_value(json_object_get(lin, "cgroupsPath")), "/parent/web");
  cr_assert_null(json_object_get(lin, "seccomp"), "unconfined: no filter");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(lin, "resources"), "memory"), "limit")),
               1048576);
  json_t *ann = json_object_get(cfg, "annotations");
  cr_assert_str_eq(json_string_value(json_object_get(ann, "org.bivy.net")), "none", "loopback up by default");
  cr_assert_str_eq(json_string_value(json_object_get(ann, "org.bivy.publish")), "8080:80,53:53/udp");
}

Test(bivyd_spec, make_config_default_seccomp_and_bad_profile) {
  _cleanup_json_ json_t *s = spec_of("{\"rootfs\":\"/r\",\"args\":[\"true\"],\"net\":\"host\"}");
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_sv_spec_check(s, &err), 0);
  _cleanup_json_ json_t *cfg = NULL;
  cr_assert_eq(bivy_sv_make_config(s, "x", "bivyd", &cfg, &err), 0);
  cr_assert(json_is_object(json_object_get(json_object_get(cfg, "linux"), "seccomp")), "default profile");
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(cfg, "annotations"), "org.bivy.net")), "host");
  _cleanup_json_ json_t *s2 = spec_of("{\"rootfs\":\"/r\",\"args\":[\"true\"],\"seccomp\":\"no-such-profile\"}");
  _cleanup_json_ json_t *cfg2 = NULL;
  cr_assert_lt(bivy_sv_make_config(s2, "x", "bivyd", &cfg2, &err), 0);
  cr_assert(strstr(err->msg, "spec.seccomp"), "%s", err->msg);
  _cleanup_json_ json_t *s3 = spec_of("{\"bundle\":\"/no/such/bundle\"}");
  _cleanup_json_ json_t *cfg3 = NULL;
  cr_assert_lt(bivy_sv_make_config(s3, "x", "bivyd", &cfg3, &err), 0);
  cr_assert(strstr(err->msg, "spec.bundle"), "%s", err->msg);
}
