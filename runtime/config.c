/* config.json -> struct bivy_config in one pass, validating as it goes.
 * Unknown fields are ignored (forward compatibility, as runc does); unknown values of known
 * enums are errors. Sub-parsers: config-process.c, config-mounts.c; accessors: config-util.c. */
#include "runtime/config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "runtime/cleanup.h"
#include "runtime/config-internal.h"
#include "runtime/util.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct {
  const char *name, *proc;
  int flag;
} ns_info[BIVY_NS_COUNT] = {
    [BIVY_NS_PID] = {"pid", "pid", CLONE_NEWPID},
    [BIVY_NS_NET] = {"network", "net", CLONE_NEWNET},
    [BIVY_NS_MNT] = {"mount", "mnt", CLONE_NEWNS},
    [BIVY_NS_IPC] = {"ipc", "ipc", CLONE_NEWIPC},
    [BIVY_NS_UTS] = {"uts", "uts", CLONE_NEWUTS},
    [BIVY_NS_USER] = {"user", "user", CLONE_NEWUSER},
    [BIVY_NS_CGROUP] = {"cgroup", "cgroup", CLONE_NEWCGROUP},
    [BIVY_NS_TIME] = {"time", "time", CLONE_NEWTIME},
};

const char *bivy_ns_name(enum bivy_ns_type t) { return (unsigned)t < BIVY_NS_COUNT ? ns_info[t].name : "unknown"; }
const char *bivy_ns_proc_name(enum bivy_ns_type t) {
  return (unsigned)t < BIVY_NS_COUNT ? ns_info[t].proc : "unknown";
}
int bivy_ns_clone_flag(enum bivy_ns_type t) { return (unsigned)t < BIVY_NS_COUNT ? ns_info[t].flag : 0; }

const struct bivy_namespace *bivy_config_ns(const struct bivy_config *c, enum bivy_ns_type t) {
  for (size_t i = 0; i < c->n_namespaces; i++)
    if (c->namespaces[i].type == t) return &c->namespaces[i];
  return NULL;
}

const char *bivy_config_annotation(const struct bivy_config *c, const char *key) {
  for (size_t i = 0; i < c->n_annotations; i++)
    if (strcmp(c->annotations[i].key, key) == 0) return c->annotations[i].value;
  return NULL;
}

static const char *const hook_names[BIVY_HOOK_KIND_COUNT] = {
    [BIVY_HOOK_PRESTART] = "prestart",
    [BIVY_HOOK_CREATE_RUNTIME] = "createRuntime",
    [BIVY_HOOK_CREATE_CONTAINER] = "createContainer",
    [BIVY_HOOK_START_CONTAINER] = "startContainer",
    [BIVY_HOOK_POSTSTART] = "poststart",
    [BIVY_HOOK_POSTSTOP] = "poststop",
};

void bivy_config_free(struct bivy_config *c) {
  if (c == NULL) return;
  free(c->oci_version);
  free(c->bundle);
  bivy_process_clear(&c->process);
  free(c->root_path);
  free(c->hostname);
  free(c->domainname);
  for (size_t i = 0; i < c->n_mounts; i++) cfg_mount_clear(&c->mounts[i]);
  free(c->mounts);
  for (int k = 0; k < BIVY_HOOK_KIND_COUNT; k++) {
    for (size_t i = 0; i < c->n_hooks[k]; i++) {
      free(c->hooks[k][i].path);
      cfg_strv_free(c->hooks[k][i].args);
      cfg_strv_free(c->hooks[k][i].env);
    }
    free(c->hooks[k]);
  }
  for (size_t i = 0; i < c->n_annotations; i++) {
    free(c->annotations[i].key);
    free(c->annotations[i].value);
  }
  free(c->annotations);
  for (size_t i = 0; i < c->n_namespaces; i++) free(c->namespaces[i].path);
  free(c->namespaces);
  free(c->uid_mappings);
  free(c->gid_mappings);
  for (size_t i = 0; i < c->n_devices; i++) free(c->devices[i].path);
  free(c->devices);
  free(c->cgroups_path);
  cfg_strv_free(c->masked_paths);
  cfg_strv_free(c->readonly_paths);
  for (size_t i = 0; i < c->n_sysctls; i++) {
    free(c->sysctls[i].key);
    free(c->sysctls[i].value);
  }
  free(c->sysctls);
  free(c->mount_label);
  if (c->json_root) json_decref(c->json_root);
  free(c);
}

/* calloc'ed array for a JSON array (NULL for an empty one) */
static int alloc_for(json_t *arr, size_t elem, void **out, const struct jp *p, bivy_error_t *err) {
  *out = NULL;
  size_t n = json_array_size(arr);
  if (n == 0) return 0;
  *out = calloc(n, elem);
  if (*out == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  return 0;
}

static int parse_root(struct bivy_config *c, json_t *j, bivy_error_t *err) {
  const struct jp *p = JP_KEY(NULL, "root");
  if (j == NULL) return cfg_fail(err, JP_KEY(p, "path"), 0, "missing (required)");
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  _cleanup_free_ char *path = NULL;
  const struct jp *pp = JP_KEY(p, "path");
  if ((r = cfg_str(cfg_get(j, "path"), pp, true, &path, err)) < 0) return r;
  if (path[0] == '\0') return cfg_fail(err, pp, 0, "must not be empty");
  if ((r = cfg_bool(cfg_get(j, "readonly"), JP_KEY(p, "readonly"), &c->root_readonly, err)) < 0) return r;
  if (path[0] == '/') {
    c->root_path = steal_pointer(&path);
  } else {
    size_t bl = strlen(c->bundle);
    bool slash = bl > 0 && c->bundle[bl - 1] == '/';
    if (asprintf(&c->root_path, "%s%s%s", c->bundle, slash ? "" : "/", path) < 0) {
      c->root_path = NULL;
      return cfg_fail(err, pp, ENOMEM, "allocate");
    }
  }
  struct stat st;
  if (stat(c->root_path, &st) < 0) return cfg_fail(err, pp, errno, "%s", c->root_path);
  if (!S_ISDIR(st.st_mode)) return cfg_fail(err, pp, ENOTDIR, "%s", c->root_path);
  return 0;
}

static int parse_mounts(struct bivy_config *c, json_t *j, bivy_error_t *err) {
  const struct jp *p = JP_KEY(NULL, "mounts");
  if (j == NULL) return 0;
  int r = cfg_array(j, p, err);
  if (r < 0) return r;
  if ((r = alloc_for(j, sizeof *c->mounts, (void **)&c->mounts, p, err)) < 0) return r;
  size_t i;
  json_t *e;
  json_array_foreach(j, i, e) {
    c->n_mounts = i + 1; /* freed by bivy_config_free even when half-filled */
    if ((r = cfg_parse_mount(e, JP_IDX(p, i), &c->mounts[i], err)) < 0) return r;
  }
  return 0;
}

static int parse_hook_list(struct bivy_config *c, int kind, json_t *j, const struct jp *p, bivy_error_t *err) {
  int r = cfg_array(j, p, err);
  if (r < 0) return r;
  if ((r = alloc_for(j, sizeof(struct bivy_hook), (void **)&c->hooks[kind], p, err)) < 0) return r;
  size_t i;
  json_t *e;
  json_array_foreach(j, i, e) {
    const struct jp *pi = JP_IDX(p, i);
    struct bivy_hook *h = &c->hooks[kind][i];
    c->n_hooks[kind] = i + 1;
    if ((r = cfg_object(e, pi, err)) < 0) return r;
    if ((r = cfg_abs_path(cfg_get(e, "path"), JP_KEY(pi, "path"), true, &h->path, err)) < 0) return r;
    if ((r = cfg_strv(cfg_get(e, "args"), JP_KEY(pi, "args"), false, false, &h->args, err)) < 0) return r;
    if ((r = cfg_strv(cfg_get(e, "env"), JP_KEY(pi, "env"), false, false, &h->env, err)) < 0) return r;
    json_t *t = cfg_get(e, "timeout");
    if (t) {
      int64_t v;
      const struct jp *pt = JP_KEY(pi, "timeout");
      if (json_is_integer(t) && json_integer_value(t) <= 0)
        return cfg_fail(err, pt, 0, "must be greater than zero, got %lld", (long long)json_integer_value(t));
      if ((r = cfg_int(t, pt, 1, 86400 * 365, &v, err)) < 0) return r;
      h->timeout = (int)v;
    }
  }
  return 0;
}

static int parse_hooks(struct bivy_config *c, json_t *j, bivy_error_t *err) {
  const struct jp *p = JP_KEY(NULL, "hooks");
  if (j == NULL) return 0;
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  for (int k = 0; k < BIVY_HOOK_KIND_COUNT; k++) {
    json_t *l = cfg_get(j, hook_names[k]);
    if (l && (r = parse_hook_list(c, k, l, JP_KEY(p, hook_names[k]), err)) < 0) return r;
  }
  return 0;
}

static int parse_annotations(struct bivy_config *c, json_t *j, bivy_error_t *err) {
  const struct jp *p = JP_KEY(NULL, "annotations");
  if (j == NULL) return 0;
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  size_t n = json_object_size(j);
  if (n == 0) return 0;
  c->annotations = calloc(n, sizeof *c->annotations);
  if (c->annotations == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  const char *key;
  json_t *v;
  json_object_foreach(j, key, v) {
    const struct jp *pk = JP_KEY(p, key);
    struct bivy_annotation *a = &c->annotations[c->n_annotations];
    if (!json_is_string(v)) return cfg_fail(err, pk, 0, "expected a string");
    a->key = strdup(key);
    c->n_annotations++;
    if (a->key == NULL) return cfg_fail(err, pk, ENOMEM, "allocate");
    if ((r = cfg_str(v, pk, true, &a->value, err)) < 0) return r;
  }
  return 0;
}

static bool id_mapped(const struct bivy_id_mapping *m, size_t n, uint32_t id) {
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].container_id && id - m[i].container_id < m[i].size) return true;
  return false;
}

/* In a new user namespace, setuid/setgid to an unmapped id fails late with a bare EINVAL:
 * say which id is missing from which mapping now. */
static int check_user_mapped(const struct bivy_config *c, bivy_error_t *err) {
  const struct bivy_namespace *user = bivy_config_ns(c, BIVY_NS_USER);
  if (!c->has_process || user == NULL || user->path != NULL) return 0;
  const struct bivy_user *u = &c->process.user;
  const struct jp *pu = JP_KEY(JP_KEY(NULL, "process"), "user");
  if (!id_mapped(c->uid_mappings, c->n_uid_mappings, u->uid))
    return cfg_fail(err, JP_KEY(pu, "uid"), 0, "%u is not mapped in linux.uidMappings", (unsigned)u->uid);
  if (!id_mapped(c->gid_mappings, c->n_gid_mappings, u->gid))
    return cfg_fail(err, JP_KEY(pu, "gid"), 0, "%u is not mapped in linux.gidMappings", (unsigned)u->gid);
  for (size_t i = 0; i < u->n_additional_gids; i++)
    if (!id_mapped(c->gid_mappings, c->n_gid_mappings, u->additional_gids[i]))
      return cfg_fail(err, JP_IDX(JP_KEY(pu, "additionalGids"), i), 0, "%u is not mapped in linux.gidMappings",
                      (unsigned)u->additional_gids[i]);
  return 0;
}

/* After a JSON_DECODE_INT_AS_REAL parse: turn integral reals that fit in int64 back into
 * integers, so other modules reading linux.resources see the types they expect; only the
 * values beyond int64 stay reals. (Depth is bounded by jansson's parser limit.) */
static json_t *as_int(json_t *v) {
  double d = json_real_value(v);
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(json_int_t)d) return NULL;
  return json_integer((json_int_t)d);
}

static void ints_back(json_t *j) {
  size_t i;
  const char *k;
  json_t *v;
  void *tmp;
  if (json_is_object(j)) {
    json_object_foreach_safe(j, tmp, k, v) {
      json_t *n;
      if (json_is_real(v)) {
        if ((n = as_int(v))) json_object_set_new(j, k, n);
      } else {
        ints_back(v);
      }
    }
  } else if (json_is_array(j)) {
    json_array_foreach(j, i, v) {
      json_t *n;
      if (json_is_real(v)) {
        if ((n = as_int(v))) json_array_set_new(j, i, n);
      } else {
        ints_back(v);
      }
    }
  }
}

int bivy_config_parse(const char *text, size_t len, const char *bundle, struct bivy_config **out,
                      bivy_error_t *err) {
  *out = NULL;
  _cleanup_config_ struct bivy_config *c = calloc(1, sizeof *c);
  if (c == NULL) return bivy_error(err, ENOMEM, "config.json");
  json_error_t jerr;
  /* JSON_REJECT_DUPLICATES: a second "args" must not silently override the first one */
  c->json_root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (c->json_root == NULL && strstr(jerr.text, "too big")) {
    /* runc writes RLIM_INFINITY as 18446744073709551615, beyond jansson's int64: retry with
     * every number as a double (ints up to 2^53 stay exact; the accessors accept both) */
    c->json_root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (c->json_root) ints_back(c->json_root);
  }
  if (c->json_root == NULL)
    return bivy_error(err, 0, "config.json: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
  json_t *root = c->json_root;
  int r;
  if (!json_is_object(root)) return bivy_error(err, 0, "config.json: expected a JSON object");
  c->bundle = strdup(bundle ? bundle : ".");
  if (c->bundle == NULL) return bivy_error(err, ENOMEM, "config.json");

  if ((r = cfg_str(cfg_get(root, "ociVersion"), JP_KEY(NULL, "ociVersion"), false, &c->oci_version, err)) < 0)
    goto fail;
  if ((r = parse_root(c, cfg_get(root, "root"), err)) < 0) goto fail;
  json_t *proc = cfg_get(root, "process");
  if (proc) {
    if ((r = cfg_parse_process(proc, JP_KEY(NULL, "process"), &c->process, err)) < 0) goto fail;
    c->has_process = true;
  }
  if ((r = cfg_str(cfg_get(root, "hostname"), JP_KEY(NULL, "hostname"), false, &c->hostname, err)) < 0)
    goto fail;
  if ((r = cfg_str(cfg_get(root, "domainname"), JP_KEY(NULL, "domainname"), false, &c->domainname, err)) <
      0)
    goto fail;
  /* sethostname(2) takes at most 64 bytes */
  if (c->hostname && strlen(c->hostname) > 64) {
    r = cfg_fail(err, JP_KEY(NULL, "hostname"), 0, "longer than 64 bytes");
    goto fail;
  }
  if (c->domainname && strlen(c->domainname) > 64) {
    r = cfg_fail(err, JP_KEY(NULL, "domainname"), 0, "longer than 64 bytes");
    goto fail;
  }
  if ((r = parse_mounts(c, cfg_get(root, "mounts"), err)) < 0) goto fail;
  if ((r = parse_hooks(c, cfg_get(root, "hooks"), err)) < 0) goto fail;
  if ((r = parse_annotations(c, cfg_get(root, "annotations"), err)) < 0) goto fail;
  if ((r = cfg_parse_linux(c, cfg_get(root, "linux"), err)) < 0) goto fail;
  /* setting the hostname of a shared UTS namespace would rename the host */
  if ((c->hostname && *c->hostname) || (c->domainname && *c->domainname)) {
    const struct bivy_namespace *uts = bivy_config_ns(c, BIVY_NS_UTS);
    if (uts == NULL) {
      r = cfg_fail(err, JP_KEY(NULL, c->hostname && *c->hostname ? "hostname" : "domainname"), 0,
                   "needs a new UTS namespace (linux.namespaces has no \"uts\")");
      goto fail;
    }
  }
  if ((r = check_user_mapped(c, err)) < 0) goto fail;
  *out = steal_pointer(&c);
  return 0;
fail:
  return bivy_error_wrap(err, "config.json");
}

int bivy_config_load(const char *bundle, struct bivy_config **out, bivy_error_t *err) {
  *out = NULL;
  _cleanup_free_ char *abs = NULL;
  if (bundle == NULL || *bundle == '\0') bundle = ".";
  if (bundle[0] != '/') {
    abs = realpath(bundle, NULL);
    if (abs == NULL) return bivy_error_errno(err, "bundle %s", bundle);
    bundle = abs;
  }
  _cleanup_close_ int dfd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return bivy_error_errno(err, "bundle %s", bundle);
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int r = bivy_read_file_at(dfd, "config.json", &text, &len, err);
  if (r < 0) return bivy_error_wrap(err, "bundle %s", bundle);
  return bivy_config_parse(text, len, bundle, out, err);
}
