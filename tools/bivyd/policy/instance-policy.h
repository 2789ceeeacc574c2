/* bivyd layer 0 (policy): supervision policy shared by bivyd (tools/bivyd/) and its client verbs (tools/bivy/up.c,
 * resize.c, ...): restart policies and back-off as Docker defines them, durations, the
 * instance spec that `bivy up` sends and bivyd keeps, and the config.json bivyd generates
 * from it. Pure functions (no I/O except reading a bundle's config.json / seccomp file).
 *
 * Instance spec (JSON object, what `bivy up` sends and bivyd persists):
 *   "bundle":  "/abs/dir"                 (or)  "rootfs": "/abs/dir", "args": ["cmd", ...]
 *   "env":     ["K=V", ...]               (rootfs only; added to the default PATH/TERM)
 *   "restart": "no" | "on-failure[:N]" | "always" | "unless-stopped"
 *   "health":  {"cmd": "shell command"} | {"tcp": PORT} | {"http": PORT, "path": "/x"}
 *              + "interval_ms", "timeout_ms", "retries", "start_period_ms"
 *   "limits":  {"memory": BYTES, "cpus": N.N, "pids": N, "cpuset_cpus": "0-1"}
 *   "net":     "none" | "host" | "bridge[:NAME]" ...   "publish": ["8080:80", ...]
 *   "seccomp": "default" | "unconfined" | "/abs/profile.json"
 *   "max_backoff_ms": N (optional; the daemon's --max-backoff otherwise)
 *   "warm":    true: keep a created spare container so that a restart is only a start
 *              (rootfs, net none/host only) */
#ifndef BIVYD_INSTANCE_POLICY_H
#define BIVYD_INSTANCE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/error.h"

enum bivy_sv_policy { BIVY_SV_NO, BIVY_SV_ON_FAILURE, BIVY_SV_ALWAYS, BIVY_SV_UNLESS_STOPPED };

struct bivy_sv_restart {
  enum bivy_sv_policy policy;
  unsigned max; /* on-failure:N (0 = unlimited) */
};

/* Back-off: the first restart is immediate, then 100 ms doubling up to the cap; an
 * instance that ran at least this long starts over with an immediate restart. */
#define BIVY_SV_BACKOFF_FIRST_MS 100
#define BIVY_SV_BACKOFF_RESET_MS 10000
#define BIVY_SV_DEFAULT_MAX_BACKOFF_MS 30000
/* this many back-to-back quick failures show as "crash-loop" instead of "backoff" */
#define BIVY_SV_CRASH_LOOP 5

/* "no", "on-failure", "on-failure:3", "always", "unless-stopped". -EINVAL on anything else. */
int bivy_sv_restart_parse(const char *s, struct bivy_sv_restart *out);
/* "on-failure:3" etc. into buf. */
const char *bivy_sv_restart_str(const struct bivy_sv_restart *r, char *buf, size_t len);

/* Whether an exit calls for a restart: failed = non-zero exit, signal, OOM kill, unhealthy
 * or unknown status; failure_restarts = restarts already made after failures. */
bool bivy_sv_should_restart(const struct bivy_sv_restart *r, bool failed, unsigned failure_restarts);

/* Delay before the next restart, given how long the instance ran and the back-off state
 * *next_ms (0 initially): returns the delay and advances *next_ms. */
uint64_t bivy_sv_backoff(uint64_t *next_ms, uint64_t ran_ms, uint64_t cap_ms);

/* Check and normalise a spec in place (defaults filled: restart "no", health timings).
 * Errors name the field: "spec.health.retries: must be 1-1000". */
int bivy_sv_spec_check(json_t *spec, bivy_error_t *err);

/* limits object -> OCI linux.resources. Only the keys present are set. */
int bivy_sv_limits_to_resources(json_t *limits, json_t **resources, bivy_error_t *err);
/* Merge the keys of upd into limits (resize): the new desired limits. */
void bivy_sv_limits_merge(json_t *limits, json_t *upd);

/* The config.json bivyd creates instance `name` from: the bundle's config (root.path made
 * absolute) or the default spec with rootfs/args/env, then limits, net, publish, seccomp,
 * cgroupsPath = cgroup_parent/name (when the bundle names none), terminal off. */
int bivy_sv_make_config(json_t *spec, const char *name, const char *cgroup_parent, json_t **config,
                        bivy_error_t *err);

#endif
