/* bivyd's autoscaler: grows an instance's memory and CPU limits from measured pressure and
 * shrinks them back when it is quiet, within the bounds of spec.autoscale and the host
 * budget. Decisions are the pure functions of runtime/autoscale.c; this file wires signals
 * into the epoll loop and applies changes through inst_resize (the `resize` path).
 *
 * Signals, event-driven:
 *   memory  a v1 usage-threshold eventfd at 80 % of the limit, or on v2 memory.high at 80 %
 *           (the kernel slows allocations there and reports "high" in memory.events);
 *           plus a PSI trigger on memory.pressure
 *   cpu     a PSI trigger on cpu.pressure (CFS throttling shows as cpu stall); cpu.stat
 *           throttling once a second when the kernel offers no PSI
 * A 1 s tick per autoscaled instance evaluates the quiet window for shrinking (and catches
 * a crossing that happened while a limit was being changed). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "runtime/cleanup.h"
#include "runtime/state.h"
#include "runtime/util.h"
#include "tools/bivyd/bivyd.h"

#define TICK_NS 1000000000ull
#define MEM_PSI_STALL_US 50000  /* 5 % of the window stalled on memory */
#define CPU_PSI_STALL_US 100000 /* 10 % of the window throttled or waiting for CPU */

static void close_watch(int *fd) {
  if (*fd >= 0) {
    bivyd_watch_del(*fd);
    close(*fd);
    *fd = -1;
  }
}

static uint64_t spec_mem(struct bivyd_inst *in) {
  json_t *m = json_object_get(json_object_get(in->spec, "limits"), "memory");
  return json_is_integer(m) && json_integer_value(m) > 0 ? (uint64_t)json_integer_value(m) : UINT64_MAX;
}

static double spec_cpus(struct bivyd_inst *in) {
  json_t *c = json_object_get(json_object_get(in->spec, "limits"), "cpus");
  return json_is_number(c) ? json_number_value(c) : 0;
}

/* Sum of one limit over every other instance that holds resources (not stopped or exited). */
static double others_sum(struct bivyd_inst *self, const char *key) {
  double sum = 0;
  for (struct bivyd_inst *o = D.insts; o; o = o->next) {
    if (o == self || o->removed || o->state == S_STOPPED || o->state == S_EXITED) continue;
    json_t *v = json_object_get(json_object_get(o->spec, "limits"), key);
    if (json_is_number(v) && json_number_value(v) > 0) sum += json_number_value(v);
  }
  return sum;
}

int as_budget_check(struct bivyd_inst *self, json_t *limits, bivy_error_t *err) {
  char a[32], b[32], c[32];
  if (D.budget_mem) {
    json_t *m = json_object_get(limits, "memory");
    if (!json_is_integer(m) || json_integer_value(m) <= 0)
      return bivy_error(err, ENOSPC, "bivyd runs with --budget-memory: the instance needs a memory limit (--memory or --autoscale memory=MIN:MAX)");
    double used = others_sum(self, "memory");
    bivy_format_size((uint64_t)json_integer_value(m), a, sizeof a);
    bivy_format_size(D.budget_mem, b, sizeof b);
    bivy_format_size((uint64_t)used, c, sizeof c);
    if (used + (double)json_integer_value(m) > (double)D.budget_mem)
      return bivy_error(err, ENOSPC, "memory limit %s does not fit the host budget (--budget-memory %s, %s held by other instances)", a, b, c);
  }
  if (D.budget_cpus > 0) {
    json_t *cp = json_object_get(limits, "cpus");
    if (!json_is_number(cp))
      return bivy_error(err, ENOSPC, "bivyd runs with --budget-cpus: the instance needs a CPU limit (--cpus or --autoscale cpus=MIN:MAX)");
    double used = others_sum(self, "cpus");
    if (used + json_number_value(cp) > D.budget_cpus + 1e-9)
      return bivy_error(err, ENOSPC, "cpus %g does not fit the host budget (--budget-cpus %g, %g held by other instances)",
                        json_number_value(cp), D.budget_cpus, used);
  }
  return 0;
}

/* Apply one limit change; an event with the reason, before and after, and how long it took
 * from the signal (`reaction_ms`). */
static bool apply(struct bivyd_inst *in, const char *resource, json_t *value, json_t *before, const char *reason,
                  uint64_t signal_ns) {
  _cleanup_json_ json_t *upd = json_object();
  json_object_set(upd, resource, value);
  _cleanup_error_ bivy_error_t err = NULL;
  bool live = false;
  if (inst_resize(in, upd, &live, &err) < 0) {
    D.autoscale_refused_total++;
    bivyd_event(in, "autoscale-refused", json_pack("{s:s, s:s, s:O, s:O, s:s}", "resource", resource, "reason", reason,
                                                   "limit", before, "wanted", value, "error", err->msg));
    return false;
  }
  D.autoscale_total++;
  double ms = (double)(bivy_now_ns() - signal_ns) / 1e6;
  bivyd_event(in, "autoscale", json_pack("{s:s, s:s, s:O, s:O, s:f, s:b}", "resource", resource, "reason", reason, "before",
                                         before, "after", value, "reaction_ms", ms, "live", live));
  return true;
}

static void refuse_budget(struct bivyd_inst *in, const char *resource, json_t *limit, json_t *wanted, json_t *budget) {
  D.autoscale_refused_total++;
  bivyd_event(in, "autoscale-refused", json_pack("{s:s, s:s, s:o, s:o, s:o}", "resource", resource, "reason", "host budget",
                                                 "limit", limit, "wanted", wanted, "budget", budget));
}

static void arm_mem_watch(struct bivyd_inst *in) {
  close_watch(&in->as_mem_fd);
  uint64_t limit = spec_mem(in);
  if (!in->as.mem || in->as_cg == NULL || limit == UINT64_MAX) return;
  _cleanup_error_ bivy_error_t err = NULL;
  /* no early-warning line while the host budget blocks a grow (as at max): on v2 memory.high
   * would only slow the instance to a crawl; the limit itself is the honest outcome, and the
   * 1 s tick grows it as soon as the budget has room again */
  uint64_t line = in->as_refused_mem ? UINT64_MAX : bivy_as_mem_warn(limit, &in->as);
  int fd = bivy_cgroup_memory_watch(in->as_cg, line, &err);
  if (fd < 0) {
    if (err) bivyd_log("%s: autoscale: %s", in->name, err->msg);
    return;
  }
  in->as_mem_fd = fd;
  bivyd_watch_add(fd, EPOLLIN, &in->w_as_mem);
}

/* Grow memory while usage is above the line (a big allocation may need several steps).
 * known: a usage reading the caller already made (NULL: read it), for the first step. */
static void mem_check(struct bivyd_inst *in, bool pressure, const char *reason, uint64_t signal_ns,
                      const struct bivy_cgroup_usage *known) {
  bool changed = false, was_blocked = in->as_refused_mem != 0;
  for (int step = 0; step < 8; step++) {
    struct bivy_cgroup_usage u;
    _cleanup_error_ bivy_error_t err = NULL;
    if (step == 0 && known) u = *known;
    else if (bivy_cgroup_usage(in->as_cg, &u, &err) < 0) break;
    uint64_t limit = spec_mem(in);
    uint64_t want = bivy_as_mem_grow(limit, u.mem_usage, pressure, &in->as);
    if (want == 0) break;
    if (D.budget_mem) {
      double others = others_sum(in, "memory");
      uint64_t avail = others >= (double)D.budget_mem ? 0 : D.budget_mem - (uint64_t)others;
      uint64_t fit = bivy_as_budget_clip(limit, want, avail);
      if (fit == 0) {
        if (in->as_refused_mem != want) refuse_budget(in, "memory", json_integer((json_int_t)limit), json_integer((json_int_t)want), json_integer((json_int_t)D.budget_mem));
        in->as_refused_mem = want;
        break;
      }
      want = fit;
    }
    _cleanup_json_ json_t *before = json_integer((json_int_t)limit), *after = json_integer((json_int_t)want);
    if (!apply(in, "memory", after, before, reason, signal_ns)) break;
    in->as_refused_mem = 0;
    changed = true;
    in->as_calm_since_ns = bivy_now_ns();
  }
  bool blocked = in->as_refused_mem != 0;
  if (changed || blocked != was_blocked || (in->as_mem_fd < 0 && !blocked)) arm_mem_watch(in);
}

static void cpu_grow(struct bivyd_inst *in, const char *reason, uint64_t signal_ns) {
  double cur = spec_cpus(in);
  if (cur <= 0) return;
  double want = bivy_as_cpu_grow(cur, &in->as);
  if (want == 0) return;
  if (D.budget_cpus > 0) {
    double avail = D.budget_cpus - others_sum(in, "cpus");
    if (want > avail + 1e-9) {
      want = floor(avail * 100 + 1e-9) / 100;
      if (want <= cur) {
        if (in->as_refused_cpu != want) refuse_budget(in, "cpus", json_real(cur), json_real(bivy_as_cpu_grow(cur, &in->as)), json_real(D.budget_cpus));
        in->as_refused_cpu = want;
        return;
      }
    }
  }
  _cleanup_json_ json_t *before = json_real(cur), *after = json_real(want);
  if (apply(in, "cpus", after, before, reason, signal_ns)) {
    in->as_refused_cpu = 0;
    in->as_calm_since_ns = bivy_now_ns();
  }
}

void as_event(struct bivyd_inst *in, enum watch_kind kind) {
  uint64_t now = bivy_now_ns();
  if (!in->as_on || in->state != S_RUNNING) return;
  switch (kind) {
    case W_AS_MEM:
      bivy_cgroup_oom_drain(in->as_mem_fd);
      mem_check(in, false, "memory usage crossed 80% of the limit", now, NULL);
      break;
    case W_AS_PSI_MEM:
      in->as_calm_since_ns = now;
      mem_check(in, true, "memory pressure (PSI)", now, NULL);
      break;
    case W_AS_PSI_CPU:
      in->as_calm_since_ns = now;
      cpu_grow(in, "cpu pressure (PSI): throttled or waiting for CPU", now);
      break;
    default: break;
  }
}

static void shrink(struct bivyd_inst *in, const struct bivy_cgroup_usage *u, uint64_t now) {
  uint64_t limit = spec_mem(in);
  bool done = false;
  if (in->as.mem && limit != UINT64_MAX) {
    uint64_t t = bivy_as_mem_shrink(limit, u->mem_working_set, &in->as);
    if (t) {
      _cleanup_json_ json_t *before = json_integer((json_int_t)limit), *after = json_integer((json_int_t)t);
      if (apply(in, "memory", after, before, "quiet window: working set plus 25% headroom", now)) {
        done = true;
        arm_mem_watch(in);
      }
    }
  }
  double cur = spec_cpus(in);
  if (in->as.cpu && cur > 0 && now > in->as_win_ns) {
    double used = (double)(u->cpu_usage_usec - in->as_win_cpu_usec) * 1000.0 / (double)(now - in->as_win_ns);
    double t = bivy_as_cpu_shrink(cur, used, &in->as);
    if (t > 0) {
      _cleanup_json_ json_t *before = json_real(cur), *after = json_real(t);
      done |= apply(in, "cpus", after, before, "quiet window: CPU used plus 25% headroom", now);
    }
  }
  (void)done;
  /* the next shrink (or none) after another full quiet window */
  in->as_calm_since_ns = now;
  in->as_win_ns = now;
  in->as_win_cpu_usec = u->cpu_usage_usec;
}

void as_tick(struct bivyd_inst *in, uint64_t now) {
  in->due_autoscale = now + TICK_NS;
  if (!in->as_on || in->state != S_RUNNING || in->as_cg == NULL) return;
  struct bivy_cgroup_usage u;
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_cgroup_usage(in->as_cg, &u, &err) < 0) return;
  if (in->as.mem) mem_check(in, false, "memory usage above 80% of the limit", now, &u);
  if (in->as.cpu && in->as_psi_cpu_fd < 0) {
    /* no PSI: a period in five throttled since the last tick */
    uint64_t dp = u.cpu_periods - in->as_periods, dt = u.cpu_throttled - in->as_throttled;
    in->as_periods = u.cpu_periods;
    in->as_throttled = u.cpu_throttled;
    if (dp > 0 && dt * 5 >= dp) {
      in->as_calm_since_ns = now;
      cpu_grow(in, "cpu throttled (cpu.stat)", now);
    }
  }
  if (now - in->as_calm_since_ns >= in->as.quiet_ms * 1000000ull) shrink(in, &u, now);
}

void as_arm(struct bivyd_inst *in) {
  as_disarm(in);
  json_t *a = json_object_get(in->spec, "autoscale");
  if (a == NULL || in->state != S_RUNNING) return;
  _cleanup_error_ bivy_error_t err = NULL;
  if (bivy_as_check(a, "autoscale", &in->as, &err) < 0) {
    bivyd_log("%s: autoscale: %s", in->name, err->msg);
    return;
  }
  in->as_cg = inst_cgroup(in);
  if (in->as_cg == NULL) {
    bivyd_log("%s: autoscale: the instance has no cgroup", in->name);
    return;
  }
  in->as_on = true;
  in->as_refused_mem = 0;
  in->as_refused_cpu = 0;
  uint64_t now = bivy_now_ns(), win;
  struct { bool on; const char *res; uint64_t stall; int *fd; struct watch *w; } psi[] = {
      {in->as.mem, "memory", MEM_PSI_STALL_US, &in->as_psi_mem_fd, &in->w_as_psi_mem},
      {in->as.cpu, "cpu", CPU_PSI_STALL_US, &in->as_psi_cpu_fd, &in->w_as_psi_cpu}};
  for (size_t i = 0; i < 2; i++) {
    if (!psi[i].on) continue;
    int fd = bivy_cgroup_psi_trigger(in->as_cg, psi[i].res, psi[i].stall, &win, &err);
    if (fd < 0) {
      if (D.debug) bivyd_debug("%s: autoscale: %s", in->name, err->msg);
      continue;
    }
    *psi[i].fd = fd;
    bivyd_watch_add(fd, EPOLLPRI, psi[i].w);
  }
  arm_mem_watch(in);
  struct bivy_cgroup_usage u = {0};
  bivy_cgroup_usage(in->as_cg, &u, &err);
  in->as_calm_since_ns = in->as_win_ns = now;
  in->as_win_cpu_usec = u.cpu_usage_usec;
  in->as_periods = u.cpu_periods;
  in->as_throttled = u.cpu_throttled;
  in->due_autoscale = now + TICK_NS;
}

void as_off(struct bivyd_inst *in) {
  if (in->as_cg && in->as.mem && bivy_cgroup_on_v2(in->as_cg, "memory")) {
    /* v2: lift the early-warning line (memory.high) that only the autoscaler wanted */
    _cleanup_error_ bivy_error_t err = NULL;
    int fd = bivy_cgroup_memory_watch(in->as_cg, UINT64_MAX, &err);
    if (fd >= 0) close(fd);
  }
  as_disarm(in);
}

void as_disarm(struct bivyd_inst *in) {
  close_watch(&in->as_mem_fd);
  close_watch(&in->as_psi_mem_fd);
  close_watch(&in->as_psi_cpu_fd);
  if (in->as_cg) {
    bivy_cgroup_free(in->as_cg);
    in->as_cg = NULL;
  }
  in->as_on = false;
  in->due_autoscale = 0;
}
