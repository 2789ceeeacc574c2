/* Built-in seccomp profiles. The data files (runtime/profiles/NAME.json, embedded by
 * runtime/profiles.S) are OCI linux.seccomp objects plus three annotations resolved here:
 *   "archMap": [{"architecture": A, "subArchitectures": [...]}]  -> "architectures" for the native A
 *   "includes"/"excludes": {"caps": [...]} on a syscalls entry     -> kept or dropped per capability set
 *   "comment"                                                       -> dropped
 * so the result is plain OCI JSON that `bivy spec` writes into config.json. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp-internal.h"
#include "runtime/seccomp.h"

extern const char bivy_profile_default_json[];

const char *const bivy_seccomp_builtin_names[] = {"default", "unconfined", NULL};

static const char unconfined_json[] = "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}";

/* capabilities `bivy spec` grants by default (runc's set) */
#define SPEC_DEFAULT_CAPS ((1ull << CAP_AUDIT_WRITE) | (1ull << CAP_KILL) | (1ull << CAP_NET_BIND_SERVICE))

/* all (mode 'i') or any (mode 'e') of entry[key].caps in caps? */
static int caps_match(json_t *entry, const char *key, uint64_t caps, bool *result, size_t idx, bivy_error_t *err) {
  json_t *cond = json_object_get(entry, key);
  json_t *list = cond ? json_object_get(cond, "caps") : NULL;
  bool includes = strcmp(key, "includes") == 0;
  *result = includes; /* no includes: kept; no excludes: not excluded */
  if (list == NULL) return 0;
  size_t i;
  json_t *jc;
  json_array_foreach(list, i, jc) {
    cap_value_t cv;
    if (!json_is_string(jc) || cap_from_name(json_string_value(jc), &cv) < 0 || cv < 0 || cv > 63)
      return bivy_error(err, EINVAL, "built-in profile: syscalls[%zu].%s.caps[%zu]: unknown capability", idx, key, i);
    bool has = caps & (1ull << cv);
    if (includes && !has) *result = false;
    if (!includes && has) *result = true;
  }
  return 0;
}

static bool plain_allow(json_t *e) {
  json_t *a = json_object_get(e, "action");
  return json_is_string(a) && strcmp(json_string_value(a), "SCMP_ACT_ALLOW") == 0 &&
         json_object_get(e, "args") == NULL && json_object_get(e, "errnoRet") == NULL;
}

static bool names_contain(json_t *names, const char *name) {
  size_t i;
  json_t *n;
  json_array_foreach(names, i, n) if (strcmp(json_string_value(n), name) == 0) return true;
  return false;
}

static int resolve(const char *text, uint64_t caps, json_t **out, bivy_error_t *err) {
  json_error_t jerr;
  _cleanup_json_ json_t *src = json_loads(text, 0, &jerr);
  if (src == NULL) return bivy_error(err, EINVAL, "built-in profile: line %d: %s", jerr.line, jerr.text);
  _cleanup_json_ json_t *dst = json_object();
  _cleanup_json_ json_t *syscalls = json_array();
  if (dst == NULL || syscalls == NULL) return bivy_error(err, ENOMEM, "built-in profile");
  const char *key;
  json_t *v;
  json_object_foreach(src, key, v) {
    if (strcmp(key, "comment") == 0 || strcmp(key, "archMap") == 0 || strcmp(key, "syscalls") == 0) continue;
    json_object_set(dst, key, v);
  }
  size_t i;
  json_array_foreach(json_object_get(src, "archMap"), i, v) {
    uint32_t tok;
    json_t *a = json_object_get(v, "architecture");
    if (!json_is_string(a) || bivy_scmp_arch_from_name(json_string_value(a), &tok) < 0 || tok != seccomp_arch_native())
      continue;
    json_t *arches = json_pack("[O]", a);
    size_t k;
    json_t *sub;
    json_array_foreach(json_object_get(v, "subArchitectures"), k, sub) json_array_append(arches, sub);
    json_object_set_new(dst, "architectures", arches);
    break;
  }
  json_t *allow = NULL; /* the first plain allow entry: later plain allow names merge into it */
  json_array_foreach(json_object_get(src, "syscalls"), i, v) {
    bool inc, exc;
    int r = caps_match(v, "includes", caps, &inc, i, err);
    if (r == 0) r = caps_match(v, "excludes", caps, &exc, i, err);
    if (r < 0) return r;
    if (!inc || exc) continue;
    _cleanup_json_ json_t *names = json_array();
    size_t k;
    json_t *n;
    json_array_foreach(json_object_get(v, "names"), k, n) {
      /* our own list names syscalls newer than this libseccomp: drop them quietly */
      if (seccomp_syscall_resolve_name(json_string_value(n)) == __NR_SCMP_ERROR) continue;
      if (allow && plain_allow(v) && names_contain(json_object_get(allow, "names"), json_string_value(n)))
        continue;
      json_array_append(names, n);
    }
    if (json_array_size(names) == 0) continue;
    if (allow && plain_allow(v)) {
      json_array_extend(json_object_get(allow, "names"), names);
      continue;
    }
    json_t *e = json_object();
    json_object_foreach(v, key, n) {
      if (strcmp(key, "comment") == 0 || strcmp(key, "includes") == 0 || strcmp(key, "excludes") == 0) continue;
      json_object_set(e, key, strcmp(key, "names") == 0 ? names : n);
    }
    json_array_append_new(syscalls, e);
    if (allow == NULL && plain_allow(e)) allow = e;
  }
  json_object_set(dst, "syscalls", syscalls);
  *out = steal_pointer(&dst);
  return 0;
}

int bivy_seccomp_builtin_for_caps(const char *name, uint64_t caps, json_t **out, bivy_error_t *err) {
  *out = NULL;
  if (name && strcmp(name, "unconfined") == 0) {
    *out = json_loads(unconfined_json, 0, NULL);
    return *out ? 0 : bivy_error(err, ENOMEM, "built-in profile");
  }
  if (name == NULL || strcmp(name, "default") != 0)
    return bivy_error(err, 0, "unknown seccomp profile \"%s\" (built-in: default, unconfined)", name ? name : "");
  int r = resolve(bivy_profile_default_json, caps, out, err);
  if (r < 0) return bivy_error_wrap(err, "seccomp profile %s", name);
  return 0;
}

static char *default_text;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void make_default_text(void) {
  _cleanup_error_ bivy_error_t err = NULL;
  _cleanup_json_ json_t *j = NULL;
  if (bivy_seccomp_builtin_for_caps("default", SPEC_DEFAULT_CAPS, &j, &err) == 0)
    default_text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

const char *bivy_seccomp_builtin(const char *name) {
  if (name == NULL) return NULL;
  if (strcmp(name, "unconfined") == 0) return unconfined_json;
  if (strcmp(name, "default") != 0) return NULL;
  pthread_once(&default_once, make_default_text);
  return default_text;
}
