/* config.json parser: round trip of a rich config, one test per class of bad input, the
 * default spec, and the mount option table. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>

#include "runtime/cleanup.h"
#include "runtime/config.h"

static const char rich[] =
    "{\"ociVersion\": \"1.2.0\","
    " \"process\": {\"terminal\": true, \"consoleSize\": {\"height\": 25, \"width\": 80},"
    "   \"user\": {\"uid\": 1000, \"gid\": 100, \"umask\": 18, \"additionalGids\": [5, 6]},"
    "   \"args\": [\"sh\", \"-c\", \"echo hi\"], \"env\": [\"PATH=/bin\", \"A=b=c\"], \"cwd\": \"/work\","
    "   \"capabilities\": {\"bounding\": [\"CAP_KILL\", \"CAP_CHOWN\"], \"effective\": [\"CAP_KILL\"],"
    "     \"permitted\": [\"CAP_KILL\"], \"inheritable\": [], \"ambient\": [\"CAP_NET_BIND_SERVICE\"]},"
    "   \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1024, \"hard\": 4096},"
    "                 {\"type\": \"RLIMIT_CORE\", \"soft\": 18446744073709551615, \"hard\": 18446744073709551615}],"
    "   \"noNewPrivileges\": true, \"oomScoreAdj\": -500, \"apparmorProfile\": \"p\", \"selinuxLabel\": \"l\","
    "   \"futureField\": {\"x\": 1}},"
    " \"root\": {\"path\": \"tmp\", \"readonly\": true},"
    " \"hostname\": \"box\", \"domainname\": \"example.org\","
    " \"mounts\": ["
    "   {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
    "   {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
    "    \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
    "   {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv\", \"options\": [\"rbind\", \"ro\", \"rslave\"]}],"
    " \"hooks\": {\"prestart\": [{\"path\": \"/bin/true\", \"args\": [\"true\", \"x\"], \"env\": [\"K=V\"], \"timeout\": 5}],"
    "   \"poststop\": [{\"path\": \"/bin/false\"}]},"
    " \"annotations\": {\"org.bivy.net\": \"bridge\", \"a\": \"b\"},"
    " \"linux\": {"
    "   \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\", \"path\": \"/proc/1/ns/net\"},"
    "     {\"type\": \"mount\"}, {\"type\": \"uts\"}, {\"type\": \"ipc\"}, {\"type\": \"user\"}, {\"type\": \"cgroup\"},"
    "     {\"type\": \"time\"}],"
    "   \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
    "   \"gidMappings\": [{\"containerID\": 0, \"hostID\": 200000, \"size\": 1000}],"
    "   \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229, \"fileMode\": 438,"
    "     \"uid\": 0, \"gid\": 0}, {\"path\": \"/dev/p\", \"type\": \"p\"}, {\"path\": \"/dev/z\", \"type\": \"c\", \"major\": 1, \"minor\": 5, \"fileMode\": 8630}],"
    "   \"cgroupsPath\": \"/bivy/c1\","
    "   \"resources\": {\"memory\": {\"limit\": 1048576}},"
    "   \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"},"
    "   \"maskedPaths\": [\"/proc/kcore\"], \"readonlyPaths\": [\"/proc/sys\"],"
    "   \"rootfsPropagation\": \"rslave\","
    "   \"sysctl\": {\"net.ipv4.ip_forward\": \"1\", \"kernel.shmmax\": \"1000\"},"
    "   \"mountLabel\": \"ml\", \"intelRdt\": {}}"
    ", \"vm\": {}}";

static struct bivy_config *parse_ok(const char *text, const char *bundle) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_config *c = NULL;
  int r = bivy_config_parse(text, strlen(text), bundle, &c, &err);
  cr_assert_eq(r, 0, "parse failed: %s", err ? err->msg : "?");
  cr_assert_not_null(c);
  return c;
}

#define CAP(n) (1ULL << (n))

Test(config_parse, rich_config_round_trips) {
  _cleanup_config_ struct bivy_config *c = parse_ok(rich, "/");
  cr_assert_str_eq(c->oci_version, "1.2.0");
  cr_assert_str_eq(c->bundle, "/");
  cr_assert_str_eq(c->root_path, "/tmp");
  cr_assert(c->root_readonly);
  cr_assert(c->has_process);
  struct bivy_process *p = &c->process;
  cr_assert(p->terminal);
  cr_assert_eq(p->console_height, 25);
  cr_assert_eq(p->console_width, 80);
  cr_assert_eq(p->user.uid, 1000);
  cr_assert_eq(p->user.gid, 100);
  cr_assert(p->user.has_umask);
  cr_assert_eq(p->user.umask, 022);
  cr_assert_eq(p->user.n_additional_gids, 2);
  cr_assert_eq(p->user.additional_gids[1], 6);
  cr_assert_str_eq(p->args[0], "sh");
  cr_assert_str_eq(p->args[2], "echo hi");
  cr_assert_null(p->args[3]);
  cr_assert_str_eq(p->env[1], "A=b=c");
  cr_assert_null(p->env[2]);
  cr_assert_str_eq(p->cwd, "/work");
  cr_assert(p->has_caps);
  cr_assert_eq(p->caps.bounding, CAP(CAP_KILL) | CAP(CAP_CHOWN));
  cr_assert_eq(p->caps.effective, CAP(CAP_KILL));
  cr_assert_eq(p->caps.permitted, CAP(CAP_KILL));
  cr_assert_eq(p->caps.inheritable, 0);
  cr_assert_eq(p->caps.ambient, CAP(CAP_NET_BIND_SERVICE));
  cr_assert_eq(p->n_rlimits, 2);
  cr_assert_eq(p->rlimits[0].resource, RLIMIT_NOFILE);
  cr_assert_eq(p->rlimits[0].soft, 1024);
  cr_assert_eq(p->rlimits[0].hard, 4096);
  cr_assert_eq(p->rlimits[1].resource, RLIMIT_CORE);
  cr_assert_eq(p->rlimits[1].soft, UINT64_MAX);
  cr_assert_eq(p->rlimits[1].hard, UINT64_MAX);
  cr_assert(p->no_new_privileges);
  cr_assert(p->has_oom_score_adj);
  cr_assert_eq(p->oom_score_adj, -500);
  cr_assert_str_eq(p->apparmor_profile, "p");
  cr_assert_str_eq(p->selinux_label, "l");

  cr_assert_str_eq(c->hostname, "box");
  cr_assert_str_eq(c->domainname, "example.org");
  cr_assert_eq(c->n_mounts, 3);
  cr_assert_str_eq(c->mounts[0].destination, "/proc");
  cr_assert_str_eq(c->mounts[0].type, "proc");
  cr_assert_null(c->mounts[0].options);
  cr_assert_eq(c->mounts[0].flags, 0);
  cr_assert_null(c->mounts[0].data);
  cr_assert_eq(c->mounts[1].flags, MS_NOSUID | MS_STRICTATIME);
  cr_assert_str_eq(c->mounts[1].data, "mode=755,size=65536k");
  cr_assert_str_eq(c->mounts[1].options[2], "mode=755");
  cr_assert(c->mounts[2].rbind);
  cr_assert_eq(c->mounts[2].flags, MS_BIND | MS_REC | MS_RDONLY);
  cr_assert_eq(c->mounts[2].propagation, MS_SLAVE | MS_REC);
  cr_assert_str_eq(c->mounts[2].source, "/srv");

  cr_assert_eq(c->n_hooks[BIVY_HOOK_PRESTART], 1);
  struct bivy_hook *h = &c->hooks[BIVY_HOOK_PRESTART][0];
  cr_assert_str_eq(h->path, "/bin/true");
  cr_assert_str_eq(h->args[1], "x");
  cr_assert_str_eq(h->env[0], "K=V");
  cr_assert_eq(h->timeout, 5);
  cr_assert_eq(c->n_hooks[BIVY_HOOK_POSTSTOP], 1);
  cr_assert_null(c->hooks[BIVY_HOOK_POSTSTOP][0].args);
  cr_assert_eq(c->hooks[BIVY_HOOK_POSTSTOP][0].timeout, 0);
  cr_assert_eq(c->n_hooks[BIVY_HOOK_CREATE_RUNTIME], 0);

  cr_assert_eq(c->n_annotations, 2);
  cr_assert_str_eq(bivy_config_annotation(c, "org.bivy.net"), "bridge");
  cr_assert_str_eq(bivy_config_annotation(c, "a"), "b");
  cr_assert_null(bivy_config_annotation(c, "nope"));

  cr_assert_eq(c->n_namespaces, 8);
  cr_assert_null(bivy_config_ns(c, BIVY_NS_PID)->path);
  cr_assert_str_eq(bivy_config_ns(c, BIVY_NS_NET)->path, "/proc/1/ns/net");
  cr_assert_not_null(bivy_config_ns(c, BIVY_NS_TIME));
  cr_assert_eq(c->n_uid_mappings, 1);
  cr_assert_eq(c->uid_mappings[0].host_id, 100000);
  cr_assert_eq(c->uid_mappings[0].size, 65536);
  cr_assert_eq(c->gid_mappings[0].host_id, 200000);
  cr_assert_eq(c->n_devices, 3);
  cr_assert_eq(c->devices[2].file_mode, 0666, "type bits of a podman st_mode are dropped");
  cr_assert_str_eq(c->devices[0].path, "/dev/fuse");
  cr_assert_eq(c->devices[0].type, 'c');
  cr_assert_eq(c->devices[0].major, 10);
  cr_assert_eq(c->devices[0].minor, 229);
  cr_assert(c->devices[0].has_mode);
  cr_assert_eq(c->devices[0].file_mode, 0666);
  cr_assert(c->devices[0].has_uid && c->devices[0].has_gid);
  cr_assert_eq(c->devices[1].type, 'p');
  cr_assert(!c->devices[1].has_mode);
  cr_assert_str_eq(c->cgroups_path, "/bivy/c1");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(c->resources, "memory"), "limit")), 1048576);
  cr_assert_str_eq(json_string_value(json_object_get(c->seccomp, "defaultAction")), "SCMP_ACT_ALLOW");
  cr_assert_str_eq(c->masked_paths[0], "/proc/kcore");
  cr_assert_null(c->masked_paths[1]);
  cr_assert_str_eq(c->readonly_paths[0], "/proc/sys");
  cr_assert_eq(c->rootfs_propagation, MS_SLAVE | MS_REC);
  cr_assert_eq(c->n_sysctls, 2);
  cr_assert_str_eq(c->mount_label, "ml");
}

Test(config_parse, minimal_without_process) {
  _cleanup_config_ struct bivy_config *c = parse_ok("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"/\"}}", "/tmp");
  cr_assert(!c->has_process);
  cr_assert_str_eq(c->root_path, "/");
  cr_assert_eq(c->n_namespaces, 0);
  cr_assert_null(c->resources);
  cr_assert_null(c->masked_paths);
}

Test(config_parse, load_from_bundle) {
  char dir[] = "/tmp/bivy-unit-cfg.XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/rootfs", dir);
  cr_assert_eq(mkdir(path, 0755), 0);
  snprintf(path, sizeof path, "%s/config.json", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"root\":{\"path\":\"rootfs\"},\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"}}", f);
  fclose(f);
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_config *c = NULL;
  int r = bivy_config_load(dir, &c, &err);
  cr_assert_eq(r, 0, "%s", err ? err->msg : "");
  char want[256];
  snprintf(want, sizeof want, "%s/rootfs", dir);
  cr_assert_str_eq(c->root_path, want);
  cr_assert_str_eq(c->bundle, dir);
  bivy_config_free(c);
  unlink(path);
  r = bivy_config_load(dir, &c, &err);
  cr_assert_eq(r, -ENOENT);
  cr_assert_null(c);
  cr_assert(strstr(err->msg, "config.json: No such file or directory"), "%s", err->msg);
  snprintf(path, sizeof path, "%s/rootfs", dir);
  rmdir(path);
  rmdir(dir);
}

/* ---- bad input: exact error path and reason ---- */

struct bad_case {
  const char *json;
  const char *msg;
};

#define R "\"root\":{\"path\":\"/\"}"
#define P "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\""
#define NS(x) "\"linux\":{\"namespaces\":[" x "]}"

static const struct bad_case bad_cases[] = {
    {"{\"root\": ", "config.json: line 1, column 9: unexpected token near end of file"},
    {"[1]", "config.json: expected a JSON object"},
    {"{\"a\":1,\"a\":2}", "config.json: line 1, column 10: duplicate object key near '\"a\"'"},
    {"{}", "config.json: root.path: missing (required)"},
    {"{\"root\":{\"path\":3}}", "config.json: root.path: expected a string"},
    {"{\"root\":{\"path\":\"/nonexistent-bivy\"}}", "config.json: root.path: /nonexistent-bivy: No such file or directory"},
    {"{\"root\":{\"path\":\"/etc/passwd\"}}", "config.json: root.path: /etc/passwd: Not a directory"},
    {"{" R ",\"ociVersion\":1}", "config.json: ociVersion: expected a string"},
    {"{" R ",\"process\":[]}", "config.json: process: expected an object"},
    {"{" R ",\"process\":{\"args\":\"sh\",\"cwd\":\"/\"}}", "config.json: process.args: expected an array of strings"},
    {"{" R ",\"process\":{\"args\":[\"sh\",1],\"cwd\":\"/\"}}", "config.json: process.args: expected an array of strings"},
    {"{" R ",\"process\":{\"args\":[],\"cwd\":\"/\"}}", "config.json: process.args: must not be empty"},
    {"{" R ",\"process\":{\"cwd\":\"/\"}}", "config.json: process.args: missing (required)"},
    {"{" R ",\"process\":{\"args\":[\"sh\"]}}", "config.json: process.cwd: missing (required)"},
    {"{" R ",\"process\":{\"args\":[\"sh\"],\"cwd\":\"tmp\"}}", "config.json: process.cwd: \"tmp\" is not an absolute path"},
    {"{" R "," P ",\"terminal\":\"yes\"}}", "config.json: process.terminal: expected true or false"},
    {"{" R "," P ",\"env\":[\"PATH=/bin\",\"NOEQUALS\"]}}", "config.json: process.env[1]: expected KEY=VALUE, got \"NOEQUALS\""},
    {"{" R "," P ",\"user\":{\"uid\":-1}}}", "config.json: process.user.uid: -1 out of range [0, 4294967294]"},
    {"{" R "," P ",\"user\":{\"gid\":1.5}}}", "config.json: process.user.gid: expected an integer"},
    {"{" R "," P ",\"user\":{\"additionalGids\":[1,\"x\"]}}}", "config.json: process.user.additionalGids[1]: expected an integer"},
    {"{" R "," P ",\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\",\"CAP_KILL\",\"CAP_FOO\"]}}}",
     "config.json: process.capabilities.bounding[3]: unknown capability \"CAP_FOO\""},
    {"{" R "," P ",\"capabilities\":{\"ambient\":[\"kill\"]}}}", "config.json: process.capabilities.ambient[0]: unknown capability \"kill\""},
    {"{" R "," P ",\"rlimits\":[{\"type\":\"RLIMIT_BOGUS\",\"soft\":1,\"hard\":1}]}}", "config.json: process.rlimits[0].type: unknown rlimit \"RLIMIT_BOGUS\""},
    {"{" R "," P ",\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":2048,\"hard\":1024}]}}",
     "config.json: process.rlimits[0]: soft limit 2048 is above the hard limit 1024"},
    {"{" R "," P ",\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":1},{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":1}]}}",
     "config.json: process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\""},
    {"{" R "," P ",\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":-1,\"hard\":1}]}}", "config.json: process.rlimits[0].soft: -1 is negative"},
    {"{" R "," P ",\"oomScoreAdj\":1001}}", "config.json: process.oomScoreAdj: 1001 out of range [-1000, 1000]"},
    {"{" R ",\"mounts\":[{\"destination\":\"proc\",\"type\":\"proc\"}]}", "config.json: mounts[0].destination: \"proc\" is not an absolute path"},
    {"{" R ",\"mounts\":[{\"type\":\"proc\"}]}", "config.json: mounts[0].destination: missing (required)"},
    {"{" R ",\"mounts\":[{\"destination\":\"/x\",\"options\":[\"bind\"]}]}", "config.json: mounts[0].source: required for a bind mount"},
    {"{" R ",\"mounts\":[{\"destination\":\"/x\",\"type\":\"tmpfs\",\"options\":[\"size=1,mode=0\"]}]}",
     "config.json: mounts[0].options[0]: mount option \"size=1,mode=0\" contains a comma"},
    {"{" R ",\"hooks\":{\"prestart\":[{\"path\":\"hook\"}]}}", "config.json: hooks.prestart[0].path: \"hook\" is not an absolute path"},
    {"{" R ",\"hooks\":{\"poststart\":[{\"path\":\"/h\",\"timeout\":0}]}}", "config.json: hooks.poststart[0].timeout: must be greater than zero, got 0"},
    {"{" R ",\"hooks\":{\"createRuntime\":{}}}", "config.json: hooks.createRuntime: expected an array"},
    {"{" R ",\"annotations\":{\"a\":1}}", "config.json: annotations.a: expected a string"},
    {"{" R "," NS("{\"type\":\"pid\"},{\"type\":\"mount\"},{\"type\":\"foo\"}") "}", "config.json: linux.namespaces[2].type: unknown namespace \"foo\""},
    {"{" R "," NS("{\"type\":\"pid\"},{\"type\":\"pid\"}") "}", "config.json: linux.namespaces[1].type: duplicate namespace \"pid\""},
    {"{" R "," NS("{\"type\":\"network\",\"path\":\"proc/1/ns/net\"}") "}",
     "config.json: linux.namespaces[0].path: \"proc/1/ns/net\" is not an absolute path"},
    {"{" R ",\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}]}}",
     "config.json: linux.uidMappings: needs a user namespace (linux.namespaces has no \"user\")"},
    {"{" R "," NS("{\"type\":\"user\"}") "}", "config.json: linux.uidMappings: required with a new user namespace"},
    {"{" R ",\"linux\":{\"namespaces\":[{\"type\":\"user\"}],\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":0}],"
           "\"gidMappings\":[]}}",
     "config.json: linux.uidMappings[0].size: 0 out of range [1, 4294967295]"},
    {"{" R ",\"linux\":{\"namespaces\":[{\"type\":\"user\"}],\"uidMappings\":[{\"containerID\":0,\"size\":1}]}}",
     "config.json: linux.uidMappings[0].hostID: missing (required)"},
    {"{" R "," P ",\"user\":{\"uid\":5,\"gid\":0}},\"linux\":{\"namespaces\":[{\"type\":\"user\"}],"
           "\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":5}],\"gidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}]}}",
     "config.json: process.user.uid: 5 is not mapped in linux.uidMappings"},
    {"{" R "," P ",\"user\":{\"uid\":4,\"gid\":0,\"additionalGids\":[0,7]}},\"linux\":{\"namespaces\":[{\"type\":\"user\"}],"
           "\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":5}],\"gidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}]}}",
     "config.json: process.user.additionalGids[1]: 7 is not mapped in linux.gidMappings"},
    {"{" R ",\"linux\":{\"devices\":[{\"path\":\"/dev/x\",\"type\":\"z\",\"major\":1,\"minor\":1}]}}",
     "config.json: linux.devices[0].type: unknown device type \"z\" (c, b, u or p)"},
    {"{" R ",\"linux\":{\"devices\":[{\"path\":\"dev/x\",\"type\":\"c\",\"major\":1,\"minor\":1}]}}",
     "config.json: linux.devices[0].path: \"dev/x\" is not an absolute path"},
    {"{" R ",\"linux\":{\"devices\":[{\"path\":\"/dev/x\",\"type\":\"c\",\"minor\":1}]}}",
     "config.json: linux.devices[0].major: missing (required for type c)"},
    {"{" R ",\"linux\":{\"devices\":[{\"path\":\"/dev/x\",\"type\":\"b\",\"major\":1,\"minor\":-3}]}}",
     "config.json: linux.devices[0].minor: -3 out of range [0, 1048575]"},
    {"{" R ",\"linux\":{\"rootfsPropagation\":\"sideways\"}}", "config.json: linux.rootfsPropagation: unknown propagation \"sideways\""},
    {"{" R ",\"linux\":{\"sysctl\":{\"kernel.panic\":\"1\"}}}", "config.json: linux.sysctl.kernel.panic: not a namespaced sysctl (it would change the host)"},
    {"{" R ",\"linux\":{\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"}}}",
     "config.json: linux.sysctl.net.ipv4.ip_forward: needs a network namespace (it would change the host)"},
    {"{" R "," NS("{\"type\":\"ipc\"}") ",\"x\":{\"sysctl\":{}}}", NULL}, /* sanity: valid */
    {"{" R ",\"linux\":{\"namespaces\":[{\"type\":\"ipc\"}],\"sysctl\":{\"kernel.shmmax\":1}}}",
     "config.json: linux.sysctl.kernel.shmmax: expected a string"},
    {"{" R ",\"linux\":{\"namespaces\":[{\"type\":\"network\"}],\"sysctl\":{\"net/../../x\":\"1\"}}}",
     "config.json: linux.sysctl.net/../../x: invalid sysctl name"},
    {"{" R ",\"linux\":{\"maskedPaths\":[\"/ok\",\"proc/kcore\"]}}", "config.json: linux.maskedPaths[1]: \"proc/kcore\" is not an absolute path"},
    {"{" R ",\"linux\":{\"resources\":[]}}", "config.json: linux.resources: expected an object"},
    {"{" R ",\"hostname\":\"h\"}", "config.json: hostname: needs a new UTS namespace (linux.namespaces has no \"uts\")"},
    {"{" R ",\"hostname\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "config.json: hostname: longer than 64 bytes"},
    {"{" R ",\"mounts\":[{\"destination\":\"/a\\u0000b\"}]}",
     "config.json: line 1, column 57: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"/a\\u0000b\"'"},
};

/* (a loop rather than Criterion parameters: those cannot carry string pointers safely) */
Test(config_errors, bad_input_names_path_and_reason) {
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const struct bad_case *bc = &bad_cases[i];
    _cleanup_error_ bivy_error_t err = NULL;
    struct bivy_config *c = NULL;
    int r = bivy_config_parse(bc->json, strlen(bc->json), "/", &c, &err);
    if (bc->msg == NULL) {
      cr_assert_eq(r, 0, "%s: %s", bc->json, err ? err->msg : "");
      bivy_config_free(c);
      continue;
    }
    cr_assert_lt(r, 0, "accepted: %s", bc->json);
    cr_assert_null(c);
    cr_expect_str_eq(err->msg, bc->msg, "input %s", bc->json);
  }
}

Test(config_errors, root_missing_errno) {
  _cleanup_error_ bivy_error_t err = NULL;
  struct bivy_config *c = NULL;
  const char *j = "{\"root\":{\"path\":\"rootfs\"}}";
  int r = bivy_config_parse(j, strlen(j), "/x", &c, &err);
  cr_assert_eq(r, -ENOENT);
  cr_assert_str_eq(err->msg, "config.json: root.path: /x/rootfs: No such file or directory");
}

/* ---- process.json for exec --process ---- */

Test(config_process, standalone_parse) {
  _cleanup_json_ json_t *j = json_loads("{\"args\":[\"ls\",\"-l\"],\"cwd\":\"/\",\"env\":[\"A=1\"],"
                                        "\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\"]}}",
                                        0, NULL);
  cr_assert_not_null(j);
  struct bivy_process p;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_eq(bivy_process_parse(j, "process.json", &p, &err), 0);
  cr_assert_str_eq(p.args[1], "-l");
  cr_assert_eq(p.caps.bounding, CAP(CAP_SYS_ADMIN));
  bivy_process_clear(&p);
  json_decref(j);
  j = json_loads("{\"args\":[\"ls\"],\"cwd\":\"rel\"}", 0, NULL);
  cr_assert_lt(bivy_process_parse(j, "process.json", &p, &err), 0);
  cr_assert_str_eq(err->msg, "process.json.cwd: \"rel\" is not an absolute path");
  cr_assert_null(p.args);
}

/* ---- default spec ---- */

Test(config_spec, default_spec_parses) {
  _cleanup_free_ char *text = bivy_config_default_spec(false);
  /* root.path "rootfs" is relative: parse against a bundle where it exists */
  char dir[] = "/tmp/bivy-unit-spec.XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char rootfs[128];
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", dir);
  cr_assert_eq(mkdir(rootfs, 0755), 0);
  _cleanup_config_ struct bivy_config *c = parse_ok(text, dir);
  rmdir(rootfs);
  rmdir(dir);
  cr_assert_str_eq(c->oci_version, "1.2.0");
  cr_assert_str_eq(c->root_path, rootfs);
  cr_assert(c->root_readonly);
  cr_assert(!c->process.terminal);
  cr_assert_str_eq(c->process.args[0], "sh");
  cr_assert_str_eq(c->process.cwd, "/");
  cr_assert(c->process.no_new_privileges);
  cr_assert_eq(c->process.caps.bounding, CAP(CAP_AUDIT_WRITE) | CAP(CAP_KILL) | CAP(CAP_NET_BIND_SERVICE));
  cr_assert_eq(c->process.n_rlimits, 1);
  cr_assert_eq(c->process.rlimits[0].soft, 1024);
  cr_assert_str_eq(c->hostname, "bivy");
  cr_assert_eq(c->n_mounts, 7);
  cr_assert_str_eq(c->mounts[5].destination, "/sys");
  cr_assert_eq(c->mounts[5].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY);
  static const enum bivy_ns_type want[] = {BIVY_NS_PID, BIVY_NS_NET, BIVY_NS_IPC, BIVY_NS_UTS, BIVY_NS_MNT,
                                           BIVY_NS_CGROUP};
  cr_assert_eq(c->n_namespaces, 6);
  for (size_t i = 0; i < 6; i++) cr_assert_eq(c->namespaces[i].type, want[i]);
  cr_assert_null(bivy_config_ns(c, BIVY_NS_USER));
  cr_assert_str_eq(c->masked_paths[0], "/proc/acpi");
  cr_assert_str_eq(c->readonly_paths[4], "/proc/sysrq-trigger");
  cr_assert_not_null(c->resources);
}

Test(config_spec, rootless_spec_parses) {
  _cleanup_free_ char *text = bivy_config_default_spec(true);
  _cleanup_json_ json_t *j = json_loads(text, 0, NULL);
  json_object_set_new(json_object_get(j, "root"), "path", json_string("/"));
  _cleanup_free_ char *t2 = json_dumps(j, 0);
  _cleanup_config_ struct bivy_config *c = parse_ok(t2, "/");
  cr_assert_not_null(bivy_config_ns(c, BIVY_NS_USER));
  cr_assert_null(bivy_config_ns(c, BIVY_NS_NET));
  cr_assert_eq(c->n_uid_mappings, 1);
  cr_assert_eq(c->uid_mappings[0].container_id, 0);
  cr_assert_eq(c->uid_mappings[0].host_id, geteuid());
  cr_assert_eq(c->n_gid_mappings, 1);
  cr_assert(c->mounts[5].rbind);
  cr_assert_str_eq(c->mounts[5].source, "/sys");
  cr_assert_null(c->resources);
  for (size_t i = 0; i < c->n_mounts; i++)
    if (c->mounts[i].data) cr_assert_null(strstr(c->mounts[i].data, "gid="), "%s", c->mounts[i].data);
}

/* ---- mount options -> flags ---- */

struct opt_case {
  const char *opts; /* JSON array body */
  unsigned long flags, clear, propagation;
  const char *data;
};

static const struct opt_case opt_cases[] = {
    {"\"ro\"", MS_RDONLY, 0, 0, NULL},
    {"\"ro\",\"rw\"", 0, MS_RDONLY, 0, NULL},
    {"\"nosuid\",\"nodev\",\"noexec\"", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, 0, NULL},
    {"\"suid\",\"dev\",\"exec\"", 0, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, NULL},
    {"\"sync\"", MS_SYNCHRONOUS, 0, 0, NULL},
    {"\"sync\",\"async\"", 0, MS_SYNCHRONOUS, 0, NULL},
    {"\"remount\"", MS_REMOUNT, 0, 0, NULL},
    {"\"mand\"", MS_MANDLOCK, 0, 0, NULL},
    {"\"nomand\"", 0, MS_MANDLOCK, 0, NULL},
    {"\"noatime\",\"nodiratime\"", MS_NOATIME | MS_NODIRATIME, 0, 0, NULL},
    {"\"atime\",\"diratime\"", 0, MS_NOATIME | MS_NODIRATIME, 0, NULL},
    {"\"relatime\"", MS_RELATIME, 0, 0, NULL},
    {"\"norelatime\"", 0, MS_RELATIME, 0, NULL},
    {"\"strictatime\"", MS_STRICTATIME, 0, 0, NULL},
    {"\"nostrictatime\"", 0, MS_STRICTATIME, 0, NULL},
    {"\"bind\"", MS_BIND, 0, 0, NULL},
    {"\"rbind\"", MS_BIND | MS_REC, 0, 0, NULL},
    {"\"private\"", 0, 0, MS_PRIVATE, NULL},
    {"\"rprivate\"", 0, 0, MS_PRIVATE | MS_REC, NULL},
    {"\"shared\"", 0, 0, MS_SHARED, NULL},
    {"\"rshared\"", 0, 0, MS_SHARED | MS_REC, NULL},
    {"\"slave\"", 0, 0, MS_SLAVE, NULL},
    {"\"rslave\"", 0, 0, MS_SLAVE | MS_REC, NULL},
    {"\"unbindable\"", 0, 0, MS_UNBINDABLE, NULL},
    {"\"runbindable\"", 0, 0, MS_UNBINDABLE | MS_REC, NULL},
    {"\"mode=755\",\"ro\",\"size=1k\",\"rro\"", MS_RDONLY, 0, 0, "mode=755,size=1k"},
    {"\"newinstance\",\"ptmxmode=0666\"", 0, 0, 0, "newinstance,ptmxmode=0666"},
};

static void check_opt_case(const struct opt_case *oc) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"root\":{\"path\":\"/\"},\"mounts\":[{\"destination\":\"/m\",\"source\":\"/s\",\"options\":[%s]}]}",
           oc->opts);
  _cleanup_config_ struct bivy_config *c = parse_ok(json, "/");
  struct bivy_mount *m = &c->mounts[0];
  cr_assert_eq(m->flags, oc->flags, "%s: flags %#lx", oc->opts, m->flags);
  cr_assert_eq(m->clear_flags, oc->clear, "%s: clear %#lx", oc->opts, m->clear_flags);
  cr_assert_eq(m->propagation, oc->propagation, "%s", oc->opts);
  if (oc->data) cr_assert_str_eq(m->data, oc->data);
  else cr_assert_null(m->data, "%s: data %s", oc->opts, m->data);
}

Test(config_mounts, option_table) {
  for (size_t i = 0; i < sizeof opt_cases / sizeof opt_cases[0]; i++) check_opt_case(&opt_cases[i]);
}

Test(config_mounts, type_bind_implies_bind) {
  _cleanup_config_ struct bivy_config *c = parse_ok(
      "{\"root\":{\"path\":\"/\"},\"mounts\":[{\"destination\":\"/m\",\"type\":\"bind\",\"source\":\"/s\"}]}", "/");
  cr_assert(c->mounts[0].bind);
  cr_assert_eq(c->mounts[0].flags, MS_BIND);
}

/* ---- names ---- */

Test(config_names, namespaces) {
  cr_assert_str_eq(bivy_ns_name(BIVY_NS_NET), "network");
  cr_assert_str_eq(bivy_ns_proc_name(BIVY_NS_NET), "net");
  cr_assert_str_eq(bivy_ns_name(BIVY_NS_MNT), "mount");
  cr_assert_str_eq(bivy_ns_proc_name(BIVY_NS_MNT), "mnt");
  cr_assert_str_eq(bivy_ns_proc_name(BIVY_NS_TIME), "time");
  cr_assert_eq(bivy_ns_clone_flag(BIVY_NS_PID), CLONE_NEWPID);
  cr_assert_eq(bivy_ns_clone_flag(BIVY_NS_USER), CLONE_NEWUSER);
  cr_assert_eq(bivy_ns_clone_flag(BIVY_NS_MNT), CLONE_NEWNS);
  cr_assert_eq(bivy_ns_clone_flag(BIVY_NS_CGROUP), CLONE_NEWCGROUP);
  cr_assert_eq(bivy_ns_clone_flag(BIVY_NS_TIME), 0x80);
  cr_assert_str_eq(bivy_ns_name(BIVY_NS_COUNT), "unknown");
}

Test(config_mounts, recursive_attributes) {
  _cleanup_config_ struct bivy_config *c = parse_ok(
      "{\"root\":{\"path\":\"/\"},\"mounts\":[{\"destination\":\"/m\",\"source\":\"/s\","
      "\"options\":[\"rbind\",\"rro\",\"rnosuid\",\"rnoatime\",\"ridmap\"]},"
      "{\"destination\":\"/n\",\"source\":\"/s\",\"options\":[\"bind\",\"rro\",\"rrw\",\"rstrictatime\"]}]}",
      "/");
  struct bivy_mount *m = &c->mounts[0];
  cr_assert_eq(m->rec_attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME);
  cr_assert_eq(m->rec_attr_clr, MOUNT_ATTR__ATIME);
  cr_assert(m->idmap);
  cr_assert_null(m->data);
  cr_assert_eq(m->flags, MS_BIND | MS_REC);
  m = &c->mounts[1];
  cr_assert_eq(m->rec_attr_set, MOUNT_ATTR_STRICTATIME);
  cr_assert_eq(m->rec_attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR__ATIME);
  cr_assert(!m->idmap);
}

Test(config_names, mount_option_names_are_all_understood) {
  const char *o;
  size_t n = 0;
  for (size_t i = 0; (o = bivy_mount_option_name(i)); i++, n++) {
    char json[256];
    snprintf(json, sizeof json,
             "{\"root\":{\"path\":\"/\"},\"mounts\":[{\"destination\":\"/m\",\"source\":\"/s\",\"options\":[\"%s\"]}]}", o);
    _cleanup_config_ struct bivy_config *c = parse_ok(json, "/");
    cr_assert_null(c->mounts[0].data, "%s went to data", o);
  }
  cr_assert_gt(n, 30);
}

Test(config_parse, null_reads_as_absent) {
  _cleanup_config_ struct bivy_config *c =
      parse_ok("{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"/\",\"readonly\":null},\"process\":null,"
               "\"hostname\":null,\"mounts\":null,\"linux\":{\"namespaces\":null,\"resources\":null,\"seccomp\":null}}",
               "/");
  cr_assert(!c->has_process);
  cr_assert_null(c->hostname);
  cr_assert_eq(c->n_mounts, 0);
  cr_assert_null(c->resources);
  cr_assert_null(c->seccomp);
}
