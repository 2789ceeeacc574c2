/* the node admission policy of cluster mode (tools/bivyd/policy/node-policy.c) */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "runtime/config.h"
#include "tools/bivyd/policy/node-policy.h"

static struct bivy_node_policy *policy(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  cr_assert_not_null(j, "%s", je.text);
  struct bivy_node_policy *p = NULL;
  bivy_error_t err = NULL;
  cr_assert_eq(bivy_node_policy_parse(j, "--cluster-policy P", &p, &err), 0, "%s", err ? err->msg : "");
  json_decref(j);
  return p;
}

static json_t *config(void) {
  json_t *c = bivy_config_default_spec_json(false);
  json_object_set_new(json_object_get(c, "root"), "path", json_string("/tmp"));
  json_t *res = json_pack("{s:{s:I}, s:{s:I, s:I}, s:{s:I}, s:[{s:b, s:s}]}", "memory", "limit", (json_int_t)64 << 20,
                          "cpu", "quota", (json_int_t)50000, "period", (json_int_t)100000, "pids", "limit", (json_int_t)100,
                          "devices", "allow", 0, "access", "rwm");
  json_object_set_new(json_object_get(c, "linux"), "resources", res);
  json_object_set_new(json_object_get(c, "linux"), "seccomp", json_pack("{s:s}", "defaultAction", "SCMP_ACT_ERRNO"));
  return c;
}

/* refused by p with rule, or allowed (rule NULL) */
static void expect(struct bivy_node_policy *p, json_t *spec, json_t *cfg, const char *rule, const char *detail) {
  const char *got = NULL;
  bivy_error_t err = NULL;
  int r = bivy_node_policy_check(p, spec, cfg, &got, &err);
  if (rule == NULL) {
    cr_assert_eq(r, 0, "refused: %s: %s", got, err ? err->msg : "");
    return;
  }
  cr_assert_eq(r, -EPERM, "not refused (want %s)", rule);
  cr_assert_str_eq(got, rule);
  if (detail) cr_assert(strstr(err->msg, detail), "%s", err->msg);
  bivy_error_release(&err);
}

static const char strict[] =
    "{\"host_bind_mounts\": false, \"host_namespaces\": false, \"devices\": false, \"privileged\": false,"
    " \"max_capabilities\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],"
    " \"max_memory\": \"128M\", \"max_cpus\": 1, \"max_pids\": 1000, \"rootfs_prefixes\": [\"/tmp/\"]}";

Test(node_policy, default_spec_passes_a_strict_policy) {
  struct bivy_node_policy *p = policy(strict);
  json_t *spec = json_object(), *cfg = config();
  expect(p, spec, cfg, NULL, NULL);
  expect(NULL, spec, cfg, NULL, NULL); /* no policy: anything */
  json_decref(cfg);
  json_decref(spec);
  bivy_node_policy_free(p);
}

Test(node_policy, refusals_name_the_rule) {
  struct bivy_node_policy *p = policy(strict);
  json_t *spec = json_object(), *cfg;

  cfg = config();
  json_array_append_new(json_object_get(cfg, "mounts"),
                        json_pack("{s:s, s:s, s:s, s:[s]}", "destination", "/host", "type", "none", "source", "/", "options", "rbind"));
  expect(p, spec, cfg, "host_bind_mounts", "bind mount of host path \"/\"");
  json_decref(cfg);

  cfg = config();
  json_object_set_new(spec, "net", json_string("host"));
  expect(p, spec, cfg, "host_namespaces", "net \"host\"");
  json_object_del(spec, "net");
  json_array_remove(json_object_get(json_object_get(cfg, "linux"), "namespaces"), 0); /* pid */
  expect(p, spec, cfg, "host_namespaces", "no pid namespace");
  json_decref(cfg);

  cfg = config();
  json_array_append_new(json_object_get(json_object_get(cfg, "linux"), "namespaces"),
                        json_pack("{s:s, s:s}", "type", "network", "path", "/proc/1/ns/net"));
  expect(p, spec, cfg, "host_namespaces", "joins the network namespace");
  json_decref(cfg);

  cfg = config();
  json_array_append_new(json_object_get(json_object_get(json_object_get(cfg, "linux"), "resources"), "devices"),
                        json_pack("{s:b, s:s, s:s}", "allow", 1, "type", "b", "access", "rw"));
  expect(p, spec, cfg, "devices", "allows device access");
  json_decref(cfg);

  cfg = config();
  json_object_del(json_object_get(cfg, "linux"), "seccomp");
  expect(p, spec, cfg, "privileged", "seccomp");
  json_decref(cfg);

  cfg = config();
  json_array_append_new(json_object_get(json_object_get(json_object_get(cfg, "process"), "capabilities"), "bounding"),
                        json_string("CAP_SYS_ADMIN"));
  expect(p, spec, cfg, "max_capabilities", "CAP_SYS_ADMIN");
  json_decref(cfg);

  cfg = config();
  json_object_set_new(json_object_get(json_object_get(json_object_get(cfg, "linux"), "resources"), "memory"), "limit",
                      json_integer((json_int_t)1 << 30));
  expect(p, spec, cfg, "max_memory", "above");
  json_object_del(json_object_get(json_object_get(cfg, "linux"), "resources"), "memory");
  expect(p, spec, cfg, "max_memory", "no memory limit");
  json_decref(cfg);

  cfg = config();
  json_object_set_new(json_object_get(json_object_get(json_object_get(cfg, "linux"), "resources"), "cpu"), "quota",
                      json_integer(200000));
  expect(p, spec, cfg, "max_cpus", "above");
  json_decref(cfg);

  cfg = config();
  json_object_set_new(json_object_get(cfg, "root"), "path", json_string("/tmp/../etc"));
  expect(p, spec, cfg, "rootfs_prefixes", "/etc is not under");
  json_decref(cfg);

  json_decref(spec);
  bivy_node_policy_free(p);
}

Test(node_policy, bind_prefixes_and_bundles) {
  struct bivy_node_policy *p = policy("{\"host_bind_mounts\": [\"/tmp\"], \"bundle_prefixes\": [\"/var/empty\"]}");
  json_t *spec = json_object(), *cfg = config();
  json_array_append_new(json_object_get(cfg, "mounts"),
                        json_pack("{s:s, s:s, s:s, s:[s]}", "destination", "/d", "type", "bind", "source", "/tmp", "options", "ro"));
  expect(p, spec, cfg, NULL, NULL);
  json_array_append_new(json_object_get(cfg, "mounts"),
                        json_pack("{s:s, s:s, s:s}", "destination", "/e", "type", "bind", "source", "/etc"));
  expect(p, spec, cfg, "host_bind_mounts", "outside the allowed prefixes");
  json_object_set_new(spec, "bundle", json_string("/tmp"));
  expect(p, spec, cfg, "bundle_prefixes", "bundle /tmp");
  json_decref(cfg);
  json_decref(spec);
  bivy_node_policy_free(p);
}

Test(node_policy, bad_input_names_the_key) {
  const char *bad[][2] = {{"[]", "--cluster-policy P: must be a JSON object"},
                          {"{\"rootfs\": []}", "--cluster-policy P: rootfs: unknown key"},
                          {"{\"max_memory\": \"lots\"}", "--cluster-policy P: max_memory: invalid size"},
                          {"{\"max_memory\": 1024}", "--cluster-policy P: max_memory: invalid size"},
                          {"{\"max_cpus\": 0}", "--cluster-policy P: max_cpus: must be a number"},
                          {"{\"max_pids\": \"x\"}", "--cluster-policy P: max_pids: must be a positive integer"},
                          {"{\"devices\": \"no\"}", "--cluster-policy P: devices: must be true or false"},
                          {"{\"host_bind_mounts\": 3}", "--cluster-policy P: host_bind_mounts: must be false"},
                          {"{\"rootfs_prefixes\": [\"relative\"]}", "--cluster-policy P: rootfs_prefixes[0]: must be an absolute path"},
                          {"{\"rootfs_prefixes\": [\"/a/../b\"]}", "--cluster-policy P: rootfs_prefixes[0]: must be an absolute path"},
                          {"{\"max_capabilities\": [\"SYS_ADMIN\"]}", "--cluster-policy P: max_capabilities[0]: not a capability"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_error_t je;
    json_t *j = json_loads(bad[i][0], JSON_DECODE_ANY, &je);
    struct bivy_node_policy *p = NULL;
    bivy_error_t err = NULL;
    cr_assert_lt(bivy_node_policy_parse(j, "--cluster-policy P", &p, &err), 0, "%s accepted", bad[i][0]);
    cr_assert(strncmp(err->msg, bad[i][1], strlen(bad[i][1])) == 0, "%s: %s", bad[i][0], err->msg);
    cr_assert_null(p);
    bivy_error_release(&err);
    json_decref(j);
  }
}
