/* bivyd layer 0 (policy): restart policies, back-off, durations, instance specs (instance-policy.h). */
#include "tools/bivyd/policy/instance-policy.h"

#include "tools/bivyd/policy/placement-policy.h"
#include "tools/bivyd/policy/scaling-policy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroups/cgroups.h"
#include "runtime/cleanup.h"
#include "runtime/config.h"
#include "runtime/seccomp.h"
#include "runtime/util.h"

int bivy_sv_restart_parse(const char *s, struct bivy_sv_restart *out) {
  if (s == NULL) return -EINVAL;
  struct bivy_sv_restart r = {.policy = BIVY_SV_NO, .max = 0};
  if (strcmp(s, "no") == 0) r.policy = BIVY_SV_NO;
  else if (strcmp(s, "always") == 0) r.policy = BIVY_SV_ALWAYS;
  else if (strcmp(s, "unless-stopped") == 0) r.policy = BIVY_SV_UNLESS_STOPPED;
  else if (strcmp(s, "on-failure") == 0) r.policy = BIVY_SV_ON_FAILURE;
  else if (strncmp(s, "on-failure:", 11) == 0) {
    int64_t n;
    if (bivy_parse_i64(s + 11, &n) < 0 || n < 0 || n > 1000000) return -EINVAL;
    r.policy = BIVY_SV_ON_FAILURE;
    r.max = (unsigned)n;
  } else {
    return -EINVAL;
  }
  *out = r;
  return 0;
}

const char *bivy_sv_restart_str(const struct bivy_sv_restart *r, char *buf, size_t len) {
  switch (r->policy) {
    case BIVY_SV_NO: snprintf(buf, len, "no"); break;
    case BIVY_SV_ALWAYS: snprintf(buf, len, "always"); break;
    case BIVY_SV_UNLESS_STOPPED: snprintf(buf, len, "unless-stopped"); break;
    case BIVY_SV_ON_FAILURE:
      if (r->max) snprintf(buf, len, "on-failure:%u", r->max);
      else snprintf(buf, len, "on-failure");
      break;
  }
  return buf;
}

bool bivy_sv_should_restart(const struct bivy_sv_restart *r, bool failed, unsigned failure_restarts) {
  switch (r->policy) {
    case BIVY_SV_NO: return false;
    case BIVY_SV_ALWAYS:
    case BIVY_SV_UNLESS_STOPPED: return true;
    case BIVY_SV_ON_FAILURE: return failed && (r->max == 0 || failure_restarts < r->max);
  }
  return false;
}

uint64_t bivy_sv_backoff(uint64_t *next_ms, uint64_t ran_ms, uint64_t cap_ms) {
  if (ran_ms >= BIVY_SV_BACKOFF_RESET_MS) *next_ms = 0;
  uint64_t delay = *next_ms;
  if (delay > cap_ms) delay = cap_ms;
  uint64_t n = *next_ms == 0 ? BIVY_SV_BACKOFF_FIRST_MS : *next_ms * 2;
  *next_ms = n > cap_ms ? cap_ms : n;
  return delay;
}

/* ---- specs ---- */

static int get_ms(json_t *o, const char *key, int64_t def, int64_t min, int64_t max, const char *where,
                  bivy_error_t *err) {
  json_t *v = json_object_get(o, key);
  if (v == NULL) {
    json_object_set_new(o, key, json_integer(def));
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
    return bivy_error(err, EINVAL, "%s.%s: must be an integer %" PRId64 "-%" PRId64, where, key, min, max);
  return 0;
}

static bool is_strv(json_t *a, bool nonempty) {
  if (!json_is_array(a) || (nonempty && json_array_size(a) == 0)) return false;
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) if (!json_is_string(v)) return false;
  return true;
}

static int check_health(json_t *h, bivy_error_t *err) {
  if (!json_is_object(h)) return bivy_error(err, EINVAL, "spec.health: must be an object");
  json_t *cmd = json_object_get(h, "cmd"), *tcp = json_object_get(h, "tcp"), *http = json_object_get(h, "http");
  int kinds = (cmd != NULL) + (tcp != NULL) + (http != NULL);
  if (kinds != 1) return bivy_error(err, EINVAL, "spec.health: give exactly one of cmd, tcp, http");
  if (cmd && (!json_is_string(cmd) || json_string_length(cmd) == 0))
    return bivy_error(err, EINVAL, "spec.health.cmd: must be a non-empty string");
  json_t *port = tcp ? tcp : http;
  if (port && (!json_is_integer(port) || json_integer_value(port) < 1 || json_integer_value(port) > 65535))
    return bivy_error(err, EINVAL, "spec.health.%s: must be a port 1-65535", tcp ? "tcp" : "http");
  if (http) {
    json_t *p = json_object_get(h, "path");
    if (p == NULL) json_object_set_new(h, "path", json_string("/"));
    else if (!json_is_string(p) || json_string_value(p)[0] != '/' || strpbrk(json_string_value(p), " \r\n"))
      return bivy_error(err, EINVAL, "spec.health.path: must start with / and hold no spaces or line breaks");
  }
  int r;
  if ((r = get_ms(h, "interval_ms", 30000, 10, 86400000, "spec.health", err)) < 0) return r;
  if ((r = get_ms(h, "timeout_ms", 30000, 10, 86400000, "spec.health", err)) < 0) return r;
  if ((r = get_ms(h, "retries", 3, 1, 1000, "spec.health", err)) < 0) return r;
  if ((r = get_ms(h, "start_period_ms", 0, 0, 86400000, "spec.health", err)) < 0) return r;
  return 0;
}

static int check_limits(json_t *l, bivy_error_t *err) {
  if (!json_is_object(l)) return bivy_error(err, EINVAL, "spec.limits: must be an object");
  const char *k;
  json_t *v;
  json_object_foreach(l, k, v) {
    if (strcmp(k, "memory") == 0 || strcmp(k, "pids") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) == 0)
        return bivy_error(err, EINVAL, "spec.limits.%s: must be a positive integer or -1 (unlimited)", k);
      if (strcmp(k, "memory") == 0 && json_integer_value(v) > 0 && json_integer_value(v) < 4096 * 16)
        return bivy_error(err, ERANGE, "spec.limits.memory: %" PRId64 " bytes is below the 64k minimum",
                          (int64_t)json_integer_value(v));
    } else if (strcmp(k, "cpus") == 0) {
      if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 4096)
        return bivy_error(err, EINVAL, "spec.limits.cpus: must be a number of CPUs > 0 (e.g. 0.5)");
      if (json_number_value(v) * 100000 < 1000)
        return bivy_error(err, ERANGE, "spec.limits.cpus: %g is below the 0.01 CPU minimum", json_number_value(v));
    } else if (strcmp(k, "cpuset_cpus") == 0) {
      if (!json_is_string(v) || json_string_length(v) == 0)
        return bivy_error(err, EINVAL, "spec.limits.cpuset_cpus: must be a list like 0-1,3");
    } else {
      return bivy_error(err, EINVAL, "spec.limits.%s: unknown limit (memory, cpus, pids, cpuset_cpus)", k);
    }
  }
  return 0;
}

/* An autoscaled instance starts at the policy's minimum; a limit given with it must lie in
 * the range (the autoscaler moves it only within). */
static int check_autoscale(json_t *spec, json_t *as, bivy_error_t *err) {
  struct bivy_as_policy p;
  int r = bivy_as_check(as, "spec.autoscale", &p, err);
  if (r < 0) return r;
  json_t *l = json_object_get(spec, "limits");
  if (l == NULL) {
    l = json_object();
    json_object_set_new(spec, "limits", l);
  }
  json_t *m = json_object_get(l, "memory"), *c = json_object_get(l, "cpus");
  if (p.mem && m == NULL) json_object_set_new(l, "memory", json_integer((json_int_t)p.mem_min));
  else if (p.mem && (json_integer_value(m) < (json_int_t)p.mem_min || json_integer_value(m) > (json_int_t)p.mem_max))
    return bivy_error(err, 0, "spec.limits.memory: %" PRId64 " bytes is outside the autoscale range", (int64_t)json_integer_value(m));
  if (p.cpu && c == NULL) json_object_set_new(l, "cpus", json_real(p.cpu_min));
  else if (p.cpu && (json_number_value(c) < p.cpu_min - 1e-9 || json_number_value(c) > p.cpu_max + 1e-9))
    return bivy_error(err, 0, "spec.limits.cpus: %g is outside the autoscale range %g:%g", json_number_value(c), p.cpu_min,
                      p.cpu_max);
  return 0;
}

int bivy_sv_spec_check(json_t *spec, bivy_error_t *err) {
  if (!json_is_object(spec)) return bivy_error(err, EINVAL, "spec: must be an object");
  static const char *const known[] = {"bundle", "rootfs", "args", "env", "restart", "health", "limits",
                                      "net", "publish", "seccomp", "max_backoff_ms", "warm", "autoscale", "failover", NULL};
  const char *k;
  json_t *v;
  json_object_foreach(spec, k, v) {
    bool ok = false;
    for (const char *const *p = known; *p; p++) ok |= strcmp(*p, k) == 0;
    if (!ok) return bivy_error(err, EINVAL, "spec.%s: unknown field", k);
  }
  json_t *bundle = json_object_get(spec, "bundle"), *rootfs = json_object_get(spec, "rootfs");
  if ((bundle != NULL) == (rootfs != NULL)) return bivy_error(err, EINVAL, "spec: give exactly one of bundle, rootfs");
  json_t *dir = bundle ? bundle : rootfs;
  if (!json_is_string(dir) || json_string_value(dir)[0] != '/')
    return bivy_error(err, EINVAL, "spec.%s: must be an absolute path", bundle ? "bundle" : "rootfs");
  json_t *args = json_object_get(spec, "args");
  if (rootfs && !is_strv(args, true)) return bivy_error(err, EINVAL, "spec.args: a command is required with rootfs (non-empty string array)");
  if (bundle && args) return bivy_error(err, EINVAL, "spec.args: not allowed with bundle (the bundle's config.json has the process)");
  json_t *env = json_object_get(spec, "env");
  if (env && !is_strv(env, false)) return bivy_error(err, EINVAL, "spec.env: must be an array of K=V strings");
  json_t *restart = json_object_get(spec, "restart");
  struct bivy_sv_restart rp;
  if (restart == NULL) json_object_set_new(spec, "restart", json_string("no"));
  else if (!json_is_string(restart) || bivy_sv_restart_parse(json_string_value(restart), &rp) < 0)
    return bivy_error(err, EINVAL, "spec.restart: must be no, on-failure[:N], always or unless-stopped");
  int r;
  json_t *fo = json_object_get(spec, "failover");
  struct bivy_cl_failover fp;
  if (fo && !json_is_string(fo)) return bivy_error(err, EINVAL, "spec.failover: must be a string");
  if (fo && (r = bivy_cl_failover_parse(json_string_value(fo), "spec.failover", &fp, err)) < 0) return r;
  json_t *h = json_object_get(spec, "health");
  if (h && (r = check_health(h, err)) < 0) return r;
  json_t *l = json_object_get(spec, "limits");
  if (l && (r = check_limits(l, err)) < 0) return r;
  json_t *as = json_object_get(spec, "autoscale");
  if (json_is_null(as)) json_object_del(spec, "autoscale");
  else if (as && (r = check_autoscale(spec, as, err)) < 0) return r;
  json_t *net = json_object_get(spec, "net");
  if (net && (!json_is_string(net) || json_string_length(net) == 0)) return bivy_error(err, EINVAL, "spec.net: must be a string");
  json_t *pub = json_object_get(spec, "publish");
  if (pub && !is_strv(pub, false)) return bivy_error(err, EINVAL, "spec.publish: must be an array of strings");
  json_t *sc = json_object_get(spec, "seccomp");
  if (sc && (!json_is_string(sc) || json_string_length(sc) == 0)) return bivy_error(err, EINVAL, "spec.seccomp: must be a string");
  json_t *warm = json_object_get(spec, "warm");
  if (warm && !json_is_boolean(warm)) return bivy_error(err, EINVAL, "spec.warm: must be true or false");
  if (json_is_true(warm)) {
    /* the spare is a second container: its own cgroup and ID, so no fixed cgroupsPath
     * (bundle) and no address lease (bridge), which are per container */
    if (bundle) return bivy_error(err, EINVAL, "spec.warm: needs rootfs (a bundle may fix linux.cgroupsPath)");
    const char *n = json_string_value(net);
    if (n && strcmp(n, "none") && strcmp(n, "host"))
      return bivy_error(err, EINVAL, "spec.warm: needs net none or host (a bridge lease belongs to one container)");
  }
  json_t *mb = json_object_get(spec, "max_backoff_ms");
  if (mb && (!json_is_integer(mb) || json_integer_value(mb) < 100 || json_integer_value(mb) > 86400000))
    return bivy_error(err, EINVAL, "spec.max_backoff_ms: must be an integer 100-86400000");
  return 0;
}

static json_t *obj(json_t *o, const char *key) {
  json_t *s = json_object_get(o, key);
  if (!json_is_object(s)) {
    s = json_object();
    json_object_set_new(o, key, s);
  }
  return s;
}

int bivy_sv_limits_to_resources(json_t *limits, json_t **resources, bivy_error_t *err) {
  _cleanup_json_ json_t *res = json_object();
  if (res == NULL) return bivy_error(err, ENOMEM, "limits");
  json_t *v;
  if ((v = json_object_get(limits, "memory"))) json_object_set_new(obj(res, "memory"), "limit", json_integer(json_integer_value(v)));
  if ((v = json_object_get(limits, "pids"))) json_object_set_new(obj(res, "pids"), "limit", json_integer(json_integer_value(v)));
  if ((v = json_object_get(limits, "cpus"))) {
    double cpus = json_number_value(v);
    int64_t quota = (int64_t)(cpus * 100000 + 0.5);
    if (quota < 1000) return bivy_error(err, ERANGE, "limits.cpus: %g is below the 0.01 CPU minimum", cpus);
    json_t *cpu = obj(res, "cpu");
    json_object_set_new(cpu, "quota", json_integer(quota));
    json_object_set_new(cpu, "period", json_integer(100000));
  }
  if ((v = json_object_get(limits, "cpuset_cpus"))) {
    uint8_t bits[128];
    if (bivy_cgroup_parse_list(json_string_value(v), bits, sizeof bits * 8) < 0)
      return bivy_error(err, EINVAL, "limits.cpuset_cpus: \"%s\" is not a list like 0-1,3", json_string_value(v));
    json_object_set_new(obj(res, "cpu"), "cpus", json_string(json_string_value(v)));
  }
  *resources = steal_pointer(&res);
  return 0;
}

void bivy_sv_limits_merge(json_t *limits, json_t *upd) {
  const char *k;
  json_t *v;
  json_object_foreach(upd, k, v) json_object_set(limits, k, v);
}

/* root.path of a bundle's config, made absolute against the bundle */
static int absolutise_root(json_t *cfg, const char *bundle, bivy_error_t *err) {
  json_t *root = json_object_get(cfg, "root");
  json_t *path = json_object_get(root, "path");
  if (!json_is_string(path)) return bivy_error(err, EINVAL, "%s/config.json: root.path: missing", bundle);
  const char *p = json_string_value(path);
  if (p[0] == '/') return 0;
  _cleanup_free_ char *abs = NULL;
  if (asprintf(&abs, "%s/%s", bundle, p) < 0) return bivy_error(err, ENOMEM, "root.path");
  json_object_set_new(root, "path", json_string(abs));
  return 0;
}

static int set_seccomp(json_t *linux_, const char *name, bivy_error_t *err) {
  if (strcmp(name, "unconfined") == 0) {
    json_object_del(linux_, "seccomp");
    return 0;
  }
  const char *text = bivy_seccomp_builtin(name);
  _cleanup_free_ char *file = NULL;
  size_t len = 0;
  if (text == NULL) {
    if (name[0] != '/') return bivy_error(err, EINVAL, "spec.seccomp: \"%s\" is neither a built-in profile nor an absolute path", name);
    int r = bivy_read_file_at(AT_FDCWD, name, &file, &len, err);
    if (r < 0) return bivy_error_wrap(err, "spec.seccomp");
    text = file;
  }
  json_error_t je;
  json_t *sc = json_loads(text, 0, &je);
  if (!json_is_object(sc)) {
    json_decref(sc);
    return bivy_error(err, EINVAL, "spec.seccomp %s: line %d: %s", name, je.line, sc ? "not an object" : je.text);
  }
  json_object_set_new(linux_, "seccomp", sc);
  return 0;
}

int bivy_sv_make_config(json_t *spec, const char *name, const char *cgroup_parent, json_t **config,
                        bivy_error_t *err) {
  _cleanup_json_ json_t *cfg = NULL;
  int r;
  const char *bundle = json_string_value(json_object_get(spec, "bundle"));
  if (bundle) {
    _cleanup_free_ char *path = NULL, *text = NULL;
    size_t len = 0;
    if (asprintf(&path, "%s/config.json", bundle) < 0) return bivy_error(err, ENOMEM, "bundle");
    if ((r = bivy_read_file_at(AT_FDCWD, path, &text, &len, err)) < 0) return bivy_error_wrap(err, "spec.bundle");
    json_error_t je;
    cfg = json_loadb(text, len, 0, &je);
    if (!json_is_object(cfg)) return bivy_error(err, EINVAL, "%s: line %d: %s", path, je.line, cfg ? "not an object" : je.text);
    if ((r = absolutise_root(cfg, bundle, err)) < 0) return r;
  } else {
    cfg = bivy_config_default_spec_json(false);
    if (cfg == NULL) return bivy_error(err, ENOMEM, "default spec");
    json_t *root = obj(cfg, "root");
    json_object_set(root, "path", json_object_get(spec, "rootfs"));
    json_object_set_new(root, "readonly", json_true());
    json_t *proc = obj(cfg, "process");
    json_object_set(proc, "args", json_object_get(spec, "args"));
    json_t *env = json_object_get(spec, "env");
    json_t *penv = json_object_get(proc, "env");
    if (env && json_is_array(penv)) json_array_extend(penv, env);
    if ((r = set_seccomp(obj(cfg, "linux"), "default", err)) < 0) return r;
  }
  json_t *proc = obj(cfg, "process");
  /* stdout/stderr go to bivyd's log files: no terminal */
  json_object_set_new(proc, "terminal", json_false());
  json_t *linux_ = obj(cfg, "linux");
  const char *sc = json_string_value(json_object_get(spec, "seccomp"));
  if (sc && (r = set_seccomp(linux_, sc, err)) < 0) return r;
  if (!json_is_string(json_object_get(linux_, "cgroupsPath"))) {
    _cleanup_free_ char *cgp = NULL;
    if (asprintf(&cgp, "%s/%s", cgroup_parent, name) < 0) return bivy_error(err, ENOMEM, "cgroupsPath");
    json_object_set_new(linux_, "cgroupsPath", json_string(cgp));
  }
  json_t *limits = json_object_get(spec, "limits");
  if (limits && json_object_size(limits) > 0) {
    _cleanup_json_ json_t *res = NULL;
    if ((r = bivy_sv_limits_to_resources(limits, &res, err)) < 0) return r;
    json_t *cur = obj(linux_, "resources");
    const char *k;
    json_t *v;
    json_object_foreach(res, k, v) {
      json_t *d = obj(cur, k);
      json_object_update(d, v);
    }
  }
  json_t *net = json_object_get(spec, "net"), *pub = json_object_get(spec, "publish");
  /* a rootfs instance gets its loopback up (and /etc/hosts) by default: health probes
   * and local clients use 127.0.0.1 */
  _cleanup_json_ json_t *none = NULL;
  if (net == NULL && bundle == NULL) net = none = json_string("none");
  if (net || (pub && json_array_size(pub))) {
    json_t *ann = obj(cfg, "annotations");
    if (net) json_object_set(ann, "org.bivy.net", net);
    if (pub && json_array_size(pub)) {
      _cleanup_free_ char *joined = NULL;
      size_t i;
      json_t *v;
      json_array_foreach(pub, i, v) {
        char *n = NULL;
        if (asprintf(&n, "%s%s%s", joined ? joined : "", joined ? "," : "", json_string_value(v)) < 0)
          return bivy_error(err, ENOMEM, "publish");
        free(joined);
        joined = n;
      }
      json_object_set_new(ann, "org.bivy.publish", json_string(joined));
    }
  }
  *config = steal_pointer(&cfg);
  return 0;
}
