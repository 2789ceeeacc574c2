/* The rootfs plan (pure data) and the capability name table: no root needed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/linux.h"

/* The default `bivy spec` config with root.path "/" (exists everywhere), edited by a jq-like
 * callback on the JSON object first. */
static struct bivy_config *load(void (*edit)(json_t *)) {
  json_t *j = bivy_config_default_spec_json(false);
  cr_assert_not_null(j);
  json_object_set_new(json_object_get(j, "root"), "path", json_string("/"));
  if (edit) edit(j);
  char *text = json_dumps(j, 0);
  json_decref(j);
  struct bivy_config *c = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_config_parse(text, strlen(text), "/tmp", &c, &err);
  free(text);
  cr_assert_eq(r, 0, "parse: %s", err ? err->msg : "?");
  return c;
}

static struct bivy_plan *plan_of(struct bivy_config *c, bool no_pivot) {
  struct bivy_plan *p = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_plan_build(c, no_pivot, &p, &err);
  cr_assert_eq(r, 0, "plan: %s", err ? err->msg : "?");
  return p;
}

/* The parser already refuses these configs; the plan checks again (defence in depth), so the
 * tests break a parsed config in memory. */
static const char *plan_error(void (*edit)(json_t *), void (*breakit)(struct bivy_config *), bool no_pivot,
                              char *buf, size_t len) {
  struct bivy_config *c = load(edit);
  if (breakit) breakit(c);
  struct bivy_plan *p = NULL;
  _cleanup_error_ bivy_error_t err = NULL;
  int r = bivy_plan_build(c, no_pivot, &p, &err);
  cr_assert_lt(r, 0, "plan unexpectedly built");
  cr_assert_null(p);
  snprintf(buf, len, "%s", err->msg);
  bivy_config_free(c);
  return buf;
}

static ssize_t find(const struct bivy_plan *p, enum bivy_op_kind k, const char *target) {
  for (size_t i = 0; i < p->n_ops; i++)
    if (p->ops[i].kind == k && (target == NULL || strcmp(p->ops[i].target, target) == 0)) return (ssize_t)i;
  return -1;
}

static size_t count(const struct bivy_plan *p, enum bivy_op_kind k) {
  size_t n = 0;
  for (size_t i = 0; i < p->n_ops; i++) n += p->ops[i].kind == k;
  return n;
}

Test(plan, default_spec_order) {
  struct bivy_config *c = load(NULL);
  struct bivy_plan *p = plan_of(c, false);
  cr_assert_eq(p->ops[0].kind, BIVY_OP_MAKE_ROOTFS_PRIVATE);
  cr_assert_eq(p->ops[0].propagation, (unsigned long)(MS_REC | MS_PRIVATE), "default rprivate");
  cr_assert_eq(p->ops[1].kind, BIVY_OP_BIND_ROOTFS);
  cr_assert_str_eq(p->ops[1].source, "/");
  /* the config mounts in config order right after */
  const char *dests[] = {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"};
  for (size_t i = 0; i < 7; i++) {
    cr_assert_eq(p->ops[2 + i].kind, BIVY_OP_MOUNT, "op %zu", 2 + i);
    cr_assert_str_eq(p->ops[2 + i].target, dests[i]);
    cr_assert_eq(p->ops[2 + i].index, (int)i);
  }
  ssize_t pivot = find(p, BIVY_OP_PIVOT_ROOT, NULL);
  cr_assert_gt(pivot, 0);
  cr_assert(!p->ops[pivot].chroot);
  /* devices and symlinks before the pivot; masks, read-only paths and root ro after */
  cr_assert_lt(find(p, BIVY_OP_MKNOD, "/dev/null"), pivot);
  cr_assert_lt(find(p, BIVY_OP_SYMLINK, "/dev/ptmx"), pivot);
  cr_assert_gt(find(p, BIVY_OP_MASK, "/proc/kcore"), pivot);
  cr_assert_gt(find(p, BIVY_OP_READONLY, "/proc/sys"), pivot);
  ssize_t ro = find(p, BIVY_OP_ROOT_READONLY, NULL);
  cr_assert_eq(ro, (ssize_t)p->n_ops - 1, "root read-only is the last op");
  cr_assert_lt(find(p, BIVY_OP_READONLY, NULL), find(p, BIVY_OP_MASK, NULL));
  cr_assert_eq(count(p, BIVY_OP_MASK), 10);
  cr_assert_eq(count(p, BIVY_OP_READONLY), 5);
  cr_assert_eq(count(p, BIVY_OP_PIVOT_ROOT), 1);
  for (size_t i = 0; i < p->n_ops; i++)
    cr_assert_str_neq(bivy_op_name(p->ops[i].kind), "unknown");
  bivy_plan_free(p);
  bivy_config_free(c);
}

Test(plan, mount_flags_from_options) {
  struct bivy_config *c = load(NULL);
  struct bivy_plan *p = plan_of(c, false);
  const struct bivy_op *dev = &p->ops[find(p, BIVY_OP_MOUNT, "/dev")];
  cr_assert_str_eq(dev->fstype, "tmpfs");
  cr_assert(dev->flags & MS_NOSUID);
  cr_assert(dev->flags & MS_STRICTATIME);
  cr_assert_not(dev->flags & MS_RDONLY);
  cr_assert_str_eq(dev->data, "mode=755,size=65536k");
  cr_assert_not(dev->bind);
  const struct bivy_op *sys = &p->ops[find(p, BIVY_OP_MOUNT, "/sys")];
  cr_assert_eq(sys->flags & (MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV),
               (unsigned long)(MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV));
  const struct bivy_op *cg = &p->ops[find(p, BIVY_OP_MOUNT, "/sys/fs/cgroup")];
  cr_assert(cg->cgroup_ns, "the default spec has a cgroup namespace");
  cr_assert(cg->flags & MS_RDONLY);
  bivy_plan_free(p);
  bivy_config_free(c);
}

static void add_binds(json_t *j) {
  json_t *m = json_object_get(j, "mounts");
  json_array_append_new(m, json_pack("{s:s, s:s, s:s, s:[s,s,s]}", "destination", "/data", "type", "bind", "source",
                                     "/var", "options", "rbind", "ro", "nosuid"));
  json_array_append_new(m, json_pack("{s:s, s:s, s:[s]}", "destination", "/plain", "source", "/tmp", "options", "bind"));
  json_array_append_new(m, json_pack("{s:s, s:s, s:s, s:[s,s]}", "destination", "/rel", "type", "none", "source",
                                     "data/x", "options", "bind", "rprivate"));
  json_array_append_new(m, json_pack("{s:s, s:s, s:s, s:[s,s,s]}", "destination", "/scratch", "type", "tmpfs",
                                     "source", "tmpfs", "options", "noexec", "size=1m", "mode=700"));
}

Test(plan, readonly_bind_needs_remount) {
  struct bivy_config *c = load(add_binds);
  struct bivy_plan *p = plan_of(c, false);
  const struct bivy_op *data = &p->ops[find(p, BIVY_OP_MOUNT, "/data")];
  cr_assert(data->bind);
  cr_assert(data->recursive, "rbind recurses");
  cr_assert(data->remount, "ro on a bind needs the remount step");
  cr_assert(data->flags & MS_RDONLY);
  cr_assert(data->flags & MS_NOSUID);
  cr_assert_str_eq(data->source, "/var");
  const struct bivy_op *plain = &p->ops[find(p, BIVY_OP_MOUNT, "/plain")];
  cr_assert(plain->bind);
  cr_assert_not(plain->recursive, "\"bind\" alone does not recurse");
  cr_assert_not(plain->remount, "no flags: no remount");
  const struct bivy_op *rel = &p->ops[find(p, BIVY_OP_MOUNT, "/rel")];
  cr_assert_str_eq(rel->source, "/tmp/data/x", "relative bind source is taken from the bundle");
  cr_assert_eq(rel->propagation, (unsigned long)(MS_REC | MS_PRIVATE));
  const struct bivy_op *s = &p->ops[find(p, BIVY_OP_MOUNT, "/scratch")];
  cr_assert_not(s->bind);
  cr_assert_not(s->remount);
  cr_assert(s->flags & MS_NOEXEC);
  cr_assert_str_eq(s->data, "size=1m,mode=700");
  bivy_plan_free(p);
  bivy_config_free(c);
}

Test(plan, masks_and_readonly_paths) {
  struct bivy_config *c = load(NULL);
  struct bivy_plan *p = plan_of(c, false);
  const struct bivy_op *k = &p->ops[find(p, BIVY_OP_MASK, "/proc/kcore")];
  cr_assert(k->ignore_missing, "a masked path that does not exist is fine");
  cr_assert_str_eq(k->source, "/dev/null");
  cr_assert(k->flags & MS_RDONLY);
  cr_assert_geq(find(p, BIVY_OP_MASK, "/sys/firmware"), 0);
  const struct bivy_op *s = &p->ops[find(p, BIVY_OP_READONLY, "/proc/sys")];
  cr_assert(s->flags & MS_RDONLY);
  cr_assert(s->ignore_missing);
  bivy_plan_free(p);
  bivy_config_free(c);
}

static void add_devices(json_t *j) {
  json_t *l = json_object_get(j, "linux");
  json_object_set_new(l, "devices",
                      json_pack("[{s:s, s:s, s:i, s:i, s:i}, {s:s, s:s, s:i, s:i}]", "path", "/dev/fuse", "type", "c",
                                "major", 10, "minor", 229, "fileMode", 0600, "path", "/dev/null", "type", "c",
                                "major", 1, "minor", 3));
}

Test(plan, devices) {
  struct bivy_config *c = load(add_devices);
  struct bivy_plan *p = plan_of(c, false);
  cr_assert_not(p->userns);
  const char *defaults[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"};
  const int minors[] = {3, 5, 7, 8, 9, 0};
  for (size_t i = 0; i < 6; i++) {
    ssize_t k = find(p, BIVY_OP_MKNOD, defaults[i]);
    cr_assert_geq(k, 0, "%s", defaults[i]);
    cr_assert_eq(p->ops[k].device->type, 'c');
    cr_assert_eq(p->ops[k].device->minor, minors[i], "%s", defaults[i]);
    cr_assert_not(p->ops[k].bind);
  }
  cr_assert_eq(count(p, BIVY_OP_MKNOD), 7, "6 defaults (one overridden by config) + fuse");
  const struct bivy_op *f = &p->ops[find(p, BIVY_OP_MKNOD, "/dev/fuse")];
  cr_assert_eq(f->device->major, 10);
  cr_assert_eq(f->device->minor, 229);
  cr_assert_eq(f->device->file_mode, 0600);
  /* the /dev symlinks */
  const char *links[][2] = {{"/dev/fd", "/proc/self/fd"},
                            {"/dev/stdin", "/proc/self/fd/0"},
                            {"/dev/stdout", "/proc/self/fd/1"},
                            {"/dev/stderr", "/proc/self/fd/2"},
                            {"/dev/core", "/proc/kcore"},
                            {"/dev/ptmx", "pts/ptmx"}};
  for (size_t i = 0; i < 6; i++) {
    ssize_t k = find(p, BIVY_OP_SYMLINK, links[i][0]);
    cr_assert_geq(k, 0, "%s", links[i][0]);
    cr_assert_str_eq(p->ops[k].link_target, links[i][1]);
  }
  bivy_plan_free(p);
  bivy_config_free(c);
}

static void add_userns(json_t *j) {
  json_t *l = json_object_get(j, "linux");
  json_array_append_new(json_object_get(l, "namespaces"), json_pack("{s:s}", "type", "user"));
  json_object_set_new(l, "uidMappings", json_pack("[{s:i,s:i,s:i}]", "containerID", 0, "hostID", 100000, "size", 65536));
  json_object_set_new(l, "gidMappings", json_pack("[{s:i,s:i,s:i}]", "containerID", 0, "hostID", 100000, "size", 65536));
  add_devices(j);
}

Test(plan, userns_binds_devices) {
  struct bivy_config *c = load(add_userns);
  struct bivy_plan *p = plan_of(c, false);
  cr_assert(p->userns);
  size_t n = 0;
  for (size_t i = 0; i < p->n_ops; i++)
    if (p->ops[i].kind == BIVY_OP_MKNOD) {
      cr_assert(p->ops[i].bind, "%s must be bind-mounted from the host in a user ns", p->ops[i].target);
      cr_assert_str_eq(p->ops[i].source, p->ops[i].target);
      n++;
    }
  cr_assert_eq(n, 7);
  bivy_plan_free(p);
  bivy_config_free(c);
}

static void dev_bind(json_t *j) {
  json_t *m = json_object_get(j, "mounts");
  json_array_set_new(m, 1, json_pack("{s:s, s:s, s:[s]}", "destination", "/dev/", "source", "/dev", "options", "rbind"));
}

Test(plan, dev_bind_mount_skips_default_devices) {
  struct bivy_config *c = load(dev_bind);
  struct bivy_plan *p = plan_of(c, false);
  cr_assert_eq(count(p, BIVY_OP_MKNOD), 0, "a host /dev bind is used as is");
  cr_assert_eq(count(p, BIVY_OP_SYMLINK), 0);
  bivy_plan_free(p);
  bivy_config_free(c);
}

Test(plan, no_pivot_uses_chroot) {
  struct bivy_config *c = load(NULL);
  struct bivy_plan *p = plan_of(c, true);
  ssize_t k = find(p, BIVY_OP_PIVOT_ROOT, NULL);
  cr_assert_geq(k, 0);
  cr_assert(p->ops[k].chroot);
  bivy_plan_free(p);
  bivy_config_free(c);
}

static void prop_slave(json_t *j) { json_object_set_new(json_object_get(j, "linux"), "rootfsPropagation", json_string("rslave")); }
static void prop_shared(json_t *j) { json_object_set_new(json_object_get(j, "linux"), "rootfsPropagation", json_string("shared")); }

Test(plan, propagation) {
  struct bivy_config *c = load(prop_slave);
  struct bivy_plan *p = plan_of(c, false);
  cr_assert_eq(p->ops[0].propagation, (unsigned long)(MS_REC | MS_SLAVE));
  cr_assert_eq(p->ops[find(p, BIVY_OP_PIVOT_ROOT, NULL)].propagation, 0ul);
  bivy_plan_free(p);
  bivy_config_free(c);
  /* shared: never toward the host before the pivot; applied to the new root after it */
  c = load(prop_shared);
  p = plan_of(c, false);
  cr_assert_eq(p->ops[0].propagation, (unsigned long)(MS_REC | MS_SLAVE));
  cr_assert(p->ops[find(p, BIVY_OP_PIVOT_ROOT, NULL)].propagation & MS_SHARED);
  bivy_plan_free(p);
  bivy_config_free(c);
}

static void sysctl_ok(json_t *j) {
  json_object_set_new(json_object_get(j, "linux"), "sysctl",
                      json_pack("{s:s, s:s, s:s}", "net.ipv4.ip_forward", "1", "kernel.shmmax", "65536",
                                "fs.mqueue.msg_max", "20"));
}
static void drop_ns(struct bivy_config *c, enum bivy_ns_type t) {
  for (size_t i = 0; i < c->n_namespaces; i++)
    if (c->namespaces[i].type == t) {
      free(c->namespaces[i].path);
      c->namespaces[i] = c->namespaces[--c->n_namespaces];
      return;
    }
  cr_assert_fail("no such namespace");
}
static void sysctl_kernel(struct bivy_config *c) {
  free(c->sysctls[0].key);
  c->sysctls[0].key = strdup("kernel.pid_max");
}
static void sysctl_net_no_netns(struct bivy_config *c) {
  drop_ns(c, BIVY_NS_NET);
}

Test(plan, sysctl_validation) {
  struct bivy_config *c = load(sysctl_ok);
  struct bivy_plan *p = plan_of(c, false);
  cr_assert_eq(count(p, BIVY_OP_SYSCTL), 3);
  ssize_t s = find(p, BIVY_OP_SYSCTL, NULL);
  cr_assert_gt(s, find(p, BIVY_OP_PIVOT_ROOT, NULL));
  cr_assert_lt(s, find(p, BIVY_OP_READONLY, "/proc/sys"), "sysctl before /proc/sys turns read-only");
  bivy_plan_free(p);
  bivy_config_free(c);
  char buf[512];
  const char *e = plan_error(sysctl_ok, sysctl_kernel, false, buf, sizeof(buf));
  cr_assert(strstr(e, "kernel.pid_max") && strstr(e, "not a namespaced sysctl"), "%s", e);
  e = plan_error(sysctl_ok, sysctl_net_no_netns, false, buf, sizeof(buf));
  cr_assert(strstr(e, "net.ipv4.ip_forward") && strstr(e, "network namespace"), "%s", e);
}

static void hostname_box(json_t *j) { json_object_set_new(j, "hostname", json_string("box")); }
static void hostname_no_uts(struct bivy_config *c) { drop_ns(c, BIVY_NS_UTS); }

Test(plan, hostname_needs_uts_namespace) {
  char buf[512];
  const char *e = plan_error(hostname_box, hostname_no_uts, false, buf, sizeof(buf));
  cr_assert(strstr(e, "hostname") && strstr(e, "uts namespace"), "%s", e);
}

static void bind_no_source(struct bivy_config *c) {
  free(c->mounts[7].source);
  c->mounts[7].source = NULL;
}

Test(plan, bind_without_source_fails) {
  char buf[512];
  const char *e = plan_error(add_binds, bind_no_source, false, buf, sizeof(buf));
  cr_assert(strstr(e, "mounts[7].source"), "%s", e);
}

Test(caps, name_bit_mapping) {
  cr_assert_str_eq(bivy_cap_name(0), "CAP_CHOWN");
  cr_assert_str_eq(bivy_cap_name(21), "CAP_SYS_ADMIN");
  cr_assert_str_eq(bivy_cap_name(24), "CAP_SYS_RESOURCE");
  cr_assert_str_eq(bivy_cap_name(40), "CAP_CHECKPOINT_RESTORE");
  cr_assert_null(bivy_cap_name(64));
  cr_assert_null(bivy_cap_name(-1));
  cr_assert_eq(bivy_cap_from_name("CAP_NET_BIND_SERVICE"), 10);
  cr_assert_eq(bivy_cap_from_name("cap_kill"), 5);
  cr_assert_eq(bivy_cap_from_name("SYS_ADMIN"), 21);
  cr_assert_eq(bivy_cap_from_name("CAP_FOO"), -EINVAL);
  for (int i = 0; i <= 40; i++) cr_assert_eq(bivy_cap_from_name(bivy_cap_name(i)), i);
}

Test(caps, check_available_names_the_capability) {
  struct bivy_process p = {.has_caps = true};
  p.caps.bounding = 1ull << 63; /* no kernel has capability 63 */
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_lt(bivy_caps_check_available(&p, &err), 0);
  cr_assert(strstr(err->msg, "process.capabilities.bounding"), "%s", err->msg);
  p.has_caps = false;
  cr_assert_eq(bivy_caps_check_available(&p, &err), 0, "no capabilities object: nothing to check");
}

Test(hooks, kind_names) {
  cr_assert_str_eq(bivy_hook_kind_name(BIVY_HOOK_CREATE_RUNTIME), "createRuntime");
  cr_assert_str_eq(bivy_hook_kind_name(BIVY_HOOK_POSTSTOP), "poststop");
}

Test(hooks, exit_status_and_timeout) {
  struct bivy_hook h[2] = {{.path = (char *)"/bin/sh"}};
  char *args_fail[] = {"sh", "-c", "read x; echo \"got $x\"; exit 3", NULL};
  h[0].args = args_fail;
  struct bivy_config c = {0};
  c.hooks[BIVY_HOOK_CREATE_RUNTIME] = h;
  c.n_hooks[BIVY_HOOK_CREATE_RUNTIME] = 1;
  _cleanup_error_ bivy_error_t err = NULL;
  cr_assert_lt(bivy_hooks_run(&c, BIVY_HOOK_CREATE_RUNTIME, "{\"id\":\"x\"}\n", &err), 0);
  cr_assert(strstr(err->msg, "hook createRuntime[0] /bin/sh: exit status 3: got {\"id\":\"x\"}"), "%s", err->msg);
  char *args_sleep[] = {"sh", "-c", "exec sleep 30", NULL};
  h[0].args = args_sleep;
  h[0].timeout = 1;
  cr_assert_lt(bivy_hooks_run(&c, BIVY_HOOK_CREATE_RUNTIME, "{}", &err), 0);
  cr_assert(strstr(err->msg, "hook createRuntime[0] /bin/sh: timed out after 1 s"), "%s", err->msg);
  h[0].path = (char *)"/nonexistent/hook";
  cr_assert_lt(bivy_hooks_run(&c, BIVY_HOOK_CREATE_RUNTIME, "{}", &err), 0);
  cr_assert(strstr(err->msg, "hook createRuntime[0] /nonexistent/hook: No such file or directory"), "%s", err->msg);
  h[0].path = (char *)"/bin/sh";
  char *args_ok[] = {"sh", "-c", "cat >/dev/null", NULL};
  h[0].args = args_ok;
  h[0].timeout = 0;
  cr_assert_eq(bivy_hooks_run(&c, BIVY_HOOK_CREATE_RUNTIME, "{}", &err), 0, "%s", err ? err->msg : "");
}
