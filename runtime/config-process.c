/* config.json "process" (also the standalone process.json of `exec --process`). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>

#include "runtime/cleanup.h"
#include "runtime/config-internal.h"

static const struct {
  const char *name;
  int resource;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

void bivy_process_clear(struct bivy_process *p) {
  if (p == NULL) return;
  free(p->user.additional_gids);
  cfg_strv_free(p->args);
  cfg_strv_free(p->env);
  free(p->cwd);
  free(p->rlimits);
  free(p->apparmor_profile);
  free(p->selinux_label);
  memset(p, 0, sizeof *p);
}

/* uid/gid: 32-bit, and (uid_t)-1 means "unchanged" to the kernel, so it is refused */
#define ID_MAX 4294967294LL

static int parse_user(json_t *j, const struct jp *p, struct bivy_user *u, bivy_error_t *err) {
  if (j == NULL) return 0;
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  int64_t v;
  json_t *x;
  if ((x = cfg_get(j, "uid"))) {
    if ((r = cfg_int(x, JP_KEY(p, "uid"), 0, ID_MAX, &v, err)) < 0) return r;
    u->uid = (uid_t)v;
  }
  if ((x = cfg_get(j, "gid"))) {
    if ((r = cfg_int(x, JP_KEY(p, "gid"), 0, ID_MAX, &v, err)) < 0) return r;
    u->gid = (gid_t)v;
  }
  if ((x = cfg_get(j, "umask"))) {
    if ((r = cfg_int(x, JP_KEY(p, "umask"), 0, 0777, &v, err)) < 0) return r;
    u->has_umask = true;
    u->umask = (mode_t)v;
  }
  if ((x = cfg_get(j, "additionalGids"))) {
    const struct jp *pa = JP_KEY(p, "additionalGids");
    if ((r = cfg_array(x, pa, err)) < 0) return r;
    size_t n = json_array_size(x);
    if (n > 65536) return cfg_fail(err, pa, 0, "too many groups (%zu, the kernel allows 65536)", n);
    if (n) {
      u->additional_gids = calloc(n, sizeof(gid_t));
      if (u->additional_gids == NULL) return cfg_fail(err, pa, ENOMEM, "allocate");
    }
    for (size_t i = 0; i < n; i++) {
      if ((r = cfg_int(json_array_get(x, i), JP_IDX(pa, i), 0, ID_MAX, &v, err)) < 0) return r;
      u->additional_gids[u->n_additional_gids++] = (gid_t)v;
    }
  }
  return 0;
}

static int parse_capset(json_t *j, const struct jp *p, uint64_t *mask, bivy_error_t *err) {
  if (j == NULL) return 0;
  if (!json_is_array(j)) return cfg_fail(err, p, 0, "expected an array of strings");
  size_t i;
  json_t *e;
  json_array_foreach(j, i, e) {
    const struct jp *pi = JP_IDX(p, i);
    if (!json_is_string(e)) return cfg_fail(err, pi, 0, "expected a capability name");
    const char *name = json_string_value(e);
    cap_value_t cap;
    /* OCI spells names "CAP_XXX"; cap_from_name alone would also take numbers and "all" */
    if (strncmp(name, "CAP_", 4) != 0 || strlen(name) != json_string_length(e) || cap_from_name(name, &cap) != 0 ||
        cap < 0 || cap > 63)
      return cfg_fail(err, pi, 0, "unknown capability \"%s\"", name);
    *mask |= 1ULL << cap;
  }
  return 0;
}

static int parse_caps(json_t *j, const struct jp *p, struct bivy_process *out, bivy_error_t *err) {
  if (j == NULL) return 0;
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  out->has_caps = true;
  struct bivy_capset *c = &out->caps;
  if ((r = parse_capset(cfg_get(j, "bounding"), JP_KEY(p, "bounding"), &c->bounding, err)) < 0) return r;
  if ((r = parse_capset(cfg_get(j, "effective"), JP_KEY(p, "effective"), &c->effective, err)) < 0) return r;
  if ((r = parse_capset(cfg_get(j, "permitted"), JP_KEY(p, "permitted"), &c->permitted, err)) < 0) return r;
  if ((r = parse_capset(cfg_get(j, "inheritable"), JP_KEY(p, "inheritable"), &c->inheritable, err)) < 0)
    return r;
  if ((r = parse_capset(cfg_get(j, "ambient"), JP_KEY(p, "ambient"), &c->ambient, err)) < 0) return r;
  return 0;
}

static int parse_rlimits(json_t *j, const struct jp *p, struct bivy_process *out, bivy_error_t *err) {
  if (j == NULL) return 0;
  int r = cfg_array(j, p, err);
  if (r < 0) return r;
  size_t n = json_array_size(j);
  if (n == 0) return 0;
  out->rlimits = calloc(n, sizeof *out->rlimits);
  if (out->rlimits == NULL) return cfg_fail(err, p, ENOMEM, "allocate");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(j, i);
    const struct jp *pi = JP_IDX(p, i);
    if ((r = cfg_object(e, pi, err)) < 0) return r;
    const struct jp *pt = JP_KEY(pi, "type");
    const char *tname;
    if ((r = cfg_str_ref(cfg_get(e, "type"), pt, &tname, err)) < 0) return r;
    int res = -1;
    for (size_t k = 0; k < sizeof rlimit_names / sizeof rlimit_names[0]; k++)
      if (strcmp(rlimit_names[k].name, tname) == 0) res = rlimit_names[k].resource;
    if (res < 0) return cfg_fail(err, pt, 0, "unknown rlimit \"%s\"", tname);
    for (size_t k = 0; k < out->n_rlimits; k++)
      if (out->rlimits[k].resource == res) return cfg_fail(err, pt, 0, "duplicate rlimit \"%s\"", tname);
    struct bivy_rlimit *rl = &out->rlimits[out->n_rlimits];
    rl->resource = res;
    json_t *soft = cfg_get(e, "soft"), *hard = cfg_get(e, "hard");
    if (soft == NULL) return cfg_fail(err, JP_KEY(pi, "soft"), 0, "missing (required)");
    if (hard == NULL) return cfg_fail(err, JP_KEY(pi, "hard"), 0, "missing (required)");
    if ((r = cfg_u64(soft, JP_KEY(pi, "soft"), &rl->soft, err)) < 0) return r;
    if ((r = cfg_u64(hard, JP_KEY(pi, "hard"), &rl->hard, err)) < 0) return r;
    if (rl->soft > rl->hard)
      return cfg_fail(err, pi, 0, "soft limit %llu is above the hard limit %llu", (unsigned long long)rl->soft,
                      (unsigned long long)rl->hard);
    out->n_rlimits++;
  }
  return 0;
}

static int check_env(char **env, const struct jp *p, bivy_error_t *err) {
  if (env == NULL) return 0;
  for (size_t i = 0; env[i]; i++) {
    const char *eq = strchr(env[i], '=');
    if (eq == NULL || eq == env[i]) return cfg_fail(err, JP_IDX(p, i), 0, "expected KEY=VALUE, got \"%s\"", env[i]);
  }
  return 0;
}

int cfg_parse_process(json_t *j, const struct jp *p, struct bivy_process *out, bivy_error_t *err) {
  memset(out, 0, sizeof *out);
  int r = cfg_object(j, p, err);
  if (r < 0) return r;
  json_t *x;
  if ((r = cfg_bool(cfg_get(j, "terminal"), JP_KEY(p, "terminal"), &out->terminal, err)) < 0) return r;
  if ((x = cfg_get(j, "consoleSize"))) {
    const struct jp *pc = JP_KEY(p, "consoleSize");
    if ((r = cfg_object(x, pc, err)) < 0) return r;
    int64_t v = 0;
    json_t *h = cfg_get(x, "height"), *w = cfg_get(x, "width");
    if (h) {
      if ((r = cfg_int(h, JP_KEY(pc, "height"), 0, 65535, &v, err)) < 0) return r;
      out->console_height = (unsigned)v;
    }
    if (w) {
      if ((r = cfg_int(w, JP_KEY(pc, "width"), 0, 65535, &v, err)) < 0) return r;
      out->console_width = (unsigned)v;
    }
  }
  if ((r = parse_user(cfg_get(j, "user"), JP_KEY(p, "user"), &out->user, err)) < 0) return r;
  if ((r = cfg_strv(cfg_get(j, "args"), JP_KEY(p, "args"), true, true, &out->args, err)) < 0) return r;
  if (out->args[0][0] == '\0') return cfg_fail(err, JP_IDX(JP_KEY(p, "args"), 0), 0, "empty command");
  const struct jp *pe = JP_KEY(p, "env");
  if ((r = cfg_strv(cfg_get(j, "env"), pe, false, false, &out->env, err)) < 0) return r;
  if ((r = check_env(out->env, pe, err)) < 0) return r;
  if ((r = cfg_abs_path(cfg_get(j, "cwd"), JP_KEY(p, "cwd"), true, &out->cwd, err)) < 0) return r;
  if ((r = parse_caps(cfg_get(j, "capabilities"), JP_KEY(p, "capabilities"), out, err)) < 0) return r;
  if ((r = parse_rlimits(cfg_get(j, "rlimits"), JP_KEY(p, "rlimits"), out, err)) < 0) return r;
  if ((r = cfg_bool(cfg_get(j, "noNewPrivileges"), JP_KEY(p, "noNewPrivileges"), &out->no_new_privileges,
                    err)) < 0)
    return r;
  if ((x = cfg_get(j, "oomScoreAdj"))) {
    int64_t v;
    if ((r = cfg_int(x, JP_KEY(p, "oomScoreAdj"), -1000, 1000, &v, err)) < 0) return r;
    out->has_oom_score_adj = true;
    out->oom_score_adj = (int)v;
  }
  if ((r = cfg_str(cfg_get(j, "apparmorProfile"), JP_KEY(p, "apparmorProfile"), false,
                   &out->apparmor_profile, err)) < 0)
    return r;
  if ((r = cfg_str(cfg_get(j, "selinuxLabel"), JP_KEY(p, "selinuxLabel"), false, &out->selinux_label,
                   err)) < 0)
    return r;
  return 0;
}

int bivy_process_parse(json_t *j, const char *where, struct bivy_process *out, bivy_error_t *err) {
  int r = cfg_parse_process(j, JP_KEY(NULL, where ? where : "process"), out, err);
  if (r < 0) bivy_process_clear(out);
  return r;
}
