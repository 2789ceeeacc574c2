/* config.json "linux": namespaces, id mappings, devices, paths, propagation, sysctl. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "runtime/cleanup.h"
#include "runtime/config-internal.h"

static int parse_namespaces(struct bivy_config *c, json_t *j, const struct jp *p, bivy_error_t *err) {
  int r = cfg_array(j, p, err);
  if (r < 0) return r;
  size_t n = json_array_size(j);
  if (n == 0) return 0;
  c->namespaces = calloc(n, sizeof *c->namespaces);
  if (c->namespaces == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(j, i);
    const struct jp *pi = JP_IDX(p, i);
    if ((r = cfg_object(e, pi, err)) < 0) return r;
    const struct jp *pt = JP_KEY(pi, "type");
    const char *name;
    if ((r = cfg_str_ref(cfg_get(e, "type"), pt, &name, err)) < 0) return r;
    int type = -1;
    for (int k = 0; k < BIVY_NS_COUNT; k++)
      if (strcmp(bivy_ns_name((enum bivy_ns_type)k), name) == 0) type = k;
    if (type < 0) return cfg_fail(err, pt, 0, "unknown namespace \"%s\"", name);
    if (bivy_config_ns(c, (enum bivy_ns_type)type)) return cfg_fail(err, pt, 0, "duplicate namespace \"%s\"", name);
    struct bivy_namespace *ns = &c->namespaces[c->n_namespaces++];
    ns->type = (enum bivy_ns_type)type;
    if ((r = cfg_abs_path(cfg_get(e, "path"), JP_KEY(pi, "path"), false, &ns->path, err)) < 0) return r;
  }
  return 0;
}

static int parse_mappings(json_t *j, const struct jp *p, struct bivy_id_mapping **out, size_t *n_out,
                          bivy_error_t *err) {
  int r = cfg_array(j, p, err);
  if (r < 0) return r;
  size_t n = json_array_size(j);
  /* the kernel accepts at most 340 lines in uid_map/gid_map */
  if (n > 340) return cfg_fail(err, p, 0, "too many mappings (%zu, the kernel allows 340)", n);
  if (n == 0) return 0;
  *out = calloc(n, sizeof **out);
  if (*out == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(j, i);
    const struct jp *pi = JP_IDX(p, i);
    if ((r = cfg_object(e, pi, err)) < 0) return r;
    static const char *const keys[] = {"containerID", "hostID", "size"};
    int64_t v[3];
    for (int k = 0; k < 3; k++) {
      json_t *x = cfg_get(e, keys[k]);
      if (x == NULL) return cfg_fail(err, JP_KEY(pi, keys[k]), 0, "missing (required)");
      if ((r = cfg_int(x, JP_KEY(pi, keys[k]), k == 2 ? 1 : 0, 4294967295LL, &v[k], err)) < 0) return r;
    }
    if (v[0] + v[2] > 4294967296LL || v[1] + v[2] > 4294967296LL)
      return cfg_fail(err, JP_KEY(pi, "size"), 0, "range overflows 32-bit ids");
    struct bivy_id_mapping *m = &(*out)[(*n_out)++];
    m->container_id = (uint32_t)v[0];
    m->host_id = (uint32_t)v[1];
    m->size = (uint32_t)v[2];
  }
  return 0;
}

static int parse_devices(struct bivy_config *c, json_t *j, const struct jp *p, bivy_error_t *err) {
  int r = cfg_array(j, p, err);
  if (r < 0) return r;
  size_t n = json_array_size(j);
  if (n == 0) return 0;
  c->devices = calloc(n, sizeof *c->devices);
  if (c->devices == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(j, i), *x;
    const struct jp *pi = JP_IDX(p, i);
    struct bivy_device *d = &c->devices[c->n_devices++];
    if ((r = cfg_object(e, pi, err)) < 0) return r;
    if ((r = cfg_abs_path(cfg_get(e, "path"), JP_KEY(pi, "path"), true, &d->path, err)) < 0) return r;
    const struct jp *pt = JP_KEY(pi, "type");
    const char *ts;
    if ((r = cfg_str_ref(cfg_get(e, "type"), pt, &ts, err)) < 0) return r;
    if (strlen(ts) != 1 || strchr("cbup", ts[0]) == NULL)
      return cfg_fail(err, pt, 0, "unknown device type \"%s\" (c, b, u or p)", ts);
    d->type = ts[0];
    int64_t v;
    static const char *const nums[] = {"major", "minor"};
    for (int k = 0; k < 2; k++) {
      x = cfg_get(e, nums[k]);
      if (x == NULL) {
        if (d->type != 'p') return cfg_fail(err, JP_KEY(pi, nums[k]), 0, "missing (required for type %c)", d->type);
        continue;
      }
      /* dev_t major is 12 bits wide, minor 20 bits in the kernel's encoding */
      if ((r = cfg_int(x, JP_KEY(pi, nums[k]), 0, k == 0 ? 4095 : 1048575, &v, err)) < 0) return r;
      *(k == 0 ? &d->major : &d->minor) = v;
    }
    if ((x = cfg_get(e, "fileMode"))) {
      /* podman passes a full st_mode (8630 = S_IFCHR|0666): keep only the permission bits */
      if ((r = cfg_int(x, JP_KEY(pi, "fileMode"), 0, 0177777, &v, err)) < 0) return r;
      d->has_mode = true;
      d->file_mode = (mode_t)v & 07777;
    }
    if ((x = cfg_get(e, "uid"))) {
      if ((r = cfg_int(x, JP_KEY(pi, "uid"), 0, 4294967294LL, &v, err)) < 0) return r;
      d->has_uid = true;
      d->uid = (uid_t)v;
    }
    if ((x = cfg_get(e, "gid"))) {
      if ((r = cfg_int(x, JP_KEY(pi, "gid"), 0, 4294967294LL, &v, err)) < 0) return r;
      d->has_gid = true;
      d->gid = (gid_t)v;
    }
  }
  return 0;
}

static int abs_paths(json_t *j, const struct jp *p, char ***out, bivy_error_t *err) {
  int r = cfg_strv(j, p, false, false, out, err);
  if (r < 0 || *out == NULL) return r;
  for (size_t i = 0; (*out)[i]; i++)
    if ((*out)[i][0] != '/') return cfg_fail(err, JP_IDX(p, i), 0, "\"%s\" is not an absolute path", (*out)[i]);
  return 0;
}

static const struct {
  const char *name;
  unsigned long flags;
} propagations[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},       {"shared", MS_SHARED},
    {"rshared", MS_SHARED | MS_REC}, {"slave", MS_SLAVE},                   {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

/* Only namespaced sysctls: anything else would change the host (the runc rules). */
static int check_sysctl(const struct bivy_config *c, const char *key, const struct jp *p, bivy_error_t *err) {
  if (*key == '\0' || *key == '.' || *key == '/' || strstr(key, "..") || strstr(key, "/.") || strstr(key, "./"))
    return cfg_fail(err, p, 0, "invalid sysctl name");
  static const char *const ipc[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (size_t i = 0; i < sizeof ipc / sizeof ipc[0]; i++)
    if (strcmp(key, ipc[i]) == 0) goto ipc_ns;
  if (strncmp(key, "fs.mqueue.", 10) == 0) goto ipc_ns;
  if (strncmp(key, "net.", 4) == 0) {
    if (bivy_config_ns(c, BIVY_NS_NET) == NULL)
      return cfg_fail(err, p, 0, "needs a network namespace (it would change the host)");
    return 0;
  }
  if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0) {
    if (bivy_config_ns(c, BIVY_NS_UTS) == NULL)
      return cfg_fail(err, p, 0, "needs a UTS namespace (it would change the host)");
    return 0;
  }
  return cfg_fail(err, p, 0, "not a namespaced sysctl (it would change the host)");
ipc_ns:
  if (bivy_config_ns(c, BIVY_NS_IPC) == NULL)
    return cfg_fail(err, p, 0, "needs an IPC namespace (it would change the host)");
  return 0;
}

static int parse_sysctl(struct bivy_config *c, json_t *j, const struct jp *p, bivy_error_t *err) {
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  size_t n = json_object_size(j);
  if (n == 0) return 0;
  c->sysctls = calloc(n, sizeof *c->sysctls);
  if (c->sysctls == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    const struct jp *pk = JP_KEY(p, key);
    if ((r = check_sysctl(c, key, pk, err)) < 0) return r;
    struct bivy_sysctl *s = &c->sysctls[c->n_sysctls++];
    s->key = strdup(key);
    if (s->key == NULL) return cfg_fail(err, pk, ENOMEM, "allocate");
    if ((r = cfg_str(v, pk, true, &s->value, err)) < 0) return r;
  }
  return 0;
}

int cfg_parse_linux(struct bivy_config *c, json_t *j, bivy_error_t *err) {
  const struct jp *p = JP_KEY(NULL, "linux");
  if (j == NULL) return 0;
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  json_t *x;
  /* namespaces first: the checks below depend on them */
  if ((x = cfg_get(j, "namespaces")) && (r = parse_namespaces(c, x, JP_KEY(p, "namespaces"), err)) < 0)
    return r;
  if ((x = cfg_get(j, "uidMappings")) &&
      (r = parse_mappings(x, JP_KEY(p, "uidMappings"), &c->uid_mappings, &c->n_uid_mappings, err)) < 0)
    return r;
  if ((x = cfg_get(j, "gidMappings")) &&
      (r = parse_mappings(x, JP_KEY(p, "gidMappings"), &c->gid_mappings, &c->n_gid_mappings, err)) < 0)
    return r;
  const struct bivy_namespace *user = bivy_config_ns(c, BIVY_NS_USER);
  if ((c->n_uid_mappings || c->n_gid_mappings) && user == NULL)
    return cfg_fail(err, JP_KEY(p, c->n_uid_mappings ? "uidMappings" : "gidMappings"), 0,
                    "needs a user namespace (linux.namespaces has no \"user\")");
  /* a new user namespace without mappings would run everything as the overflow id */
  if (user && user->path == NULL && (c->n_uid_mappings == 0 || c->n_gid_mappings == 0))
    return cfg_fail(err, JP_KEY(p, c->n_uid_mappings == 0 ? "uidMappings" : "gidMappings"), 0,
                    "required with a new user namespace");
  if ((x = cfg_get(j, "devices")) && (r = parse_devices(c, x, JP_KEY(p, "devices"), err)) < 0) return r;
  if ((r = cfg_str(cfg_get(j, "cgroupsPath"), JP_KEY(p, "cgroupsPath"), false, &c->cgroups_path, err)) < 0)
    return r;
  if ((x = cfg_get(j, "resources"))) {
    if ((r = cfg_object(x, JP_KEY(p, "resources"), err)) < 0) return r;
    c->resources = x;
  }
  if ((x = cfg_get(j, "seccomp"))) {
    if ((r = cfg_object(x, JP_KEY(p, "seccomp"), err)) < 0) return r;
    c->seccomp = x;
  }
  if ((r = abs_paths(cfg_get(j, "maskedPaths"), JP_KEY(p, "maskedPaths"), &c->masked_paths, err)) < 0)
    return r;
  if ((r = abs_paths(cfg_get(j, "readonlyPaths"), JP_KEY(p, "readonlyPaths"), &c->readonly_paths, err)) < 0)
    return r;
  if ((x = cfg_get(j, "rootfsPropagation"))) {
    const struct jp *pp = JP_KEY(p, "rootfsPropagation");
    if (!json_is_string(x)) return cfg_fail(err, pp, 0, "expected a string");
    const char *v = json_string_value(x);
    bool found = *v == '\0';
    for (size_t i = 0; !found && i < sizeof propagations / sizeof propagations[0]; i++)
      if (strcmp(v, propagations[i].name) == 0) {
        c->rootfs_propagation = propagations[i].flags;
        found = true;
      }
    if (!found) return cfg_fail(err, pp, 0, "unknown propagation \"%s\"", v);
  }
  if ((x = cfg_get(j, "sysctl")) && (r = parse_sysctl(c, x, JP_KEY(p, "sysctl"), err)) < 0) return r;
  if ((r = cfg_str(cfg_get(j, "mountLabel"), JP_KEY(p, "mountLabel"), false, &c->mount_label, err)) < 0)
    return r;
  return 0;
}
