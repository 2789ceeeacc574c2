/* bivyd layer 0 (policy): a node's admission policy for cluster instances (see node-policy.h). */
#include "tools/bivyd/policy/node-policy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cleanup.h"
#include "runtime/util.h"

struct bivy_node_policy {
  json_t *rootfs_prefixes, *bundle_prefixes, *bind_prefixes; /* arrays of strings, NULL = any */
  bool no_binds, no_host_ns, no_devices, no_privileged;
  json_t *max_caps; /* array, NULL = any */
  int64_t max_memory, max_pids; /* 0 = no ceiling */
  double max_cpus;
};

void bivy_node_policy_free(struct bivy_node_policy *p) {
  if (p == NULL) return;
  json_decref(p->rootfs_prefixes);
  json_decref(p->bundle_prefixes);
  json_decref(p->bind_prefixes);
  json_decref(p->max_caps);
  free(p);
}

static void policy_freep(struct bivy_node_policy **p) { bivy_node_policy_free(*p); }

/* an array of absolute paths, trailing '/' dropped ("/" stays) */
static int prefixes(json_t *v, const char *what, const char *key, json_t **out, bivy_error_t *err) {
  if (!json_is_array(v)) return bivy_error_plain(err, EINVAL, "%s: %s: must be an array of absolute paths", what, key);
  json_t *a = json_array();
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    const char *s = json_string_value(e);
    if (s == NULL || s[0] != '/' || strstr(s, "/../") || (strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0)) {
      json_decref(a);
      return bivy_error_plain(err, EINVAL, "%s: %s[%zu]: must be an absolute path without \"..\"", what, key, i);
    }
    size_t l = strlen(s);
    while (l > 1 && s[l - 1] == '/') l--;
    json_array_append_new(a, json_stringn(s, l));
  }
  *out = a;
  return 0;
}

/* false (restricted) or true (allowed); *deny = false given */
static int allowed_flag(json_t *v, const char *what, const char *key, bool *deny, bivy_error_t *err) {
  if (!json_is_boolean(v)) return bivy_error_plain(err, EINVAL, "%s: %s: must be true or false", what, key);
  *deny = json_is_false(v);
  return 0;
}

int bivy_node_policy_parse(json_t *j, const char *what, struct bivy_node_policy **out, bivy_error_t *err) {
  *out = NULL;
  if (!json_is_object(j)) return bivy_error_plain(err, EINVAL, "%s: must be a JSON object", what);
  _cleanup_(policy_freep) struct bivy_node_policy *p = calloc(1, sizeof *p);
  if (p == NULL) return bivy_error(err, ENOMEM, "%s", what);
  const char *k;
  json_t *v;
  int r = 0;
  json_object_foreach(j, k, v) {
    if (strcmp(k, "rootfs_prefixes") == 0) r = prefixes(v, what, k, &p->rootfs_prefixes, err);
    else if (strcmp(k, "bundle_prefixes") == 0) r = prefixes(v, what, k, &p->bundle_prefixes, err);
    else if (strcmp(k, "host_bind_mounts") == 0) {
      if (json_is_array(v)) r = prefixes(v, what, k, &p->bind_prefixes, err);
      else if (json_is_boolean(v)) p->no_binds = json_is_false(v);
      else r = bivy_error_plain(err, EINVAL, "%s: %s: must be false, true or an array of allowed source prefixes", what, k);
    } else if (strcmp(k, "host_namespaces") == 0) r = allowed_flag(v, what, k, &p->no_host_ns, err);
    else if (strcmp(k, "devices") == 0) r = allowed_flag(v, what, k, &p->no_devices, err);
    else if (strcmp(k, "privileged") == 0) r = allowed_flag(v, what, k, &p->no_privileged, err);
    else if (strcmp(k, "max_capabilities") == 0) {
      size_t i;
      json_t *c;
      if (!json_is_array(v)) r = bivy_error_plain(err, EINVAL, "%s: %s: must be an array of capability names", what, k);
      json_array_foreach(v, i, c) {
        const char *s = json_string_value(c);
        if (r == 0 && (s == NULL || strncmp(s, "CAP_", 4) != 0 || s[4] == '\0'))
          r = bivy_error_plain(err, EINVAL, "%s: %s[%zu]: not a capability name (CAP_...)", what, k, i);
      }
      if (r == 0) p->max_caps = json_incref(v);
    } else if (strcmp(k, "max_memory") == 0) {
      int64_t b = -1;
      if (json_is_integer(v)) b = (int64_t)json_integer_value(v);
      else if (json_is_string(v) && bivy_parse_size(json_string_value(v), &b) < 0) b = -1;
      if (b < 4 * 1024 * 1024) r = bivy_error_plain(err, EINVAL, "%s: %s: invalid size (bytes or \"512M\", at least 4M)", what, k);
      p->max_memory = b;
    } else if (strcmp(k, "max_cpus") == 0) {
      p->max_cpus = json_number_value(v);
      if (!json_is_number(v) || !(p->max_cpus >= 0.01 && p->max_cpus <= 4096))
        r = bivy_error_plain(err, EINVAL, "%s: %s: must be a number of CPUs (0.01-4096)", what, k);
    } else if (strcmp(k, "max_pids") == 0) {
      p->max_pids = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
      if (p->max_pids < 1) r = bivy_error_plain(err, EINVAL, "%s: %s: must be a positive integer", what, k);
    } else
      r = bivy_error_plain(err, EINVAL,
                     "%s: %s: unknown key (rootfs_prefixes, bundle_prefixes, host_bind_mounts, host_namespaces, devices, "
                     "privileged, max_capabilities, max_memory, max_cpus, max_pids)",
                     what, k);
    if (r < 0) return r;
  }
  *out = steal_pointer(&p);
  return 0;
}

int bivy_node_policy_load(const char *path, struct bivy_node_policy **out, bivy_error_t *err) {
  _cleanup_free_ char *what = NULL, *text = NULL;
  size_t len = 0;
  if (asprintf(&what, "--cluster-policy %s", path) < 0) return bivy_error(err, ENOMEM, "--cluster-policy");
  if (bivy_read_file_at(AT_FDCWD, path, &text, &len, err) < 0) return bivy_error_wrap(err, "--cluster-policy");
  json_error_t je;
  _cleanup_json_ json_t *j = json_loadb(text, len, 0, &je);
  if (j == NULL) return bivy_error_plain(err, EINVAL, "%s: line %d: %s", what, je.line, je.text);
  return bivy_node_policy_parse(j, what, out, err);
}

/* ---- checks ---- */

static bool under(const char *path, const char *prefix) {
  size_t l = strlen(prefix);
  if (strcmp(prefix, "/") == 0) return true;
  return strncmp(path, prefix, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

/* path resolved on this node (symlinks and ".." cannot lead out of a prefix) lies under
 * one of prefixes; *resolved for the message */
static bool path_allowed(const char *path, json_t *prefixes, char resolved[PATH_MAX]) {
  if (realpath(path, resolved) == NULL) {
    snprintf(resolved, PATH_MAX, "%s", path);
    return false;
  }
  size_t i;
  json_t *e;
  json_array_foreach(prefixes, i, e) if (under(resolved, json_string_value(e))) return true;
  return false;
}

#define refuse(key, ...) (*rule = (key), bivy_error_plain(err, EPERM, __VA_ARGS__))

static bool has_opt(json_t *m, const char *opt) {
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(m, "options"), i, o) if (strcmp(json_string_value(o) ?: "", opt) == 0) return true;
  return false;
}

static int check_binds(const struct bivy_node_policy *p, json_t *spec, json_t *cfg, const char **rule, bivy_error_t *err) {
  const char *bundle = json_string_value(json_object_get(spec, "bundle"));
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(cfg, "mounts"), i, m) {
    const char *type = json_string_value(json_object_get(m, "type")) ?: "";
    if (strcmp(type, "bind") != 0 && !has_opt(m, "bind") && !has_opt(m, "rbind")) continue;
    const char *src = json_string_value(json_object_get(m, "source")) ?: "";
    _cleanup_free_ char *abs = NULL;
    if (src[0] != '/' && asprintf(&abs, "%s/%s", bundle ? bundle : "", src) < 0) return bivy_error(err, ENOMEM, "mounts");
    char res[PATH_MAX];
    /* a bind mount hands the container a piece of the host's filesystem: "/" is all of it */
    if (p->no_binds) return refuse("host_bind_mounts", "mounts[%zu]: bind mount of host path \"%s\"", i, src);
    if (p->bind_prefixes && !path_allowed(abs ? abs : src, p->bind_prefixes, res))
      return refuse("host_bind_mounts", "mounts[%zu]: bind mount of host path \"%s\" outside the allowed prefixes", i, res);
  }
  return 0;
}

static int check_namespaces(json_t *spec, json_t *cfg, const char **rule, bivy_error_t *err) {
  json_t *linux_ = json_object_get(cfg, "linux");
  const char *net = json_string_value(json_object_get(spec, "net"))
                        ?: json_string_value(json_object_get(json_object_get(cfg, "annotations"), "org.bivy.net"));
  /* the host's (or another container's) network: its interfaces, ports and abstract sockets */
  if (net && (strcmp(net, "host") == 0 || strncmp(net, "container:", 10) == 0 || strncmp(net, "ns:", 3) == 0))
    return refuse("host_namespaces", "net \"%s\" shares a network namespace", net);
  static const char *const need[] = {"pid", "mount", "ipc", "uts", "network"};
  for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
    bool found = false;
    size_t i;
    json_t *ns;
    json_array_foreach(json_object_get(linux_, "namespaces"), i, ns) {
      if (strcmp(json_string_value(json_object_get(ns, "type")) ?: "", need[k]) != 0) continue;
      /* joining a namespace by path shares it with whoever made it, the host included */
      if (json_object_get(ns, "path"))
        return refuse("host_namespaces", "linux.namespaces[%zu]: joins the %s namespace at %s", i, need[k],
                      json_string_value(json_object_get(ns, "path")) ?: "?");
      found = true;
    }
    if (!found) return refuse("host_namespaces", "linux.namespaces: no %s namespace (the host's would be shared)", need[k]);
  }
  return 0;
}

static int check_devices(json_t *cfg, const char **rule, bivy_error_t *err) {
  json_t *linux_ = json_object_get(cfg, "linux");
  if (json_array_size(json_object_get(linux_, "devices")) > 0)
    return refuse("devices", "linux.devices: %zu device node(s) requested", json_array_size(json_object_get(linux_, "devices")));
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(json_object_get(linux_, "resources"), "devices"), i, d) {
    /* an allow rule opens a host device (a disk, /dev/mem) to the container */
    if (json_is_true(json_object_get(d, "allow")))
      return refuse("devices", "linux.resources.devices[%zu]: allows device access", i);
  }
  return 0;
}

static int check_privileged(json_t *cfg, const char **rule, bivy_error_t *err) {
  json_t *linux_ = json_object_get(cfg, "linux");
  if (!json_is_object(json_object_get(linux_, "seccomp")))
    return refuse("privileged", "linux.seccomp: no seccomp filter (every system call allowed)");
  if (json_array_size(json_object_get(linux_, "maskedPaths")) == 0)
    return refuse("privileged", "linux.maskedPaths: none (/proc/kcore, /proc/keys ... visible)");
  if (json_array_size(json_object_get(linux_, "readonlyPaths")) == 0)
    return refuse("privileged", "linux.readonlyPaths: none (/proc/sys, /proc/sysrq-trigger ... writable)");
  if (!json_is_true(json_object_get(json_object_get(cfg, "process"), "noNewPrivileges")))
    return refuse("privileged", "process.noNewPrivileges: not set (setuid binaries could gain privileges)");
  return 0;
}

static int check_caps(json_t *max, json_t *cfg, const char **rule, bivy_error_t *err) {
  static const char *const sets[] = {"bounding", "effective", "inheritable", "permitted", "ambient"};
  json_t *caps = json_object_get(json_object_get(cfg, "process"), "capabilities");
  for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
    size_t i, k;
    json_t *c, *m;
    json_array_foreach(json_object_get(caps, sets[s]), i, c) {
      bool ok = false;
      json_array_foreach(max, k, m) ok = ok || json_equal(c, m);
      if (!ok)
        return refuse("max_capabilities", "process.capabilities.%s: %s is not allowed", sets[s], json_string_value(c) ?: "?");
    }
  }
  return 0;
}

static int check_ceilings(const struct bivy_node_policy *p, json_t *cfg, const char **rule, bivy_error_t *err) {
  json_t *res = json_object_get(json_object_get(cfg, "linux"), "resources");
  if (p->max_memory) {
    json_t *l = json_object_get(json_object_get(res, "memory"), "limit");
    int64_t v = json_is_integer(l) ? (int64_t)json_integer_value(l) : -1;
    if (v <= 0) return refuse("max_memory", "no memory limit (this node's ceiling is %" PRId64 " bytes)", p->max_memory);
    if (v > p->max_memory)
      return refuse("max_memory", "memory limit %" PRId64 " above this node's ceiling %" PRId64, v, p->max_memory);
  }
  if (p->max_cpus > 0) {
    json_t *cpu = json_object_get(res, "cpu");
    int64_t q = json_is_integer(json_object_get(cpu, "quota")) ? (int64_t)json_integer_value(json_object_get(cpu, "quota")) : -1;
    int64_t per = (int64_t)json_integer_value(json_object_get(cpu, "period"));
    if (per <= 0) per = 100000;
    if (q <= 0) return refuse("max_cpus", "no CPU limit (this node's ceiling is %g CPUs)", p->max_cpus);
    if ((double)q / (double)per > p->max_cpus + 1e-9)
      return refuse("max_cpus", "CPU limit %g above this node's ceiling %g", (double)q / (double)per, p->max_cpus);
  }
  if (p->max_pids) {
    json_t *l = json_object_get(json_object_get(res, "pids"), "limit");
    int64_t v = json_is_integer(l) ? (int64_t)json_integer_value(l) : -1;
    if (v <= 0) return refuse("max_pids", "no pids limit (this node's ceiling is %" PRId64 ")", p->max_pids);
    if (v > p->max_pids) return refuse("max_pids", "pids limit %" PRId64 " above this node's ceiling %" PRId64, v, p->max_pids);
  }
  return 0;
}

int bivy_node_policy_check(const struct bivy_node_policy *p, json_t *spec, json_t *cfg, const char **rule,
                           bivy_error_t *err) {
  *rule = NULL;
  if (p == NULL) return 0;
  char res[PATH_MAX];
  const char *bundle = json_string_value(json_object_get(spec, "bundle"));
  if (bundle && p->bundle_prefixes && !path_allowed(bundle, p->bundle_prefixes, res))
    return refuse("bundle_prefixes", "bundle %s is not under an allowed prefix", res);
  const char *root = json_string_value(json_object_get(json_object_get(cfg, "root"), "path"));
  if (p->rootfs_prefixes && (root == NULL || !path_allowed(root, p->rootfs_prefixes, res)))
    return refuse("rootfs_prefixes", "root filesystem %s is not under an allowed prefix", root ? res : "(none)");
  int r;
  if ((p->no_binds || p->bind_prefixes) && (r = check_binds(p, spec, cfg, rule, err)) < 0) return r;
  if (p->no_host_ns && (r = check_namespaces(spec, cfg, rule, err)) < 0) return r;
  if (p->no_devices && (r = check_devices(cfg, rule, err)) < 0) return r;
  if (p->no_privileged && (r = check_privileged(cfg, rule, err)) < 0) return r;
  if (p->max_caps && (r = check_caps(p->max_caps, cfg, rule, err)) < 0) return r;
  return check_ceilings(p, cfg, rule, err);
}
