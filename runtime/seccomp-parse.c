/* Validation of OCI linux.seccomp into struct bivy_scmp_profile (runtime/seccomp-internal.h).
 * Pure: no system calls, so malformed profiles are rejected before anything is created. */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "runtime/cleanup.h"
#include "runtime/seccomp-internal.h"

#define P "linux.seccomp"

static const struct {
  const char *name;
  uint32_t base; /* SCMP_ACT_* without data */
} actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY},
};

static const struct {
  const char *name;
  uint32_t token;
} arches[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},           {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},           {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},   {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},     {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},     {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},           {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},   {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},       {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64}, {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

static const struct {
  const char *name;
  enum scmp_compare op;
} operators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static const struct {
  const char *name;
  unsigned int flag;
} filter_flags[] = {
    /* the container process is single-threaded when the filter is loaded: TSYNC is a no-op */
    {"SECCOMP_FILTER_FLAG_TSYNC", 0},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 1u << 5},
};

/* The container process hands the notify fd back with sendmsg() and reports progress with
 * write() after loading the filter: trapping those to a listener that has no fd yet would
 * deadlock the start. */
static const char *const notify_forbidden[] = {"write", "sendmsg"};

int bivy_scmp_action_from_name(const char *name, uint32_t *action_base) {
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (strcmp(actions[i].name, name) == 0) {
      *action_base = actions[i].base;
      return 0;
    }
  return -EINVAL;
}

int bivy_scmp_arch_from_name(const char *name, uint32_t *token) {
  for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
    if (strcmp(arches[i].name, name) == 0) {
      *token = arches[i].token;
      return 0;
    }
  return -EINVAL;
}

static bool is_errno_action(uint32_t base) {
  return base == SCMP_ACT_ERRNO(0) || base == SCMP_ACT_TRACE(0);
}

static int get_uint(json_t *v, const char *path, uint64_t max, uint64_t *out, bivy_error_t *err) {
  if (!json_is_integer(v)) return bivy_error(err, 0, "%s: must be a non-negative integer", path);
  json_int_t i = json_integer_value(v);
  if (i < 0 || (uint64_t)i > max)
    return bivy_error(err, 0, "%s: %lld out of range (0..%llu)", path, (long long)i, (unsigned long long)max);
  *out = (uint64_t)i;
  return 0;
}

/* action name + optional errno value -> libseccomp action */
static int parse_action(json_t *jaction, json_t *jerrno, const char *path, const char *errno_path,
                        uint32_t *out, bivy_error_t *err) {
  if (!json_is_string(jaction)) return bivy_error(err, 0, "%s: must be a string", path);
  uint32_t base;
  if (bivy_scmp_action_from_name(json_string_value(jaction), &base) < 0)
    return bivy_error(err, 0, "%s: unknown action \"%s\"", path, json_string_value(jaction));
  uint64_t e = EPERM; /* runc's default for ERRNO/TRACE without errnoRet */
  if (jerrno) {
    if (!is_errno_action(base))
      return bivy_error(err, 0, "%s: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE", errno_path);
    /* the kernel caps SECCOMP_RET_DATA errnos at MAX_ERRNO: refuse rather than surprise */
    int r = get_uint(jerrno, errno_path, 4095, &e, err);
    if (r < 0) return r;
  }
  *out = is_errno_action(base) ? base | (uint32_t)e : base;
  return 0;
}

static int parse_args(json_t *jargs, const char *rpath, struct bivy_scmp_rule *rule, bivy_error_t *err) {
  if (jargs == NULL || json_is_null(jargs)) return 0;
  if (!json_is_array(jargs)) return bivy_error(err, 0, "%s.args: must be an array", rpath);
  if (json_array_size(jargs) > 6) return bivy_error(err, 0, "%s.args: more than 6 conditions", rpath);
  rule->args = calloc(json_array_size(jargs) + 1, sizeof *rule->args);
  if (rule->args == NULL) return bivy_error(err, ENOMEM, "%s.args", rpath);
  size_t i;
  json_t *ja;
  json_array_foreach(jargs, i, ja) {
    char apath[256];
    snprintf(apath, sizeof apath, "%s.args[%zu]", rpath, i);
    if (!json_is_object(ja)) return bivy_error(err, 0, "%s: must be an object", apath);
    struct bivy_scmp_arg *a = &rule->args[i];
    char fpath[300];
    uint64_t idx;
    json_t *v = json_object_get(ja, "index");
    snprintf(fpath, sizeof fpath, "%s.index", apath);
    if (v == NULL) return bivy_error(err, 0, "%s: required", fpath);
    int r = get_uint(v, fpath, 5, &idx, err); /* syscalls have at most 6 arguments */
    if (r < 0) return r;
    a->index = (unsigned)idx;
    v = json_object_get(ja, "value");
    snprintf(fpath, sizeof fpath, "%s.value", apath);
    if (v == NULL) return bivy_error(err, 0, "%s: required", fpath);
    if ((r = get_uint(v, fpath, INT64_MAX, &a->value, err)) < 0) return r;
    v = json_object_get(ja, "valueTwo");
    snprintf(fpath, sizeof fpath, "%s.valueTwo", apath);
    if (v && (r = get_uint(v, fpath, INT64_MAX, &a->value_two, err)) < 0) return r;
    v = json_object_get(ja, "op");
    snprintf(fpath, sizeof fpath, "%s.op", apath);
    if (v == NULL) return bivy_error(err, 0, "%s: required", fpath);
    if (!json_is_string(v)) return bivy_error(err, 0, "%s: must be a string", fpath);
    size_t k;
    for (k = 0; k < sizeof operators / sizeof operators[0]; k++)
      if (strcmp(operators[k].name, json_string_value(v)) == 0) break;
    if (k == sizeof operators / sizeof operators[0])
      return bivy_error(err, 0, "%s: unknown operator \"%s\"", fpath, json_string_value(v));
    a->op = operators[k].op;
    rule->n_args++;
  }
  return 0;
}

static int parse_rule(json_t *js, size_t idx, struct bivy_scmp_rule *rule, bool *notify, bivy_error_t *err) {
  char rpath[64];
  snprintf(rpath, sizeof rpath, P ".syscalls[%zu]", idx);
  rule->index = idx;
  if (!json_is_object(js)) return bivy_error(err, 0, "%s: must be an object", rpath);
  json_t *names = json_object_get(js, "names");
  if (names == NULL) return bivy_error(err, 0, "%s.names: required", rpath);
  if (!json_is_array(names) || json_array_size(names) == 0)
    return bivy_error(err, 0, "%s.names: must be a non-empty array of syscall names", rpath);
  size_t i;
  json_t *jn;
  json_array_foreach(names, i, jn) {
    if (!json_is_string(jn) || json_string_length(jn) == 0 || json_string_length(jn) > 64)
      return bivy_error(err, 0, "%s.names[%zu]: must be a syscall name", rpath, i);
  }
  rule->names = names;
  json_t *ja = json_object_get(js, "action");
  char apath[80], epath[80];
  snprintf(apath, sizeof apath, "%s.action", rpath);
  snprintf(epath, sizeof epath, "%s.errnoRet", rpath);
  if (ja == NULL) return bivy_error(err, 0, "%s: required", apath);
  int r = parse_action(ja, json_object_get(js, "errnoRet"), apath, epath, &rule->action, err);
  if (r < 0) return r;
  if (rule->action == SCMP_ACT_NOTIFY) {
    *notify = true;
    json_array_foreach(names, i, jn) {
      for (size_t k = 0; k < sizeof notify_forbidden / sizeof notify_forbidden[0]; k++)
        if (strcmp(json_string_value(jn), notify_forbidden[k]) == 0)
          return bivy_error(err, 0,
                            "%s.names[%zu]: SCMP_ACT_NOTIFY cannot be used for \"%s\" (the runtime needs it "
                            "to hand over the listener fd)",
                            rpath, i, notify_forbidden[k]);
    }
  }
  return parse_args(json_object_get(js, "args"), rpath, rule, err);
}

int bivy_scmp_parse(json_t *j, struct bivy_scmp_profile *p, bivy_error_t *err) {
  memset(p, 0, sizeof *p);
  if (!json_is_object(j)) return bivy_error(err, 0, P ": must be an object");
  int r;
  json_t *v = json_object_get(j, "defaultAction");
  if (v == NULL) return bivy_error(err, 0, P ".defaultAction: required");
  if ((r = parse_action(v, json_object_get(j, "defaultErrnoRet"), P ".defaultAction", P ".defaultErrnoRet",
                        &p->default_action, err)) < 0)
    return r;
  /* every syscall, including the runtime's own before exec, would wait for a listener */
  if (p->default_action == SCMP_ACT_NOTIFY)
    return bivy_error(err, 0, P ".defaultAction: SCMP_ACT_NOTIFY cannot be the default action");

  v = json_object_get(j, "architectures");
  if (v && !json_is_null(v)) {
    if (!json_is_array(v)) return bivy_error(err, 0, P ".architectures: must be an array");
    size_t i;
    json_t *ja;
    json_array_foreach(v, i, ja) {
      if (!json_is_string(ja)) return bivy_error(err, 0, P ".architectures[%zu]: must be a string", i);
      uint32_t tok;
      if (bivy_scmp_arch_from_name(json_string_value(ja), &tok) < 0)
        return bivy_error(err, 0, P ".architectures[%zu]: unknown architecture \"%s\"", i, json_string_value(ja));
      size_t k;
      for (k = 0; k < p->n_arches; k++)
        if (p->arches[k] == tok) break;
      if (k < p->n_arches) continue;
      if (p->n_arches == BIVY_SCMP_MAX_ARCHES) return bivy_error(err, 0, P ".architectures: too many");
      p->arches[p->n_arches++] = tok;
    }
  }

  v = json_object_get(j, "flags");
  if (v && !json_is_null(v)) {
    if (!json_is_array(v)) return bivy_error(err, 0, P ".flags: must be an array");
    size_t i;
    json_t *jf;
    json_array_foreach(v, i, jf) {
      if (!json_is_string(jf)) return bivy_error(err, 0, P ".flags[%zu]: must be a string", i);
      size_t k;
      for (k = 0; k < sizeof filter_flags / sizeof filter_flags[0]; k++)
        if (strcmp(filter_flags[k].name, json_string_value(jf)) == 0) break;
      if (k == sizeof filter_flags / sizeof filter_flags[0])
        return bivy_error(err, 0, P ".flags[%zu]: unknown flag \"%s\"", i, json_string_value(jf));
      p->flags |= filter_flags[k].flag;
    }
  }

  v = json_object_get(j, "listenerPath");
  if (v && !json_is_null(v)) {
    if (!json_is_string(v) || json_string_length(v) == 0)
      return bivy_error(err, 0, P ".listenerPath: must be a non-empty string");
    if (json_string_length(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))
      return bivy_error(err, 0, P ".listenerPath: longer than a unix socket path can be (%zu bytes)",
                        sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    p->listener_path = json_string_value(v);
  }
  v = json_object_get(j, "listenerMetadata");
  if (v && !json_is_null(v)) {
    if (!json_is_string(v)) return bivy_error(err, 0, P ".listenerMetadata: must be a string");
    p->listener_metadata = json_string_value(v);
  }

  v = json_object_get(j, "syscalls");
  if (v && !json_is_null(v)) {
    if (!json_is_array(v)) return bivy_error(err, 0, P ".syscalls: must be an array");
    p->rules = calloc(json_array_size(v) + 1, sizeof *p->rules);
    if (p->rules == NULL) return bivy_error(err, ENOMEM, P ".syscalls");
    size_t i;
    json_t *js;
    json_array_foreach(v, i, js) {
      r = parse_rule(js, i, &p->rules[i], &p->notify, err);
      p->n_rules = i + 1;
      if (r < 0) return r;
    }
  }
  if (p->notify && p->listener_path == NULL)
    return bivy_error(err, 0, P ".listenerPath: required when an action is SCMP_ACT_NOTIFY");
  return 0;
}

void bivy_scmp_profile_clear(struct bivy_scmp_profile *p) {
  for (size_t i = 0; i < p->n_rules; i++) free(p->rules[i].args);
  free(p->rules);
  memset(p, 0, sizeof *p);
}
