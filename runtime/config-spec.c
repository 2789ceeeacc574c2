/* The default config.json that `bivy spec` writes (runc's defaults, terminal off). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/seccomp.h"

static json_t *strings(const char *const *v) {
  json_t *a = json_array();
  for (; a && *v; v++) json_array_append_new(a, json_string(*v));
  return a;
}

static const char *const default_caps[] = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", NULL};

static const char *const masked[] = {"/proc/acpi",         "/proc/asound",      "/proc/kcore",
                                     "/proc/keys",         "/proc/latency_stats", "/proc/timer_list",
                                     "/proc/timer_stats",  "/proc/sched_debug", "/sys/firmware",
                                     "/proc/scsi",         NULL};
static const char *const readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
                                       NULL};

static json_t *mount(const char *dst, const char *type, const char *src, const char *const *opts) {
  json_t *m = json_pack("{s:s, s:s, s:s}", "destination", dst, "type", type, "source", src);
  if (m && opts) json_object_set_new(m, "options", strings(opts));
  return m;
}

json_t *bivy_config_default_spec_json(bool rootless) {
  json_t *caps = strings(default_caps);
  json_t *spec = json_pack(
      "{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:[s, s], s:s, s:{s:O, s:O, s:O}, s:[{s:s, s:i, s:i}], s:b},"
      " s:{s:s, s:b}, s:s}",
      "ociVersion", "1.2.0",
      "process",
      "terminal", 0,
      "user", "uid", 0, "gid", 0,
      "args", "sh",
      "env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
      "cwd", "/",
      "capabilities", "bounding", caps, "effective", caps, "permitted", caps,
      "rlimits", "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024,
      "noNewPrivileges", 1,
      "root", "path", "rootfs", "readonly", 1,
      "hostname", "bivy");
  json_decref(caps);
  if (spec == NULL) return NULL;

  static const char *const dev_o[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
  static const char *const pts_o[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL};
  static const char *const pts_rootless_o[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                                               NULL};
  static const char *const shm_o[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL};
  static const char *const mq_o[] = {"nosuid", "noexec", "nodev", NULL};
  static const char *const sys_o[] = {"nosuid", "noexec", "nodev", "ro", NULL};
  static const char *const sys_rootless_o[] = {"rbind", "nosuid", "noexec", "nodev", "ro", NULL};
  static const char *const cg_o[] = {"nosuid", "noexec", "nodev", "relatime", "ro", NULL};
  json_t *mounts = json_array();
  json_array_append_new(mounts, mount("/proc", "proc", "proc", NULL));
  json_array_append_new(mounts, mount("/dev", "tmpfs", "tmpfs", dev_o));
  /* gid=5 (tty) does not exist in a user namespace that maps only the caller */
  json_array_append_new(mounts, mount("/dev/pts", "devpts", "devpts", rootless ? pts_rootless_o : pts_o));
  json_array_append_new(mounts, mount("/dev/shm", "tmpfs", "shm", shm_o));
  json_array_append_new(mounts, mount("/dev/mqueue", "mqueue", "mqueue", mq_o));
  /* without a network namespace of its own, a container may not mount a fresh sysfs */
  if (rootless) json_array_append_new(mounts, mount("/sys", "none", "/sys", sys_rootless_o));
  else json_array_append_new(mounts, mount("/sys", "sysfs", "sysfs", sys_o));
  json_array_append_new(mounts, mount("/sys/fs/cgroup", "cgroup", "cgroup", cg_o));
  json_object_set_new(spec, "mounts", mounts);

  json_t *lx = json_object();
  if (!rootless)
    json_object_set_new(lx, "resources", json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm"));
  json_t *ns = json_array();
  static const char *const ns_default[] = {"pid", "network", "ipc", "uts", "mount", "cgroup", NULL};
  static const char *const ns_rootless[] = {"pid", "ipc", "uts", "mount", "cgroup", "user", NULL};
  for (const char *const *n = rootless ? ns_rootless : ns_default; *n; n++)
    json_array_append_new(ns, json_pack("{s:s}", "type", *n));
  json_object_set_new(lx, "namespaces", ns);
  if (rootless) {
    /* the caller's own ids become root inside; nothing else is mapped */
    json_object_set_new(lx, "uidMappings",
                        json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t)geteuid(), "size", 1));
    json_object_set_new(lx, "gidMappings",
                        json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t)getegid(), "size", 1));
  }
  json_object_set_new(lx, "maskedPaths", strings(masked));
  json_object_set_new(lx, "readonlyPaths", strings(readonly));
  json_object_set_new(spec, "linux", lx);
  return spec;
}

char *bivy_config_default_spec(bool rootless) {
  _cleanup_json_ json_t *spec = bivy_config_default_spec_json(rootless);
  if (spec == NULL) return NULL;
  /* safe by default: the built-in seccomp profile when there is one */
  const char *prof = bivy_seccomp_builtin("default");
  if (prof) {
    json_t *s = json_loads(prof, 0, NULL);
    if (s) json_object_set_new(json_object_get(spec, "linux"), "seccomp", s);
  }
  return json_dumps(spec, JSON_INDENT(2));
}
